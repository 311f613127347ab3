"""Outputs never replace what this project did not write; one writer per run folder; a run knows its data.

Every writer is tried on a path that holds a user's file or folder: each refuses, naming the path and what is
there, and leaves it as it was."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from vaelib.data import frame_sampler, split_frames
from vaelib.losses import MMDLossConfig, mmd_vae_loss_fn
from vaelib.mmdvae import MMDVAE, MMDVAEConfig
from vaelib.paths import OUTPUT_MARKER, OutputPathError, claim_output, folder_lock, mark_output, output_kind
from vaelib.preprocess import main as preprocess_main
from vaelib.preprocess import preprocess
from vaelib.train import TrainConfig, train

torch.set_num_threads(1)


def user_folder(path):
    """A folder of a user's own files (as the source videos' folder would be)."""
    path.mkdir(parents=True)
    (path / "holiday.mp4").write_bytes(b"my video")
    (path / "notes.txt").write_text("mine")
    return path


def untouched(path):
    return sorted(p.name for p in path.iterdir()) == ["holiday.mp4", "notes.txt"] and \
        (path / "holiday.mp4").read_bytes() == b"my video"


# --- the helper ---------------------------------------------------------------------------------------------------


def test_claim_output_accepts_only_what_this_project_wrote(tmp_path):
    assert claim_output(tmp_path / "absent", "frame store") == tmp_path / "absent"
    (tmp_path / "empty").mkdir()
    assert claim_output(tmp_path / "empty", "frame store") == tmp_path / "empty"
    (tmp_path / "file.mp4").write_bytes(b"x" * 2048)
    with pytest.raises(OutputPathError, match=r"file.mp4 is a file \(2.0 KiB\), not a frame store folder: it is not "
                                              r"replaced"):
        claim_output(tmp_path / "file.mp4", "frame store")
    with pytest.raises(OutputPathError, match=r"mine is a folder holding files this project did not write \(2 "
                                              r"entries: holiday.mp4, notes.txt\)"):
        claim_output(user_folder(tmp_path / "mine"), "frame store", overwrite=True)   # never, even so
    ours = mark_output(tmp_path / "ours", "training run")
    assert output_kind(ours) == "training run" and claim_output(ours, "training run") == ours
    with pytest.raises(OutputPathError, match=r"ours holds a training run this project wrote, not a frame store.*"
                                              r"overwrite=True"):
        claim_output(ours, "frame store")
    assert claim_output(ours, "frame store", overwrite=True) == ours                # our own, another kind: asked
    legacy = tmp_path / "legacy"                                # written before the marker: known by its files
    legacy.mkdir()
    (legacy / "manifest.json").write_text("{}")
    (legacy / "frames.npy").write_bytes(b"")
    assert claim_output(legacy, "frame store", own=("manifest.json", "frames.npy")) == legacy
    (legacy / "thesis.tex").write_text("mine")
    with pytest.raises(OutputPathError, match="thesis.tex"):
        claim_output(legacy, "frame store", own=("manifest.json", "frames.npy"))


# --- preprocess and its command line ------------------------------------------------------------------------------


def test_preprocess_cli_never_deletes_a_second_video(small_dataset, tmp_path, capsys):
    """`python -m vaelib.preprocess a.mp4 b.mp4` deleted b.mp4 and put the store there; now it is refused, b.mp4
    kept."""
    a = small_dataset.videos[0]
    b = tmp_path / "b.mp4"
    b.write_bytes(small_dataset.videos[1].read_bytes())
    before = b.read_bytes()
    assert preprocess_main([str(a), str(b), "--size", "8"]) == 2
    err = capsys.readouterr().err
    assert f"{b} is a file" in err and "not replaced" in err and "the last argument is the frame store's folder" in err
    assert b.read_bytes() == before


def test_preprocess_refuses_a_folder_of_user_files(small_dataset, tmp_path):
    mine = user_folder(tmp_path / "mine")
    with pytest.raises(OutputPathError, match=rf"{mine} is a folder holding files this project did not write"):
        preprocess(small_dataset.videos[:1], mine, size=8, progress=False)
    with pytest.raises(OutputPathError, match="holding files this project did not write"):
        preprocess(small_dataset.videos[:1], mine, size=8, progress=False, overwrite=True)
    assert untouched(mine)
    # the source videos' own folder as the output: refused, the videos kept
    src = small_dataset.videos[0].parent
    names = sorted(p.name for p in src.iterdir())
    with pytest.raises(OutputPathError, match=str(src)):
        preprocess(small_dataset.videos[:1], src, size=8, progress=False)
    assert sorted(p.name for p in src.iterdir()) == names


def test_preprocess_into_its_own_store_and_another_kind(small_dataset, tmp_path):
    out = tmp_path / "frames"
    fs = preprocess(small_dataset.videos[:1], out, size=8, progress=False)
    assert output_kind(out) == "frame store"
    assert len(preprocess(small_dataset.videos[:1], out, size=8, stride=2, progress=False)) == len(fs) // 2
    (out / OUTPUT_MARKER).unlink()                       # a store from before the marker: still known as ours
    assert len(preprocess(small_dataset.videos[:1], out, size=8, progress=False)) == len(fs)
    run = mark_output(tmp_path / "run", "training run")
    (run / "config.json").write_text("{}")
    with pytest.raises(OutputPathError, match="holds a training run this project wrote, not a frame store"):
        preprocess(small_dataset.videos[:1], run, size=8, progress=False)
    assert (run / "config.json").exists()
    assert len(preprocess(small_dataset.videos[:1], run, size=8, progress=False, overwrite=True)) == len(fs)


# --- training run folders ------------------------------------------------------------------------------------------

TINY = MMDVAEConfig(image_size=16, channels=(4, 8), hidden=16, z_dim=3)


def tiny_train(run_dir, steps=4):
    data = np.random.default_rng(0).integers(0, 256, (32, 16, 16, 3), dtype=np.uint8)
    cfg = TrainConfig(steps=steps, batch_size=8, device="cpu", log_every=2, val_every=100, checkpoint_every=2)
    return train(MMDVAE(TINY), mmd_vae_loss_fn(MMDLossConfig()), frame_sampler(data, np.arange(32), 8), cfg,
                 run_dir, extra_config={"model": TINY.to_dict()}, progress=False)


def test_training_refuses_a_folder_of_user_files(tmp_path):
    mine = user_folder(tmp_path / "mine")
    with pytest.raises(OutputPathError, match=rf"{mine} is a folder holding files this project did not write"):
        tiny_train(mine)
    assert untouched(mine)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputPathError, match="is a file"):
        tiny_train(tmp_path / "file")
    assert tiny_train(tmp_path / "run").step == 4 and output_kind(tmp_path / "run") == "training run"


_TRAINER = """
import sys, numpy as np, torch
from vaelib.data import frame_sampler
from vaelib.losses import MMDLossConfig, mmd_vae_loss_fn
from vaelib.mmdvae import MMDVAE, MMDVAEConfig
from vaelib.train import TrainConfig, train
torch.set_num_threads(1)
tiny = MMDVAEConfig(image_size=16, channels=(4, 8), hidden=16, z_dim=3)
data = np.random.default_rng(0).integers(0, 256, (32, 16, 16, 3), dtype=np.uint8)
def loss(m, x, inner=mmd_vae_loss_fn(MMDLossConfig())):
    print("training", flush=True)
    return inner(m, x)
