"""Bad input, tried as a new user would: each case a clear error naming the file or the parameter, before work
starts where possible, and nothing half-written."""
from __future__ import annotations

import collections
import json
import subprocess
import sys
import time

import numpy as np
import pytest

from vaelib import annotations as ann
from vaelib.book import run_chapter
from vaelib.framestore import load_frames
from vaelib.parameters import check_parameters
from vaelib.paths import NoSpaceError, atomic_dir, atomic_path, write_json
from vaelib.preprocess import preprocess, store_lock
from vaelib.video_io import VideoWarning


def test_two_runs_into_one_store(small_dataset, tmp_path):
    """A second run while one writes is refused, naming the store; the lock dies with its holder (kill -9)."""
    out = tmp_path / "frames"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\nfrom vaelib.preprocess import store_lock\n"
         f"with store_lock(Path({str(out)!r})):\n    print('held', flush=True)\n    time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RuntimeError, match=rf"another preprocessing run \(pid {holder.pid}\) is writing the "
                                               rf"frame store {out}"):
            preprocess(small_dataset.videos[:1], out, size=8, progress=False)
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait()
    assert len(preprocess(small_dataset.videos[:1], out, size=8, progress=False)) == 600


def test_each_write_has_its_own_temporary_folder(tmp_path):
    with atomic_dir(tmp_path / "store") as a:
        with atomic_dir(tmp_path / "store") as b:
            assert a != b and a.exists() and b.exists()
            (b / "x").write_text("b")
        assert (tmp_path / "store" / "x").read_text() == "b"
        (a / "x").write_text("a")
    assert (tmp_path / "store" / "x").read_text() == "a"              # the last to finish replaces, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_leftovers_of_a_killed_run_are_cleared(small_dataset, tmp_path):
    stale = tmp_path / ".frames.partial-killed"
    stale.mkdir()
    (stale / "frames.npy").write_bytes(b"\0" * 1000)
    with store_lock(tmp_path / "frames"):
        assert not stale.exists()


def test_no_free_space_is_found_before_decoding(small_dataset, tmp_path, monkeypatch):
    import vaelib.paths

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(vaelib.paths.shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 5 * 2**20, 5 * 2**20))
    with pytest.raises(NoSpaceError, match=rf"no space left on the device of {tmp_path} while writing the \d+ "
                                           r"frames of 64x64x3 bytes of the frame store frames \(it needs [\d.]+ "
                                           r"MiB, 5.0 MiB are free there\).*smaller size or larger stride"):
        preprocess(small_dataset.videos, tmp_path / "frames", size=64, progress=False)
    assert not (tmp_path / "frames").exists() and not list(tmp_path.glob(".frames.partial*"))


def test_a_cut_frame_store_is_named_and_made_again(small_dataset, tmp_path):
    out = tmp_path / "frames"
    good = np.array(preprocess(small_dataset.videos[:1], out, size=8, progress=False).frames)   # a copy
    data = (out / "frames.npy").read_bytes()
    (out / "frames.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"{out}: frames.npy is cut short .*preprocess again"):
        load_frames(out)
    with pytest.warns(VideoWarning, match="making it again"):
        again = preprocess(small_dataset.videos[:1], out, size=8, progress=False)
    np.testing.assert_array_equal(again.frames, good)


@pytest.mark.parametrize("reader, text", [
    (ann.read_presses, b"SubjNum\tCondition\tMovie\tMS\n1\tc\tm\t1000\n2\tc\tcaf\xe9\t2000\n"),
    (ann.read_boundary_csv, b"movie,time_s\nm,1.0\ncaf\xe9,2.0\n"),
])
def test_segmentation_file_not_in_utf8(tmp_path, reader, text):
    path = tmp_path / "latin1.txt"
    path.write_bytes(text)
    with pytest.raises(ValueError, match=r"latin1.txt, line 3: the file is not UTF-8 text .*save it as UTF-8"):
        reader(path)


def test_preprocess_parameters_of_the_wrong_type_or_size(small_dataset, tmp_path):
    video = small_dataset.videos[:1]
    with pytest.raises(TypeError, match=r"size must be an integer, not '64'"):
        preprocess(video, tmp_path / "f", size="64", progress=False)
    with pytest.raises(TypeError, match="strict must be True or False"):
        preprocess(video, tmp_path / "f", strict="no", progress=False)
    with pytest.raises(ValueError, match=r"size=4096 is larger than .*synth01.mp4 \(320x240\).*size <= 320"):
        preprocess(video, tmp_path / "f", size=4096, progress=False)
    assert not (tmp_path / "f").exists()
    with pytest.warns(VideoWarning, match=r"synth01.mp4 is 320x240: size=256 stretches"):
        preprocess(video, tmp_path / "f", size=256, stride=100, progress=False)


def test_chapter_parameters_unknown_or_of_the_wrong_type(tmp_path):
    with pytest.raises(ValueError, match=r"02_mmd_vae.py has no parameter\(s\) \['stepz'\]; its parameters .*steps="):
        check_parameters("02_mmd_vae", {"stepz": 10})
    with pytest.raises(TypeError, match="parameter steps must be an integer like its default 2000, not 'ten'"):
        check_parameters("02_mmd_vae", {"steps": "ten"})
    assert check_parameters("02_mmd_vae", {"z_dim": None}) == {"z_dim": None}   # its comment offers None
    with pytest.raises(TypeError, match="parameter strict must be True or False"):
        check_parameters("01_preprocess", {"strict": "yes"})
    assert check_parameters("01_preprocess", {"synthetic_seconds": 20, "data_dir": tmp_path}) == \
        {"synthetic_seconds": 20, "data_dir": str(tmp_path)}
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="stepz"):                    # refused before papermill starts a kernel
        run_chapter("02_mmd_vae", {"stepz": 10}, out_dir=tmp_path, progress=False)
    assert time.perf_counter() - t0 < 10 and not list(tmp_path.glob("*.ipynb"))


