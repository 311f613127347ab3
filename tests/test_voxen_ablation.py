"""The time-stride ablation benchmark (benchmarks/voxen_ablation.py): its arms, its summary, and a tiny run."""
from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

from vaelib.data import eval_clips, load_real_clips
from vaelib.paths import PROJECT_ROOT
from vaelib.preprocess import preprocess
from vaelib.rd import RDPoint
from vaelib.voxen import VoxEnConfig


@pytest.fixture(scope="module")
def ablation():
    import sys

    sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
    try:
        yield importlib.import_module("voxen_ablation")
    finally:
        sys.path.remove(str(PROJECT_ROOT / "benchmarks"))


def default_base() -> VoxEnConfig:
    return VoxEnConfig(clip_len=16, image_size=64, channels=[16, 16, 32], strides=[[1, 2, 2]] * 3,
                       hyper_stride=[1, 2, 2])


def test_arms_differ_only_in_time_strides(ablation):
    base = default_base()
    arms = ablation.arm_configs(base, ["t1", "t2", "t4", "t16", "t16_matched"])
    assert {a: c.total_stride[0] for a, c in arms.items()} == {"t1": 1, "t2": 2, "t4": 4, "t16": 16, "t16_matched": 16}
    for name, cfg in arms.items():
        assert cfg.total_stride[1] == (8, 8) and cfg.hyper_stride == [1, 2, 2] and cfg.entropy == "hyperprior"
        d = cfg.to_dict()
        for key, value in base.to_dict().items():
            if key not in ("strides", "channels"):
                assert d[key] == value, (name, key)
        assert cfg.channels == base.channels or name == "t16_matched"
        assert cfg.channels[-1] == base.channels[-1]
    params = {a: ablation.n_params(c) for a, c in arms.items()}
    # the strided kernels are longer (stride + 2): the same width costs t16 about a quarter more weights, which the
    # matched control removes
    assert params["t16"] > 1.2 * params["t1"]
    assert abs(params["t16_matched"] / params["t1"] - 1) <= 0.10
    assert all(abs(params[a] / params["t1"] - 1) <= 0.10 for a in ("t2", "t4"))
    with pytest.raises(ValueError, match="t1"):
        ablation.arm_configs(base, ["t2", "t16"])


def fake_points(arm: str, rate_factor: float, seed: int, shift: float = 0.0) -> list[RDPoint]:
    out = []
    for lmbda, bpp, q in ((0.0018, 0.8, 30.0), (0.0004, 0.3, 27.0), (0.0001, 0.1, 24.0)):
        clip_bpp = tuple(rate_factor * bpp * np.array([0.9, 1.0, 1.1]) * (1 + shift))
        clip_psnr = (q - 1, q, q + 1)
        out.append(RDPoint(codec=arm, setting=lmbda, bpp=float(np.mean(clip_bpp)), psnr=q, ms_ssim=0.9,
                           encode_s=0.1, decode_s=0.1, n_clips=3, n_bytes=100, dataset="real", seed=seed,
                           clip_bpp=clip_bpp, clip_psnr=clip_psnr, train_steps=5, train_s=1.0))
    return out


