"""vaelib.zoo: trained models loaded back without a trainer (the VoxEn reference loading is in test_voxen_train.py)."""
import json

import numpy as np
import pytest
import torch

from vaelib.mmdvae import MMDVAE, MMDVAEConfig, decode
from vaelib.train import CHECKPOINT, TrainConfig, save_checkpoint
from vaelib.zoo import load_mmdvae


def test_an_mmdvae_run_folder_loads_back_and_bad_ones_are_named(tmp_path):
    torch.manual_seed(0)
    model = MMDVAE(MMDVAEConfig(image_size=16, channels=(4, 8), hidden=16, z_dim=3))
    opt = torch.optim.Adam(model.parameters())
    save_checkpoint(tmp_path / CHECKPOINT, model, opt, 5, {"model": model.config.to_dict(),
                                                            "train": TrainConfig().to_dict()}, {})
    loaded = load_mmdvae(tmp_path)
    z = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    assert not loaded.training and np.array_equal(decode(loaded, z), decode(model.eval(), z))
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    torch.save({**state, "config": json.dumps({"voxen": {}})}, tmp_path / CHECKPOINT)
    with pytest.raises(ValueError, match=f"{CHECKPOINT} is not an MMD-VAE run"):
        load_mmdvae(tmp_path)
    (tmp_path / CHECKPOINT).write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=f"{CHECKPOINT} is not a readable checkpoint"):
        load_mmdvae(tmp_path)
    with pytest.raises(FileNotFoundError, match="no trained MMD-VAE in .*run chapter 2"):
        load_mmdvae(tmp_path / "nothing")
