"""VoxEn: a video autoencoder of 3D convolutions, made into a real codec.

A clip of T frames of SxS RGB is a cube of pixels, a tensor (B, 3, T, S, S). The encoder is a
stack of Conv3d layers whose strides are larger along time than along space (neighbouring frames
are nearly the same, so time holds the most redundancy); the decoder mirrors it with
ConvTranspose3d layers. The latent is quantized to integers (uniform noise or straight-through
rounding while training), a per-channel entropy model gives its rate, and
``vaelib.codecs.encode_latent`` turns it into bytes with a real range coder.

Everything a reader needs to know the model is in this file: ``VoxEnConfig`` (JSON round trip),
``VoxEn`` (encoder, decoder, entropy model, ``compress``/``decompress``) and ``rd_loss`` (rate +
lambda * distortion). Training and rate-distortion evaluation live in ``vaelib.voxen_train``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .codecs import decode_latent, encode_latent
from .config import JSONConfig
from .data import clips_to_tensor, tensor_to_clips

# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


@dataclass
class VoxEnConfig(JSONConfig):
    """Shape of a VoxEn model. ``channels[i]`` and ``strides[i]`` (time, height, width) describe encoder layer i.

    The last entry of ``channels`` is the number of latent channels. Each dimension of the clip
    must be divisible by the product of that dimension's strides.
    """
    clip_len: int = 64
    image_size: int = 64
    channels: list[int] = field(default_factory=lambda: [32, 64, 16])
    strides: list[list[int]] = field(default_factory=lambda: [[2, 2, 2], [4, 2, 2], [2, 1, 1]])
    quantization: str = "noise"  # "noise": additive uniform noise; "ste": straight-through rounding
    mixture: int = 3  # logistic components per channel in the entropy model
    latent_init_gain: float = 10.0  # scales the last encoder layer's initial weights (see VoxEn)

    def __post_init__(self) -> None:
        self.channels = [int(c) for c in self.channels]
        self.strides = [[int(s) for s in st] for st in self.strides]
        if len(self.channels) != len(self.strides) or not self.channels:
            raise ValueError(f"channels {self.channels} and strides {self.strides} need one entry per layer")
        if any(len(s) != 3 or min(s) < 1 for s in self.strides):
            raise ValueError(f"each stride must be three positive integers (time, height, width): {self.strides}")
        if any(c < 1 for c in self.channels):
            raise ValueError(f"channels must be positive: {self.channels}")
        if self.quantization not in ("noise", "ste"):
            raise ValueError(f"quantization must be 'noise' or 'ste', not {self.quantization!r}")
        t, s = self.total_stride
        for name, size, st in (("clip_len", self.clip_len, t), ("image_size", self.image_size, s[0]),
                               ("image_size", self.image_size, s[1])):
            if size % st:
                raise ValueError(f"{name}={size} is not divisible by the total stride {st} along that axis")

    @property
    def total_stride(self) -> tuple[int, tuple[int, int]]:
        """Product of the strides along time, and along (height, width)."""
        st = np.prod(np.array(self.strides), axis=0)
        return int(st[0]), (int(st[1]), int(st[2]))

    @property
    def latent_shape(self) -> tuple[int, int, int, int]:
        """(channels, time, height, width) of one clip's latent."""
        t, (h, w) = self.total_stride
        return (self.channels[-1], self.clip_len // t, self.image_size // h, self.image_size // w)

    @property
    def compression_ratio(self) -> float:
        """Input values per latent value: (3 * T * S * S) / (C * t * h * w), before entropy coding."""
        return 3 * self.clip_len * self.image_size ** 2 / float(np.prod(self.latent_shape))


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


def _kernel(stride: Sequence[int]) -> tuple[int, int, int]:
    # kernel = stride + 2 with padding 1: a strided conv divides each axis exactly by its stride,
    # and the transposed conv with the same kernel, stride and padding restores it exactly.
    return tuple(int(s) + 2 for s in stride)


class EntropyModel(nn.Module):
    """A per-channel parametric prior: a mixture of ``K`` logistics, probabilities of integer bins.

    ``likelihood(y)`` is P(y - 1/2 < Y < y + 1/2) under channel c's mixture, differentiable in y
    and in the parameters; ``pmf(c, lo, hi)`` gives the same probabilities as float64 numpy for the
    range coder.
    """
    def __init__(self, channels: int, mixture: int = 3):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(channels, mixture))
        self.means = nn.Parameter(torch.linspace(-1.0, 1.0, mixture).repeat(channels, 1))
        self.log_scales = nn.Parameter(torch.zeros(channels, mixture))

    def _cdf(self, x: Tensor) -> Tensor:
        # x: (B, C, ...) -> mixture CDF, same shape
        shape = (1, -1) + (1,) * (x.dim() - 2) + (self.means.shape[1],)
        w = torch.softmax(self.logits, dim=1).view(shape)
        mu, s = self.means.view(shape), self.log_scales.exp().view(shape)
        return (w * torch.sigmoid((x.unsqueeze(-1) - mu) / s)).sum(-1)

    def likelihood(self, y: Tensor, floor: float = 1e-9) -> Tensor:
        """Probability of the unit bin around each value of ``y`` (B, C, ...), floored for stability."""
        return (self._cdf(y + 0.5) - self._cdf(y - 0.5)).clamp_min(floor)

    @torch.no_grad()
    def pmf(self, channel: int, lo: int, hi: int) -> np.ndarray:
        """Probabilities (float64) of the integers lo..hi in ``channel``, for the range coder."""
        w = torch.softmax(self.logits[channel].double(), 0).cpu().numpy()
        mu = self.means[channel].double().cpu().numpy()
        s = self.log_scales[channel].double().exp().cpu().numpy()
        k = np.arange(lo, hi + 1, dtype=np.float64)[:, None]

        def cdf(x: np.ndarray) -> np.ndarray:
            with np.errstate(over="ignore"):  # far tails: exp overflows to inf, the CDF to exactly 0
                return (w / (1.0 + np.exp(-(x - mu) / s))).sum(1)

        # bins the float64 difference rounds to 0 still get the coder's smallest probability
        return np.maximum(cdf(k + 0.5) - cdf(k - 0.5), 0.0)


