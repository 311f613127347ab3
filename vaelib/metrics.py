"""Image and video quality metrics, measured the same way for every model and codec."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from pytorch_msssim import ms_ssim as _ms_ssim


def _as_frames(video: np.ndarray) -> np.ndarray:
    video = np.asarray(video)
    if video.ndim == 3:
        video = video[None]
    if video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"expected RGB frames shaped (N, H, W, 3), got {video.shape}")
    return video


CHUNK_VALUES = 1 << 22
"""The most values (frames x height x width x 3) a metric converts at once: 32 MB of float64 per video."""


def _chunks(reference: np.ndarray, distorted: np.ndarray, chunk: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Both videos, refused unless their shapes agree, as float64 pieces of at most ``chunk`` frames and at most
    ``CHUNK_VALUES`` values (fewer frames when they are large).

    Only one piece of each is ever converted: a clip-wide metric of 30,000 frames of 64 x 64, or of 32 frames of
    1280 x 720, needs tens of MB, not the GBs that converting whole videos to float64 would take.
    """
    a, b = _as_frames(reference), _as_frames(distorted)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a whole number of frames >= 1, got {chunk!r}")
    step = max(1, min(chunk, CHUNK_VALUES // (a[0].size or 1)))
    for i in range(0, len(a), step):
        yield a[i:i + step].astype(np.float64), b[i:i + step].astype(np.float64)


def psnr(reference: np.ndarray, distorted: np.ndarray, data_range: float = 255.0, chunk: int = 256) -> float:
    """PSNR in dB over all RGB values of two uint8 videos (N, H, W, 3): one MSE over the whole clip
    (summed ``chunk`` frames at a time)."""
    total, count = 0.0, 0
    for a, b in _chunks(reference, distorted, chunk):
        total += float(np.sum((a - b) ** 2))
        count += a.size
    mse = total / count
    return float("inf") if mse == 0 else 10.0 * np.log10(data_range ** 2 / mse)


def psnr_yuv(reference: np.ndarray, distorted: np.ndarray, chunk: int = 256) -> float:
    """PSNR in dB on YCbCr (BT.601, full range, 4:4:4), weighted 6:1:1 over Y, Cb, Cr as in video-coding papers.

    Each plane's PSNR is one MSE over the whole clip (summed ``chunk`` frames at a time); an identical plane
    counts as 100 dB.
    """
    m = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
    total, count = np.zeros(3), 0
    for a, b in _chunks(reference, distorted, chunk):
        d = (a - b) @ m.T  # the offsets of Cb and Cr cancel in the difference
        total += np.sum(d ** 2, axis=(0, 1, 2))
        count += a.shape[0] * a.shape[1] * a.shape[2]
    mse = total / count
    planes = np.where(mse > 0, 10.0 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-300)), 100.0)
    return float((6 * planes[0] + planes[1] + planes[2]) / 8)


def msssim_window(size: int) -> int:
    """The largest odd Gaussian window (at most 11, the standard) that five MS-SSIM scales allow at ``size``.

    MS-SSIM halves the image four times; pytorch-msssim needs ``size > (win - 1) * 16``, so the
    standard 11-pixel window needs images wider than 160 pixels. At 64x64 the window is 3.
    """
    win = 11
    while win > 1 and not size > (win - 1) * 16:
        win -= 2
    if win < 3:
        raise ValueError(f"images of side {size} are too small for five-scale MS-SSIM (need > 32)")
    return win


def ms_ssim(reference: np.ndarray, distorted: np.ndarray, batch: int = 64) -> float:
    """Mean per-frame RGB MS-SSIM (five scales) of two uint8 videos (N, H, W, 3).

    The Gaussian window shrinks for small frames (see ``msssim_window``); every codec in the
    book is measured with this same function, so the numbers compare with each other.
    """
    win = msssim_window(min(_as_frames(reference).shape[1:3]))
    vals = []
    with torch.no_grad():
        for a, b in _chunks(reference, distorted, batch):
            x = torch.from_numpy(a).permute(0, 3, 1, 2).float()
            y = torch.from_numpy(b).permute(0, 3, 1, 2).float()
            vals.append(_ms_ssim(x, y, data_range=255.0, size_average=False, win_size=win))
    return float(torch.cat(vals).mean())


def ssim(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Mean per-frame RGB SSIM (scikit-image, 7x7 window, data range 255) of two uint8 videos (N, H, W, 3)."""
    from skimage.metrics import structural_similarity

    a, b = np.asarray(reference), np.asarray(distorted)
    if a.ndim == 3:
        a, b = a[None], b[None]
    if a.shape != b.shape or a.ndim != 4 or a.shape[-1] != 3:
        raise ValueError(f"expected two RGB videos of one shape (N, H, W, 3), got {a.shape} and {b.shape}")
    return float(np.mean([structural_similarity(x, y, channel_axis=-1, data_range=255.0) for x, y in zip(a, b)]))
