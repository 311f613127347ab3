"""Preprocessing many videos into a frame store (:mod:`vaelib.framestore`): folders searched for videos, each video
a unit of work done by worker processes (:mod:`vaelib.preprocess_worker`), resumable after a kill, sharded for job
arrays, the store locked while written, SIGTERM handled, a per-file report. The command line:
``python -m vaelib.preprocess VIDEOS... OUT``.
"""
from __future__ import annotations

import argparse
import functools
import json
import numbers
import os
import re
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING

from .paths import (
    NoSpaceError,
    OutputPathError,
    atomic_dir,
    check_free_space,
    claim_output,
    disk_full,
    folder_lock,
    mark_output,
    no_space,
    resolve,
)
from .preprocess_worker import (
    batch_job,
    pool_options,
    short_digest,
    source_stamp,
    unit_job,
    unit_paths,
    usable_cpus,
    verified_unit,
)
from .video_io import (
    BATCH_CLIPS,
    CROP_MODES,
    VIDEO_EXTENSIONS,
    VideoError,
    VideoInfo,
    VideoWarning,
    batchable,
    probe,
)

if TYPE_CHECKING:
    import pandas as pd

    from .framestore import FrameSet
# numpy, pandas, tqdm and the frame store (which imports numpy and pandas) are imported where they are used: run as
# `python -m vaelib.preprocess`, this is the main module, which every spawned worker imports again (about 0.35 s
# of CPU per worker for numpy and pandas, before its first video).

STORE_TIMING = "ffmpeg best-effort pts"  # how index times are made; a store made otherwise is redone
ON_ERROR = ("stop", "skip")


def preprocess(videos: Sequence[str | os.PathLike] | str | os.PathLike, out_dir: str | os.PathLike,
               size: int = 64, crop: str = "squash", stride: int = 1, strict: bool = True,
               overwrite: bool = False, progress: bool = True, workers: int = 1,
               on_error: str = "stop") -> FrameSet:
    """Decode each video once, downsample every ``stride``-th frame to ``size`` x ``size``, store them.

    ``videos`` is a list of files or a folder; a folder is searched through its subfolders
    (``class/clip.avi``, HMDB51's layout) and each movie is named by its path below it (``class/clip``).

    Each video becomes a unit of work (its frames and times, written under a temporary name and then
    renamed, beside ``out_dir`` in ``.NAME.work/``), done by ``workers`` processes under one progress bar
    (each bound to its own share of the CPUs where there are at least as many CPUs as workers; short AVI
    clips, as in HMDB51, up to 8 to one ffmpeg run: its start-up cost as much as a 2-s clip);
    the units are then merged into the store (``frames.npy``, ``index.csv``, ``manifest.json`` and
    ``report.csv``, one row per video: status, frames, rate, time, warnings, error), built in a temporary
    folder and renamed into place. A killed run leaves no store, and its rerun reuses every unit already
    written and verified (source unchanged, byte count and CRC32 right): it redoes only the videos that were
    in flight, and writes the same store as an uninterrupted run.

    ``on_error``: ``"stop"`` (default) raises at the first bad video, naming it (units done so far are
    kept for the rerun), or before any work at a folder that cannot be read; ``"skip"`` leaves it out, reports
    it in ``report.csv`` (status ``failed``; a folder :func:`find_videos` skipped: ``skipped``) and warns with the
    list.
    :func:`preprocess_shard` does a part of the videos on each of several machines; this call then merges.

    If ``out_dir`` already holds a store made from the same videos with the same settings, it is opened
    instead of redone, unless ``overwrite``. All videos are checked (:func:`vaelib.video_io.probe`) before any decoding.
    ``out_dir`` must be absent, empty or a frame store: anything else (a file, a folder of other files) is
    refused, never replaced (:func:`vaelib.paths.claim_output`); ``overwrite`` also replaces another kind of
    this project's output.
    """
    with _signals_interrupt():
        return _preprocess(videos, out_dir, size, crop, stride, strict, overwrite, progress, workers, on_error)


