"""The MMD-VAE model: preset sizes, shapes, and batched embedding that matches frame-at-a-time embedding."""
import numpy as np
import pytest
import torch

from vaelib.data import to_tensor, to_uint8
from vaelib.mmdvae import MMDVAE, MMDVAEConfig, decode, embed, n_parameters, reconstruct, sample_prior

torch.set_num_threads(1)


def test_preset_sizes():
    with torch.device("meta"):  # no memory spent on 314 M parameters
        default = n_parameters(MMDVAE(MMDVAEConfig.from_preset("default")))
        original = MMDVAE(MMDVAEConfig.from_preset("original"))
    assert 1e6 <= default <= 5e6
    assert abs(n_parameters(original) - 314e6) < 1e6
    convs = [m for m in original.encoder if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == \
        [(3, 192, (4, 4), (2, 2)), (192, 384, (4, 4), (2, 2)), (384, 768, (4, 4), (2, 2))]
    assert original.config.z_dim == 100 and original.config.hidden == 3072
    assert MMDVAEConfig.from_preset("original", z_dim=8).z_dim == 8


def test_bad_configs_are_named():
    with pytest.raises(ValueError, match="divisible"):
        MMDVAEConfig(image_size=60)
    with pytest.raises(ValueError, match="unknown preset"):
        MMDVAEConfig.from_preset("huge")


def test_shapes_and_range():
    torch.manual_seed(0)
    model = MMDVAE(MMDVAEConfig(image_size=32, channels=(8, 16), hidden=32, z_dim=5))
    x = torch.rand(3, 3, 32, 32)
    x_hat, z = model(x)
    assert x_hat.shape == x.shape and z.shape == (3, 5)
    assert 0 <= x_hat.min() and x_hat.max() <= 1
    assert torch.equal(model.encode(x), model.encode(x))  # a deterministic encoder


def test_embed_reconstruct_decode():
    torch.manual_seed(0)
    model = MMDVAE(MMDVAEConfig(image_size=16, channels=(4, 8), hidden=16, z_dim=3))
    frames = np.random.default_rng(0).integers(0, 256, (10, 16, 16, 3), dtype=np.uint8)
    z = embed(model, frames, batch_size=4, progress=False)
    one_by_one = np.concatenate([embed(model, frames[i:i + 1], progress=False) for i in range(10)])
    assert z.dtype == np.float32 and z.shape == (10, 3)
    np.testing.assert_allclose(z, one_by_one, rtol=1e-5, atol=1e-6)  # same codes, same order
    assert not np.allclose(z[0], z[1])
    rec = reconstruct(model, frames, batch_size=3, progress=False)
    assert rec.dtype == np.uint8 and rec.shape == frames.shape
    assert np.abs(rec.astype(int) - decode(model, z).astype(int)).max() <= 1  # decode(encode(x)) == reconstruct(x)
    assert sample_prior(model, 4).shape == (4, 16, 16, 3)
    assert np.array_equal(to_uint8(to_tensor(frames)), frames)  # conversions round-trip exactly
    with pytest.raises(ValueError, match="uint8"):
        embed(model, frames.astype(np.float32), progress=False)


def test_latent_sliders_decode_live_and_interpolation_ends_at_the_frames():
    from vaelib.widgets import interpolation_strip, interpolation_widget, latent_directions, latent_sliders

    torch.manual_seed(0)
    model = MMDVAE(MMDVAEConfig(image_size=16, channels=(4, 8), hidden=16, z_dim=3))
    frames = np.random.default_rng(1).integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)
    z = embed(model, frames, progress=False)
    box = latent_sliders(model, z, frames, start=2, scale=1)
    assert len(box.sliders) == 3 and bytes(box.decoded.value).startswith(b"\x89PNG")
    before = bytes(box.decoded.value)
    box.sliders[0].value = 2.5
    assert bytes(box.decoded.value) != before                       # moving a slider redraws
    box.frame.value = 5
    assert all(s.value == 0 for s in box.sliders)           # a new start frame resets the sliders
    import cv2
    png = np.frombuffer(bytes(box.decoded.value), np.uint8)
    shown = cv2.cvtColor(cv2.imdecode(png, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(shown, decode(model, z[5:6])[0])  # and shows that frame's decoded code
    # more dimensions than sliders: principal directions, orthonormal, in order of spread
    wide = np.random.default_rng(2).normal(size=(200, 10)) * np.arange(10, 0, -1)
    dirs, spreads, names = latent_directions(wide, 4)
    assert names == ["pc1", "pc2", "pc3", "pc4"] and np.allclose(dirs @ dirs.T, np.eye(4))
    assert np.all(np.diff(spreads) < 0)
    strip = interpolation_strip(model, z[0], z[7], n=5)
    assert np.array_equal(strip[0], decode(model, z[:1])[0]) and np.array_equal(strip[-1], decode(model, z[7:8])[0])
    assert bytes(interpolation_widget(model, frames, z, 0, 7, n=4).strip.value)[:4] == b"\x89PNG"
