"""Thousands of videos: a folder tree, worker processes, a report per file, bad files skipped or stopping the
run, resuming after a kill, and shards for a cluster merged at the end."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from vaelib import preprocess as pipeline
from vaelib import preprocess_worker
from vaelib.framestore import load_frames
from vaelib.preprocess import preprocess, preprocess_shard
from vaelib.video_io import VideoError, VideoWarning, ffmpeg_exe


def _clip(path, seed: int, seconds: float = 1.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size=64x48:rate=10:duration={seconds},noise=alls=40:allf=t:all_seed={seed}",
                    "-c:v", "mpeg4", str(path)], check=True)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """HMDB51's layout: class/clip.avi, two classes sharing a clip name, a hidden folder that is not data."""
    root = tmp_path_factory.mktemp("tree")
    for k, rel in enumerate(["brush_hair/a.avi", "brush_hair/b.avi", "cartwheel/a.avi", "cartwheel/c.avi",
                             "cartwheel/d.avi", ".hidden/x.avi"]):
        _clip(root / rel, k)
    return root


def _same_store(a, b) -> None:
    assert a.movies == b.movies
    np.testing.assert_array_equal(a.frames, b.frames)
    assert a.index.equals(b.index)


def test_folder_tree_with_workers(tree, tmp_path):
    one = preprocess(tree, tmp_path / "one", size=16, progress=False)
    assert one.movies == ["brush_hair/a", "brush_hair/b", "cartwheel/a", "cartwheel/c", "cartwheel/d"]
    assert len(one) == 50 and one.index.frame.max() == 9
    report = one.report()
    assert report.status.tolist() == ["ok"] * 5 and report.frames_stored.tolist() == [10] * 5
    assert (report.peak_rss_mib > 0).all() and (report.decode_s > 0).all()
    two = preprocess(tree, tmp_path / "two", size=16, progress=False, workers=2)
    _same_store(one, two)
    assert not (tmp_path / ".two.work").exists()                 # the units are gone once merged


def test_a_bad_file_stops_the_run_or_is_skipped(tree, tmp_path):
    bad = tree / "cartwheel" / "b_broken.avi"
    bad.write_text("not a video\n" * 20)
    try:
        with pytest.raises(VideoError, match="b_broken.avi"):
            preprocess(tree, tmp_path / "stop", size=16, progress=False, workers=2)
        assert not (tmp_path / "stop").exists()
        with pytest.warns(VideoWarning,
                          match=r"1 of 6 videos were skipped .*cartwheel/b_broken: .*b_broken.avi"):
            fs = preprocess(tree, tmp_path / "skip", size=16, progress=False, on_error="skip")
        assert "cartwheel/b_broken" not in fs.movies and len(fs.movies) == 5
        report = fs.report().set_index("movie")
        assert report.loc["cartwheel/b_broken", "status"] == "failed"
        assert "b_broken.avi" in report.loc["cartwheel/b_broken", "error"]
        assert (report.drop("cartwheel/b_broken").status == "ok").all()
    finally:
        bad.unlink()


def test_a_rerun_reuses_the_files_already_done(tree, tmp_path):
    """A run stopped by a bad file keeps the units it finished; the rerun redoes only what was missing."""
    bad = tree / "cartwheel" / "zz_broken.avi"                   # last in order: the others are done first
    _clip(bad, 99, seconds=3.0)
    bad.write_bytes(bad.read_bytes()[:20000])                     # cut: the header is fine, decoding fails
    try:
        with pytest.raises(VideoError, match="zz_broken.avi"):
            preprocess(tree, tmp_path / "frames", size=16, progress=False)
    finally:
        bad.unlink()
    fs = preprocess(tree, tmp_path / "frames", size=16, progress=False)
    assert fs.report().status.tolist() == ["reused"] * 5
    _same_store(fs, preprocess(tree, tmp_path / "fresh", size=16, progress=False))


def test_shards_then_merge(tree, tmp_path):
    parts = [preprocess_shard(tree, tmp_path / "frames", f"{i}/2", size=16, progress=False) for i in (1, 2)]
    assert parts[0].movie.tolist() == ["brush_hair/a", "cartwheel/a", "cartwheel/d"]
    assert parts[1].movie.tolist() == ["brush_hair/b", "cartwheel/c"]
    assert not (tmp_path / "frames").exists()                     # a shard writes units only
    fs = preprocess(tree, tmp_path / "frames", size=16, progress=False)
    assert fs.report().status.tolist() == ["reused"] * 5
    _same_store(fs, preprocess(tree, tmp_path / "fresh", size=16, progress=False, workers=2))
    with pytest.raises(ValueError, match=r"shard must be 'i/n'"):
        preprocess_shard(tree, tmp_path / "x", "0/2")


