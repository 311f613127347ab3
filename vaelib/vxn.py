"""VoxEn video files (``.vxn``): a video of any length and size coded with a VoxEn model, and decoded back.

    python -m vaelib.vxn encode IN OUT.vxn [--lambda L | --quality Q] [--refine-steps K] [--overwrite]
    python -m vaelib.vxn decode IN.vxn OUT.mp4|OUT.y4m|OUT.npy [--overwrite]
    python -m vaelib.vxn info IN.vxn

The command line is this module's (``vaelib.vxn``), not ``vaelib.voxen``'s: ``voxen`` is the model, and the
file format sits above it (it reads videos and finds models). ``encode_file``/``decode_file`` do the same for
paths, ``encode_array``/``decode_array`` for arrays in memory.

**Input.** Any video ffmpeg decodes (frames and their times as ``vaelib.video_io.VideoReader`` reads them, with
accurate colours), or a ``.npy`` of uint8 frames (N, H, W, 3) with ``--fps``. Frames are read and coded one clip
at a time, so memory is bounded by a clip, not by the video.

**Models.** By default the reference models in ``weights/voxen`` (one per lambda, ``vaelib.zoo``).
``--quality Q`` picks the Q-th of them by rising lambda (1: the smallest files); ``--lambda L`` (within their
lambdas, else an error) the one nearest in log lambda, and refines (``--refine-steps``) and plans scene cuts for L
itself; a variable-rate model (``VoxEnConfig.rates``) codes at any L within its rates. Without either, the middle
one. ``decode`` finds the model whose identity the file names; a file of a model
that is not there is refused, never decoded by another.

**Any size.** Each frame is padded to a multiple of the model's strides (``VoxEnConfig.multiple``, 16 for the
reference models) by repeating its edge pixels, coded, and cropped back; a frame smaller than the strides (even
1 x 1) is padded too, never refused. The last clip, if shorter than the model's ``clip_len``, is padded in time by
repeating its last frame to a multiple of the time strides; the header says how many of its frames are real.

**Container, version 1** (little-endian). A 92-byte header:

    offset  bytes  field
       0      4    magic b"VXNF"
       4      2    version (1)
       6      2    header size (92)
       8     32    model identity: SHA-256 of the model's config and weights (``model_id``)
      40      8    the model's lambda (float64)
      48      8    the lambda the clips were coded for: refinement and scene-cut planning (float64)
      56      4    refinement steps per clip
      60      4    frames
      64      4    frame rate numerator   } frames per second as a fraction: the mean rate of the source's frame
      68      4    frame rate denominator } times (a variable-rate source is coded at its mean rate)
      72      4    width          } the source's, before padding
      76      4    height         }
      80      2    frames per clip (the model's clip_len)
      82      2    real frames in the last clip (the rest of it is padding)
      84      4    clips
      88      4    CRC32 of bytes 0-87

then one payload per clip, in order: a ``vaelib.bitstream`` frame (magic b"VXN3", body length, CRC32 of the
body, body), the bytes of ``VoxEn.compress``. Nothing follows the last clip. A file that is cut anywhere, has a
byte changed, names another version or a model that is not at hand, or holds more than it announces, is refused
with an error naming it; outputs are written to a temporary name and renamed, so a failure leaves nothing.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from tqdm.auto import tqdm

from . import bitstream
from .paths import atomic_path, resolve
from .video_io import VideoReader, ffmpeg_exe
from .voxen import VoxEn, pad_clip
from .zoo import WEIGHTS_DIR, load_pretrained

MAGIC = b"VXNF"
VERSION = 1
HEADER = struct.Struct("<4sHH32sddIIIIIIHHI")
"""The header without its CRC32 (88 bytes); the CRC32 of these bytes follows it."""
HEADER_SIZE = HEADER.size + 4
OUTPUTS = (".mp4", ".y4m", ".npy")
RATE_DENOMINATOR = 1001
"""The largest frame-rate denominator kept (30000/1001, 24000/1001 and every whole rate are exact)."""


class VxnError(ValueError):
    """A .vxn file, an input or an output that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class VxnHeader:
    """What a .vxn file says about its video (see the module's docstring)."""
    model_id: str            # hex SHA-256
    model_lambda: float
    lmbda: float
    refine_steps: int
    n_frames: int
    fps: Fraction
    width: int
    height: int
    clip_len: int
    last_clip_frames: int
    n_clips: int

    def pack(self) -> bytes:
        head = HEADER.pack(MAGIC, VERSION, HEADER_SIZE, bytes.fromhex(self.model_id), self.model_lambda, self.lmbda,
                           self.refine_steps, self.n_frames, self.fps.numerator, self.fps.denominator, self.width,
                           self.height, self.clip_len, self.last_clip_frames, self.n_clips)
        return head + struct.pack("<I", zlib.crc32(head))

    @classmethod
    def unpack(cls, data: bytes, name: str) -> VxnHeader:
        """The header at the start of ``data``, checked; a bad one raises ``VxnError`` naming ``name``."""
        if data[:4] != MAGIC[:len(data[:4])]:
            raise VxnError(f"{name} is not a .vxn file (it starts with {data[:4]!r}, not {MAGIC!r})")
        if len(data) < 8:
            raise VxnError(f"{name} is cut short: {len(data)} bytes, less than a .vxn header")
        version, size = struct.unpack_from("<HH", data, 4)
        if version != VERSION:
            raise VxnError(f"{name} is a .vxn file of version {version} (or its header is corrupted); this vaelib "
                           f"reads version {VERSION} only")
        if len(data) < HEADER_SIZE:
            raise VxnError(f"{name} is cut short: {len(data)} bytes, less than its {HEADER_SIZE}-byte header")
        (crc,) = struct.unpack_from("<I", data, HEADER.size)
        if size != HEADER_SIZE or zlib.crc32(data[:HEADER.size]) != crc:
            raise VxnError(f"{name}: its header is corrupted (the CRC32 of its {HEADER.size} bytes does not match)")
        f = HEADER.unpack_from(data)
        h = cls(f[3].hex(), f[4], f[5], f[6], f[7], Fraction(f[8], f[9] or 1), f[10], f[11], f[12], f[13], f[14])
        if (h.n_frames < 1 or f[8] < 1 or f[9] < 1 or min(h.width, h.height, h.clip_len) < 1
                or h.n_clips != -(-h.n_frames // h.clip_len) or h.last_clip_frames != h.n_frames - (h.n_clips - 1)
                * h.clip_len):
            raise VxnError(f"{name}: its header does not add up ({h}); the file was not written by vaelib.vxn")
        return h

    def to_dict(self) -> dict:
        return {**self.__dict__, "fps": f"{self.fps.numerator}/{self.fps.denominator}", "fps_float": float(self.fps)}


# ---------------------------------------------------------------------------------------------
# Models


def model_id(model: VoxEn) -> str:
    """The identity of a model, as hex: the SHA-256 of its config (JSON) and of every weight (float32, in order)."""
    h = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    for name, value in model.state_dict().items():
        h.update(name.encode())
        h.update(value.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def choose_model(models: Mapping[float, VoxEn], lmbda: float | None = None,
                 quality: int | None = None) -> tuple[float, float]:
    """(the lambda of the model to code with, the lambda to code for) among ``models`` (keyed by lambda).

    ``quality`` Q: the Q-th model by rising lambda (1..len(models)); ``lmbda``: a variable-rate model whose rates
    (``VoxEnConfig.rates``) hold it, else the model nearest in log lambda, coding for ``lmbda`` itself (it must lie
    within the models' lambdas and rates); neither: the middle model."""
    if not models:
        raise VxnError("no VoxEn model to code with")
    lams = sorted(models)
    if lmbda is not None and quality is not None:
        raise VxnError("give --lambda or --quality, not both")
    if quality is not None:
        if not 1 <= quality <= len(lams):
            raise VxnError(f"quality must be 1..{len(lams)} (one per model, by rising lambda {lams}), got {quality}")
        return lams[quality - 1], lams[quality - 1]
    if lmbda is None:
        mid = lams[(len(lams) - 1) // 2]
        return mid, mid
    lmbda = float(lmbda)
    spans = {v: (models[v].config.rates[0], models[v].config.rates[-1]) if models[v].config.rates else (v, v)
             for v in lams}    # a variable-rate model codes at any lambda within its rates

    def holds(lo: float, hi: float) -> bool:
        return math.isfinite(lmbda) and lo * (1 - 1e-9) <= lmbda <= hi * (1 + 1e-9)

    lo, hi = min(a for a, _ in spans.values()), max(b for _, b in spans.values())
    if not holds(lo, hi):
        raise VxnError(f"lambda {lmbda:g} is outside the models' range {lo:g} to {hi:g} "
                       f"(models at {', '.join(f'{v:g}' for v in lams)})")
    variable = [v for v in lams if spans[v][0] < spans[v][1] and holds(*spans[v])]
    return (variable or [min(lams, key=lambda v: abs(math.log(v / lmbda)))])[0], lmbda


# ---------------------------------------------------------------------------------------------
# Writing


def _write(out: BinaryIO, frames: Iterable[np.ndarray], model: VoxEn, header: VxnHeader, name: str,
           fps_after=None, progress: bool = False, total: int | None = None) -> VxnHeader:
    """Code ``frames`` clip by clip into ``out`` (at its start), then write the header with the count (and the rate,
    ``fps_after()`` when the frame times are known only at the end); return the header."""
    cfg = model.config
    out.write(b"\0" * HEADER_SIZE)            # the header, once the frames are counted
    clip: list[np.ndarray] = []
    n, size = 0, None
    bar = tqdm(total=total, unit="frame", desc=f"encode {Path(name).name}", disable=not progress, leave=False)

    def flush() -> None:
        x = np.stack(clip)
        t = len(x)
        x = pad_clip(x, cfg.padded_shape(t, *size))
        data, _ = model.compress(x, header.lmbda, header.refine_steps)
        out.write(data)
        bar.update(t)
        clip.clear()

    with bar:
        for frame in frames:
            frame = np.asarray(frame)
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise VxnError(f"{name}: frame {n} is not RGB uint8 (H, W, 3) but {frame.dtype} {frame.shape}")
            if size is None:
                size = frame.shape[:2]
            elif frame.shape[:2] != size:
                raise VxnError(f"{name}: frame {n} is {frame.shape[1]}x{frame.shape[0]}, the first {size[1]}x{size[0]}")
            clip.append(frame)
            n += 1
            if len(clip) == cfg.clip_len:
                flush()
        last = len(clip) or (cfg.clip_len if n else 0)
        if clip:
            flush()
    if n == 0:
        raise VxnError(f"{name} holds no frames to code")
    fps = header.fps if fps_after is None else fps_after()
    if n >= 2 ** 32:
        raise VxnError(f"{name}: {n} frames are more than a .vxn file counts")
    header = VxnHeader(header.model_id, header.model_lambda, header.lmbda, header.refine_steps, n, fps,
                       size[1], size[0], cfg.clip_len, last, -(-n // cfg.clip_len))
    out.seek(0)
    out.write(header.pack())
    return header


def _rate(fps: float | Fraction, name: str) -> Fraction:
    """``fps`` as a fraction (a float's nearest with a denominator up to ``RATE_DENOMINATOR``), checked."""
    if not isinstance(fps, Fraction):
        if not math.isfinite(float(fps)) or float(fps) <= 0:
            raise VxnError(f"{name}: the frame rate must be a positive number, got {fps}")
        fps = Fraction(float(fps)).limit_denominator(RATE_DENOMINATOR)
    if not fps > 0 or fps.numerator >= 2 ** 32 or fps.denominator >= 2 ** 32:
        raise VxnError(f"{name}: the frame rate must be a positive number that a .vxn header holds, got {fps}")
    return fps


def _start(models: Mapping[float, VoxEn], lmbda: float | None, quality: int | None, refine_steps: int,
           fps: Fraction) -> tuple[VoxEn, VxnHeader]:
    model_lambda, coded_for = choose_model(models, lmbda, quality)
    if not 0 <= int(refine_steps) < 2 ** 32:
        raise VxnError(f"refine_steps must be >= 0, got {refine_steps}")
    model = models[model_lambda].cpu().eval()
    return model, VxnHeader(model_id(model), float(model_lambda), float(coded_for), int(refine_steps), 0, fps,
                            0, 0, model.config.clip_len, 0, 0)


def encode_array(frames: np.ndarray, models: Mapping[float, VoxEn], fps: float | Fraction = 25,
                 lmbda: float | None = None, quality: int | None = None, refine_steps: int = 0) -> bytes:
    """The .vxn bytes of uint8 frames (N, H, W, 3) at ``fps`` (models and options as ``encode_file``; the model that
    codes is moved to the CPU, where its streams decode bit for bit)."""
    model, header = _start(models, lmbda, quality, refine_steps, _rate(fps, "frames"))
    buf = io.BytesIO()
    _write(buf, iter(np.asarray(frames)), model, header, "frames")
    return buf.getvalue()


def _outcome(path: Path, overwrite: bool, suffixes: tuple[str, ...], source: Path) -> None:
    if path.suffix.lower() not in suffixes:
        raise VxnError(f"{path}: the output must end in {' or '.join(suffixes)}")
    if path.exists() and not overwrite:
        raise VxnError(f"{path} exists: not replaced (pass --overwrite / overwrite=True to replace it)")
    if path.is_dir():
        raise VxnError(f"{path} is a folder, not a file to write")
    if path.resolve() == source.resolve():
        raise VxnError(f"{path} is the input itself")


def _writable(path: Path):
    """``atomic_path(path)``, once its folder is known to be writable (else a ``VxnError`` naming it)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise VxnError(f"{path} cannot be written: its folder {path.parent} cannot be made ({e.strerror or e})") from e
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise VxnError(f"{path} cannot be written: its folder {path.parent} is not writable")
    return atomic_path(path, suffix=path.suffix)


def encode_file(src: str | os.PathLike, dst: str | os.PathLike, lmbda: float | None = None,
                quality: int | None = None, refine_steps: int = 0, overwrite: bool = False,
                models: Mapping[float, VoxEn] | None = None, fps: float | None = None,
                progress: bool = True) -> VxnHeader:
    """Code the video ``src`` (a video file, or a .npy of uint8 frames at ``fps``) into the .vxn file ``dst``.

    ``models``: by lambda, default the reference models (``vaelib.zoo.load_pretrained``); ``lmbda``/``quality``
    choose among them (``choose_model``); ``refine_steps`` refines every clip's latent (``VoxEn.refine``).
    ``dst`` is written to a temporary name and renamed; an existing ``dst`` is refused unless ``overwrite``."""
    src, dst = resolve(src), resolve(dst)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no such file to encode")
    _outcome(dst, overwrite, (".vxn",), src)
    models = load_pretrained(WEIGHTS_DIR) if models is None else models
    if src.suffix.lower() == ".npy":
        try:
            frames = np.load(src, mmap_mode="r")
        except ValueError as e:
            raise VxnError(f"{src} is not a readable .npy file: {e}") from e
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
            raise VxnError(f"{src}: a .npy input holds uint8 frames (N, H, W, 3), not {frames.dtype} {frames.shape}")
        model, header = _start(models, lmbda, quality, refine_steps, _rate(25 if fps is None else fps, str(src)))
        source, total, after = iter(frames), len(frames), None
    else:
        if fps is not None:
            raise VxnError(f"{src}: fps is for .npy inputs; a video's rate comes from its frame times")
        reader = VideoReader(src, accurate=True)       # a file ffmpeg cannot read, or that holds no video, raises
        model, header = _start(models, lmbda, quality, refine_steps, Fraction(1))
        source, total = (frame for _, frame in reader), reader.info.n_frames
        after = lambda: _rate(reader.timing.fps, str(src))      # noqa: E731 - known once every frame is read
    with _writable(dst) as tmp, open(tmp, "wb") as out:
        return _write(out, source, model, header, str(src), after, progress, total)


# ---------------------------------------------------------------------------------------------
# Reading


def _find_model(header: VxnHeader, models: Mapping[float, VoxEn], name: str) -> VoxEn:
    for lam in sorted(models, key=lambda v: abs(v - header.model_lambda)):   # its own lambda first
        if model_id(models[lam]) == header.model_id:
            return models[lam].cpu().eval()
    raise VxnError(f"{name} was written by VoxEn model {header.model_id[:16]}... (lambda {header.model_lambda:g}), "
                   f"which is none of the {len(models)} models at hand (lambdas "
                   f"{', '.join(f'{v:g}' for v in sorted(models))}): it decodes only with the model that wrote it")


def _clips(f: BinaryIO, header: VxnHeader, model: VoxEn, name: str) -> Iterator[np.ndarray]:
    """The decoded clips of an open .vxn file (after its header), cropped to the source's size, one at a time."""
    offset = HEADER_SIZE
    for k in range(header.n_clips):
        t = header.clip_len if k < header.n_clips - 1 else header.last_clip_frames
        where = f"{name} (clip {k + 1} of {header.n_clips}, at byte {offset})"
        head = f.read(bitstream.FRAME.size)
        if len(head) < bitstream.FRAME.size:
            raise VxnError(f"{where} is cut short: the file ends inside the clip's {bitstream.FRAME.size}-byte frame")
        magic, length, _ = bitstream.FRAME.unpack(head)
        if magic != bitstream.MAGIC:
            raise VxnError(f"{where} is corrupted: its payload does not start with {bitstream.MAGIC!r}")
        body = f.read(length)
        if len(body) < length:
            raise VxnError(f"{where} is cut short or corrupted: its payload announces {length} bytes, "
                           f"{len(body)} are there")
        try:
            clip = model.decompress(head + body, where, shape=model.config.padded_shape(t, header.height, header.width))
        except ValueError as e:
            raise VxnError(str(e)) from e
        offset += len(head) + length
        yield clip[:t, :header.height, :header.width]
    extra = len(f.read(1 << 16))
    if extra:
        raise VxnError(f"{name} has {'more than ' if extra == 1 << 16 else ''}{extra} bytes after its last clip "
                       f"(at byte {offset}): it is not a .vxn file as written")


def _read_header(f: BinaryIO, name: str) -> VxnHeader:
    return VxnHeader.unpack(f.read(HEADER_SIZE), name)


def read_header(path: str | os.PathLike) -> VxnHeader:
    """The header of the .vxn file ``path`` (checked; see the module's docstring)."""
    path = resolve(path)
    with open(path, "rb") as f:
        return _read_header(f, str(path))


def decode_array(data: bytes, models: Mapping[float, VoxEn], name: str = "bytes") -> tuple[np.ndarray, VxnHeader]:
    """(uint8 frames (N, H, W, 3), header) of .vxn bytes; ``models`` must hold the model that wrote them."""
    f = io.BytesIO(bytes(data))
    header = _read_header(f, name)
    model = _find_model(header, models, name)
    return np.concatenate(list(_clips(f, header, model, name))), header


def _ffmpeg_writer(path: Path, header: VxnHeader, fmt: str) -> subprocess.Popen:
    """ffmpeg reading raw RGB frames on stdin and writing ``path``: lossless RGB H.264 (.mp4), or 4:4:4 Y'CbCr
    (.y4m, the raw format of codec test tools: the conversion from RGB rounds)."""
    codec = (["-c:v", "libx264rgb", "-qp", "0", "-preset", "veryfast", "-f", "mp4"] if fmt == ".mp4" else
             ["-pix_fmt", "yuv444p", "-f", "yuv4mpegpipe"])
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo",
           "-pix_fmt", "rgb24", "-s", f"{header.width}x{header.height}",
           "-framerate", f"{header.fps.numerator}/{header.fps.denominator}", "-i", "pipe:0", *codec, str(path)]
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def decode_file(src: str | os.PathLike, dst: str | os.PathLike, overwrite: bool = False,
                models: Mapping[float, VoxEn] | None = None, progress: bool = True) -> VxnHeader:
    """Decode the .vxn file ``src`` into ``dst``: ``.npy`` (uint8 frames (N, H, W, 3), the decoder's output bit for
    bit), ``.mp4`` (lossless RGB H.264 at the file's frame rate: the same frames) or ``.y4m`` (4:4:4 Y'CbCr).

    ``models``: by lambda, default the reference models; the one that wrote ``src`` must be among them. ``dst``
    is written to a temporary name and renamed; an existing ``dst`` is refused unless ``overwrite``."""
    src, dst = resolve(src), resolve(dst)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no such .vxn file")
    _outcome(dst, overwrite, OUTPUTS, src)
    models = load_pretrained(WEIGHTS_DIR) if models is None else models
    with open(src, "rb") as f:
        header = _read_header(f, str(src))
        model = _find_model(header, models, str(src))
        clips = _clips(f, header, model, str(src))
        bar = tqdm(total=header.n_frames, unit="frame", desc=f"decode {src.name}", disable=not progress, leave=False)
        with bar, _writable(dst) as tmp:
            if dst.suffix.lower() == ".npy":
                out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                                shape=(header.n_frames, header.height, header.width, 3))
                n = 0
                for clip in clips:
                    out[n:n + len(clip)] = clip
                    n += len(clip)
                    bar.update(len(clip))
                out.flush()
                del out
            else:
                proc = _ffmpeg_writer(tmp, header, dst.suffix.lower())
                try:
                    for clip in clips:
                        proc.stdin.write(np.ascontiguousarray(clip).tobytes())
                        bar.update(len(clip))
                    proc.stdin.close()
                    err = proc.stderr.read().decode(errors="replace")
                    if proc.wait() != 0:
                        raise VxnError(f"{dst}: ffmpeg could not write it: {err.strip()[-500:]}")
                finally:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
    return header


# ---------------------------------------------------------------------------------------------
# Command line


def main(argv: list[str] | None = None) -> int:
    """``python -m vaelib.vxn encode|decode|info``; errors print one line naming the file and exit with status 2."""
    ap = argparse.ArgumentParser(prog="python -m vaelib.vxn", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    enc = sub.add_parser("encode", help="code a video (or a .npy of uint8 frames) into a .vxn file")
    enc.add_argument("input", type=Path)
    enc.add_argument("output", type=Path)
    rate = enc.add_mutually_exclusive_group()
    rate.add_argument("--lambda", dest="lmbda", type=float, help="rate-distortion trade-off, within the models' range")
    rate.add_argument("--quality", type=int, help="1 (smallest files) .. the number of models (best quality)")
    enc.add_argument("--refine-steps", type=int, default=0, help="optimize every clip's latent for it (slower)")
    enc.add_argument("--fps", type=float, help="the frame rate of a .npy input (default 25)")
    dec = sub.add_parser("decode", help="decode a .vxn file into .mp4 (lossless), .y4m or .npy")
    dec.add_argument("input", type=Path)
    dec.add_argument("output", type=Path)
    for p in (enc, dec):
        p.add_argument("--weights", type=Path, default=WEIGHTS_DIR, help="folder of the models (lambda_* folders)")
        p.add_argument("--overwrite", action="store_true", help="replace an existing output")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
    info = sub.add_parser("info", help="print a .vxn file's header as JSON")
    info.add_argument("input", type=Path)
    args = ap.parse_args(argv)
    try:
        if args.command == "info":
            print(json.dumps(read_header(args.input).to_dict(), indent=1))
            return 0
        models = load_pretrained(args.weights)
        if args.command == "encode":
            h = encode_file(args.input, args.output, args.lmbda, args.quality, args.refine_steps, args.overwrite,
                            models, args.fps, progress=not args.quiet)
        else:
            h = decode_file(args.input, args.output, args.overwrite, models, progress=not args.quiet)
    except (ValueError, OSError) as e:       # VxnError, VideoError, a missing file: one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    size = os.path.getsize(args.output if args.command == "encode" else args.input)
    bpp = 8 * size / (h.n_frames * h.width * h.height)
    print(f"{args.output}: {h.n_frames} frames of {h.width}x{h.height} at {float(h.fps):.3f} fps; {size} bytes "
          f"({bpp:.4f} bpp), model lambda {h.model_lambda:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
