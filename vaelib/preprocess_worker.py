"""What runs inside preprocessing's worker processes: one video (or a run of short clips) decoded into its unit
of work, the units' names and checks, and the workers' signals and CPU pinning.

A spawned worker imports this module to run its jobs: it imports no numpy, OpenCV or pandas (each would cost every
worker CPU time before its first video).
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import tempfile
import time
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .paths import atomic_path, write_json
from .video_io import VideoError, VideoInfo, VideoReader, VideoWarning, decode_batch


def source_stamp(path: Path) -> list[int]:
    try:
        st = path.stat()
        return [st.st_size, st.st_mtime_ns]
    except OSError:
        return [-1, -1]


def short_digest(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def unit_paths(units: Path, path: Path) -> tuple[Path, Path]:
    key = short_digest(str(path))
    return units / f"{key}.u8", units / f"{key}.json"


def verified_unit(units: Path, path: Path) -> dict | None:
    """The record of ``path``'s finished unit if it is there, whole, and made from the file as it is now."""
    data_path, meta_path = unit_paths(units, path)
    try:
        meta = json.loads(meta_path.read_text())
        if meta["source"] != [str(path), *source_stamp(path)]:
            return None
        if data_path.stat().st_size != meta["bytes"] or _crc32(data_path) != meta["crc32"]:
            return None
        return meta
    except (OSError, ValueError, KeyError):
        return None


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            crc = zlib.crc32(chunk, crc)
    return crc


def unit_job(path: str, units: str, settings: dict, threads: int, info: VideoInfo | None = None,
              decoded: tuple[VideoReader, Path, int, float] | None = None) -> dict:
    """Decode one video into its unit (frames as raw uint8, times and record as JSON); return the record.

    Runs in a worker process: only paths and numbers cross; ffmpeg writes the frames into the unit's file
    itself. ``info``: the video's :func:`vaelib.video_io.probe`, made once before any decoding (not asked again here).
    ``decoded``: the reader, file, frame count and share of the run's seconds of a clip that
    :func:`vaelib.video_io.decode_batch` decoded already.
    """
    path_, units_ = Path(path), Path(units)
    data_path, meta_path = unit_paths(units_, path_)
    size, stride = settings["size"], settings["stride"]
    t0 = time.perf_counter() - (decoded[3] if decoded is not None else 0.0)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always", VideoWarning)
        if decoded is None:
            reader = VideoReader(path_, strict=settings["strict"], size=size, crop=settings["crop"],
                                 threads=threads, info=info)
        else:
            reader = decoded[0]
        with atomic_path(data_path, suffix=".u8") as tmp:
            if decoded is None:
                n_stored = reader.decode_to(tmp, stride)
            else:
                os.replace(decoded[1], tmp)
                n_stored = decoded[2]
            crc = _crc32(tmp)
    timing, info = reader.timing, reader.info
    meta = {"source": [str(path_), *source_stamp(path_)], "bytes": n_stored * size * size * 3, "crc32": crc,
            "times": reader.times[::stride],
            "record": {"fps": timing.fps, "duration_s": timing.duration_s, "n_source_frames": timing.n_frames,
                       "variable_rate": timing.variable, "min_fps": timing.min_fps, "max_fps": timing.max_fps,
                       "header_n_frames": info.n_frames, "header_fps": info.fps,
                       "height": reader.source_size[0], "width": reader.source_size[1], "n_stored": n_stored},
            "warnings": [str(w.message) for w in said if issubclass(w.category, VideoWarning)],
            "decode_s": time.perf_counter() - t0,
            "peak_rss_mib": _peak_rss_mib()}
    write_json(meta_path, meta, indent=None)
    return meta


def batch_job(jobs: list[tuple[str, VideoInfo]], units: str, settings: dict) -> list[dict | Exception]:
    """Make the units of several short clips (:func:`vaelib.video_io.batchable`) with one ffmpeg run
    (:func:`vaelib.video_io.decode_batch`); a clip that run did not decode plainly is decoded again alone. Each
    clip's record, or its error."""
    units_ = Path(units)
    readers = [VideoReader(p, strict=settings["strict"], size=settings["size"], crop=settings["crop"], threads=1,
                           info=info) for p, info in jobs]
    tmps: list[Path] = []
    try:
        for p, _ in jobs:                   # named as atomic_path names them: a dead worker's clips are found
            data_path = unit_paths(units_, Path(p))[0]
            fd, tmp = tempfile.mkstemp(prefix=f".{data_path.name}.", suffix=".tmp.u8", dir=units_)
            os.close(fd)
            tmps.append(Path(tmp))
        t0 = time.perf_counter()
        with _one_cpu():
            counts = decode_batch(readers, tmps, settings["stride"])
        share = (time.perf_counter() - t0) / len(jobs)
        out: list[dict | Exception] = []
        for (p, info), reader, tmp, n in zip(jobs, readers, tmps, counts):
            try:
                out.append(unit_job(p, units, settings, 1, info, None if n is None else (reader, tmp, n, share)))
            except (VideoError, FileNotFoundError) as e:
                out.append(e)
        return out
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)


