"""Entropy coding of integer latents: bit-exact round trips, rates near the information, refused damage."""
import numpy as np
import pytest

from vaelib import bitstream


def encode_latent(symbols, pmf, bound=255):
    enc = bitstream.new_encoder()
    bitstream.write_factorized(enc, symbols, pmf, bound)
    return bitstream.finish_bitstream(enc)


def decode_latent(data, pmf, shape, bound=255, name="bitstream"):
    return bitstream.read_factorized(bitstream.open_bitstream(data, name), shape, pmf, bound)


def laplace_pmf(scale: float):
    def pmf(c: int, lo: int, hi: int) -> np.ndarray:
        k = np.arange(lo, hi + 1)
        return np.exp(-np.abs(k) / (scale * (c + 1)))
    return pmf


def laplace_latent(seed=0, shape=(4, 3, 8, 8)):
    rng = np.random.default_rng(seed)
    q = np.round(rng.laplace(0, 1.0, size=shape) * (np.arange(shape[0]) + 1).reshape(-1, 1, 1, 1)).astype(np.int32)
    return q


def test_latent_round_trip_bit_for_bit():
    q = laplace_latent()
    q[1, 0, 0, 0] = 300          # an outlier far in the tail still codes exactly
    q[2] = -7                    # a constant channel
    data = encode_latent(q, laplace_pmf(1.0), bound=400)
    back = decode_latent(data, laplace_pmf(1.0), q.shape, bound=400)
    assert back.dtype == np.int32 and back.shape == q.shape
    assert np.array_equal(back, q)
    assert encode_latent(back, laplace_pmf(1.0), bound=400) == data   # deterministic
    with pytest.raises(ValueError, match="exceed the coder's range"):
        encode_latent(q, laplace_pmf(1.0), bound=255)


def test_latent_bytes_close_to_the_model_information():
    q = laplace_latent(seed=1, shape=(3, 4, 16, 16))
    pmf, bound = laplace_pmf(1.0), 255
    info_bits = 0.0
    for c in range(q.shape[0]):
        p = pmf(c, -bound, bound)
        p = p / p.sum()
        info_bits += -np.log2(p[q[c].ravel() + bound]).sum()
    n_bytes = len(encode_latent(q, pmf))
    # the range coder gets within a few words of the ideal code length under the same model
    assert info_bits / 8 <= n_bytes <= info_bits / 8 * 1.02 + bitstream.FRAME.size + 16
    # and a worse model costs more bytes
    assert len(encode_latent(q, laplace_pmf(0.2))) > n_bytes


def test_gaussian_coding_round_trip_and_rate():
    rng = np.random.default_rng(4)
    scales = np.exp(rng.uniform(np.log(0.05), np.log(40.0), size=(8, 2, 16, 16)))
    q = np.clip(np.round(rng.normal(0, scales)), -255, 255).astype(np.int32)
    z = laplace_latent(seed=5, shape=(2, 2, 4, 4))
    enc = bitstream.new_encoder()
    bitstream.write_factorized(enc, z, laplace_pmf(1.0), 255)     # side information first, in the same stream
    bitstream.write_gaussian(enc, q, scales, 255)
    data = bitstream.finish_bitstream(enc)
    dec = bitstream.open_bitstream(data)
    assert np.array_equal(bitstream.read_factorized(dec, z.shape, laplace_pmf(1.0), 255), z)
    assert np.array_equal(bitstream.read_gaussian(dec, scales, 255), q)
    # bytes close to the information under the snapped scales
    from scipy.stats import norm

    s = bitstream.snap_scales(scales)
    half_step = np.log(bitstream.SCALE_TABLE[1] / bitstream.SCALE_TABLE[0]) / 2
    assert np.all(np.abs(np.log(s / np.clip(scales, bitstream.SCALE_MIN, None))) <= half_step + 1e-9)
    p = norm.cdf((np.abs(q) + 0.5) / s) - norm.cdf((np.abs(q) - 0.5) / s)
    enc = bitstream.new_encoder()
    bitstream.write_gaussian(enc, q, scales, 255)
    n_bytes = len(bitstream.finish_bitstream(enc)) - bitstream.FRAME.size
    info = -np.log2(np.maximum(p, 1e-12)).sum() / 8
    assert info * 0.99 <= n_bytes <= info * 1.02 + 16


def test_latent_errors_are_clear():
    with pytest.raises(ValueError, match="magic"):
        decode_latent(b"nope" + bytes(20), laplace_pmf(1.0), (1, 4))
    with pytest.raises(ValueError, match="integer"):
        encode_latent(np.full((2, 3), 0.5), laplace_pmf(1.0))
    with pytest.raises(ValueError, match="pmf"):
        encode_latent(laplace_latent(), lambda c, lo, hi: np.ones(3))
    with pytest.raises(ValueError, match="absurd latent shape"):
        decode_latent(encode_latent(laplace_latent(), laplace_pmf(1.0)), laplace_pmf(1.0),
                             (65535, 65535, 65535))


def test_damaged_bitstreams_are_refused_by_name():
    q = laplace_latent()
    data = encode_latent(q, laplace_pmf(1.0))

    def dec(d, **kw):
        return decode_latent(d, laplace_pmf(1.0), q.shape, **kw)
    with pytest.raises(ValueError, match="clip.vxn is cut short"):
        dec(data[:-4], name="clip.vxn")   # a whole word cut off
    with pytest.raises(ValueError, match="cut short"):
        dec(data[:len(data) // 2])
    with pytest.raises(ValueError, match="after its announced end"):
        dec(data + bytes(4))
    flipped = bytearray(data)
    flipped[-3] ^= 0x10
    with pytest.raises(ValueError, match="corrupted"):
        dec(bytes(flipped))
    absurd = bitstream.FRAME.pack(bitstream.MAGIC, 0xFFFFFFFF, 0) + data[bitstream.FRAME.size:]
    with pytest.raises(ValueError, match="announces 4294967295 body bytes"):
        dec(absurd)
    with pytest.raises(ValueError, match="bad magic"):
        dec(b"")
