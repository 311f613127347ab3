"""Training in several processes (torchrun, gloo on CPU): the same weights as one process, exact resume, clear errors.

Each torchrun launch takes a few seconds (two processes importing torch); the model is tiny.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vaelib import distributed
from vaelib.data import ClipSampler, frame_sampler
from vaelib.losses import MMDLossConfig, mmd_vae_loss_fn
from vaelib.mmdvae import MMDVAE, MMDVAEConfig
from vaelib.train import TrainConfig, load_checkpoint, read_metrics, train

JOB = Path(__file__).with_name("ddp_job.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "VAELIB_DIST_TIMEOUT_S": "60"}
for _k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
    ENV.pop(_k, None)


def launch(run_dir, *args, nproc=2):
    """Run tests/ddp_job.py in ``nproc`` processes under torchrun (or plainly for 1); return the finished process."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"] \
        if nproc > 1 else [sys.executable]
    return subprocess.run([*cmd, str(JOB), str(run_dir), *map(str, args)], env=ENV, capture_output=True, text=True,
                          timeout=300)


def weights(run_dir):
    return load_checkpoint(Path(run_dir) / "checkpoint.pt")["model"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One uninterrupted run in one process and one in two processes, same global batch (8), 12 steps."""
    root = tmp_path_factory.mktemp("ddp")
    for name, nproc in (("one", 1), ("two", 2)):
        p = launch(root / name, nproc=nproc)
        assert p.returncode == 0, p.stderr[-3000:]
    return root


@pytest.mark.slow  # starts torchrun
def test_two_processes_match_one(runs):
    one, two = weights(runs / "one"), weights(runs / "two")
    assert one.keys() == two.keys()
    for k in one:  # the same global batch and the same MMD over it: equal up to float rounding
        torch.testing.assert_close(two[k], one[k], rtol=1e-4, atol=1e-6)
    m1, m2 = read_metrics(runs / "one"), read_metrics(runs / "two")
    assert m1[["step", "split", "metric"]].equals(m2[["step", "split", "metric"]])  # rank 0 logged every row once
    np.testing.assert_allclose(m2.value, m1.value, rtol=1e-4, atol=1e-6)
    env = json.loads((runs / "two" / "environment.json").read_text())
    assert env["world_size"] == 2 and json.loads((runs / "one" / "environment.json").read_text())["world_size"] == 1
    state = load_checkpoint(runs / "two" / "checkpoint.pt")
    assert state["world_size"] == 2 and len(state["rng"]["ranks"]) == 2
    assert not torch.equal(state["rng"]["ranks"][0]["torch"], state["rng"]["ranks"][1]["torch"])  # per-rank seeds
    assert not list((runs / "two").glob(".*tmp*"))


@pytest.mark.slow  # starts torchrun
def test_killed_distributed_run_resumes_exactly(runs, tmp_path):
    p = launch(tmp_path / "r", "--die-at", 8, "--die-how", "kill")  # rank 1 killed (SIGKILL) in step 8
    assert p.returncode != 0
    assert load_checkpoint(tmp_path / "r" / "checkpoint.pt")["step"] == 5  # the last checkpoint, intact
    p = launch(tmp_path / "r")
    assert p.returncode == 0, p.stderr[-3000:]
    resumed, full = weights(tmp_path / "r"), weights(runs / "two")
    assert all(torch.equal(resumed[k], full[k]) for k in full)  # bitwise, as in one process
    assert read_metrics(tmp_path / "r").drop(columns="time_s").equals(read_metrics(runs / "two").drop(columns="time_s"))


@pytest.mark.slow  # starts torchrun
def test_a_dying_rank_is_named_and_the_folder_stays_resumable(tmp_path):
    p = launch(tmp_path / "d", "--die-at", 7, "--die-rank", 1)
    assert p.returncode != 0
    assert "rank 1 fails on purpose" in p.stderr
    assert "holds step 5; run the same torchrun command again" in p.stderr
    assert load_checkpoint(tmp_path / "d" / "checkpoint.pt")["step"] == 5


@pytest.mark.slow  # starts torchrun
def test_world_size_must_divide_the_batch(tmp_path):
    p = launch(tmp_path / "b", "--batch-size", 7)
    assert p.returncode != 0
    assert "TrainConfig.batch_size=7" in p.stderr and "cannot be split evenly over the 2 processes" in p.stderr
    assert not (tmp_path / "b").exists()  # nothing written


@pytest.mark.slow  # starts torchrun
def test_resume_with_another_world_size_is_refused(runs, tmp_path):
    import shutil
    shutil.copytree(runs / "two", tmp_path / "w")
    p = launch(tmp_path / "w", "--steps", 14, nproc=1)
    assert p.returncode != 0
    assert "was written by a run of 2 process(es); this one has 1" in p.stderr
    assert load_checkpoint(tmp_path / "w" / "checkpoint.pt")["step"] == 12  # left as it was


def test_cuda_where_there_is_none_under_torchrun(tmp_path, monkeypatch):
    """The device is checked before any process group is joined, with a message saying what to pass."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    model = MMDVAE(MMDVAEConfig(image_size=16, channels=(4,), hidden=8, z_dim=2))
    sampler = frame_sampler(np.zeros((4, 16, 16, 3), np.uint8), np.arange(4), 4)
    loss_fn = mmd_vae_loss_fn(MMDLossConfig())
    with pytest.raises(ValueError, match="names one device"):
        train(model, loss_fn, sampler, TrainConfig(steps=1, batch_size=4, device="cuda:1"), tmp_path / "c")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available here; pass device='cpu'"):
            train(model, loss_fn, sampler, TrainConfig(steps=1, batch_size=4, device="cuda"), tmp_path / "c")
    assert not distributed.active() and not (tmp_path / "c").exists()


def test_shard_range_and_samplers_split_the_global_batch():
    frames = np.random.default_rng(0).integers(0, 256, (30, 8, 8, 3)).astype(np.uint8)
    sampler = frame_sampler(frames, np.arange(30), 6)
    whole = sampler(torch.Generator().manual_seed(1))
    parts = [sampler(torch.Generator().manual_seed(1), shard=slice(i, i + 3)) for i in (0, 3)]
    assert torch.equal(torch.cat(parts), whole)
    assert distributed.shard_range(6) == slice(0, 6) and distributed.world_size() == 1

    class Store:  # the two things ClipSampler needs of a FrameSet
        frames = np.random.default_rng(1).integers(0, 256, (50, 8, 8, 3)).astype(np.uint8)

        def movie_rows(self, movie):
            return {"a": slice(0, 20), "b": slice(20, 34), "c": slice(34, 50)}[movie]
    clips = ClipSampler(Store(), ["b", "c"], length=5, batch_size=4)
    host = [clips(torch.Generator().manual_seed(2), shard=sh) for sh in (None, slice(0, 2), slice(2, 4))]
    assert torch.equal(torch.cat(host[1:]), host[0])
    assert clips.to("cpu").store is not None and len(clips.store) == 30  # movies b and c only
    assert all(torch.equal(a, clips(torch.Generator().manual_seed(2), shard=sh))
               for a, sh in zip(host, (None, slice(0, 2), slice(2, 4))))
    assert distributed.rank_seed(5, 0) == 5 and distributed.rank_seed(0, 1) != distributed.rank_seed(1, 0)


@pytest.mark.slow  # starts torchrun
def test_the_mmdvae_command_line_in_one_and_two_processes(small_frames, tmp_path):
    """The README's torchrun command (on gloo), with the GPU path's compile and channels-last options."""
    from vaelib.mmdvae_train import main
    assert main(["--frames", str(small_frames.root), "--run-dir", str(tmp_path / "one"), "--steps", "2",
                 "--batch-size", "4", "--device", "cpu"]) == 0
    assert load_checkpoint(tmp_path / "one" / "checkpoint.pt")["step"] == 2
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                        "-m", "vaelib.mmdvae_train", "--frames", str(small_frames.root), "--run-dir",
                        str(tmp_path / "two"), "--steps", "2", "--batch-size", "4", "--device", "cpu",
                        "--compile", "eager", "--channels-last"],  # DDP with torch.compile's tracing and the layout
                       env=ENV, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count("steps in") == 1 and "in 2 process(es)" in p.stdout  # rank 0 alone reports
    one, two = weights(tmp_path / "one"), weights(tmp_path / "two")
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-4, atol=1e-6)