def test_shards_then_merge_from_the_command_line(tree, tmp_path, capsys):
    """`python -m vaelib.preprocess ... --shard i/n` prints its part's statuses and writes no store; the same
    command without --shard merges the parts."""
    import re

    from vaelib.preprocess import main

    out = tmp_path / "frames"
    for i, n in ((1, 3), (2, 2)):
        capsys.readouterr()
        assert main([str(tree), str(out), "--size", "16", "--shard", f"{i}/2"]) == 0
        assert re.search(rf"ok\s+{n}\b", capsys.readouterr().out)
    assert not out.exists()
    assert main([str(tree), str(out), "--size", "16"]) == 0
    assert re.search(r"reused\s+5\b", capsys.readouterr().out)
    assert len(load_frames(out).movies) == 5


def test_killed_run_redoes_only_the_files_in_flight(tmp_path):
    videos = [tmp_path / "v" / f"m{k}.avi" for k in range(4)]
    for k, v in enumerate(videos):
        _clip(v, k, seconds=3.0)
    out = tmp_path / "frames"
    code = (f"from vaelib.preprocess import preprocess\npreprocess({[str(v) for v in videos]!r}, {str(out)!r}, "
            "size=16, progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code])
    work = tmp_path / ".frames.work"

    def units_done() -> int:              # a unit's record, not one still being written under a temporary name
        return len([p for p in work.glob("*/*.json") if not p.name.startswith(".")])

    deadline = time.time() + 60
    while time.time() < deadline and units_done() < 2 and proc.poll() is None:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    finished = units_done()
    assert not (out / "manifest.json").exists() or finished == 4
    fs = preprocess(videos, out, size=16, progress=False)
    assert (fs.report().status == "reused").sum() == finished
    _same_store(fs, preprocess(videos, tmp_path / "fresh", size=16, progress=False))
    assert load_frames(out).manifest["n_frames"] == 120


_DYING_WORKER = '''
import os
import signal

from vaelib import preprocess_worker


class _Dies(preprocess_worker.VideoReader):
    def decode_to(self, dest, stride=1):
        n = super().decode_to(dest, stride)
        os.kill(os.getpid(), signal.SIGKILL)            # frames written, unit not yet done: as the OOM killer would
        return n


def unit_job(path, units, settings, threads, *rest):
    if path.endswith(os.environ["DIE_ON"]):
        preprocess_worker.VideoReader = _Dies
    return preprocess_worker.unit_job(path, units, settings, threads, *rest)
'''


def test_a_worker_that_dies_is_named_by_its_video(tree, tmp_path, monkeypatch):
    """A worker process killed mid-video (kill -9) stops the run with an error naming that video; the videos
    finished are kept and the rerun makes the same store as an uninterrupted run."""
    import vaelib.preprocess

    (tmp_path / "dying_worker.py").write_text(_DYING_WORKER)
    monkeypatch.syspath_prepend(str(tmp_path))                     # spawned workers get the same sys.path
    import dying_worker

    monkeypatch.setenv("DIE_ON", "cartwheel/a.avi")
    monkeypatch.setattr(vaelib.preprocess, "unit_job", dying_worker.unit_job)
    out = tmp_path / "frames"
    with pytest.raises(VideoError, match=r"a worker process died while decoding (\S+ or )?\S*cartwheel/a.avi.*"
                                         r"killed.*finished so far \(\d\) are kept: run again") as e:
        preprocess(tree, out, size=16, progress=False, workers=2)
    assert str(e.value).count(".avi") <= 2                          # at most the two videos in flight
    assert not out.exists()
    monkeypatch.undo()
    fs = preprocess(tree, out, size=16, progress=False, workers=2)
    assert "reused" in fs.report().status.tolist()                  # the finished units were kept
    _same_store(fs, preprocess(tree, tmp_path / "fresh", size=16, progress=False))


_DYING_IN_A_BATCH = '''
import os
import signal

from vaelib import preprocess_worker


def batch_job(jobs, units, settings):
    if any(path.endswith(os.environ["DIE_ON"]) for path, _ in jobs):
        decode = preprocess_worker.decode_batch

        def dies(readers, dests, stride):
            decode(readers, dests, stride)
            os.kill(os.getpid(), signal.SIGKILL)        # the run's frames written, no unit done yet

        preprocess_worker.decode_batch = dies
    return preprocess_worker.batch_job(jobs, units, settings)
'''


def test_a_worker_that_dies_in_a_shared_ffmpeg_run_names_that_runs_videos(tmp_path, monkeypatch):
    """Short clips share ffmpeg runs (two per run here); a worker killed in one names the videos of that run
    (those in flight), and the rerun makes the same store as an uninterrupted run."""
    import vaelib.preprocess

    videos = [tmp_path / "v" / f"m{k:02d}.avi" for k in range(16)]
    for k, v in enumerate(videos):
        _clip(v, k, seconds=0.5)
    (tmp_path / "dying_batch.py").write_text(_DYING_IN_A_BATCH)
    monkeypatch.syspath_prepend(str(tmp_path))
    import dying_batch

    monkeypatch.setenv("DIE_ON", "m09.avi")
    monkeypatch.setattr(vaelib.preprocess, "batch_job", dying_batch.batch_job)
    out = tmp_path / "frames"
    with pytest.raises(VideoError, match=r"a worker process died while decoding .*m09.avi") as e:
        preprocess(videos, out, size=16, progress=False, workers=2)
    assert str(e.value).count(".avi") <= 4                          # at most the two runs in flight
    assert not out.exists()
    monkeypatch.undo()
    fs = preprocess(videos, out, size=16, progress=False, workers=2)
    assert "reused" in fs.report().status.tolist()
    _same_store(fs, preprocess(videos, tmp_path / "fresh", size=16, progress=False))


def test_workers_started_from_an_unguarded_script_say_so(tree, tmp_path):
    """A script without the ``if __name__ == "__main__":`` guard cannot start spawned workers: the error says
    what to change, not that a worker ran out of memory."""
    script = tmp_path / "unguarded.py"
    script.write_text("from vaelib.preprocess import preprocess\n"
                      f"preprocess({str(tree)!r}, {str(tmp_path / 'frames')!r}, size=16, progress=False, workers=2)\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "died before they began any video" in run.stderr and 'if __name__ == "__main__":' in run.stderr
    assert not (tmp_path / "frames").exists()


def _pid_and_cpus(seconds: float) -> tuple[int, frozenset[int]]:
    time.sleep(seconds)                     # long enough that every worker gets a task
    return os.getpid(), frozenset(os.sched_getaffinity(0))


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="pinning needs sched_getaffinity and 2 or more CPUs")
def test_workers_are_pinned_each_to_its_own_cpus():
    """Each worker (and so each ffmpeg it starts) runs on its own share of the CPUs, the shares disjoint and
    together all of this process's CPUs; with more workers than CPUs nothing is pinned."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    cpus = frozenset(os.sched_getaffinity(0))
    ctx = get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=ctx, **preprocess_worker._pinning(ctx, 2)) as pool:
        seen = dict(pool.map(_pid_and_cpus, [0.3] * 6))
    assert len(seen) == 2
    a, b = seen.values()
    assert a and b and not a & b and a | b == cpus
    assert frozenset(os.sched_getaffinity(0)) == cpus            # the calling process stays as it was
    assert "initargs" not in preprocess_worker._pinning(ctx, len(cpus) + 1)      # no pinning, the signal handling only


def test_worker_cpu_shares_where_cpus_are_not_numbered_from_0_or_there_is_one(monkeypatch):
    """The shares follow the CPUs this process may use, whatever their numbers (a cpuset such as 3,5,7,9,12):
    disjoint, together all of them, as even as they can be; none with more workers than CPUs, and on one CPU
    a decode is not bound at all."""
    from multiprocessing import get_context

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {12, 3, 9, 5, 7}, raising=False)
    ctx = get_context("spawn")
    assert preprocess_worker._pinning(ctx, 2)["initargs"][1] == [[3, 5], [7, 9, 12]]
    assert preprocess_worker._pinning(ctx, 5)["initargs"][1] == [[3], [5], [7], [9], [12]]
    assert "initargs" not in preprocess_worker._pinning(ctx, 6)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {7}, raising=False)        # one CPU: nothing to bind
    monkeypatch.setattr(os, "sched_setaffinity", lambda pid, cpus: pytest.fail("bound on one CPU"), raising=False)
    with preprocess_worker._one_cpu():
        pass


@pytest.mark.parametrize("kernel_copy", ["works", "missing", "fails_midway", "stops_short"])
def test_merge_appends_each_unit_whole(tmp_path, monkeypatch, kernel_copy):
    """The merge appends a unit in the kernel (os.copy_file_range) where it can, else through Python; a
    kernel copy that fails, or answers 0 (end of file) before the end as some file systems do, after
    copying part is undone and redone, never doubled nor cut short."""
    real = os.copy_file_range
    calls = []

    def midway(src, dst, count, *args):
        real(src, dst, 5)
        raise OSError(18, "Invalid cross-device link")

    def short(src, dst, count, *args):
        calls.append(count)
        return real(src, dst, 5) if len(calls) == 1 else 0

    if kernel_copy == "missing":
        monkeypatch.delattr(os, "copy_file_range")
    elif kernel_copy == "fails_midway":
        monkeypatch.setattr(os, "copy_file_range", midway)
    elif kernel_copy == "stops_short":
        monkeypatch.setattr(os, "copy_file_range", short)
    (tmp_path / "a").write_bytes(b"unit one,")
    (tmp_path / "b").write_bytes(bytes(range(256)) * 1000)
    with open(tmp_path / "store", "wb") as f:
        f.write(b"header")
        for name in "ab":
            with open(tmp_path / name, "rb") as src:
                pipeline._append(src, f)
        f.write(b"!")
        f.seek(0)
        f.write(b"HEADER")
    assert (tmp_path / "store").read_bytes() == b"HEADER" + b"unit one," + bytes(range(256)) * 1000 + b"!"


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="pinning needs sched_getaffinity and 2 or more CPUs")
def test_a_single_threaded_decode_runs_on_one_cpu_then_gets_its_cpus_back():
    cpus = os.sched_getaffinity(0)
    with preprocess_worker._one_cpu():
        inside = os.sched_getaffinity(0)
        child = subprocess.run([sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
                               capture_output=True, text=True, check=True).stdout.strip()
    assert len(inside) == 1 and inside <= cpus
    assert child == str(sorted(inside))                          # what it starts (ffmpeg) stays there too
    assert os.sched_getaffinity(0) == cpus
    with pytest.raises(KeyError):                                # a decode that fails gives them back too
        with preprocess_worker._one_cpu():
            assert len(os.sched_getaffinity(0)) == 1
            raise KeyError("decode failed")
    assert os.sched_getaffinity(0) == cpus


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="pinning needs sched_getaffinity and 2 or more CPUs")
def test_a_single_threaded_decode_whose_cpus_went_offline_gets_every_cpu(monkeypatch):
    """If the CPUs the decode had went offline while it ran, giving them back fails; it then gets every CPU
    there is (the kernel keeps those online and allowed) rather than staying on one or raising."""
    cpus, real, calls = os.sched_getaffinity(0), os.sched_setaffinity, []

    def setaffinity(pid, mask):
        calls.append(set(mask))
        if len(calls) == 2:                                      # the give-back: those CPUs are gone
            raise OSError(22, "Invalid argument")
        real(pid, mask)

    monkeypatch.setattr(os, "sched_setaffinity", setaffinity)
    with preprocess_worker._one_cpu():
        assert len(os.sched_getaffinity(0)) == 1
    assert len(calls) == 3 and calls[1] == cpus and calls[2] >= cpus
    assert os.sched_getaffinity(0) >= cpus


def test_a_single_threaded_decode_where_cpus_cannot_be_bound(monkeypatch):
    """Without sched_getaffinity (macOS, Windows) the decode runs as it is, and its own error is raised
    plainly, not as raised while handling the missing function."""
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    with pytest.raises(KeyError) as e:
        with preprocess_worker._one_cpu():
            raise KeyError("decode failed")
    assert e.value.__context__ is None


def test_a_worker_starts_without_numpy_opencv_or_pandas():
    """What a spawned worker imports to decode (vaelib.preprocess_worker and what it needs) loads none of the
    heavy libraries: each cost every worker CPU time before its first video. Nor does vaelib.preprocess, which a
    worker imports again as its main module when the pipeline runs as `python -m vaelib.preprocess`."""
    code = ("import sys, vaelib.preprocess_worker, vaelib.preprocess; "
            "print(sorted(m for m in ('numpy', 'cv2', 'pandas', 'torch') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="VmHWM is Linux's")
def test_a_workers_peak_memory_is_its_own_not_its_parents():
    """The per-file report's peak memory of a worker is the worker's: getrusage's ru_maxrss would report the
    parent's resident memory at the time it was started, e.g. 300 MiB held by the parent here."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    ballast = b"\1" * (300 << 20)                               # resident in this process, not the worker
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        worker = pool.submit(preprocess_worker._peak_rss_mib).result()
    assert len(ballast) and preprocess_worker._peak_rss_mib() > 300
    assert 0 < worker < 200


def test_workers_start_with_the_probe_but_not_to_open_a_finished_store(tree, tmp_path, monkeypatch):
    """The workers are started before the videos are probed (their start-up overlaps it); a call that finds
    the store already made opens it without starting any."""
    started = []
    real = pipeline._start_workers
    monkeypatch.setattr(pipeline, "_start_workers", lambda *a: started.append(a) or real(*a))
    first = preprocess(tree, tmp_path / "frames", size=16, progress=False, workers=2)
    assert started == [(2, 5)]
    again = preprocess(tree, tmp_path / "frames", size=16, progress=False, workers=2)
    assert started == [(2, 5)]
    _same_store(first, again)