def test_sweep_refuses_a_wrong_type_before_the_first_run(tmp_path):
    from vaelib.sweep import sweep

    with pytest.raises(TypeError, match="parameter steps must be an integer"):
        sweep("02_mmd_vae", {"steps": [5, "ten"]}, out_dir=tmp_path, progress=False)
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]


def test_disk_full_while_writing_names_the_folder(small_dataset, tmp_path, monkeypatch):
    import errno

    import vaelib.preprocess

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(vaelib.preprocess, "unit_job", full)
    with pytest.raises(NoSpaceError, match=rf"no space left on the device of {tmp_path} while writing the frame "
                                           rf"store {tmp_path / 'frames'} \(.* are free there\); nothing half-written"):
        preprocess(small_dataset.videos[:1], tmp_path / "frames", size=8, progress=False)
    assert not (tmp_path / "frames").exists()


def test_disk_full_in_an_atomic_write_names_the_folder(tmp_path):
    """Every atomic write (run folders' config/environment JSON, chapter metrics, figures) names a full disk's
    folder and leaves neither the file nor its temporary."""
    import errno

    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(OSError, match=rf"no space left on the device of {tmp_path} while writing config.json "
                                      r"\(.* are free there\); nothing half-written was kept") as e:
        with atomic_path(tmp_path / "config.json", suffix=".json") as tmp:
            tmp.write_text('{"half": ')
            raise OSError(errno.ENOSPC, "No space left on device")
    assert e.value.errno == errno.ENOSPC
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"] and (tmp_path / "config.json").read_text() == "{}"
    with pytest.raises(OSError, match=rf"no space left on the device of {tmp_path} while writing weights/ "):
        with atomic_dir(tmp_path / "weights") as tmp:                  # a folder written whole (exported models)
            (tmp / "weights.pt").write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_json_that_cannot_be_written_leaves_the_old_file(tmp_path):
    """write_json (every JSON the project writes: run configs, RD points, metrics, benchmark results) makes the text
    before it opens a file: a value JSON cannot hold raises and the old file stays, byte for byte, with no temporary."""
    path = write_json(tmp_path / "metrics.json", {"psnr": 30.5, "steps": [1, 2]})
    before = path.read_text()
    assert json.loads(before) == {"psnr": 30.5, "steps": [1, 2]} and before.endswith("}\n")
    with pytest.raises(ValueError, match="Out of range float"):
        write_json(path, {"psnr": float("nan")}, allow_nan=False)
    with pytest.raises(TypeError, match="not JSON serializable"):
        write_json(path, {"clip": object()})
    assert path.read_text() == before and [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_no_file_locks_on_this_system_is_a_clear_error(small_dataset, tmp_path, monkeypatch):
    """Where Python has no fcntl (Windows outside WSL) the store lock says so, naming the store; nothing is written."""
    monkeypatch.setitem(sys.modules, "fcntl", None)                  # `import fcntl` now fails as on Windows
    out = tmp_path / "frames"
    with pytest.raises(RuntimeError, match=rf"cannot lock the frame store {out} on this system .*POSIX file locks "
                                           r"\(Python's fcntl module.*WSL"):
        preprocess(small_dataset.videos[:1], out, size=8, progress=False)
    assert not out.exists() and not list(tmp_path.glob(".frames.partial*"))


def test_a_reader_while_another_run_replaces_the_store_sees_one_whole_store(small_dataset, tmp_path, monkeypatch):
    """The issue's reader during a write: the store is replaced (renamed into place) between load_frames reading
    its manifest and its frames; the reader gets the old store whole, not the old manifest with the new frames."""
    import os

    out, other = tmp_path / "frames", tmp_path / "other"
    old = np.array(preprocess(small_dataset.videos[:1], out, size=8, progress=False).frames)
    preprocess(small_dataset.videos[:1], other, size=16, stride=2, progress=False)
    read_magic = np.lib.format.read_magic          # load_frames's numpy, imported where it is used

    def replaced_meanwhile(f):
        if not (tmp_path / "aside").exists():                    # what atomic_dir does to a store it replaces
            os.replace(out, tmp_path / "aside")
            os.replace(other, out)
        return read_magic(f)

    monkeypatch.setattr(np.lib.format, "read_magic", replaced_meanwhile)
    fs = load_frames(out)
    assert fs.size == 8 and fs.frames.shape == (600, 8, 8, 3) and len(fs.index) == 600
    np.testing.assert_array_equal(fs.frames, old)
    monkeypatch.undo()
    assert load_frames(out).frames.shape == (300, 16, 16, 3)             # the next reader gets the new one