@pytest.mark.slow  # starts torchrun
@pytest.mark.gpu(2)  # NCCL across 2 GPUs (deselected where there are fewer)
def test_two_gpus_match_one(tmp_path):
    for name, nproc in (("one", 1), ("two", 2)):
        p = launch(tmp_path / name, "--device", "cuda", nproc=nproc)
        assert p.returncode == 0, p.stderr[-3000:]
    one, two = weights(tmp_path / "one"), weights(tmp_path / "two")
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-3, atol=1e-4)
    assert json.loads((tmp_path / "two" / "environment.json").read_text())["reproducibility"]["world_size"] == 2


def test_the_mixed_sampler_loads_only_its_shard():
    """VoxEn's sampler: each shard (also one that cuts a part or misses it) is its rows of the whole batch."""
    from vaelib.camera import CameraClipSampler, MixedClipSampler

    class Store:
        frames = np.random.default_rng(3).integers(0, 256, (40, 16, 16, 3)).astype(np.uint8)

        def movie_rows(self, movie):
            return slice(0, 40)
    mixed = MixedClipSampler([CameraClipSampler(4, 16, 1, photos=["camera", "coins"]),
                              ClipSampler(Store(), ["a"], length=4, batch_size=3)])
    whole = mixed(torch.Generator().manual_seed(4))
    assert whole.shape == (4, 3, 4, 16, 16)
    for shards in ((slice(0, 2), slice(2, 4)), (slice(0, 1), slice(1, 2), slice(2, 3), slice(3, 4))):
        gens = [torch.Generator().manual_seed(4) for _ in shards]
        parts = [mixed(g, shard=sh) for g, sh in zip(gens, shards)]
        assert torch.equal(torch.cat(parts), whole)
        # every rank's generator moved as far as the whole batch's: the next batches agree too
        nxt = torch.Generator().manual_seed(4)
        mixed(nxt)
        assert all(torch.equal(g.get_state(), nxt.get_state()) for g in gens)
    assert mixed.store is None and mixed.to("cpu").store is not None and mixed.device == torch.device("cpu")
    assert torch.equal(mixed(torch.Generator().manual_seed(4), shard=slice(2, 4)), whole[2:])  # cut from the store