def _worker_init(counter=None, groups: list[list[int]] | None = None) -> None:
    """Pool initializer: leave SIGINT to the main process (it stops the workers); SIGTERM ends the video in
    hand (its ffmpeg killed, nothing half-written); then bind to a group of CPUs (:func:`_pin_worker`)."""
    def stop(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, stop)
    if groups:
        _pin_worker(counter, groups)


def _pinning(ctx, workers: int) -> dict:
    """ProcessPoolExecutor arguments that give each of ``workers`` processes its own share of this process's
    CPUs (:func:`_pin_worker`); none where the system cannot pin, or there are fewer CPUs than workers.

    Unpinned, a worker's ffmpeg threads, which hand each frame on many times, are woken on whichever core
    is free, and each wake-up across cores costs (in a virtual machine, an interrupt between virtual CPUs):
    over 240 clips on 2 cores, 2 workers ran at 3,500-3,750 frames/s unpinned (1.7-1.8 cores busy) and
    4,250-4,700 pinned (1.9). See also :func:`_one_cpu`.
    """
    cpus = sorted(_affinity() or ())
    if not cpus or len(cpus) < workers:
        return {}
    groups = [cpus[k * len(cpus) // workers:(k + 1) * len(cpus) // workers] for k in range(workers)]
    return {"initializer": _pin_worker, "initargs": (ctx.Value("i", 0), groups)}


def pool_options(ctx, workers: int) -> dict:
    """ProcessPoolExecutor arguments for preprocessing workers: signals left to the main process, and each
    worker bound to its share of the CPUs where it can be (:func:`_worker_init`, :func:`_pinning`)."""
    return {"initializer": _worker_init, "initargs": _pinning(ctx, workers).get("initargs", (None, None))}


def _pin_worker(counter, groups: list[list[int]]) -> None:
    """Pool initializer: bind this worker (and the ffmpeg it starts) to the next group of CPUs."""
    with counter.get_lock():
        k = counter.value
        counter.value += 1
    try:
        os.sched_setaffinity(0, groups[k % len(groups)])
    except OSError:                                # CPUs taken away meanwhile: run unpinned
        pass


@contextmanager
def _one_cpu() -> Iterator[None]:
    """Keep the calling thread, and the processes it starts (the ffmpeg of a shared run of short clips,
    :func:`vaelib.video_io.decode_batch`), on the CPU it is on now, then give it back the CPUs it had.

    ffmpeg hands each frame between its threads (demuxer, decoder, filters, muxer) many times; left to
    the scheduler they are woken on whichever core is free, and each wake-up across cores costs (in a
    virtual machine, an interrupt between virtual CPUs). One worker over 240 clips of 160x120: 2,190-2,460
    frames/s unpinned, 2,580-2,700 on one CPU, using no more CPU time per frame (1.0 cores busy either way).
    A long video's own run is left unbound: there its threads overlap enough to gain from a second core
    (3 movies of 60 s: 5,300-5,480 frames/s unbound on 1.6 cores, 5,120-5,290 bound to one).
    """
    cpus = _affinity() or set()                    # none known (macOS, Windows): as it is
    pinned = False
    if len(cpus) >= 2:
        cpu = _current_cpu()
        try:
            os.sched_setaffinity(0, {cpu if cpu in cpus else min(cpus)})
            pinned = True
        except OSError:                            # CPUs taken away meanwhile: run as it is
            pass
    try:
        yield
    finally:
        if pinned:
            try:
                os.sched_setaffinity(0, cpus)
            except OSError:                        # its CPUs went offline meanwhile: every CPU there is now
                os.sched_setaffinity(0, set(range(os.cpu_count() or 1)) | cpus)


def _current_cpu() -> int | None:
    """The CPU the calling thread last ran on (Linux: field 39 of /proc/thread-self/stat), or None."""
    try:
        with open("/proc/thread-self/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[36])
    except (OSError, ValueError, IndexError):
        return None


def _affinity() -> set[int] | None:
    """The CPUs this process may run on, or None where the system does not say (no sched_getaffinity on
    macOS and Windows)."""
    try:
        return os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return None


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity), else the machine's."""
    cpus = _affinity()
    return len(cpus) if cpus is not None else os.cpu_count() or 1


def _peak_rss_mib() -> float | None:
    """This process's own peak resident memory in MiB (None where the system does not say).

    On Linux, the kernel's VmHWM: it starts afresh in a new program. ``getrusage``'s ``ru_maxrss`` keeps the
    parent's across ``exec``, so a spawned worker holding 16 MiB reported the main process's 124 MiB.
    """
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 2**20)
