"""Classic codecs and rate-distortion records, measured in bytes that exist.

- ``run_codec``: x264, x265 (medium preset, no B-frames, one GOP per clip), VP9 (libvpx, good
  quality, no alt-ref frames), AV1 (SVT-AV1, preset 8, low-delay prediction) and MJPEG (intra only)
  through the ffmpeg binary of ``imageio-ffmpeg``, on exactly the RGB clip a model sees, at the
  clip's real frame rate. The bytes counted are the codec's raw elementary stream (Annex-B
  H.264/HEVC, the frames of an IVF file without its headers, concatenated JPEGs), with the SEI
  messages that only carry the encoder's settings text removed: no container headers.
- ``RDPoint``: the one rate-distortion record of the book (``save_rd`` / ``load_rd``), for VoxEn
  (whose bytes come from ``vaelib.bitstream``) and the classic codecs alike.
- ``bd_rate``: the Bjontegaard delta rate between two rate-distortion curves; ``bd_rate_interval``: how far
  it moves over the clips coded (a bootstrap).
"""
from __future__ import annotations

import json
import struct
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .config import JSONConfig
from .metrics import ms_ssim, psnr, psnr_yuv
from .paths import resolve, write_json
from .video_io import ffmpeg_exe


def bits_per_pixel(n_bytes: int, n_frames: int, height: int, width: int) -> float:
    """Rate of a coded clip: 8 * bytes per (frame x height x width) pixel."""
    if n_frames <= 0 or height <= 0 or width <= 0:
        raise ValueError(f"empty clip {n_frames}x{height}x{width}")
    return 8.0 * n_bytes / (n_frames * height * width)


# ---------------------------------------------------------------------------------------------
# Classic codecs through ffmpeg
# ---------------------------------------------------------------------------------------------

CLASSIC_CODECS = ("x264", "x265", "vp9", "av1", "mjpeg")
DEFAULT_SETTINGS = {"x264": [20, 26, 32, 38, 44, 51], "x265": [20, 26, 32, 38, 44, 51],
                    "vp9": [20, 32, 44, 54, 60, 63], "av1": [20, 32, 44, 54, 60, 63], "mjpeg": [2, 5, 10, 20, 31]}
"""Quality settings of every classic codec (CRF; MJPEG's -q:v), from near-transparent down to each codec's lowest
quality, so their curves reach as low as a learned codec's lowest rate: chapter 4 and the benchmark both use them."""


@lru_cache(maxsize=1)
def ffmpeg_version() -> str:
    """First line of ``ffmpeg -version``, recorded with every classic-codec result."""
    out = subprocess.run([ffmpeg_exe(), "-version"], capture_output=True, text=True, check=True).stdout
    return out.splitlines()[0].strip()


def codec_args(codec: str, setting: int, n_frames: int) -> tuple[list[str], str]:
    """ffmpeg output arguments and elementary-stream format for ``codec`` at quality ``setting``.

    x264 / x265: CRF ``setting``, medium preset, no B-frames, one GOP covering the clip, no scene
    cut, 4:2:0. VP9: CRF ``setting`` (0..63) in constant-quality mode, ``-deadline good -cpu-used 2``,
    no lag and no alt-ref (hidden) frames. AV1: SVT-AV1 CRF ``setting`` (1..63), preset 8, low-delay
    prediction structure, no scene detection. MJPEG: ``-q:v setting`` (2 best .. 31 worst), every frame a JPEG.
    """
    if codec == "x264":
        return (["-c:v", "libx264", "-preset", "medium", "-crf", str(setting), "-bf", "0",
                 "-g", str(n_frames), "-keyint_min", str(n_frames), "-sc_threshold", "0",
                 "-pix_fmt", "yuv420p", "-bsf:v", "filter_units=remove_types=6"], "h264")
    if codec == "x265":
        params = f"bframes=0:keyint={n_frames}:min-keyint={n_frames}:scenecut=0:info=0:log-level=error"
        return (["-c:v", "libx265", "-preset", "medium", "-crf", str(setting), "-x265-params", params,
                 "-pix_fmt", "yuv420p", "-bsf:v", "filter_units=remove_types=39|40"], "hevc")
    if codec == "vp9":
        return (["-c:v", "libvpx-vp9", "-crf", str(setting), "-b:v", "0", "-deadline", "good", "-cpu-used", "2",
                 "-lag-in-frames", "0", "-auto-alt-ref", "0", "-g", str(n_frames), "-keyint_min", str(n_frames),
                 "-threads", "1", "-pix_fmt", "yuv420p"], "ivf")
    if codec == "av1":
        return (["-c:v", "libsvtav1", "-crf", str(setting), "-preset", "8", "-g", str(n_frames),
                 "-svtav1-params", "pred-struct=1:scd=0:lp=1", "-pix_fmt", "yuv420p"], "ivf")
    if codec == "mjpeg":
        return (["-c:v", "mjpeg", "-q:v", str(setting), "-pix_fmt", "yuvj420p"], "mjpeg")
    raise ValueError(f"unknown codec {codec!r}; choose from {CLASSIC_CODECS}")


@dataclass
class CodedClip:
    """One clip through one codec at one setting: the decoded frames and what it cost."""
    codec: str
    setting: float
    n_bytes: int
    encode_s: float
    decode_s: float
    decoded: np.ndarray
    stream: bytes


