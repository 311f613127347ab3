"""Rate-distortion records and the Bjontegaard delta rate, measured in bytes that exist.

- ``RDPoint``: the one rate-distortion record of the book (``save_rd`` / ``load_rd``), for VoxEn
  (whose bytes come from ``vaelib.bitstream``) and the classic codecs (``vaelib.classic``) alike.
- ``bd_rate``: the Bjontegaard delta rate between two rate-distortion curves; ``bd_rate_interval``: how far
  it moves over the clips coded (a bootstrap).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .config import JSONConfig
from .metrics import ms_ssim, psnr, psnr_yuv
from .paths import resolve, write_json


def bits_per_pixel(n_bytes: int, n_frames: int, height: int, width: int) -> float:
    """Rate of a coded clip: 8 * bytes per (frame x height x width) pixel."""
    if n_frames <= 0 or height <= 0 or width <= 0:
        raise ValueError(f"empty clip {n_frames}x{height}x{width}")
    return 8.0 * n_bytes / (n_frames * height * width)


@dataclass
class RDPoint(JSONConfig):
    """One point of a rate-distortion curve, averaged over clips: the one RD record of the book.

    Written by chapter 4 and ``benchmarks/voxen_rd.py`` alike (``save_rd``), read by ``load_rd``.
    ``encode_s``/``decode_s`` are seconds per clip; ``clip_len``, ``image_size`` and ``fps`` say what a
    clip was; ``train_steps``/``train_s`` say how a learned codec was trained (0 for classic codecs);
    ``clip_bpp``/``clip_psnr`` are each clip's own values (``bpp``/``psnr`` are their means), for an interval
    over clips (``bd_rate_interval``); records written before they existed have none. ``clip_parts`` is how
    many clips a learned codec coded each clip as (2 where it split a scene cut; None for classic codecs).
    ``clip_sizes`` is each clip's width x height (``"176x144"``), where clips may differ; ``image_size`` is the
    first clip's height. ``ms_ssim`` is measured on every frame of a clip up to ``MS_SSIM_PIXELS`` pixels, and on
    that many pixels' worth of frames spread evenly over a larger clip (8 of 32 frames at 1280 x 720).
    """
    codec: str
    setting: float
    bpp: float
    psnr: float
    ms_ssim: float
    encode_s: float
    decode_s: float
    n_clips: int
    n_bytes: int
    dataset: str = ""
    settings: str = ""
    psnr_yuv: float | None = None
    clip_len: int = 0
    image_size: int = 0
    fps: float = 0.0
    train_steps: int = 0
    train_s: float = 0.0
    seed: int = 0
    clip_bpp: tuple[float, ...] | None = None
    clip_psnr: tuple[float, ...] | None = None
    clip_parts: tuple[int, ...] | None = None
    clip_sizes: tuple[str, ...] | None = None

    @property
    def split_clips(self) -> list[int]:
        """Indices of the clips coded as two, split at a scene cut (``clip_parts``); empty when none or unknown."""
        return [i for i, n in enumerate(self.clip_parts or ()) if n > 1]

    @property
    def encode_fps(self) -> float:
        """Frames encoded per second (NaN when the clip length is unknown)."""
        return self.clip_len / self.encode_s if self.clip_len and self.encode_s > 0 else float("nan")

    @property
    def decode_fps(self) -> float:
        """Frames decoded per second (NaN when the clip length is unknown)."""
        return self.clip_len / self.decode_s if self.clip_len and self.decode_s > 0 else float("nan")


def rd_point(codec: str, setting: float, clips: Sequence[np.ndarray], decoded: Sequence[np.ndarray],
             n_bytes: Sequence[int], encode_s: Sequence[float], decode_s: Sequence[float],
             dataset: str = "", settings: str = "", **fields) -> RDPoint:
    """Average per-clip rate (from byte counts), PSNR and MS-SSIM into one ``RDPoint``; times are totals per clip.

    ``fields`` fill the record's other fields (``fps``, ``train_steps``, ...); ``clip_len`` and
    ``image_size`` come from the clips."""
    if not clips or len(clips) != len(decoded) or len(clips) != len(n_bytes):
        raise ValueError("need one decoded clip and one byte count per clip")
    bpps = [float(bits_per_pixel(b, *c.shape[:3])) for b, c in zip(n_bytes, clips)]
    psnrs = [float(psnr(c, d)) for c, d in zip(clips, decoded)]
    return RDPoint(codec=codec, setting=float(setting), bpp=float(np.mean(bpps)), psnr=float(np.mean(psnrs)),
                   clip_bpp=tuple(bpps), clip_psnr=tuple(psnrs),
                   clip_sizes=tuple(f"{c.shape[2]}x{c.shape[1]}" for c in clips),
                   ms_ssim=float(np.mean([ms_ssim(*spread_frames(c, d)) for c, d in zip(clips, decoded)])),
                   psnr_yuv=float(np.mean([psnr_yuv(c, d) for c, d in zip(clips, decoded)])),
                   encode_s=float(np.mean(encode_s)), decode_s=float(np.mean(decode_s)),
                   n_clips=len(clips), n_bytes=int(np.sum(n_bytes)), dataset=dataset, settings=settings,
                   clip_len=int(clips[0].shape[0]), image_size=int(clips[0].shape[1]), **fields)


MS_SSIM_PIXELS = 8 * 1280 * 720
"""The most pixels of a clip an RD point measures MS-SSIM on (``spread_frames``): every frame of 32 frames up to
640 x 360; MS-SSIM is the costliest metric at large sizes, and PSNR is always measured on every frame."""


def spread_frames(clip: np.ndarray, decoded: np.ndarray, pixels: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Both clips, or the same frames of each spread evenly over them where the clip holds more than ``pixels``
    (default ``MS_SSIM_PIXELS``)."""
    pixels = MS_SSIM_PIXELS if pixels is None else pixels
    n, h, w = clip.shape[:3]
    keep = max(1, min(n, pixels // (h * w)))
    if keep == n:
        return clip, decoded
    idx = np.linspace(0, n - 1, keep).round().astype(int)
    return clip[idx], decoded[idx]


def clip_rates(fps: float | Sequence[float], n_clips: int) -> list[float]:
    """One frame rate per clip from one rate for all or a list of them (each clip's real rate)."""
    rates = [float(fps)] * n_clips if np.isscalar(fps) else [float(f) for f in fps]
    if len(rates) != n_clips or not all(r > 0 for r in rates):
        raise ValueError(f"need one positive frame rate per clip ({n_clips} clips), got {fps}")
    return rates



def bd_rate(rate_anchor: Sequence[float], dist_anchor: Sequence[float],
            rate_test: Sequence[float], dist_test: Sequence[float]) -> float:
    """Bjontegaard delta rate (percent) of ``test`` against ``anchor``: negative means fewer bits.

    Fits log(rate) as a cubic polynomial of the distortion metric (PSNR or MS-SSIM, higher is
    better) for each curve, integrates both over the overlap of their metric ranges, and returns
    ``100 * (exp(mean log-rate difference) - 1)``. Points that another point of the same curve
    beats on both rate and quality are dropped first (a cubic through a curve that turns back on
    itself is meaningless). Curves with fewer than four points left get a polynomial of degree
    points - 1. Returns NaN when the metric ranges do not overlap or a curve keeps a single point.
    """
    ra, da, rt, dt = (np.asarray(x, dtype=np.float64) for x in (rate_anchor, dist_anchor, rate_test, dist_test))
    if len(ra) != len(da) or len(rt) != len(dt):
        raise ValueError("each curve needs as many rates as distortion values")
    if min(len(ra), len(rt)) < 2:
        raise ValueError("each curve needs at least two points for a BD-rate")
    if np.any(ra <= 0) or np.any(rt <= 0):
        raise ValueError("rates must be positive")
    (ra, da), (rt, dt) = pareto_front(ra, da), pareto_front(rt, dt)
    if min(len(ra), len(rt)) < 2:
        return float("nan")
    lo, hi = max(da.min(), dt.min()), min(da.max(), dt.max())
    if not hi > lo:
        return float("nan")
    pa = np.polyfit(da, np.log(ra), min(3, len(ra) - 1))
    pt = np.polyfit(dt, np.log(rt), min(3, len(rt) - 1))
    ia, it = np.polyint(pa), np.polyint(pt)
    avg_a = (np.polyval(ia, hi) - np.polyval(ia, lo)) / (hi - lo)
    avg_t = (np.polyval(it, hi) - np.polyval(it, lo)) / (hi - lo)
    return float(100.0 * (np.exp(avg_t - avg_a) - 1.0))


def pareto_front(rate: Sequence[float], quality: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The points (sorted by rate) that no other point beats with less or equal rate and higher quality."""
    r, q = np.asarray(rate, dtype=np.float64), np.asarray(quality, dtype=np.float64)
    order = np.lexsort((-q, r))
    keep, best = [], -np.inf
    for i in order:
        if q[i] > best:
            keep.append(i)
            best = q[i]
    return r[keep], q[keep]


def bd_rate_points(anchor: Sequence[RDPoint], test: Sequence[RDPoint], metric: str = "psnr") -> float:
    """``bd_rate`` between two lists of ``RDPoint`` (rate: bpp) on ``metric`` ("psnr", "psnr_yuv" or "ms_ssim");
    NaN where a record has no value for it (``psnr_yuv`` of records written before it existed)."""
    if metric not in ("psnr", "psnr_yuv", "ms_ssim"):
        raise ValueError(f"metric must be 'psnr', 'psnr_yuv' or 'ms_ssim', not {metric!r}")
    if any(getattr(p, metric) is None for p in [*anchor, *test]):
        return float("nan")
    return bd_rate([p.bpp for p in anchor], [getattr(p, metric) for p in anchor],
                   [p.bpp for p in test], [getattr(p, metric) for p in test])


def bd_rate_interval(anchor: Sequence[RDPoint], test: Sequence[RDPoint], level: float = 0.95, draws: int = 2000,
                     seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the PSNR BD-rate of ``test`` against ``anchor`` over the clips.

    Each draw takes as many clips as there were, with replacement, the same draw for every point of both
    curves (all were measured on the same clips), averages each point's per-clip rate and PSNR over it, and
    computes the BD-rate again (its PSNR range moves with the draw). It says how much the verdict rests on
    which clips were coded; clips cut from the same video are not independent, and with few clips a
    percentile bootstrap is, if anything, too narrow. (NaN, NaN) when a point has no per-clip values or the
    points were measured on different numbers of clips, or on one clip (too little data to resample); draws where
    the curves share no PSNR are left out.
    """
    pts = [*anchor, *test]
    if any(p.clip_bpp is None or p.clip_psnr is None for p in pts) or len({len(p.clip_bpp) for p in pts}) != 1 \
            or len(pts[0].clip_bpp) < 2:
        return float("nan"), float("nan")
    rate, quality = (np.array([getattr(p, f) for p in pts], dtype=np.float64) for f in ("clip_bpp", "clip_psnr"))
    rng, n, k = np.random.default_rng(seed), rate.shape[1], len(anchor)
    found = []
    for _ in range(draws):
        pick = rng.integers(0, n, n)
        r, q = rate[:, pick].mean(1), quality[:, pick].mean(1)
        found.append(bd_rate(r[:k], q[:k], r[k:], q[k:]))
    found = np.array(found)
    found = found[np.isfinite(found)]
    if not len(found):
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    return float(np.percentile(found, tail)), float(np.percentile(found, 100 - tail))


def save_rd(points: Sequence[RDPoint], path: str | Path) -> Path:
    """Write RD points as a JSON list of records (one per point, CompressAI style), atomically."""

    path = resolve(path)
    return write_json(path, [p.to_dict() for p in points], indent=1)


def load_rd(path: str | Path) -> list[RDPoint]:
    """Read RD points written by ``save_rd``; a file of another shape raises a ``ValueError`` naming it."""

    path = resolve(path)
    if not path.exists():
        raise FileNotFoundError(f"no RD results at {path}")
    try:
        records = json.loads(path.read_text())
        if not isinstance(records, list):
            raise TypeError(f"expected a JSON list, got {type(records).__name__}")
        return [RDPoint.from_dict(r) for r in records]
    except (ValueError, TypeError, AttributeError) as e:   # bad JSON, unknown or missing fields
        raise ValueError(f"{path} is not a list of RD records: {e}") from e


def bd_table(points: Sequence[RDPoint], anchor: str = "x264") -> pd.DataFrame:
    """BD-rate (percent, negative = fewer bits) of every codec in ``points`` against ``anchor``, on RGB PSNR, YUV PSNR
    (``metrics.psnr_yuv``, the classic codecs' own measure) and MS-SSIM.

    NaN where the two curves share no quality range or a codec has a single point (the BD-rate is then
    undefined). Read it with
    ``common_psnr`` (the PSNR range it averages over) and ``efficient_points`` (how many points of the
    curve no other point beats): a BD-rate over a sliver of quality, from two points, says little.
    ``psnr_ci95_lo_%``/``psnr_ci95_hi_%``: the PSNR BD-rate's 95% interval over the clips
    (``bd_rate_interval``; NaN for records without per-clip values).
    """

    by_codec: dict[str, list[RDPoint]] = {}
    for p in points:
        by_codec.setdefault(p.codec, []).append(p)
    if anchor not in by_codec:
        raise ValueError(f"anchor codec {anchor!r} has no points (codecs: {sorted(by_codec)})")
    rows = []
    for codec, pts in by_codec.items():
        if codec == anchor:
            continue
        enough = min(len(pts), len(by_codec[anchor])) >= 2  # a single point has no curve: NaN
        common = common_range(by_codec[anchor], pts)
        lo, hi = bd_rate_interval(by_codec[anchor], pts) if enough else (float("nan"), float("nan"))
        bd = {m: bd_rate_points(by_codec[anchor], pts, m) if enough else float("nan")
              for m in ("psnr", "psnr_yuv", "ms_ssim")}
        rows.append({"codec": codec, "anchor": anchor, "bd_rate_psnr_%": bd["psnr"],
                     "psnr_ci95_lo_%": lo, "psnr_ci95_hi_%": hi, "bd_rate_psnr_yuv_%": bd["psnr_yuv"],
                     "bd_rate_ms_ssim_%": bd["ms_ssim"],
                     "bpp_range": f"{min(p.bpp for p in pts):.3f}-{max(p.bpp for p in pts):.3f}",
                     "psnr_range": f"{min(p.psnr for p in pts):.1f}-{max(p.psnr for p in pts):.1f}",
                     "common_psnr": f"{common[0]:.1f}-{common[1]:.1f}" if common else "none",
                     "efficient_points": len(pareto_front([p.bpp for p in pts], [p.psnr for p in pts])[0])})
    return pd.DataFrame(rows)


def common_range(a: Sequence[RDPoint], b: Sequence[RDPoint], metric: str = "psnr") -> tuple[float, float] | None:
    """The quality range (lo, hi) both curves' efficient points reach (what a BD-rate averages over); None if
    they share none."""
    qa = pareto_front([p.bpp for p in a], [getattr(p, metric) for p in a])[1]
    qb = pareto_front([p.bpp for p in b], [getattr(p, metric) for p in b])[1]
    lo, hi = max(qa.min(), qb.min()), min(qa.max(), qb.max())
    return (float(lo), float(hi)) if hi > lo else None


def rate_at_quality(points: Sequence[RDPoint], quality: float, metric: str = "psnr") -> float:
    """The bpp a codec needs for ``quality`` (interpolating log-rate linearly along its efficient points).

    NaN when ``quality`` lies outside the qualities the codec's points reach.
    """
    r, q = pareto_front([p.bpp for p in points], [getattr(p, metric) for p in points])
    if len(q) == 0 or not q[0] <= quality <= q[-1]:
        return float("nan")
    return float(np.exp(np.interp(quality, q, np.log(r))))
