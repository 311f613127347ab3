"""Classic codecs through ffmpeg, measured in bytes that exist.

``run_codec``: x264, x265 (medium preset, no B-frames, one GOP per clip), VP9 (libvpx, good
quality, no alt-ref frames), AV1 (SVT-AV1, preset 8, low-delay prediction) and MJPEG (intra only)
through the ffmpeg binary of ``imageio-ffmpeg``, on exactly the RGB clip a model sees, at the
clip's real frame rate. The bytes counted are the codec's raw elementary stream (Annex-B
H.264/HEVC, the frames of an IVF file without its headers, concatenated JPEGs), with the SEI
messages that only carry the encoder's settings text removed: no container headers.
``classic_rd`` gives their rate-distortion records (``vaelib.rd.RDPoint``).
"""
from __future__ import annotations

import struct
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .rd import RDPoint, clip_rates, rd_point
from .video_io import ffmpeg_exe

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