def run_codec(frames: np.ndarray, codec: str, setting: int, fps: float = 25.0) -> CodedClip:
    """Encode RGB uint8 ``frames`` (T, H, W, 3) with a classic codec, decode, and count the stream's bytes."""
    frames = np.ascontiguousarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 RGB frames (T, H, W, 3), got {frames.dtype} {frames.shape}")
    t, h, w, _ = frames.shape
    args, fmt = codec_args(codec, setting, t)
    exe = ffmpeg_exe()
    with tempfile.TemporaryDirectory(prefix="vaelib-codec-") as tmp:
        stream = Path(tmp) / f"clip.{fmt}"
        enc = [exe, "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{w}x{h}", "-r", str(fps), "-i", "pipe:0", "-sws_flags", "bicubic+accurate_rnd+full_chroma_int",
               *args, "-f", fmt, str(stream)]
        t0 = time.perf_counter()
        r = subprocess.run(enc, input=frames.tobytes(), capture_output=True)
        encode_s = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError(f"ffmpeg {codec} encode failed: {r.stderr.decode(errors='replace')[-2000:]}")
        data = stream.read_bytes()
        n_bytes = ivf_payload_bytes(data) if fmt == "ivf" else len(data)
        dec = [exe, "-hide_banner", "-loglevel", "error", "-f", fmt, "-i", str(stream),
               "-sws_flags", "bicubic+accurate_rnd+full_chroma_int", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
        t0 = time.perf_counter()
        r = subprocess.run(dec, capture_output=True)
        decode_s = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError(f"ffmpeg {codec} decode failed: {r.stderr.decode(errors='replace')[-2000:]}")
    decoded = np.frombuffer(r.stdout, dtype=np.uint8)
    if decoded.size != frames.size:
        raise RuntimeError(f"ffmpeg {codec} decoded {decoded.size // (h * w * 3)} frames of {t}")
    return CodedClip(codec, setting, n_bytes, encode_s, decode_s, decoded.reshape(frames.shape), data)


def ivf_payload_bytes(data: bytes) -> int:
    """Bytes of the coded frames in an IVF file: its 32-byte file header and 12-byte frame headers left out."""
    if data[:4] != b"DKIF":
        raise ValueError("not an IVF stream (bad signature)")
    pos, total = struct.unpack_from("<H", data, 6)[0], 0
    while pos + 12 <= len(data):
        size = struct.unpack_from("<I", data, pos)[0]
        total += size
        pos += 12 + size
    if pos != len(data):
        raise ValueError(f"IVF stream ends inside a frame ({len(data)} bytes, frame end at {pos})")
    return total


# ---------------------------------------------------------------------------------------------
# Rate-distortion records and BD-rate
# ---------------------------------------------------------------------------------------------


@dataclass
class RDPoint(JSONConfig):
    """One point of a rate-distortion curve, averaged over clips: the one RD record of the book.

    Written by chapter 4 and ``benchmarks/voxen_rd.py`` alike (``save_rd``), read by ``load_rd``.
    ``encode_s``/``decode_s`` are seconds per clip; ``clip_len``, ``image_size`` and ``fps`` say what a
    clip was; ``train_steps``/``train_s`` say how a learned codec was trained (0 for classic codecs);
    ``clip_bpp``/``clip_psnr`` are each clip's own values (``bpp``/``psnr`` are their means), for an interval
    over clips (``bd_rate_interval``); records written before they existed have none. ``clip_parts`` is how
    many clips a learned codec coded each clip as (2 where it split a scene cut; None for classic codecs).
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
                   ms_ssim=float(np.mean([ms_ssim(c, d) for c, d in zip(clips, decoded)])),
                   psnr_yuv=float(np.mean([psnr_yuv(c, d) for c, d in zip(clips, decoded)])),
                   encode_s=float(np.mean(encode_s)), decode_s=float(np.mean(decode_s)),
                   n_clips=len(clips), n_bytes=int(np.sum(n_bytes)), dataset=dataset, settings=settings,
                   clip_len=int(clips[0].shape[0]), image_size=int(clips[0].shape[1]), **fields)


def clip_rates(fps: float | Sequence[float], n_clips: int) -> list[float]:
    """One frame rate per clip from one rate for all or a list of them (each clip's real rate)."""
    rates = [float(fps)] * n_clips if np.isscalar(fps) else [float(f) for f in fps]
    if len(rates) != n_clips or not all(r > 0 for r in rates):
        raise ValueError(f"need one positive frame rate per clip ({n_clips} clips), got {fps}")
    return rates


def classic_rd(clips: Sequence[np.ndarray], codecs: Sequence[str] = CLASSIC_CODECS,
               settings: dict[str, Sequence[int]] | None = None, dataset: str = "",
               fps: float | Sequence[float] = 25.0, progress: bool = True) -> list[RDPoint]:
    """RD points of the classic codecs over ``clips`` (each (T, H, W, 3) uint8), one per codec and setting.

    ``fps``: one frame rate for all clips or each clip's own (its real rate; the record keeps their mean)."""
    settings = settings or DEFAULT_SETTINGS
    rates = clip_rates(fps, len(clips))
    jobs = [(c, s) for c in codecs for s in settings[c]]
    points = []
    for codec, s in tqdm(jobs, desc=f"classic codecs {dataset}".strip(), disable=not progress):
        coded = [run_codec(clip, codec, s, fps=r) for clip, r in zip(clips, rates)]
        args, fmt = codec_args(codec, s, clips[0].shape[0])
        points.append(rd_point(codec, s, clips, [c.decoded for c in coded], [c.n_bytes for c in coded],
                               [c.encode_s for c in coded], [c.decode_s for c in coded], dataset=dataset,
                               settings=f"{ffmpeg_version()} | -f {fmt} " + " ".join(args),
                               fps=float(np.mean(rates))))
    return points


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
