"""PSNR, SSIM, MS-SSIM and the YCbCr PSNR of ``vaelib.metrics`` against independent implementations
(scikit-image, and MS-SSIM and SSIM written out here from their papers), on random and real clips."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import correlate1d, uniform_filter
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio

from vaelib.data import load_real_clips
from vaelib.metrics import ms_ssim, msssim_window, psnr, psnr_yuv, ssim


def random_pair(size: int, n: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random clip (N, size, size, 3) uint8 and a noisy copy of it."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, size // 8, size // 8, 3)).repeat(8, 1).repeat(8, 2).astype(np.float64)
    noisy = base + rng.normal(0, 12, base.shape)
    return base.astype(np.uint8), np.clip(noisy, 0, 255).astype(np.uint8)


def real_pair(size: int, n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Real frames (carphone) and a distortion a codec might make: the frame before, with mild noise."""
    clips = load_real_clips(("carphone_pristine",), length=n + 1, size=size, max_clips_per_video=1)
    clip = clips["carphone_pristine"][0]
    rng = np.random.default_rng(1)
    distorted = np.clip(clip[:-1].astype(np.float64) + rng.normal(0, 3, clip[:-1].shape), 0, 255).astype(np.uint8)
    return clip[1:], distorted


PAIRS = {"random64": lambda: random_pair(64), "random176": lambda: random_pair(176, n=2),
         "real64": lambda: real_pair(64), "real176": lambda: real_pair(176, n=3)}


@pytest.fixture(scope="module", params=list(PAIRS))
def pair(request):
    return PAIRS[request.param]()


def test_psnr_matches_scikit_image(pair):
    a, b = pair
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), rel=1e-12)


def test_psnr_yuv_matches_scikit_image_ycbcr(pair):
    """scikit-image converts to studio-range BT.601 (Y 16-235, Cb/Cr 16-240); scaled back to full range, the
    6:1:1 weighted PSNR of its planes is the book's YUV PSNR."""
    a, b = pair
    full = np.array([255 / 219, 255 / 224, 255 / 224])
    ya, yb = (rgb2ycbcr(x.astype(np.float64) / 255) * full for x in (a, b))
    planes = [peak_signal_noise_ratio(ya[..., c], yb[..., c], data_range=255) for c in range(3)]
    # scikit-image rounds the matrix to 3 decimals on its studio scale (-37.797 / 224 = -0.168737): 1e-7 apart
    assert psnr_yuv(a, b) == pytest.approx((6 * planes[0] + planes[1] + planes[2]) / 8, rel=1e-6)


def reference_ssim(x: np.ndarray, y: np.ndarray, win: int = 7) -> float:
    """SSIM (Wang et al. 2004) of two RGB frames: a uniform 7x7 window, sample covariances, the mean of the
    map over the pixels whose window lies inside the frame, averaged over the channels."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    n = win * win
    values = []
    for c in range(3):
        f = lambda v: uniform_filter(v, size=win)
        mx, my = f(x[..., c]), f(y[..., c])
        vx = (f(x[..., c] ** 2) - mx * mx) * n / (n - 1)
        vy = (f(y[..., c] ** 2) - my * my) * n / (n - 1)
        cxy = (f(x[..., c] * y[..., c]) - mx * my) * n / (n - 1)
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
        pad = win // 2
        values.append(s[pad:-pad, pad:-pad].mean())
    return float(np.mean(values))


def test_ssim_matches_the_definition(pair):
    a, b = pair
    expected = np.mean([reference_ssim(x, y) for x, y in zip(a, b)])
    assert ssim(a, b) == pytest.approx(expected, abs=1e-9)


MS_WEIGHTS = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])


def reference_ms_ssim(x: np.ndarray, y: np.ndarray, win: int) -> float:
    """Five-scale MS-SSIM (Wang, Simoncelli and Bovik 2003) of two RGB frames whose side halves evenly four
    times: a Gaussian window (sigma 1.5) over the valid pixels, contrast-structure at scales 1-4 and the full
    SSIM at scale 5 (each clipped at 0), 2x2 averaging between scales, per channel, then the channels' mean."""
    g = np.exp(-((np.arange(win) - win // 2) ** 2) / (2 * 1.5 ** 2))
    g /= g.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    cut = win // 2

    def blur(v):
        out = correlate1d(correlate1d(v, g, axis=0, mode="constant"), g, axis=1, mode="constant")
        return out[cut:-cut, cut:-cut] if cut else out

    per_channel = []
    for c in range(3):
        u, v = x[..., c].astype(np.float64), y[..., c].astype(np.float64)
        factors = []
        for scale in range(5):
            mu, mv = blur(u), blur(v)
            su, sv, suv = blur(u * u) - mu * mu, blur(v * v) - mv * mv, blur(u * v) - mu * mv
            cs = (2 * suv + c2) / (su + sv + c2)
            if scale < 4:
                factors.append(max(cs.mean(), 0.0))
                u = u.reshape(u.shape[0] // 2, 2, u.shape[1] // 2, 2).mean((1, 3))
                v = v.reshape(v.shape[0] // 2, 2, v.shape[1] // 2, 2).mean((1, 3))
            else:
                factors.append(max((((2 * mu * mv + c1) / (mu * mu + mv * mv + c1)) * cs).mean(), 0.0))
        per_channel.append(np.prod(np.array(factors) ** MS_WEIGHTS))
    return float(np.mean(per_channel))


def test_ms_ssim_matches_the_definition(pair):
    a, b = pair
    win = msssim_window(a.shape[1])
    assert win == {64: 3, 176: 11}[a.shape[1]]  # the standard 11-pixel window where five scales allow it
    expected = np.mean([reference_ms_ssim(x, y, win) for x, y in zip(a, b)])
    assert ms_ssim(a, b) == pytest.approx(expected, abs=2e-5)  # pytorch-msssim computes in float32


def test_metrics_are_the_same_in_chunks():
    """The clip-wide metrics stream over the frames in chunks: the result does not depend on the chunk."""
    a, b = random_pair(64, n=10)
    assert psnr(a, b, chunk=3) == pytest.approx(psnr(a, b, chunk=10), rel=1e-12)
    assert psnr_yuv(a, b, chunk=3) == pytest.approx(psnr_yuv(a, b, chunk=10), rel=1e-12)
    assert ms_ssim(a, b, batch=3) == pytest.approx(ms_ssim(a, b, batch=10), abs=1e-7)
    with pytest.raises(ValueError, match="chunk"):
        psnr(a, b, chunk=0)


def test_large_frames_are_converted_a_few_at_a_time(monkeypatch):
    """Chapter 4 scores 1280 x 720 clips: a metric converts at most ``CHUNK_VALUES`` values to float64 at once, so
    a clip whose float64 copy would take 6 MB is measured in well under that, with the same result."""
    import tracemalloc

    from vaelib import metrics

    a, b = random_pair(128, n=16)                      # 786,432 values: 6.3 MB per float64 copy
    whole = (psnr(a, b), psnr_yuv(a, b))
    monkeypatch.setattr(metrics, "CHUNK_VALUES", 128 * 128 * 3)   # one frame at a time
    tracemalloc.start()
    try:
        chunked = (psnr(a, b), psnr_yuv(a, b))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert chunked == pytest.approx(whole, rel=1e-12)
    assert peak < 2_000_000, f"peak {peak / 1e6:.1f} MB: whole clips were converted"