def preprocess_shard(videos: Sequence[str | os.PathLike] | str | os.PathLike, out_dir: str | os.PathLike,
                     shard: str, size: int = 64, crop: str = "squash", stride: int = 1, strict: bool = True,
                     overwrite: bool = False, progress: bool = True, workers: int = 1,
                     on_error: str = "stop") -> pd.DataFrame:
    """One part of :func:`preprocess`'s work, for n jobs on n machines sharing the folder (a SLURM array).

    ``shard="i/n"`` (i from 1 to n) does only every n-th video from the i-th on, writing their units beside
    ``out_dir`` without merging them, and returns that part's report (one row per video, as ``report.csv``).
    Then :func:`preprocess` with the same arguments merges (decoding whatever is still missing). The other
    arguments are :func:`preprocess`'s.
    """
    with _signals_interrupt():
        plan = _plan(videos, out_dir, size, crop, stride, strict, overwrite, workers, on_error, _parse_shard(shard))
        with closing(plan):
            return plan.make_units(workers, on_error, progress)


class Interrupted(KeyboardInterrupt):
    """Preprocessing stopped by SIGINT (Ctrl-C) or SIGTERM; the message says what finished and how to go on."""


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """While preprocessing, SIGTERM (a job scheduler's stop, ``kill``) interrupts the main thread as SIGINT does:
    the workers are then stopped, nothing half-written is kept, and the finished videos stay for the rerun."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    old = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@dataclass
class _Plan:
    """One call's videos, named, probed and with their settings: what a store and a shard of it share."""
    names: list[str]
    paths: list[Path]
    infos: dict[str, VideoInfo]     # what probe said, by name (those it refused are in failed)
    failed: dict[str, str]
    skipped: list[tuple[Path, str]]  # what find_videos skipped in the folder searched
    root: Path | None               # the folder searched
    out: Path
    settings: dict                  # the store's settings (manifest.json)
    unit_settings: dict             # those that make a unit
    units: Path                     # the units' folder
    pool: object                    # the worker processes started while probing, or None

    def make_units(self, workers: int, on_error: str, progress: bool, out: Path | None = None) -> pd.DataFrame:
        """Every missing unit made (:func:`_make_units`); the per-file report with the skipped paths."""
        report = _make_units(self.names, self.paths, self.infos, self.failed, self.units, self.unit_settings,
                             workers, on_error, progress, out, self.pool)
        return _with_skipped(report, self.skipped, self.root if self.skipped else None)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _plan(videos, out_dir, size, crop, stride, strict, overwrite, workers, on_error,
          part: tuple[int, int] | None) -> _Plan:
    """Check the arguments, find and name the videos (only ``part``'s, if given), claim ``out_dir``, start the
    workers and probe the videos meanwhile."""
    from .framestore import STORE_FILES, STORE_KIND

    _check_settings(size, crop, stride, strict)
    if not isinstance(workers, numbers.Integral) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"preprocess: workers must be an integer >= 1, not {workers!r}")
    if on_error not in ON_ERROR:
        raise ValueError(f"preprocess: on_error must be one of {ON_ERROR}, not {on_error!r}")
    skipped: list[tuple[Path, str]] = []
    root = None
    if isinstance(videos, (str, os.PathLike)):
        root = resolve(videos)
        paths, skipped = find_videos(root)
        if skipped and on_error == "stop":
            raise VideoError(f"{_skip_text(skipped)}. Make them readable, or pass on_error='skip' (--on-error skip) "
                             "to leave them out (each is then listed in report.csv)")
        if not paths:
            raise FileNotFoundError(f"no video files ({', '.join(VIDEO_EXTENSIONS)}) in {root}"
                                    + (f"; {_skip_text(skipped)}" if skipped else ""))
        names = [p.relative_to(root).with_suffix("").as_posix() for p in paths]
    else:
        paths = [resolve(v) for v in videos]
        taken: set[str] = set()
        names = []
        for p in paths:
            names.append(_movie_name(p, taken))
            taken.add(names[-1])
    if not paths:
        raise ValueError("no videos to preprocess")
    if part is not None:
        i, n = part
        paths, names = paths[i - 1::n], names[i - 1::n]
    size, stride = int(size), int(stride)

    out = claim_output(resolve(out_dir), STORE_KIND, overwrite, own=STORE_FILES)
    # the workers start while the videos are probed; not where a store is there to be opened instead
    pool = _start_workers(workers, len(paths)) if part is not None or overwrite or \
        not (out / "manifest.json").exists() else None
    try:
        failed: dict[str, str] = {}
        infos: dict[str, VideoInfo] = {}
        for name, p in zip(names, paths):
            try:
                infos[name] = probe(p)
                if max(infos[name].width, infos[name].height) < 4:
                    i = infos.pop(name)
                    raise VideoError(f"{p} is {i.width}x{i.height} pixels: too small for a frame store, whose frames "
                                     "are at least 4x4 (size must be at least 4); leave this video out")
            except (VideoError, FileNotFoundError) as e:
                if on_error == "stop":
                    raise
                failed[name] = str(e)
        _check_size_against_sources(size, list(infos.values()))
    except BaseException:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        raise
    settings = {"size": size, "crop": crop, "stride": stride, "strict": bool(strict), "on_error": on_error,
                "timing": STORE_TIMING,
                "sources": [[str(p), *source_stamp(p)] for p in paths]}
    unit_settings = {k: settings[k] for k in ("size", "crop", "stride", "strict", "timing")}
    units = _work_dir(out) / short_digest(unit_settings)
    return _Plan(names, paths, infos, failed, skipped, root, out, settings, unit_settings, units, pool)


