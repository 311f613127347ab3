"""The MMD-VAE model: preset sizes, shapes, and batched embedding that matches frame-at-a-time embedding."""
import numpy as np
import pytest
import torch

from vaelib.models import (MMDVAE, MMDVAEConfig, decode, embed, n_parameters, reconstruct, sample_prior, to_tensor,
                           to_uint8)

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
    assert original.cfg.z_dim == 100 and original.cfg.hidden == 3072
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
