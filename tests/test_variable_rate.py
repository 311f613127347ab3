"""Variable-rate VoxEn (gain units): gains of 1 are the single-rate model, streams carry their rate and round-trip
at trained and interpolated rates, the rate follows lambda, and single-rate streams decode as before."""
from pathlib import Path

import numpy as np
import pytest
import torch

from vaelib.data import clips_to_tensor, tensor_to_clips
from vaelib.losses import rd_loss
from vaelib.voxen import VoxEn, VoxEnConfig
from vaelib.vxn import choose_model, decode_array, encode_array

torch.set_num_threads(1)
SMALL = dict(clip_len=8, image_size=16, channels=[8, 4], strides=[[4, 2, 2], [2, 2, 2]], hyper_channels=3)
RATES = [1e-3, 4e-3, 1.6e-2]
OLD_STREAM = Path(__file__).parent / "fixtures" / "voxen_single_rate_stream.pt"


def _clip(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.random((1, 16, 16, 3))
    return np.clip(255 * (0.7 * base + 0.3 * rng.random((8, 16, 16, 3))), 0, 255).astype(np.uint8)


def _pair(entropy: str = "hyperprior") -> tuple[VoxEn, VoxEn]:
    """A random single-rate model and a variable-rate one with its weights and gains of 1."""
    torch.manual_seed(0)
    base = VoxEn(VoxEnConfig(**SMALL, entropy=entropy)).eval()
    variable = VoxEn(VoxEnConfig(**SMALL, entropy=entropy, rates=RATES)).eval()
    missing, unexpected = variable.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and missing and all("gain" in k for k in missing)
    return base, variable


def _set_gains(model: VoxEn) -> None:
    """Gains rising with lambda (finer quantization, more bits: e^0.5 to e^2.5), inverse gains undoing them."""
    with torch.no_grad():
        steps = torch.linspace(0.5, 2.5, len(model.config.rates))[:, None]
        for name, sign in (("log_gain", 1), ("log_inverse_gain", -1), ("log_side_gain", 1),
                           ("log_side_inverse_gain", -1)):
            if hasattr(model, name):
                p = getattr(model, name)
                p.copy_(sign * steps + 0.05 * torch.randn_like(p))


def test_single_rate_config_and_state_dict_are_unchanged():
    cfg = VoxEnConfig(**SMALL)
    assert "rates" not in cfg.to_dict() and VoxEnConfig.from_dict(cfg.to_dict()) == cfg
    assert not any("gain" in k for k in VoxEn(cfg).state_dict())
    vr = VoxEnConfig(**SMALL, rates=RATES)
    assert VoxEnConfig.from_json(vr.to_json()) == vr and vr.to_dict()["rates"] == RATES
    for bad in ([1e-3, 1e-3], [4e-3, 1e-3], [0.0, 1e-3], [float("nan")]):
        with pytest.raises(ValueError, match="rates"):
            VoxEnConfig(**SMALL, rates=bad)


@pytest.mark.parametrize("entropy", ["hyperprior", "factorized"])
def test_gains_of_one_reproduce_the_base_model_exactly(entropy):
    base, variable = _pair(entropy)
    x = clips_to_tensor(_clip()[None])
    with torch.no_grad():
        ref = base(x, mode="round")
        for rate in (RATES[0], 2e-3, RATES[-1]):
            out = variable(x, mode="round", rate=rate)
            assert torch.equal(out["x_hat"], ref["x_hat"]) and torch.equal(out["bpp"], ref["bpp"])
        torch.manual_seed(1)
        a = rd_loss(base.train(), x, 4e-3)["loss"]
        torch.manual_seed(1)
        b = rd_loss(variable.train(), x, 4e-3)["loss"]
    assert torch.equal(a, b)
    data, q = variable.eval().compress(_clip(), 2e-3)
    base_data, base_q = base.eval().compress(_clip(), 2e-3)
    assert np.array_equal(q, base_q) and len(data) >= len(base_data)    # the same latent; plus the rate header
    assert np.array_equal(variable.decompress(data), base.decompress(base_data))


@pytest.mark.parametrize("rate", [RATES[1], 2.5e-3, RATES[-1]])
def test_variable_rate_streams_round_trip_bit_exactly(rate):
    _, model = _pair()
    _set_gains(model)
    clip = _clip(1)
    data, q = model.compress(clip, rate)
    coded = float(np.float32(rate))
    assert model.stream_rate(data) == coded                              # the header says the rate
    assert np.array_equal(model.decode_bitstream(data), q)
    with torch.no_grad():   # what the encoder meant: the decoder of the rounded latent at the coded rate
        y = model.encode(clips_to_tensor(clip[None]), coded)
        expected = tensor_to_clips(model.decode(torch.round(y), coded))[0]
    assert np.array_equal(model.decompress(data), expected)
    assert abs(model.estimated_bits(clip, rate) / 8 - len(data)) < 0.03 * len(data) + 4  # it counts the header
    refined, q = model.compress(clip, rate, refine_steps=3)       # a latent refined for the rate codes alike
    assert model.stream_rate(refined) == coded and np.array_equal(model.decode_bitstream(refined), q)


def test_rate_rises_with_lambda_through_trained_and_interpolated_rates():
    _, model = _pair()
    _set_gains(model)
    clip = _clip(2)
    lambdas = np.exp(np.linspace(np.log(RATES[0]), np.log(RATES[-1]), 9))
    sizes = [model.estimated_bits(clip, float(lam)) for lam in lambdas]
    assert all(b > a for a, b in zip(sizes, sizes[1:])), sizes
    assert sizes[-1] > 2 * sizes[0]
    # exponential interpolation: halfway in log lambda the gain is the geometric mean of its neighbours'
    mid = float(np.sqrt(RATES[0] * RATES[1]))
    g = model.gain(model.log_gain, mid).flatten()
    assert torch.allclose(g, (model.log_gain[0].exp() * model.log_gain[1].exp()).sqrt(), rtol=1e-5)


def test_rates_outside_the_trained_range_are_refused():
    _, model = _pair()
    with pytest.raises(ValueError, match="lambda from 0.001 to 0.016"):
        model.compress(_clip(), 0.1)
    with pytest.raises(ValueError, match="rate None"):
        model.compress(_clip())
    data, _ = model.compress(_clip(), 2e-3)
    other = VoxEn(VoxEnConfig(**SMALL, rates=[1e-2, 2e-2, 4e-2])).eval()
    other.load_state_dict(model.state_dict())
    with pytest.raises(ValueError, match="clip.vxn does not decode with this VoxEn"):
        other.decompress(data, "clip.vxn")


def test_a_single_rate_stream_written_before_gain_units_still_decodes():
    saved = torch.load(OLD_STREAM, weights_only=True)
    model = VoxEn(VoxEnConfig.from_dict(saved["config"])).eval()
    model.load_state_dict(saved["state"])
    stream = saved["stream"].numpy().tobytes()
    assert np.array_equal(model.decompress(stream), saved["decoded"].numpy())
    data, q = model.compress(saved["clip"].numpy())
    assert data == stream and np.array_equal(q, saved["latent"].numpy())   # and is written byte for byte as then


def test_a_vxn_file_codes_at_any_rate_of_one_variable_rate_model():
    base, model = _pair()
    _set_gains(model)
    frames = np.concatenate([_clip(3), _clip(4)[:5]])      # 13 frames of 16 x 16: a padded last clip
    models = {RATES[1]: model, 0.1: base}                  # beside a single-rate model at another lambda
    assert choose_model(models, 2.5e-3) == (RATES[1], 2.5e-3) and choose_model(models, 0.05) == (0.1, 0.05)
    sizes = []
    for lam in (RATES[0], 2.5e-3, RATES[-1]):
        data = encode_array(frames, models, lmbda=lam)
        out, header = decode_array(data, {RATES[1]: model})
        assert header.lmbda == lam and out.shape == frames.shape
        expected = [model.decompress(model.compress(c, lam)[0]) for c in (frames[:8], np.concatenate(
            [frames[8:], np.repeat(frames[-1:], 3, axis=0)]))]
        assert np.array_equal(out, np.concatenate(expected)[:13])
        sizes.append(len(data))
    assert sizes[0] < sizes[1] < sizes[2]