def _preprocess(videos, out_dir, size, crop, stride, strict, overwrite, progress, workers, on_error) -> FrameSet:
    from .framestore import load_frames

    plan = _plan(videos, out_dir, size, crop, stride, strict, overwrite, workers, on_error, None)
    out, settings = plan.out, plan.settings
    with closing(plan):
        with store_lock(out):
            if (out / "manifest.json").exists() and not overwrite:
                old = json.loads((out / "manifest.json").read_text())
                if old.get("settings") == settings:
                    try:
                        return load_frames(out)
                    except ValueError as e:                  # same settings but damaged: made again below
                        warnings.warn(f"{e}; making it again", VideoWarning, stacklevel=2)
            try:
                report = plan.make_units(workers, on_error, progress, out)
                _merge_units(report, plan.units, out, settings)
            except OSError as e:
                if disk_full(e) and not isinstance(e, NoSpaceError):
                    raise no_space(out.parent, f"the frame store {out}", advice="give another out_dir") from e
                raise
            _remove_folder(_work_dir(out))
        bad = report[report.status.isin(["failed", "skipped"])]
        if len(bad):
            what = "videos or folders" if (bad.status == "skipped").any() else "videos"
            warnings.warn(f"{len(bad)} of {len(report)} {what} were skipped (on_error='skip'): "
                          + "; ".join(f"{m}: {e}" for m, e in zip(bad.movie[:5], bad.error[:5]))
                          + (" ..." if len(bad) > 5 else "") + f". The list is in {out / 'report.csv'}",
                          VideoWarning, stacklevel=2)
        return load_frames(out)


def _with_skipped(report: pd.DataFrame, skipped: list[tuple[Path, str]], root: Path | None) -> pd.DataFrame:
    """``report`` with one row more per path :func:`find_videos` skipped (status ``skipped``, the reason as error)."""
    if not skipped:
        return report
    import pandas as pd

    from .framestore import REPORT_COLUMNS

    rows = pd.DataFrame([{"movie": p.relative_to(root).as_posix() if root and p.is_relative_to(root) else str(p),
                          "path": str(p), "status": "skipped", "warnings": "", "error": why} for p, why in skipped],
                        columns=REPORT_COLUMNS)
    return pd.concat([report, rows], ignore_index=True)


