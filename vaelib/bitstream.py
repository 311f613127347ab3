"""Entropy coding of integer latents into framed bytes, with the range coder of ``constriction``.

``write_factorized`` codes a latent (C, ...) channel by channel under a probability table per channel
(``pmf(c, lo, hi)``); ``write_gaussian`` codes every symbol under its own zero-mean Gaussian (a
hyperprior's scales, snapped to ``SCALE_TABLE``); ``write_symbol`` one header value. Their ``read_``
twins decode bit for bit, in the same order, from ``open_bitstream``. No per-clip value ranges: the
decoder knows the shapes and the symbol bound from the model. ``finish_bitstream`` frames the coder's
words (``frame_bitstream``: magic bytes, the body's length and its CRC32), so a cut, padded or corrupted
bitstream is refused with a clear error instead of decoding to a wrong clip; byte counts include the frame.
"""
from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Callable, Sequence

import numpy as np

MAGIC = b"VXN3"
FRAME = struct.Struct("<4sII")
"""The 12-byte frame of every VoxEn bitstream: magic, body length in bytes, CRC32 of the body."""
MAX_LATENT_VALUES = 1 << 26
"""A latent larger than this (64 Mi values) is refused before any allocation."""
SCALE_MIN, SCALE_MAX, N_SCALES = 0.11, 256.0, 64
SCALE_TABLE = np.exp(np.linspace(np.log(SCALE_MIN), np.log(SCALE_MAX), N_SCALES))
"""The Gaussian scales the coder uses: the model's scale snapped to this log-spaced table, so that the coder's
probability tables come from 64 scales, not from every float. The encoder and the decoder agree bit for bit when they
compute the scales the same way (the same model on the same kind of device); a scale that lands within rounding of
the midpoint between two entries could snap differently across devices."""
PmfFn = Callable[[int, int, int], np.ndarray]
"""``pmf(channel, lo, hi)`` -> probabilities (float64, length ``hi - lo + 1``) of the symbols lo..hi."""


def _constriction():
    import constriction

    return constriction


def new_encoder():
    """An empty ``constriction`` range encoder (a queue: symbols come out in the order they went in)."""
    return _constriction().stream.queue.RangeEncoder()


def finish_bitstream(encoder) -> bytes:
    """The encoder's words as bytes, framed (``frame_bitstream``)."""
    return frame_bitstream(encoder.get_compressed().astype("<u4").tobytes())


def open_bitstream(data: bytes, name: str = "bitstream"):
    """A range decoder over the body of a framed bitstream (checked by ``unframe_bitstream``)."""
    body = unframe_bitstream(data, name)
    if len(body) % 4:
        raise ValueError(f"{name}: its body is not whole 32-bit words ({len(body)} bytes)")
    return _constriction().stream.queue.RangeDecoder(np.frombuffer(body, dtype="<u4").astype(np.uint32))


def _symbols(symbols: np.ndarray, bound: int) -> np.ndarray:
    q = np.asarray(symbols)
    if not np.issubdtype(q.dtype, np.integer):
        if not np.array_equal(q, np.round(q)):
            raise ValueError("the entropy coder needs integer symbols (quantize the latent first)")
    if q.size == 0 or q.ndim < 1:
        raise ValueError(f"expected a non-empty latent shaped (C, ...), got {q.shape}")
    if q.min() < -bound or q.max() > bound:
        raise ValueError(f"latent values [{q.min()}, {q.max()}] exceed the coder's range [-{bound}, {bound}] "
                         f"(clamp them first)")
    return q.astype(np.int32)


def write_factorized(encoder, symbols: np.ndarray, pmf: PmfFn, bound: int) -> None:
    """Code ``symbols`` (C, ...) channel by channel under ``pmf(c, -bound, bound)``."""
    q = _symbols(symbols, bound)
    flat = q.reshape(q.shape[0], -1)
    for c in range(flat.shape[0]):
        model = _constriction().stream.model.Categorical(_checked_pmf(pmf, c, -bound, bound), perfect=False)
        encoder.encode(flat[c] + bound, model)


def read_factorized(decoder, shape: Sequence[int], pmf: PmfFn, bound: int) -> np.ndarray:
    """Decode what ``write_factorized`` wrote for a latent of ``shape``; int32."""
    _check_shape(shape)
    n = math.prod(shape[1:])
    out = np.empty((shape[0], n), dtype=np.int32)
    for c in range(shape[0]):
        model = _constriction().stream.model.Categorical(_checked_pmf(pmf, c, -bound, bound), perfect=False)
        out[c] = decoder.decode(model, n).astype(np.int32) - bound
    return out.reshape(tuple(shape))