def test_summary_finds_the_arm_that_halves_the_rate(ablation):
    # t1's second seed needs 2% more bits, t2's 4% more: the four pairings of seeds span -51% to -48%
    points = [p for s, shift in ((0, 0.0), (1, 0.02)) for p in fake_points("t1", 1.0, s, shift) +
              fake_points("t2", 0.5, s, 2 * shift)]
    res = ablation.summarize(points, ["t1", "t2"], [0.0018, 0.0004, 0.0001], draws=50)["real"]
    bd = res["bd_rate_vs_t1"]["t2"]
    assert bd["bd_rate_%"] == pytest.approx(100 * (0.51 / 1.01 - 1), abs=0.1)
    assert bd["ci95_over_clips_%"][0] <= bd["bd_rate_%"] <= bd["ci95_over_clips_%"][1]
    lo, hi = bd["seed_pairs_range_%"]
    assert bd["seed_pairs"] == 4 and lo == pytest.approx(100 * (0.5 / 1.02 - 1), abs=0.1) \
        and hi == pytest.approx(-48.0, abs=0.1)
    assert set(bd["by_seed_%"]) == {"0", "1"}
    assert res["bd_rate_vs_t1"]["t1"]["seed_pairs"] == 1  # t1 seed 0 against t1 seed 1: training noise
    assert [r["lambda"] for r in res["rd"]["t2"]] == [0.0018, 0.0004, 0.0001]
    assert res["rd"]["t2"][0]["bpp_seed_range"][0] < res["rd"]["t2"][0]["bpp_seed_range"][1]
    assert "A longer time stride pays" in res["verdict"] and "t2 wins" in res["verdict"]
    assert res["lambda_orders_points"] == {"t1": True, "t2": True} and bd["dominates_t1"] and not bd["dominated_by_t1"]
    assert bd["rate_vs_t1_by_lambda"]["0.0018"] == pytest.approx(0.51 / 1.01)
    assert bd["psnr_vs_t1_db_by_lambda"]["0.0018"] == pytest.approx(0.0)
    # a seed missing one lambda does not count; an arm with none left has no curve
    partial = ablation.summarize(points[:-1], ["t1", "t2"], [0.0018, 0.0004, 0.0001], draws=20)["real"]
    assert partial["rd"]["t2"][0]["seeds"] == [0]


def test_tiny_ablation_runs_resumes_and_writes_its_schema(ablation, small_dataset, tmp_path):
    # 64 x 64: the RD points' MS-SSIM needs sides over 32
    frames = preprocess(small_dataset.videos, tmp_path / "frames", size=64, progress=False)
    base = VoxEnConfig(clip_len=16, image_size=64, channels=[4, 4, 8], strides=[[1, 2, 2]] * 3,
                       hyper_channels=8, hyper_stride=[1, 2, 2])
    evals = {"synthetic": (eval_clips(frames, frames.movies[-1:], 16, 2), 30.0),
             "real": (load_real_clips(["carphone_pristine"], 16, 64, max_clips_per_video=2)["carphone_pristine"],
                      29.97)}
    partial = []
    kw = dict(lambdas=(0.0018, 0.0001), seeds=(0,), steps=2, batch_size=2, draws=20)
    record = ablation.run_ablation(frames, evals, tmp_path, base, on_run=partial.append, **kw)
    arms = ["t1", "t2", "t4", "t16", "t16_matched"]
    assert len(partial) == 9 and all(r["partial"] for r in partial) and partial[0]["runs_done"] == 1
    assert not record["partial"] and record["runs_done"] == record["runs_planned"] == 10
    assert list(record["arms"]) == arms and len(record["points"]) == 20
    for arm in record["arms"].values():
        cfg = VoxEnConfig.from_dict({**base.to_dict(), "strides": arm["strides"], "channels": arm["channels"]})
        assert arm["params"] == ablation.n_params(cfg)
        assert arm["total_time_stride"] == int(np.prod(arm["time_strides"]))
        assert [s[1:] for s in arm["strides"]] == [[2, 2]] * 3
    assert record["arms"]["t16_matched"]["params_within_10%_of_t1"]
    assert set(record["results"]) == {"synthetic", "real"}
    for res in record["results"].values():
        assert res["n_clips"] == 2 and list(res["rd"]) == arms
        assert all(len(rows) == 2 and all(r["bpp"] > 0 for r in rows) for rows in res["rd"].values())
        assert set(res["bd_rate_vs_t1"]) == set(arms)
        for arm in arms[1:]:
            assert {"bd_rate_%", "ci95_over_clips_%", "seed_pairs_range_%", "by_seed_%"} <= set(
                res["bd_rate_vs_t1"][arm])
        assert res["verdict"].startswith(("synthetic", "real"))
    path = tmp_path / "out.json"
    ablation.write_results(record, path)
    assert json.loads(path.read_text())["runs_done"] == 10
    again = ablation.run_ablation(frames, evals, tmp_path, base, **kw)  # every run read back from its cache
    assert again["points"] == record["points"]