def _remove_folder(folder: Path) -> None:
    """Remove ``folder`` with everything in it (errors ignored), its files several at a time.

    Each unlink can wait for the device (a few ms each on a disk mounted with ``discard``: about 1.5 s for
    the units of 240 clips, one after the other, while no core had work); eight at a time hide most of it.
    """
    def unlink(path: Path) -> None:
        try:
            path.unlink()
        except OSError:
            pass

    try:
        files = [p for p in folder.rglob("*") if not p.is_dir()]
    except OSError:
        files = []
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(unlink, files))
    shutil.rmtree(folder, ignore_errors=True)


def _parse_shard(shard: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(shard))
    if m is None or not 1 <= int(m[1]) <= int(m[2]):
        raise ValueError(f"preprocess: shard must be 'i/n' with 1 <= i <= n (e.g. '3/8'), not {shard!r}")
    return int(m[1]), int(m[2])


def _work_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.work"


def find_videos(folder: str | os.PathLike, recursive: bool = True) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The video files (by extension) inside ``folder`` (and its subfolders if ``recursive``), sorted by path, and
    what was skipped, each with why: ``[(path, reason), ...]``.

    Symbolic links to folders are followed (a folder reached twice, as by a link to a folder above it, is
    walked once); a folder that cannot be read (permission) is skipped and listed, as is a link that leads
    nowhere. Hidden files and folders (``.name``: this project's work folders among them) are not searched.
    """
    folder = resolve(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"video folder not found: {folder}")
    videos: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    seen: set[tuple[int, int]] = set()

    def unreadable(e: OSError) -> None:
        why = "permission denied" if isinstance(e, PermissionError) else (e.strerror or str(e))
        skipped.append((Path(e.filename or folder), f"folder could not be read ({why}): its videos are left out"))

    for top, dirs, files in os.walk(folder, onerror=unreadable, followlinks=True):
        here = Path(top)
        st = here.stat()
        if (st.st_dev, st.st_ino) in seen:
            skipped.append((here, "folder already searched (a symbolic link leads back to it): searched once"))
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        for d in list(dirs):
            sub = here / d
            if d.startswith(".") or not recursive:
                dirs.remove(d)
            elif not os.access(sub, os.R_OK | os.X_OK):
                skipped.append((sub, "folder could not be read (permission denied): its videos are left out"))
                dirs.remove(d)
        for name in files:
            p = here / name
            if name.startswith(".") or p.suffix.lower() not in VIDEO_EXTENSIONS:
                continue
            if not p.exists():
                skipped.append((p, "a symbolic link to nothing"))
            elif p.is_file():
                videos.append(p)
    return sorted(videos), sorted(skipped)


def list_videos(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """The video files (by extension) inside ``folder`` (and its subfolders if ``recursive``), sorted by path
    (:func:`find_videos`; what it skipped is a :class:`vaelib.video_io.VideoWarning` naming each path and why)."""
    folder = resolve(folder)
    videos, skipped = find_videos(folder, recursive)
    if skipped:
        warnings.warn(_skip_text(skipped), VideoWarning, stacklevel=2)
    if not videos:
        raise FileNotFoundError(f"no video files ({', '.join(VIDEO_EXTENSIONS)}) in {folder}"
                                + (f"; {_skip_text(skipped)}" if skipped else ""))
    return videos


def _skip_text(skipped: list[tuple[Path, str]]) -> str:
    return f"{len(skipped)} path(s) skipped while searching for videos: " + "; ".join(
        f"{p}: {why}" for p, why in skipped[:5]) + (" ..." if len(skipped) > 5 else "")


def _movie_name(path: Path, taken: set[str]) -> str:
    name, k = path.stem, 2
    while name in taken:
        name, k = f"{path.stem}_{k}", k + 1
    return name


def _start_workers(workers: int, n_videos: int):
    """A pool of ``workers`` processes, started now (each a fresh interpreter: ~0.1 s before its first video)
    so that they start while the main process probes the videos; None for one worker or one video.

    240 clips, 2 workers, idle machine, 4 rounds alternating: the first results came 0.14-0.17 s after the
    probe instead of 0.19-0.24 s, and the runs took 2.08-2.50 s instead of 2.12-2.50 s."""
    if workers < 2 or n_videos < 2:
        return None
    ctx = get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=ctx, **pool_options(ctx, workers))
    for _ in range(workers):
        pool.submit(int)                           # each submit starts a worker (they start on demand)
    return pool


def _stop_workers(pool) -> None:
    """Stop ``pool``'s worker processes now (SIGTERM: each kills the ffmpeg it runs and exits), not after their
    videos; one that has not gone within 5 s is killed."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for proc in procs:
        try:
            proc.terminate()
        except (OSError, ValueError):
            pass
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join(5)


def _outcome(result: dict | BaseException) -> dict:
    if isinstance(result, BaseException):
        raise result
    return result


def _make_units(names: list[str], paths: list[Path], infos: dict[str, VideoInfo], failed: dict[str, str],
                units: Path, settings: dict, workers: int, on_error: str, progress: bool,
                out: Path | None = None, pool=None) -> pd.DataFrame:
    """Make every missing unit, ``workers`` at a time, under one progress bar; return the per-file report.

    ``pool``: the workers already started (:func:`_start_workers`; the caller shuts them down), else they are
    started here."""
    import pandas as pd
    from tqdm.auto import tqdm

    from .framestore import REPORT_COLUMNS

    units.mkdir(parents=True, exist_ok=True)
    started = time.time()
    done = {name: m for name, p in zip(names, paths) if name in infos and (m := verified_unit(units, p)) is not None}
    todo = [(name, p) for name, p in zip(names, paths) if name in infos and name not in done]
    size, stride = settings["size"], settings["stride"]
    need_frames = sum(-(-infos[name].n_frames // stride) for name, _ in todo)
    have_frames = sum(m["record"]["n_stored"] for m in done.values())
    # the units still to write, and (for a merge) the store itself beside the units
    _check_free_space(out or units, need_frames + (need_frames + have_frames if out is not None else 0), size)
    statuses = {name: "reused" for name in done}
    errors = dict(failed)
    bar = tqdm(total=len(names), unit="video", desc="preprocess", disable=not progress, initial=len(done) + len(failed))
    share = max(1, usable_cpus() // workers)

    def threads(name: str) -> int:
        """Decoder and filter threads for one video's ffmpeg: the worker's share of the cores, cores // workers,
        but one for pictures up to 640x480, where handing frames between threads costs more CPU than it saves
        (160x120 clips: 8 % more CPU per frame with 2 threads than with 1, no faster)."""
        return 1 if infos[name].width * infos[name].height <= 640 * 480 else share

    stored = have_frames  # frames in the finished units, for the progress bar (kept, not summed again per video)

    def finish(name: str, job) -> None:
        nonlocal stored
        try:
            done[name] = job()
            stored += done[name]["record"]["n_stored"]
            statuses[name] = "ok"
            for w in done[name]["warnings"]:
                warnings.warn(w, VideoWarning, stacklevel=4)
        except BrokenProcessPool as e:
            suspects = _in_flight(units, names, paths, done, started)
            if not suspects and not done:
                raise VideoError(f"the worker processes for {out or units} died before they began any "
                                 "video. They are started with 'spawn', which imports the main module again: a "
                                 "script that calls preprocess(workers > 1) must make the call under "
                                 "`if __name__ == \"__main__\":`. Otherwise run with workers=1 to see the "
                                 f"error ({e})") from e
            suspects = suspects or [paths[names.index(name)]]
            raise VideoError(f"a worker process died while decoding {' or '.join(map(str, suspects))} (killed, "
                             f"e.g. for want of memory, or crashed: {e}). The videos finished so far ({len(done)}) "
                             "are kept: run again to go on; if it dies again, preprocess that video alone with "
                             "workers=1 to see why") from e
        except (VideoError, FileNotFoundError) as e:
            if on_error == "stop":
                raise
            errors[name] = str(e)
        bar.update(1)
        bar.set_postfix(frames=stored, refresh=False)

    def finish_batch(batch: list[str], job) -> None:
        try:
            results = job()
        except BaseException as e:
            finish(batch[0], functools.partial(_outcome, e))      # a dead worker: names the videos in flight
            raise
        for name, result in zip(batch, results):
            finish(name, functools.partial(_outcome, result))

    # Short clips go to ffmpeg a few at a time (batch_job: its start-up paid once), in batches small
    # enough that every worker gets several; any other video is a job of its own.
    k = max(1, min(BATCH_CLIPS, len(todo) // (4 * workers)))
    jobs: list[list[str]] = []
    for name, _ in todo:
        if k > 1 and batchable(infos[name]) and jobs and len(jobs[-1]) < k and batchable(infos[jobs[-1][0]]):
            jobs[-1].append(name)
        else:
            jobs.append([name])
    where = dict(todo)

    def submit(run, job: list[str]):
        if len(job) == 1:
            return run(unit_job, str(where[job[0]]), str(units), settings, threads(job[0]), infos[job[0]])
        return run(batch_job, [(str(where[name]), infos[name]) for name in job], str(units), settings)

    def finish_job(job: list[str], result) -> None:
        (finish if len(job) == 1 else finish_batch)(job[0] if len(job) == 1 else job, result)

    try:
        if workers == 1 or len(jobs) <= 1:
            for job in jobs:
                finish_job(job, functools.partial(submit, lambda f, *a: f(*a), job))
        else:
            ctx = get_context("spawn")
            with nullcontext(pool) if pool is not None else \
                    ProcessPoolExecutor(workers, mp_context=ctx, **pool_options(ctx, workers)) as pool:
                try:
                    running = {submit(pool.submit, job): job for job in jobs}
                except BrokenProcessPool as e:           # the workers died while the videos were probed
                    finish(jobs[0][0], functools.partial(_outcome, e))
                    raise
                try:
                    while running:
                        finished, _ = wait(running, return_when=FIRST_COMPLETED)
                        for fut in finished:
                            finish_job(running.pop(fut), fut.result)

                except BaseException as e:
                    if isinstance(e, KeyboardInterrupt):
                        _stop_workers(pool)
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
    except KeyboardInterrupt as e:
        why = str(e) or "SIGINT"
        raise Interrupted(f"preprocessing stopped by {why}: {len(done)} of {len(names)} videos are finished and kept "
                          f"in {units}; the workers were stopped and no frame store was written"
                          + (f" to {out}" if out is not None else "") + ". Run the same command again to go on: it "
                          "reuses the finished videos and decodes only the rest") from None
    finally:
        bar.close()
    rows = []
    for name, p in zip(names, paths):
        m = done.get(name)
        r = m["record"] if m else {}
        rows.append({"movie": name, "path": str(p), "status": statuses.get(name, "failed"),
                     "frames_decoded": r.get("n_source_frames"), "frames_stored": r.get("n_stored"),
                     "duration_s": r.get("duration_s"), "fps": r.get("fps"), "variable_rate": r.get("variable_rate"),
                     "decode_s": m.get("decode_s") if m else None, "peak_rss_mib": m.get("peak_rss_mib") if m else None,
                     "warnings": " | ".join(m["warnings"]) if m else "", "error": errors.get(name, "")})
    return pd.DataFrame(rows, columns=REPORT_COLUMNS)


def _in_flight(units: Path, names: list[str], paths: list[Path], done: dict, since: float) -> list[Path]:
    """The unfinished videos whose unit this run began to write (a temporary file of its own is there)."""
    def begun(p: Path) -> bool:
        data = unit_paths(units, p)[0]
        return any(t.stat().st_mtime >= since - 1 for t in units.glob(f".{data.name}.*.tmp*"))
    return [p for name, p in zip(names, paths) if name not in done and begun(p)]


def _append(src, dst) -> None:
    """Copy the rest of the file ``src`` to the end of ``dst`` (both open, binary), in the kernel where it can
    (``os.copy_file_range``: about half the CPU of reading and writing through Python, 0.2 s instead of
    0.4-0.7 s for the 590 MB of 960 clips), else through a buffer."""
    dst.flush()
    start, at = dst.tell(), src.tell()
    src.seek(at)                                   # the kernel copies from the descriptor's offset: past any read-ahead
    want, copied = os.fstat(src.fileno()).st_size - at, 0
    try:
        while n := os.copy_file_range(src.fileno(), dst.fileno(), 1 << 30):
            copied += n
        if copied == want:                         # some file systems answer 0 before the end: then the buffer
            dst.seek(0, os.SEEK_END)               # the file object learns where the kernel left off
            return
    except (AttributeError, OSError) as e:         # no copy_file_range here, or not between these files
        if isinstance(e, OSError) and disk_full(e):
            raise
    dst.truncate(start)
    dst.seek(start)
    src.seek(at)
    shutil.copyfileobj(src, dst, 1 << 22)


def _merge_units(report: pd.DataFrame, units: Path, out: Path, settings: dict) -> None:
    """Concatenate the finished units, in video order, into one store with one index, atomically."""
    import numpy as np
    import pandas as pd

    from .framestore import NPY_HEADER_BYTES, STORE_KIND, npy_header

    size = settings["size"]
    records, total = [], 0
    movies: list[str] = []                  # the index's columns, one DataFrame at the end (not one per video)
    frames: list[np.ndarray] = []
    times: list[float] = []
    with atomic_dir(out) as tmp:
        with open(tmp / "frames.npy", "wb") as f:
            f.write(b"\0" * NPY_HEADER_BYTES)
            for movie, path, status in zip(report.movie, report.path, report.status):
                if status not in ("ok", "reused"):
                    continue
                data_path, meta_path = unit_paths(units, Path(path))
                meta = json.loads(meta_path.read_text())
                with open(data_path, "rb") as src:
                    _append(src, f)
                rec = meta["record"]
                movies += [movie] * rec["n_stored"]
                frames.append(np.arange(rec["n_stored"], dtype=np.int64) * settings["stride"])
                times += meta["times"]
                records.append({"movie": movie, "path": path, **rec, "first_row": total})
                total += rec["n_stored"]
            if total == 0:
                raise VideoError(f"no video could be preprocessed into {out}: see the errors above")
            f.seek(0)
            f.write(npy_header((total, size, size, 3)))
        index = pd.DataFrame({"movie": movies, "frame": np.concatenate(frames), "time_s": np.asarray(times, float)})
        index.to_csv(tmp / "index.csv", index=False, float_format="%.6f")
        report.to_csv(tmp / "report.csv", index=False)
        manifest = {"n_frames": total, "size": size, "crop": settings["crop"], "stride": settings["stride"],
                    "videos": records, "settings": settings}
        mark_output(tmp, STORE_KIND)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))


def _check_settings(size, crop, stride, strict) -> None:
    """Refuse settings of the wrong type or range, naming the parameter (before any work)."""
    for name, value in (("size", size), ("stride", stride)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise TypeError(f"preprocess: {name} must be an integer, not {value!r} ({type(value).__name__})")
    if int(size) < 4 or int(stride) < 1:
        raise ValueError(f"preprocess: size must be >= 4 and stride >= 1 (got size={size}, stride={stride})")
    if crop not in CROP_MODES:
        raise ValueError(f"preprocess: crop must be one of {CROP_MODES}, not {crop!r}")
    if not isinstance(strict, bool):
        raise TypeError(f"preprocess: strict must be True or False, not {strict!r}")


def _check_size_against_sources(size: int, infos: Sequence[VideoInfo]) -> None:
    """Refuse a ``size`` larger than a source in both directions (only blown-up frames); warn if in one."""
    for i in infos:
        if size > max(i.width, i.height):
            raise ValueError(
                f"preprocess: size={size} is larger than {i.path} ({i.width}x{i.height}): every frame would be "
                f"blown up to {size}x{size}, {size * size * 3 / 2**20:.1f} MiB each, for no detail. "
                f"Give size <= {max(i.width, i.height)} (the book uses 64)")
        if size > min(i.width, i.height):
            warnings.warn(f"{i.path} is {i.width}x{i.height}: size={size} stretches its frames "
                          f"beyond the source's {min(i.width, i.height)} pixels", VideoWarning, stacklevel=3)


def _check_free_space(out: Path, n_frames: int, size: int) -> None:
    """Refuse before decoding when ``n_frames`` frames (known from the frame counts) cannot fit on the disk."""
    if n_frames:
        check_free_space(out.parent, f"the {n_frames} frames of {size}x{size}x3 bytes of the frame store {out.name}",
                         need=n_frames * size * size * 3 + n_frames * 40 + (1 << 20),
                         advice="give another out_dir, or a smaller size or larger stride")


def store_lock(out: Path):
    """Hold ``.NAME.lock`` beside the store ``out`` while writing it; another run into it is refused, named
    (:func:`vaelib.paths.folder_lock`: the lock dies with its process, a killed run's leftovers are removed)."""
    return folder_lock(out, "preprocessing run", "the frame store")


def main(argv: list[str] | None = None) -> int:
    """``python -m vaelib.preprocess VIDEOS... OUT``: preprocess from a shell or a job array (see :func:`preprocess`).

    A SLURM array of n jobs: ``--shard ${SLURM_ARRAY_TASK_ID}/n`` with ``--array=1-n``, then one run without
    ``--shard`` merges.
    """
    ap = argparse.ArgumentParser(description=main.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("videos", nargs="+", help="video files, or one folder (searched through its subfolders)")
    ap.add_argument("out", help="the frame store's folder")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--crop", choices=CROP_MODES, default="squash")
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--keep-damaged", action="store_true", help="strict=False: keep the frames of a cut file")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--on-error", choices=ON_ERROR, default="stop")
    ap.add_argument("--shard", help="'i/n': only this part of the videos, no merge")
    ap.add_argument("--overwrite", action="store_true",
                    help="make the store again, also over another kind of this project's output (never other files)")
    args = ap.parse_args(argv)
    videos = args.videos[0] if len(args.videos) == 1 and Path(args.videos[0]).is_dir() else args.videos
    options = dict(size=args.size, crop=args.crop, stride=args.stride, strict=not args.keep_damaged,
                   workers=args.workers, on_error=args.on_error, overwrite=args.overwrite)
    try:
        if args.shard:
            report = preprocess_shard(videos, args.out, args.shard, **options)
        else:
            report = preprocess(videos, args.out, **options).report()
    except OutputPathError as e:
        hint = (" (the last argument is the frame store's folder, not a video)"
                if Path(args.out).suffix.lower() in VIDEO_EXTENSIONS else "")
        print(f"error: {e}{hint}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(f"stopped: {e}", file=sys.stderr)
        return 143 if "SIGTERM" in str(e) else 130
    print(report.status.value_counts().to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