def snap_scales(scales: np.ndarray) -> np.ndarray:
    """Each scale replaced by the nearest (in log) entry of ``SCALE_TABLE``; float64."""
    s = np.clip(np.asarray(scales, dtype=np.float64), SCALE_MIN, SCALE_MAX)
    step = np.log(SCALE_TABLE[1] / SCALE_TABLE[0])
    idx = np.clip(np.rint(np.log(s / SCALE_MIN) / step), 0, N_SCALES - 1).astype(np.int64)
    return SCALE_TABLE[idx]


def write_gaussian(encoder, symbols: np.ndarray, scales: np.ndarray, bound: int) -> None:
    """Code every symbol under its own zero-mean Gaussian (scale snapped by ``snap_scales``), quantized to integers."""
    q = _symbols(symbols, bound).ravel()
    s = snap_scales(scales).ravel()
    if s.shape != q.shape:
        raise ValueError(f"need one scale per symbol: {s.shape} scales, {q.shape} symbols")
    encoder.encode(q, _constriction().stream.model.QuantizedGaussian(-bound, bound), np.zeros_like(s), s)


def read_gaussian(decoder, scales: np.ndarray, bound: int) -> np.ndarray:
    """Decode what ``write_gaussian`` wrote with the same ``scales``; int32, shaped like ``scales``."""
    scales = np.asarray(scales)
    _check_shape(scales.shape)
    s = snap_scales(scales).ravel()
    q = decoder.decode(_constriction().stream.model.QuantizedGaussian(-bound, bound), np.zeros_like(s), s)
    return np.asarray(q, dtype=np.int32).reshape(scales.shape)


def write_symbol(encoder, value: int, probs: np.ndarray) -> None:
    """Code one integer ``value`` in 0..len(probs)-1 under the fixed probabilities ``probs`` (e.g. a header flag)."""
    if not 0 <= int(value) < len(probs):
        raise ValueError(f"symbol {value} is outside 0..{len(probs) - 1}")
    if len(probs) == 1:  # the only possible value: certain, nothing to write
        return
    model = _constriction().stream.model.Categorical(np.asarray(probs, dtype=np.float64), perfect=False)
    encoder.encode(np.array([int(value)], dtype=np.int32), model)


def read_symbol(decoder, probs: np.ndarray) -> int:
    """Decode what ``write_symbol`` wrote with the same ``probs``."""
    if len(probs) == 1:
        return 0
    model = _constriction().stream.model.Categorical(np.asarray(probs, dtype=np.float64), perfect=False)
    return int(decoder.decode(model, 1)[0])


def _check_shape(shape: Sequence[int]) -> None:
    if len(shape) < 1 or min(shape) < 1 or math.prod(shape) > MAX_LATENT_VALUES:
        raise ValueError(f"absurd latent shape {tuple(shape)}")


def frame_bitstream(body: bytes) -> bytes:
    """``body`` behind the 12-byte frame: magic ``VXN3``, the body length, the body's CRC32."""
    return FRAME.pack(MAGIC, len(body), zlib.crc32(body)) + body


def unframe_bitstream(data: bytes, name: str = "bitstream") -> bytes:
    """The body of a framed bitstream, checked: a wrong magic, a cut or padded body or a CRC mismatch raise
    a ``ValueError`` that names ``name`` (e.g. the file it was read from)."""
    data = bytes(data)
    if len(data) < FRAME.size or data[:4] != MAGIC:
        raise ValueError(f"{name} is not a VoxEn bitstream (bad magic bytes {data[:4]!r}, expected {MAGIC!r})")
    _, length, crc = FRAME.unpack_from(data)
    body = data[FRAME.size:]
    if len(body) < length:
        raise ValueError(f"{name} is cut short: its header announces {length} body bytes, {len(body)} are there")
    if len(body) > length:
        raise ValueError(f"{name} has {len(body) - length} bytes after its announced end ({length} body bytes)")
    if zlib.crc32(body) != crc:
        raise ValueError(f"{name} is corrupted: the CRC32 of its body does not match its header")
    return body


def _checked_pmf(pmf: PmfFn, c: int, lo: int, hi: int) -> np.ndarray:
    p = np.asarray(pmf(c, lo, hi), dtype=np.float64)
    if p.shape != (hi - lo + 1,) or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError(f"pmf for channel {c} on [{lo}, {hi}] must be {hi - lo + 1} finite non-negative "
                         f"numbers with a positive sum, got shape {p.shape}")
    return p
