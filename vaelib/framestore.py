"""The uint8 frame store on disk and its frame index: :class:`FrameSet`, :func:`load_frames`, clip windows.

A frame store is a folder holding

- ``frames.npy``: uint8 array (N, S, S, 3), RGB, every movie's frames one after the other;
- ``index.csv``: one row per stored frame: ``movie``, ``frame`` (number in decoding order), ``time_s`` (the
  frame's presentation time, as the decoder gives it);
- ``report.csv``: one row per requested video: status, frames, rate, decode time, warnings, error;
- ``manifest.json``: the settings and the source videos; written last, so its presence means complete.

:func:`vaelib.preprocess.preprocess` writes it.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .paths import resolve

STORE_KIND = "frame store"                # its kind of output (vaelib.paths.claim_output)
STORE_FILES = ("manifest.json", "frames.npy", "index.csv", "report.csv")
NPY_HEADER_BYTES = 128  # room reserved for the .npy header, patched in once the frame count is known
REPORT_COLUMNS = ["movie", "path", "status", "frames_decoded", "frames_stored", "duration_s", "fps",
                  "variable_rate", "decode_s", "peak_rss_mib", "warnings", "error"]


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
    """Open a frame store written by :func:`vaelib.preprocess.preprocess` (the frames are memory-mapped, read-only).

    A store whose files are missing, cut short or disagree is refused with a ``ValueError`` naming it.
    Its files are opened through one handle on the folder, so a store that another run replaces meanwhile
    (renaming the new one into place) is read whole, old or new, never half of each.
    """
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


def npy_header(shape: tuple[int, ...]) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": shape})
    header = buf.getvalue()
    if len(header) > NPY_HEADER_BYTES:
        raise ValueError(f"shape {shape} too large for the reserved .npy header")
    # Pad the header dict with spaces to the reserved length; keep the trailing newline.
    pad = NPY_HEADER_BYTES - len(header)
    header = header[:-1] + b" " * pad + b"\n"
    header = header[:8] + (len(header) - 10).to_bytes(2, "little") + header[10:]
    return header


def clip_windows(n_frames: int, length: int, stride: int) -> np.ndarray:
    """Start indices of the clips of ``length`` consecutive frames, every ``stride`` frames, within ``n_frames``."""
    if length < 1 or stride < 1:
        raise ValueError(f"clip length and stride must be >= 1 (got {length}, {stride})")
    if n_frames < length:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_frames - length + 1, stride, dtype=np.int64)