train(MMDVAE(tiny), loss, frame_sampler(data, np.arange(32), 8),
      TrainConfig(steps=100000, batch_size=8, device="cpu", checkpoint_every=100000, val_every=100000),
      sys.argv[1], extra_config={"model": tiny.to_dict()}, progress=False)
"""


def test_two_trainings_into_one_run_folder(tmp_path):
    """A second training while one writes the folder is refused, naming the first one's pid; once that one is
    gone (killed: its lock file stays, stale), the folder is taken over."""
    run_dir = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-c", _TRAINER, str(run_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "training"
        with pytest.raises(RuntimeError, match=rf"another training run \(pid {first.pid}\) is writing the run folder "
                                               rf"{run_dir}"):
            tiny_train(run_dir)
    finally:
        first.kill()
        first.wait()
    assert (tmp_path / ".run.lock").read_text() == str(first.pid)              # the dead process's lock file
    assert tiny_train(run_dir).step == 4


def test_one_export_at_a_time_and_never_over_user_files(tmp_path):
    from vaelib.voxen_train import export_model

    mine = user_folder(tmp_path / "mine")
    with pytest.raises(OutputPathError, match=rf"{mine} is a folder holding files this project did not write"):
        export_model(tmp_path / "no_run", mine)
    assert untouched(mine)
    with folder_lock(tmp_path / "export", "export", "the exported model"):
        with pytest.raises(RuntimeError, match=rf"another export \(pid {os.getpid()}\) is writing the exported model"):
            with folder_lock(tmp_path / "export", "export", "the exported model"):
                pass


def test_voxen_from_an_mmdvae_run_is_named(tmp_path):
    from vaelib.voxen import VoxEnConfig
    from vaelib.voxen_train import _initial_weights

    tiny_train(tmp_path / "mmd")
    with pytest.raises(ValueError, match=rf"init_from={tmp_path / 'mmd'}: {tmp_path / 'mmd' / 'checkpoint.pt'} holds "
                                         r"the weights of another model \(an MMD-VAE's"):
        _initial_weights(tmp_path / "mmd", VoxEnConfig())


# --- sweep, book and site output folders ---------------------------------------------------------------------------


def test_sweep_book_and_site_refuse_user_folders(tmp_path):
    from vaelib.book import run_book
    from vaelib.sweep import sweep
    from vaelib.website import build_site

    mine = user_folder(tmp_path / "mine")
    with pytest.raises(OutputPathError, match=rf"{mine} is a folder holding files"):
        sweep("02_mmd_vae", {"z_dim": [2, 3]}, out_dir=mine, progress=False)
    with pytest.raises(OutputPathError, match=rf"{mine} is a folder holding files"):
        run_book(["01_preprocess"], smoke=True, out_dir=mine, progress=False)
    with pytest.raises(OutputPathError, match=rf"{mine} is a folder holding files"):
        build_site(executed_dir=tmp_path / "none", out_dir=mine)
    assert untouched(mine)


# --- a run knows its data ------------------------------------------------------------------------------------------


def test_resume_on_other_data_or_another_split_is_refused(small_frames, small_dataset, tmp_path):
    from vaelib.mmdvae_train import train_mmdvae
    from vaelib.preprocess import preprocess

    cfg = MMDVAEConfig(image_size=32, channels=(4, 8), hidden=16, z_dim=3)
    tc = TrainConfig(steps=2, batch_size=4, device="cpu", val_every=2, checkpoint_every=2)
    run_dir = tmp_path / "run"
    train_mmdvae(small_frames, split_frames(small_frames.index, how="time"), run_dir, cfg, train_cfg=tc,
                 progress=False)
    more = TrainConfig(steps=4, batch_size=4, device="cpu", val_every=2, checkpoint_every=2)
    with pytest.raises(ValueError, match=r"different config \(data.split.n_train: \d+ in the run, \d+ now.*It was "
                                         r"trained on other data \(data.split"):
        train_mmdvae(small_frames, split_frames(small_frames.index, how="movie"), run_dir, cfg, train_cfg=more,
                     progress=False)
    other = preprocess(small_dataset.videos[:1], tmp_path / "other", size=32, progress=False)
    with pytest.raises(ValueError, match=r"data.frames: '[0-9a-f]{16}' in the run, '[0-9a-f]{16}' now"):
        train_mmdvae(other, split_frames(other.index, how="time"), run_dir, cfg, train_cfg=more, progress=False)
    _, result = train_mmdvae(small_frames, split_frames(small_frames.index, how="time"), run_dir, cfg,
                             train_cfg=more, progress=False)
    assert result.step == 4                              # the same data and split: resumed
    # the digest is of the frames, not of where the store lies
    moved = preprocess(small_dataset.videos, tmp_path / "moved", size=32, progress=False)
    assert moved.digest == small_frames.digest != other.digest


def test_resume_from_the_command_line_with_another_val_split(small_frames, tmp_path):
    from vaelib.mmdvae_train import main

    def args(steps, *more):
        return ["--frames", str(small_frames.root), "--run-dir", str(tmp_path / "run"), "--steps", str(steps),
                "--batch-size", "4", "--device", "cpu", "--z-dim", "2", *more]

    assert main(args(2)) == 0
    with pytest.raises(ValueError, match=r"data.val_split: 'time' in the run, 'movie' now"):
        main(args(4, "--val-split", "movie"))
    assert main(args(4)) == 0


def test_a_run_from_before_its_data_was_recorded_resumes_with_a_warning(small_frames, tmp_path):
    import json

    from vaelib.mmdvae_train import train_mmdvae

    cfg = MMDVAEConfig(image_size=32, channels=(4, 8), hidden=16, z_dim=3)
    run_dir, split = tmp_path / "run", split_frames(small_frames.index)
    train_mmdvae(small_frames, split, run_dir, cfg, train_cfg=TrainConfig(steps=2, batch_size=4, device="cpu"),
                 progress=False)
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)        # as an older version wrote it
    old = json.loads(state["config"])
    del old["data"]
    state["config"] = json.dumps(old)
    torch.save(state, run_dir / "checkpoint.pt")
    (run_dir / OUTPUT_MARKER).unlink()
    with pytest.warns(UserWarning, match=r"does not record the data it was trained on: resuming it without checking"):
        _, result = train_mmdvae(small_frames, split, run_dir, cfg,
                                 train_cfg=TrainConfig(steps=4, batch_size=4, device="cpu"), progress=False)
    assert result.step == 4 and output_kind(run_dir) == "training run"