def launch_voxen(work, out, *args, nproc=2):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"] \
        if nproc > 1 else [sys.executable]
    return subprocess.run([*cmd, str(JOB.with_name("ddp_voxen_job.py")), str(work), str(out), *map(str, args)],
                          env=ENV, capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # starts torchrun
def test_the_voxen_command_line_in_two_processes_matches_one(tmp_path):
    """``python -m vaelib.voxen_train`` with the mixed sampler (photo clips + movie clips, a shard cutting the
    movie part and one missing the photo part), a warm start, the 2-process run stopped after 2 of 3 steps of
    the first lambda and started again: 2 processes end with 1 process's weights; rank 0 alone makes the
    movies and writes the exports."""
    # "ste" quantization: the training noise is per rank (like any loss's own randomness), rounding is not
    args = ["--steps", 3, "--batch-size", 4, "--photo-fraction", 0.25, "--lambdas", "0.01,0.03", "--warm-start",
            "--device", "cpu", "--config-ste"]
    two = tmp_path / "two"
    p = launch_voxen(two, two / "out", *args, "--steps", 2, "--lambdas", "0.01")  # the first 2 steps only
    assert p.returncode == 0, p.stderr[-3000:]
    assert load_checkpoint(two / "runs/lambda_0.01_seed0/checkpoint.pt")["step"] == 2
    for name, nproc in (("one", 1), ("two", 2)):
        p = launch_voxen(tmp_path / name, tmp_path / name / "out", *args, nproc=nproc)
        assert p.returncode == 0, p.stderr[-3000:]
    assert (two / "exports.log").read_text().splitlines() == ["0 lambda_0.01", "0 lambda_0.01", "0 lambda_0.03"]
    assert (two / "made.log").read_text().splitlines() == ["0", "1"] * 2  # rank 0 first, then rank 1 reads
    for lmbda, run in (("0.01", "runs/lambda_0.01_seed0"), ("0.03", "runs/lambda_0.03_seed0_from_lambda_0.01_seed0")):
        one_w, two_w = weights(tmp_path / "one" / run), weights(two / run)
        for k in one_w:
            torch.testing.assert_close(two_w[k], one_w[k], rtol=1e-4, atol=1e-5)
        assert json.loads((two / run / "environment.json").read_text())["data_on_device"]  # the movies' frames
        assert (two / "out" / f"lambda_{lmbda}" / "model.json").exists()
        # the validation loss at the end (the training rows differ: the stopped run logged its own end at step 2)
        m1, m2 = (m[(m.step == 3) & (m.metric == "loss") & (m.split == "val")].value.to_numpy()
                  for m in (read_metrics(tmp_path / "one" / run), read_metrics(two / run)))
        assert len(m1) == 1
        np.testing.assert_allclose(m2, m1, rtol=1e-4)


@pytest.mark.slow  # starts torchrun
def test_every_rank_stops_at_the_first_step_any_rank_is_out_of_time(tmp_path):
    """Rank 1's clock jumps past the budget at step 3 (not a log or checkpoint step): both stop there, saved."""
    p = launch(tmp_path / "run", "--max-seconds", 100, "--late-at", 3)
    assert p.returncode == 0, p.stderr[-3000:]
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 3
    assert read_metrics(tmp_path / "run").step.max() == 3


@pytest.mark.slow  # starts torchrun
def test_a_nan_on_one_rank_stops_every_rank_before_the_next_checkpoint(tmp_path):
    """Rank 1's loss is NaN at step 9 (checkpoints every 5): both ranks stop naming step 9 at step 10, whose
    checkpoint is never written; the folder still holds step 5's finite weights."""
    p = launch(tmp_path / "run", "--die-at", 9, "--die-how", "nan")
    assert p.returncode != 0
    assert p.stderr.count("loss is nan at step 9") >= 2, p.stderr[-3000:]  # every rank says so
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert state["step"] == 5 and all(torch.isfinite(v).all() for v in state["model"].values())
