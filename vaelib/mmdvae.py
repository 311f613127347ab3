"""The MMD-VAE: a DCGAN-style convolutional encoder to a ``z_dim`` code and a mirrored decoder.

Encoder: ``len(channels)`` convolutions (kernel 4, stride 2, padding 1, each halving the image),
a fully connected layer of ``hidden`` units, and a linear map to the code z. Decoder: the mirror
image, ending in a sigmoid so pixels lie in [0, 1]. The encoder is deterministic, as in the
reference InfoVAE implementation: the MMD term shapes the distribution of the codes of all
frames together, so no per-frame noise is needed.

Two presets:

- ``default``: 32 -> 64 -> 128 channels, 256 hidden units, z_dim 16; about 4.5 M parameters,
  trainable on two CPU cores in minutes.
- ``original``: the widths of the original project, 192 -> 384 -> 768 channels, 3072 hidden units,
  z_dim 100; about 314 M parameters, nearly all in the two layers between 768 x 8 x 8 maps and
  the 3072 hidden units.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .config import JSONConfig
from .data import to_tensor, to_uint8
from .losses import MMDLossConfig, mmd_vae_loss
from .metrics import psnr, ssim

PRESETS: dict[str, dict] = {
    "default": {"channels": (32, 64, 128), "hidden": 256, "z_dim": 16},
    "original": {"channels": (192, 384, 768), "hidden": 3072, "z_dim": 100},
}


@dataclass
class MMDVAEConfig(JSONConfig):
    """Shape of an MMD-VAE. Build one from a preset with ``MMDVAEConfig.from_preset("default", z_dim=8)``."""
    image_size: int = 64
    channels: tuple[int, ...] = field(default_factory=lambda: PRESETS["default"]["channels"])
    hidden: int = PRESETS["default"]["hidden"]
    z_dim: int = PRESETS["default"]["z_dim"]
    preset: str = "default"

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        if not self.channels:
            raise ValueError("channels must name at least one convolution width")
        down = 2 ** len(self.channels)
        if self.image_size % down:
            raise ValueError(f"image_size {self.image_size} must be divisible by 2**len(channels) = {down}")
        if self.z_dim < 1 or self.hidden < 1:
            raise ValueError(f"z_dim and hidden must be positive, got {self.z_dim} and {self.hidden}")

    @classmethod
    def from_preset(cls, name: str = "default", **overrides) -> MMDVAEConfig:
        """The config of preset ``name`` (``default`` or ``original``), with any field overridden."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {list(PRESETS)}")
        overrides = {k: v for k, v in overrides.items() if v is not None}
        return replace(cls(**PRESETS[name], preset=name), **overrides)


class MMDVAE(nn.Module):
    """Encoder ``encode(x) -> z`` and decoder ``decode(z) -> x_hat``; ``forward(x) -> (x_hat, z)``.

    Images are float tensors (B, 3, S, S) in [0, 1].
    """

    def __init__(self, cfg: MMDVAEConfig):
        super().__init__()
        self.config = cfg
        ch = (3, *cfg.channels)
        self.side = cfg.image_size // 2 ** len(cfg.channels)
        flat = ch[-1] * self.side * self.side
        enc: list[nn.Module] = []
        for cin, cout in zip(ch[:-1], ch[1:]):
            enc += [nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.encoder = nn.Sequential(*enc, nn.Flatten(), nn.Linear(flat, cfg.hidden), nn.LeakyReLU(0.2),
                                     nn.Linear(cfg.hidden, cfg.z_dim))
        dec: list[nn.Module] = [nn.Linear(cfg.z_dim, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, flat), nn.ReLU(),
                                nn.Unflatten(1, (ch[-1], self.side, self.side))]
        rev = ch[::-1]
        for i, (cin, cout) in enumerate(zip(rev[:-1], rev[1:])):
            dec.append(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1))
            dec.append(nn.Sigmoid() if i == len(rev) - 2 else nn.ReLU())
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return self.decode(z), z


def n_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def embed(model: MMDVAE, frames: np.ndarray, batch_size: int = 256, progress: bool = True) -> np.ndarray:
    """Codes of all ``frames`` (N, S, S, 3) uint8 as float32 (N, z_dim), in order; batched, no gradients."""
    model.eval()
    device = _device_of(model)
    out = np.empty((len(frames), model.config.z_dim), dtype=np.float32)
    with torch.inference_mode():
        for i in tqdm(range(0, len(frames), batch_size), desc="embed", disable=not progress, leave=False):
            out[i:i + batch_size] = model.encode(to_tensor(frames[i:i + batch_size], device)).float().cpu().numpy()
    return out


def decode(model: MMDVAE, z: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Decode codes ``z`` (N, z_dim) into uint8 frames (N, S, S, 3)."""
    model.eval()
    device = _device_of(model)
    z = np.atleast_2d(np.asarray(z, dtype=np.float32))
    size = model.config.image_size
    out = np.empty((len(z), size, size, 3), dtype=np.uint8)  # filled in place: no second copy of all frames
    with torch.inference_mode():
        for i in range(0, len(z), batch_size):
            out[i:i + batch_size] = to_uint8(model.decode(torch.from_numpy(z[i:i + batch_size]).to(device)))
    return out


def reconstruct(model: MMDVAE, frames: np.ndarray, batch_size: int = 256, progress: bool = True) -> np.ndarray:
    """Reconstructions of ``frames`` (N, S, S, 3) uint8, as uint8 of the same shape; batched, no gradients."""
    model.eval()
    device = _device_of(model)
    out = np.empty(np.shape(frames), dtype=np.uint8)
    with torch.inference_mode():
        for i in tqdm(range(0, len(frames), batch_size), desc="reconstruct", disable=not progress, leave=False):
            out[i:i + batch_size] = to_uint8(model(to_tensor(frames[i:i + batch_size], device))[0])
    return out


def sample_prior(model: MMDVAE, n: int, seed: int = 0) -> np.ndarray:
    """Decode ``n`` samples of the prior N(0, I) into uint8 frames."""
    z = torch.randn(n, model.config.z_dim, generator=torch.Generator().manual_seed(seed))
    return decode(model, z.numpy())


def mmd_vae_val_fn(frames: np.ndarray, loss_cfg: MMDLossConfig, max_frames: int = 256,
                   batch_size: int = 256) -> Callable[[nn.Module], dict[str, float]]:
    """A ``val_fn`` for ``vaelib.train.train``: loss terms, PSNR and SSIM on held-out ``frames``.

    Uses up to ``max_frames`` frames spread evenly over ``frames`` (the same ones every time); the
    MMD term is measured on all of them at once against as many prior samples (seeded, so it repeats).
    """
    if len(frames) == 0:
        raise ValueError("no validation frames")
    pick = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int))
    chosen = np.asarray(frames[pick])

    def val_fn(model: nn.Module) -> dict[str, float]:
        device = _device_of(model)
        x = to_tensor(chosen, device)
        x_hat = torch.cat([model(x[i:i + batch_size])[0] for i in range(0, len(x), batch_size)])
        z = torch.cat([model.encode(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
        out = {k: float(v) for k, v in
               mmd_vae_loss(x, x_hat, z, loss_cfg, torch.Generator(device=device).manual_seed(0)).items()}
        rec = to_uint8(x_hat)
        return {**out, "psnr": psnr(chosen, rec), "ssim": ssim(chosen, rec)}
    return val_fn

