"""A clean stop: SIGTERM or SIGINT while two workers preprocess stops them (and the resource tracker), leaves no
frame store, says what finished and how to go on; the same command then finishes, reusing what was done."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vaelib.framestore import load_frames
from vaelib.video_io import ffmpeg_exe

N_VIDEOS = 6


@pytest.fixture(scope="module")
def long_videos(tmp_path_factory) -> Path:
    """Six 720p videos of 40 s: about a second of decoding each, so a signal finds the workers busy."""
    folder = tmp_path_factory.mktemp("long")
    first = folder / "v1.mp4"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=1280x720:rate=25:duration=40", "-c:v", "mpeg4", "-q:v", "20", str(first)],
                   check=True)
    for k in range(2, N_VIDEOS + 1):
        shutil.copyfile(first, folder / f"v{k}.mp4")
    return folder


def _sigint_as_at_a_terminal() -> None:
    """In the child before it starts: SIGINT back to its default. A shell starts a background job (``make test &``, a
    CI runner's script) with SIGINT ignored, every process below inherits that, and a process that starts with it
    ignored rightly keeps ignoring it; the command here stands for one run at a terminal, where Ctrl-C reaches it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"          # a zombie is gone, only not reaped
    except FileNotFoundError:
        return False


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc: children of children too)."""
    parents: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    parents[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                pass
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        found.update(kids)
        todo += kids
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="the process tree is read from Linux's /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_parallel_preprocessing_cleanly(long_videos, tmp_path, sig):
    out = tmp_path / "frames"
    cmd = [sys.executable, "-m", "vaelib.preprocess", str(long_videos), str(out), "--size", "8", "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1], preexec_fn=_sigint_as_at_a_terminal)
    work = tmp_path / ".frames.work"
    seen: set[int] = set()
    deadline = time.monotonic() + 120
    while not list(work.glob("*/*.json")):                 # the first video finished: the workers are busy
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        seen |= _descendants(proc.pid)
        time.sleep(0.02)
    seen |= _descendants(proc.pid)
    assert len(seen) >= 3                                  # two workers and the resource tracker (and ffmpeg)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (143 if sig == signal.SIGTERM else 130), err
    name = signal.Signals(sig).name
    assert f"preprocessing stopped by {name}: " in err and "videos are finished and kept in" in err, err
    assert "the workers were stopped and no frame store was written" in err and "Run the same command again" in err
    assert "Traceback" not in err, err
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in seen) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in seen if _alive(p)], "processes left running after the stop"
    assert not out.exists() and not list(tmp_path.glob(".frames.partial*"))
    finished = len(list(work.glob("*/*.json")))
    assert 1 <= finished < N_VIDEOS
    # the same command finishes, reusing the videos finished before the stop
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    report = load_frames(out).report()
    assert (report.status == "reused").sum() == finished and (report.status == "ok").sum() == N_VIDEOS - finished
