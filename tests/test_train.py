"""The trainer: configs round-trip, runs are deterministic, a stopped-and-resumed run ends bitwise identical."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from vaelib.data import frame_sampler, split_frames
from vaelib.losses import MMDLossConfig, mmd_vae_loss_fn
from vaelib.mmdvae import MMDVAE, MMDVAEConfig, embed
from vaelib.train import (
    TrainConfig,
    load_checkpoint,
    pick_device,
    read_metrics,
    reproducibility_diff,
    seed_everything,
    train,
)

torch.set_num_threads(1)
TINY = MMDVAEConfig(image_size=16, channels=(4, 8), hidden=16, z_dim=3)


def frames(n=40, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (4, 16, 16, 3))
    return np.clip(base[np.arange(n) % 4] + rng.integers(-20, 20, (n, 16, 16, 3)), 0, 255).astype(np.uint8)


def run(tmp_path, name, steps=12, stop_at=None, resume=True, val=True, **overrides):
    data = frames()
    seed_everything(0)
    model = MMDVAE(TINY)
    cfg = TrainConfig(**{**dict(steps=steps, batch_size=8, lr=3e-3, seed=0, device="cpu", log_every=2, val_every=4,
                               checkpoint_every=5), **overrides})
    loss_fn = mmd_vae_loss_fn(MMDLossConfig(mmd_weight=1.0))
    val_x = torch.from_numpy(data[:8]).permute(0, 3, 1, 2).float() / 255

    def val_fn(m):  # uses the global RNG on purpose: validation must not disturb training
        return {k: v for k, v in loss_fn(m, val_x).items()}
    result = train(model, loss_fn, frame_sampler(data, np.arange(len(data)), 8), cfg, tmp_path / name,
                   val_fn=val_fn if val else None, extra_config={"model": TINY.to_dict()}, resume=resume,
                   stop_at=stop_at, progress=False)
    return model, result


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_config_round_trip(tmp_path):
    cfg = TrainConfig(steps=7, betas=(0.5, 0.9), grad_clip=1.0, max_seconds=3.5)
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    assert TrainConfig.from_json(cfg.to_json(tmp_path / "c.json")) == TrainConfig.from_json(tmp_path / "c.json")
    assert MMDVAEConfig.from_json(TINY.to_json()) == TINY
    with pytest.raises(ValueError, match="no field"):
        TrainConfig.from_dict({"stepz": 3})
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(steps=0)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        TrainConfig.from_json(tmp_path / "bad.json")


def test_pick_device():
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type in {"cuda", "mps", "cpu"}
    if not torch.cuda.is_available():
        assert pick_device("auto").type in {"mps", "cpu"}
        with pytest.raises(RuntimeError, match="CUDA"):
            pick_device("cuda")


def test_deterministic_and_learns(tmp_path):
    a, ra = run(tmp_path, "a")
    b, _ = run(tmp_path, "b")
    assert same_weights(a, b)
    # the embeddings chapter 3 analyses are bitwise equal too (issue 15: same seed, same machine)
    assert np.array_equal(embed(a, frames(), progress=False), embed(b, frames(), progress=False))
    c, _ = run(tmp_path, "c", steps=13)
    assert not same_weights(a, c)  # a different run really differs
    m = read_metrics(ra.run_dir)
    loss = m[(m.split == "train") & (m.metric == "loss")]
    assert list(loss.step) == [2, 4, 6, 8, 10, 12]
    assert set(m[m.split == "val"].step) == {4, 8, 12}
    assert loss.value.iloc[-1] < loss.value.iloc[0]
    assert ra.step == 12 and set(ra.last_val) == {"loss", "recon", "mmd"}


@pytest.mark.parametrize("stop", [5, 7])  # at a checkpoint interval, and between two
def test_exact_resume(tmp_path, stop):
    full, _ = run(tmp_path, "full")
    part, r1 = run(tmp_path, "part", stop_at=stop)
    assert r1.step == stop and load_checkpoint(r1.run_dir / "checkpoint.pt")["step"] == stop
    assert not same_weights(part, full)
    resumed, r2 = run(tmp_path, "part")  # a fresh model object, resumed from the folder
    assert r2.step == 12
    assert same_weights(resumed, full)
    # and the log holds the same rows and values (times differ, of course)
    pd.testing.assert_frame_equal(read_metrics(r2.run_dir).drop(columns="time_s"),
                                  read_metrics(tmp_path / "full").drop(columns="time_s"))


def test_resume_discards_rows_logged_after_the_checkpoint(tmp_path):
    run(tmp_path, "r", stop_at=5)
    path = tmp_path / "r" / "metrics.csv"
    pd.concat([pd.read_csv(path), pd.DataFrame([{"step": 9, "split": "train", "metric": "loss", "value": 1.0,
                                                 "time_s": 0}])]).to_csv(path, index=False)
    run(tmp_path, "r")
    full = read_metrics(tmp_path / "r")
    assert not full.duplicated(["step", "split", "metric"]).any()


def test_run_folder_is_self_describing(tmp_path):
    _, r = run(tmp_path, "f", steps=4)
    cfg = json.loads((r.run_dir / "config.json").read_text())
    assert cfg["train"]["steps"] == 4 and cfg["model"]["z_dim"] == 3
    env = json.loads((r.run_dir / "environment.json").read_text())
    assert env["torch"] == torch.__version__ and env["device"] == "cpu"
    state = load_checkpoint(r.run_dir / "checkpoint.pt")
    assert state["config"] == cfg and state["step"] == 4
    assert not list(r.run_dir.glob("*.tmp*"))  # atomic writes leave no temporaries


def test_resume_refuses_a_different_config(tmp_path):
    run(tmp_path, "x", steps=4)
    with pytest.raises(ValueError, match="different config"):
        run(tmp_path, "x", steps=8, lr=1e-2)
    _, r = run(tmp_path, "x", steps=8)  # more steps is fine: training continues
    assert r.step == 8
    _, r = run(tmp_path, "x", steps=4, lr=1e-2, resume=False)  # or start over
    assert r.step == 4


def test_bad_checkpoint_is_named(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="checkpoint.pt"):
        load_checkpoint(tmp_path / "checkpoint.pt")


def test_time_budget_stops_with_a_checkpoint(tmp_path):
    _, r = run(tmp_path, "t", steps=10_000, max_seconds=0.5, val=False)
    assert 0 < r.step < 10_000
    assert load_checkpoint(r.run_dir / "checkpoint.pt")["step"] == r.step


def test_split_by_time_and_by_movie():
    index = pd.DataFrame({"movie": ["a"] * 100 + ["b"] * 50,
                          "time_s": np.r_[np.arange(100) / 5, np.arange(50) / 5]})
    s = split_frames(index, "time", val_fraction=0.2, n_blocks=2, gap_s=1.0)
    assert not set(s.train) & set(s.val)
    for movie, n in (("a", 100), ("b", 50)):
        rows = np.flatnonzero(index.movie == movie)
        v = np.intersect1d(s.val, rows)
        assert abs(len(v) - 0.2 * n) <= 2
        assert (np.diff(v) > 1).sum() == 1  # two contiguous blocks
        # no training frame within 1 s of a validation frame
        t_train, t_val = index.time_s[np.intersect1d(s.train, rows)].to_numpy(), index.time_s[v].to_numpy()
        assert np.abs(t_train[:, None] - t_val[None]).min() >= 1.0 - 1e-9
    m = split_frames(index, "movie", val_fraction=0.5)
    assert set(index.movie[m.val]) == {"b"} and set(index.movie[m.train]) == {"a"}
    with pytest.raises(ValueError, match="not in the index"):
        split_frames(index, "movie", val_movies=["zzz"])
    with pytest.raises(ValueError, match="time_s"):
        split_frames(index.drop(columns="time_s"))


# --- the GPU path's options, as far as they run on a CPU -------------------------------------------


def test_frames_on_the_device_give_the_same_batches():
    data = frames()
    for sampler in (frame_sampler(data, np.arange(3, 30)[::-1], 6),):
        host = [sampler(torch.Generator().manual_seed(s), shard=sh) for s in (0, 1) for sh in (None, slice(3, 6))]
        assert sampler.to("cpu").store is not None
        on_device = [sampler(torch.Generator().manual_seed(s), shard=sh) for s in (0, 1) for sh in (None, slice(3, 6))]
        assert all(torch.equal(a, b) for a, b in zip(host, on_device))
        assert sampler.to("cpu", max_bytes=100).store is None  # does not fit: stays on the host


def test_frames_stay_on_the_host_when_they_do_not_fit(monkeypatch):
    from vaelib.data import fits
    pages = {"SC_AVPHYS_PAGES": 1000, "SC_PAGE_SIZE": 4096}  # 4 MB of free RAM: 1 MB may hold frames
    monkeypatch.setattr("os.sysconf", lambda name: pages[name])
    cpu = torch.device("cpu")
    assert fits(1_024_000, cpu) and not fits(1_024_001, cpu)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # four processes on this machine, a copy each
    assert fits(256_000, cpu) and not fits(256_001, cpu)
    assert frame_sampler(frames(), np.arange(40), 8).to(cpu).store is not None  # 40 frames: 30,720 bytes
    pages["SC_AVPHYS_PAGES"] = 100  # now 25,600 bytes per process
    assert frame_sampler(frames(), np.arange(40), 8).to(cpu).store is None


def test_data_on_device_changes_nothing_but_speed(tmp_path):
    a, ra = run(tmp_path, "on")  # the default: on the CPU the frames are held as one torch tensor
    b, rb = run(tmp_path, "off", data_on_device=False)
    assert same_weights(a, b)
    assert json.loads((ra.run_dir / "environment.json").read_text())["data_on_device"] is True
    assert json.loads((rb.run_dir / "environment.json").read_text())["data_on_device"] is False


def close_weights(a, b, **tol):
    for k, v in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[k], v, **tol)


def test_channels_last_and_compile_compute_the_same(tmp_path):
    ref, _ = run(tmp_path, "ref", steps=6)
    cl, _ = run(tmp_path, "cl", steps=6, channels_last=True)
    close_weights(ref, cl, rtol=1e-4, atol=1e-5)
    assert cl.encoder[0].weight.is_contiguous(memory_format=torch.channels_last)
    comp, r = run(tmp_path, "comp", steps=6, compile="eager")  # torch.compile's tracing, without code generation
    close_weights(ref, comp, rtol=1e-4, atol=1e-5)
    _, r = run(tmp_path, "comp", steps=8)  # compile and layout may change on resume
    assert r.step == 8


def updates(model, start):
    """Each tensor's change from ``start`` (a model's initial weights), in float32."""
    return {k: v.float() - start[k].float() for k, v in model.state_dict().items()}


def test_bf16_autocast_trains_and_is_part_of_the_run(tmp_path):
    seed_everything(0)
    start = MMDVAE(TINY).state_dict()  # what run() starts from
    ref, _ = run(tmp_path, "ref", steps=6)
    bf, r = run(tmp_path, "bf", steps=6, precision="bf16")
    assert all(torch.isfinite(v).all() for v in bf.state_dict().values())
    assert not same_weights(ref, bf)  # it really ran in bfloat16 ...
    # ... and moved every weight tensor the way the float32 run did: the same direction (6 Adam steps give
    # cosines of 0.99-1.0 here) and the same length; a bf16 run that did not step has cosine 0, one that
    # stopped after 3 of the 6 steps 0.97 or less
    for k, (a, b) in {k: (v, updates(bf, start)[k]) for k, v in updates(ref, start).items()}.items():
        assert a.norm() > 0, k
        cosine = torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0)
        assert cosine > 0.97, (k, float(cosine))
        assert 0.9 < b.norm() / a.norm() < 1.1, (k, float(b.norm() / a.norm()))
    assert r.metrics.query("metric == 'mmd'").value.notna().all()
    with pytest.raises(ValueError, match="different config"):
        run(tmp_path, "bf", steps=8)  # precision changes what is computed: not resumable as fp32
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp8")


def test_a_run_from_before_the_new_fields_resumes(tmp_path):
    run(tmp_path, "old", stop_at=5)
    path = tmp_path / "old" / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    cfg = json.loads(state["config"])
    for k in ("precision", "channels_last", "compile", "data_on_device"):
        del cfg["train"][k]
    state["config"] = json.dumps(cfg)
    torch.save(state, path)
    _, r = run(tmp_path, "old")
    assert r.step == 12


def test_run_folder_records_what_decides_reproducibility(tmp_path):
    _, a = run(tmp_path, "a", steps=2)
    _, b = run(tmp_path, "b", steps=2)
    rec = json.loads((a.run_dir / "environment.json").read_text())["reproducibility"]
    assert rec["torch"] == torch.__version__ and rec["torch_threads"] == torch.get_num_threads() == 1
    assert rec["cpu_model"] and rec["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert rec["deterministic_algorithms"] is False and rec["world_size"] == 1
    assert reproducibility_diff(a.run_dir, b.run_dir) == {}  # same machine, same settings: comparable bitwise
    env = json.loads((b.run_dir / "environment.json").read_text())
    env["reproducibility"].update(torch_threads=8, cpu_capability="AVX2")
    (b.run_dir / "environment.json").write_text(json.dumps(env))
    assert reproducibility_diff(a.run_dir, b.run_dir) == {"cpu_capability": (rec["cpu_capability"], "AVX2"),
                                                          "torch_threads": (1, 8)}
    with pytest.raises(FileNotFoundError, match="environment.json"):
        reproducibility_diff(a.run_dir, tmp_path)


# --- a full disk: the run folder named, nothing half-written that a resume would read ------------------------------


def test_disk_full_at_a_checkpoint(tmp_path, monkeypatch):
    """torch.save onto a full disk said only "[enforce fail at inline_container.cc:672]"; now the folder is named,
    the previous checkpoint stays whole, and the same command resumes to the uninterrupted run's weights."""
    import errno
    import pathlib

    import vaelib.paths

    full, _ = run(tmp_path, "full")
    real_write, calls = pathlib.Path.write_bytes, []

    def fills_up(self, data):          # the second checkpoint finds the disk full halfway through
        calls.append(self)
        if len(calls) == 2:
            real_write(self, bytes(memoryview(data)[: len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", fills_up)
    run_dir = tmp_path / "d"
    with pytest.raises(OSError, match=rf"no space left on the device of {run_dir} while writing the checkpoint "
                                      r"checkpoint.pt \(it needs [\d.]+ KiB, .* are free there\).*resumes"):
        run(tmp_path, "d")
    monkeypatch.undo()
    assert load_checkpoint(run_dir / "checkpoint.pt")["step"] == 5           # the previous one, whole
    assert sorted(p.name for p in run_dir.iterdir()) == [".vaelib-output.json", "checkpoint.pt", "config.json",
                                                         "environment.json", "metrics.csv"]
    resumed, r = run(tmp_path, "d")
    assert r.step == 12 and same_weights(resumed, full)
    # too little room, known before writing: refused with both numbers, the old checkpoint untouched
    usage = vaelib.paths.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(vaelib.paths.shutil, "disk_usage", lambda p: usage._replace(free=1000))
    with pytest.raises(OSError, match=rf"{run_dir} while writing the checkpoint checkpoint.pt \(it needs [\d.]+ KiB, "
                                      r"1.0 KiB are free there\)"):
        run(tmp_path, "d", steps=14)
    assert load_checkpoint(run_dir / "checkpoint.pt")["step"] == 12


def test_disk_full_when_the_metrics_log_is_closed(tmp_path):
    """The last buffered rows can meet the full disk at close(): named like a full disk at write()."""
    import errno

    from vaelib.train import _MetricsWriter

    w = _MetricsWriter(tmp_path / "metrics.csv")
    w.write(1, "train", {"loss": 1.0}, 0.1)

    def closing_fails(code: int, text: str):
        def close():
            raise OSError(code, text)
        return type("File", (), {"close": staticmethod(close)})()

    w.file.close()
    w.file = closing_fails(errno.ENOSPC, "No space left on device")
    with pytest.raises(OSError, match=rf"no space left on the device of {tmp_path} while writing metrics.csv"):
        w.close()
    w.file = closing_fails(errno.EIO, "Input/output error")
    with pytest.raises(OSError, match="Input/output error") as e:      # other errors pass unchanged
        w.close()
    assert "no space" not in str(e.value)


def test_disk_full_while_logging_metrics(tmp_path, monkeypatch):
    """A row cut by a full disk is named, and the resumed run's log is the uninterrupted run's, row for row."""
    import builtins
    import errno

    import vaelib.train

    writes = []

    class FillingFile:                 # metrics.csv whose disk fills at step 6, after the checkpoint at step 5
        def __init__(self, *args, **kwargs):
            self.f = builtins.open(*args, **kwargs)

        def write(self, s):
            writes.append(s)
            if len(writes) == 21:      # the header, 3 rows a step, 3 val rows at step 4: step 6's 2nd row, cut
                self.f.write(s[: len(s) // 2])
                self.f.flush()
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(s)

        def flush(self):
            self.f.flush()

        def close(self):
            self.f.close()

    monkeypatch.setattr(vaelib.train, "open", FillingFile, raising=False)
    run_dir = tmp_path / "m"
    with pytest.raises(OSError, match=rf"no space left on the device of {run_dir} while writing metrics.csv \(.* "
                                      r"are free there\).*drops the rows logged after it"):
        run(tmp_path, "m", log_every=1)
    monkeypatch.undo()
    assert not (run_dir / "metrics.csv").read_text().endswith("\n")   # the cut row is there ...
    assert load_checkpoint(run_dir / "checkpoint.pt")["step"] == 5
    _, r = run(tmp_path, "m", log_every=1)                              # ... and never read back
    _, ref = run(tmp_path, "ref", log_every=1)
    pd.testing.assert_frame_equal(read_metrics(r.run_dir).drop(columns="time_s"),
                                  read_metrics(ref.run_dir).drop(columns="time_s"))


# --- what already held (issue 14), now each with a test -------------------------------------------------------------


def test_a_checkpoint_whose_pickle_would_run_code_is_refused(tmp_path):
    """load_checkpoint reads with weights_only=True: a pickle that would call a function is refused, named, and the
    function never runs."""
    import pathlib

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return pathlib.Path.touch, (marker,)

    torch.save({"model": {}, "optimizer": {}, "step": 1, "config": "{}", "rng": Payload()}, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match=rf"{tmp_path / 'checkpoint.pt'} is not a readable checkpoint"):
        load_checkpoint(tmp_path / "checkpoint.pt")
    assert not marker.exists()


def test_a_killed_training_resumes_bitwise(tmp_path):
    """kill -9 at an arbitrary moment (mid-step, mid-log row or mid-checkpoint), then the same command: the weights
    and the logged values are bitwise those of a run that was never killed."""
    import os
    import signal
    import subprocess
    import sys
    import time

    steps = dict(steps=500, checkpoint_every=50, log_every=10, val_every=100)
    code = (f"import sys, torch\nsys.path.insert(0, {str(Path(__file__).parent)!r})\nfrom test_train import run\n"
            f"from pathlib import Path\nmodel, _ = run(Path({str(tmp_path)!r}), 'killed', **{steps!r})\n"
            f"torch.save(model.state_dict(), Path({str(tmp_path)!r}) / 'weights.pt')\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    ckpt = tmp_path / "killed" / "checkpoint.pt"
    deadline = time.time() + 120
    while time.time() < deadline and not ckpt.exists() and proc.poll() is None:
        time.sleep(0.005)
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL                             # killed before it finished
    assert load_checkpoint(ckpt)["step"] < 500
    subprocess.run([sys.executable, "-c", code], env=env, check=True)  # the same command again
    resumed = torch.load(tmp_path / "weights.pt", weights_only=True)
    full, _ = run(tmp_path, "full", **steps)
    assert resumed.keys() == full.state_dict().keys()
    assert all(torch.equal(resumed[k], v) for k, v in full.state_dict().items())
    pd.testing.assert_frame_equal(read_metrics(tmp_path / "killed").drop(columns="time_s"),
                                  read_metrics(tmp_path / "full").drop(columns="time_s"))


@pytest.mark.gpu(1)  # the CUDA path (deselected where there is no GPU)
def test_the_cuda_path(tmp_path):
    """On a GPU: frames resident on it, bf16 + channels-last, and resume; compared within float tolerance."""
    def cpu_state(m):
        return {k: v.detach().cpu() for k, v in m.state_dict().items()}

    def close(a, b, **tol):
        for k, v in a.items():
            torch.testing.assert_close(b[k], v, **tol)
    gpu, r = run(tmp_path, "gpu", steps=6, val=False, device="cuda")
    assert next(gpu.parameters()).is_cuda and all(torch.isfinite(v).all() for v in cpu_state(gpu).values())
    env = json.loads((r.run_dir / "environment.json").read_text())
    assert env["data_on_device"] is True and env["reproducibility"]["gpu"] and env["device"].startswith("cuda")
    host, _ = run(tmp_path, "host", steps=6, val=False, device="cuda", data_on_device=False)
    close(cpu_state(gpu), cpu_state(host), rtol=1e-3, atol=1e-4)  # the same batches, only where they were cut
    fast, _ = run(tmp_path, "fast", steps=6, val=False, device="cuda", precision="bf16", channels_last=True)
    close(cpu_state(gpu), cpu_state(fast), rtol=0.05, atol=0.02)
    run(tmp_path, "part", steps=6, val=False, device="cuda", stop_at=3)
    resumed, _ = run(tmp_path, "part", steps=6, val=False, device="cuda")
    close(cpu_state(gpu), cpu_state(resumed), rtol=1e-4, atol=1e-5)