class VoxEn(nn.Module):
    """Conv3d encoder, ConvTranspose3d decoder, per-channel entropy model."""
    def __init__(self, config: VoxEnConfig):
        super().__init__()
        self.config = config
        widths = [3] + config.channels
        enc: list[nn.Module] = []
        for i, st in enumerate(config.strides):
            enc.append(nn.Conv3d(widths[i], widths[i + 1], _kernel(st), stride=tuple(st), padding=1))
            if i < len(config.strides) - 1:
                enc.append(nn.LeakyReLU(0.2))
        self.encoder = nn.Sequential(*enc)
        with torch.no_grad():
            # A freshly initialised encoder outputs values of about 0.1, which rounding (or the unit
            # noise standing in for it) would wipe out; starting the latent on the scale of the
            # quantization step lets the decoder learn from it at once (measured: +1 dB at 200 steps).
            enc[-1].weight.mul_(config.latent_init_gain)
            enc[-1].bias.mul_(config.latent_init_gain)
        dec: list[nn.Module] = []
        for i in reversed(range(len(config.strides))):
            st = config.strides[i]
            dec.append(nn.ConvTranspose3d(widths[i + 1], widths[i], _kernel(st), stride=tuple(st), padding=1))
            if i > 0:
                dec.append(nn.LeakyReLU(0.2))
        self.decoder = nn.Sequential(*dec)
        self.entropy = EntropyModel(config.channels[-1], config.mixture)

    def encode(self, x: Tensor) -> Tensor:
        """Clips (B, 3, T, S, S) in [0, 1] -> continuous latent (B, C, t, h, w)."""
        expected = (3, self.config.clip_len, self.config.image_size, self.config.image_size)
        if tuple(x.shape[1:]) != expected:
            raise ValueError(f"VoxEn expects clips shaped (B, {expected}), got {tuple(x.shape)}")
        return self.encoder(x)

    def decode(self, y: Tensor) -> Tensor:
        """Latent (B, C, t, h, w) -> reconstructed clips (B, 3, T, S, S), unclamped."""
        return self.decoder(y)

    def quantize(self, y: Tensor, mode: str | None = None) -> Tensor:
        """"noise": y + U(-1/2, 1/2); "ste": round(y) forward, identity gradient; "round": plain rounding."""
        mode = mode or (self.config.quantization if self.training else "round")
        if mode == "noise":
            return y + torch.empty_like(y).uniform_(-0.5, 0.5)
        if mode == "ste":
            return y + (torch.round(y) - y).detach()
        if mode == "round":
            return torch.round(y)
        raise ValueError(f"unknown quantization mode {mode!r}")

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Reconstruction, quantized latent and the rate in bits per pixel estimated from the entropy model."""
        y = self.encode(x)
        y_hat = self.quantize(y)
        x_hat = self.decode(y_hat)
        bits = -torch.log2(self.entropy.likelihood(y_hat)).sum()
        n_pixels = x.shape[0] * x.shape[2] * x.shape[3] * x.shape[4]
        return {"x_hat": x_hat, "y_hat": y_hat, "bpp": bits / n_pixels}

    # --- the real codec -------------------------------------------------------------------------

    @torch.no_grad()
    def compress(self, clip: np.ndarray) -> tuple[bytes, np.ndarray]:
        """Encode one uint8 clip (T, S, S, 3) to bytes; return (bytes, the integer latent (C, t, h, w))."""
        y = self.encode(clips_to_tensor(clip[None], device=self._device()))
        q = torch.round(y)[0].cpu().numpy().astype(np.int32)
        return encode_latent(q, self.entropy.pmf), q

    @torch.no_grad()
    def decompress(self, data: bytes) -> np.ndarray:
        """Decode bytes of ``compress`` to a uint8 clip (T, S, S, 3)."""
        q = decode_latent(data, self.entropy.pmf)
        x_hat = self.decode(torch.from_numpy(q).float()[None].to(self._device()))
        return tensor_to_clips(x_hat)[0]

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.no_grad()
    def layer_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """(layer, output shape (C, T, H, W)) through the encoder and the decoder, for one clip."""
        c = self.config
        h = torch.zeros(1, 3, c.clip_len, c.image_size, c.image_size, device=self._device())
        rows = [("input", tuple(h.shape[1:]))]
        for name, part in (("encoder", self.encoder), ("decoder", self.decoder)):
            for i, layer in enumerate(part):
                h = layer(h)
                if isinstance(layer, (nn.Conv3d, nn.ConvTranspose3d)):
                    rows.append((f"{name}.{i} {type(layer).__name__} stride {tuple(layer.stride)}", tuple(h.shape[1:])))
        return rows


def rd_loss(model: VoxEn, batch: Tensor, lmbda: float) -> dict[str, Tensor]:
    """Rate + lambda * distortion, CompressAI's convention: ``bpp + lmbda * 255^2 * MSE`` on [0, 1] pixels."""
    out = model(batch)
    mse = F.mse_loss(out["x_hat"], batch)
    psnr = 10 * torch.log10(1.0 / mse.detach().clamp_min(1e-10))
    return {"loss": out["bpp"] + lmbda * 255 ** 2 * mse, "bpp": out["bpp"].detach(), "mse": mse.detach(),
            "psnr": psnr}
