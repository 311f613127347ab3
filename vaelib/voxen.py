"""VoxEn: a video codec of 3D convolutions with a scale hyperprior.

A clip of T frames of SxS RGB is a cube of pixels, a tensor (B, 3, T, S, S). The analysis
transform ``g_a`` is a stack of Conv3d layers whose strides are larger along time than along space
(neighbouring frames are nearly the same, so time holds the most redundancy), with GDN (generalized
divisive normalization, the nonlinearity of learned image codecs) between them; the synthesis
transform ``g_s`` mirrors it with ConvTranspose3d and inverse GDN. Residual blocks of 3x3x3
convolutions (``res_blocks``, none by default) can deepen both at the innermost hidden resolution,
where they cost the least. The latent y is wide (many channels) so that the entropy model, not
the channel count, sets the rate: at a low rate most channels carry nothing and cost almost nothing.

The rate comes from a **scale hyperprior** (Balle et al. 2018): a small 3D-conv hyper-encoder
``h_a`` summarizes |y| into a side latent z, coded under a factorized prior (a per-channel mixture
of logistics); the hyper-decoder ``h_s`` turns z back into one Gaussian scale for every element of
y, which is coded under that Gaussian. ``entropy="factorized"`` drops the hyperprior and codes y
under the per-channel prior (the ablation). While training, uniform noise stands in for rounding.

**Variable rate.** A model with ``config.rates`` (the lambdas it trained for) is one model for every rate in their
range (gain units, Cui et al. 2021): per trained rate a gain per channel scales y before quantization and an inverse
gain rescales it after (likewise z); a rate between two trained ones takes g_i^(1-t) * g_(i+1)^t (t: the position in
log lambda). ``forward``, ``compress`` and ``vaelib.losses.rd_loss`` take the rate (lambda); its stream begins
with it (32 bits), so ``decompress`` needs nothing more. Without ``rates`` (the default) the model, its weights
and its streams are the single-rate VoxEn's.

``compress``/``decompress`` write and read real bytes with ``vaelib.bitstream`` (range coder, framed
by length + CRC32); ``compress`` can first optimize the latent for the one clip (``refine``), which
only the encoder does, and codes a clip that holds a scene cut as two clips when that pays
(``scene_cut``). The network is fully convolutional: it codes clips of any sides that are multiples of
``config.multiple``. Whole videos of any size go into ``.vxn`` files through ``vaelib.vxn`` (``python -m
vaelib.vxn``); training and rate-distortion evaluation live in ``vaelib.voxen_train``, loading in ``vaelib.zoo``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import bitstream
from .config import JSONConfig
from .data import clips_to_tensor, scene_cut, split_at_cut, tensor_to_clips
from .losses import rd_loss

Quantizer = str | Callable[[Tensor], Tensor] | None
"""How a latent is quantized: a mode of ``VoxEn.quantize`` ("noise", "ste", "round"), a function, or None (the
config's mode in training, rounding otherwise)."""

# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


@dataclass
class VoxEnConfig(JSONConfig):
    """Shape of a VoxEn model. ``channels[i]`` and ``strides[i]`` (time, height, width) describe ``g_a`` layer i.

    The last entry of ``channels`` is the number of latent channels. Each dimension of the clip
    must be divisible by the product of that dimension's strides; the latent's, by ``hyper_stride``.
    ``clip_len`` x ``image_size`` x ``image_size`` is the clip the model trains on; the network is fully
    convolutional, so it codes any clip whose sides are multiples of ``multiple`` (``vaelib.vxn`` pads to them).
    """
    clip_len: int = 32
    image_size: int = 64
    # 96 latent channels, not the 128-192 of image codecs: each training step on 2 shared CPU cores costs
    # about linearly in the widths, and the rate is still set by the entropy model (most channels go to 0).
    channels: list[int] = field(default_factory=lambda: [48, 48, 96])
    strides: list[list[int]] = field(default_factory=lambda: [[2, 2, 2], [2, 2, 2], [4, 2, 2]])
    entropy: str = "hyperprior"  # "hyperprior": a Gaussian scale per element; "factorized": per-channel prior
    hyper_channels: int = 32     # channels of the side latent z
    hyper_stride: list[int] = field(default_factory=lambda: [1, 2, 2])
    quantization: str = "noise"  # "noise": additive uniform noise; "ste": straight-through rounding
    mixture: int = 3  # logistic components per channel in the factorized prior
    bound: int = 255  # symbols are coded in [-bound, bound] (values beyond are clamped)
    latent_init_gain: float = 4.0  # scales the last g_a layer's initial weights (see VoxEn)
    # residual 3D blocks at the innermost hidden resolution: before g_a's last layer, after g_s's first
    res_blocks: int = 0
    # a variable-rate model (gain units): the lambdas it trained for, rising; empty: one model, one rate
    rates: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rates = [float(r) for r in self.rates]
        if any(not (math.isfinite(r) and r > 0) for r in self.rates) or any(
                b <= a for a, b in zip(self.rates, self.rates[1:])):
            raise ValueError(f"rates must be positive, finite and strictly rising lambdas, got {self.rates}")
        self.channels = [int(c) for c in self.channels]
        self.strides = [[int(s) for s in st] for st in self.strides]
        self.hyper_stride = [int(s) for s in self.hyper_stride]
        if len(self.channels) != len(self.strides) or not self.channels:
            raise ValueError(f"channels {self.channels} and strides {self.strides} need one entry per layer")
        if any(len(s) != 3 or min(s) < 1 for s in self.strides + [self.hyper_stride]):
            raise ValueError(f"each stride must be three positive integers (time, height, width): {self.strides}, "
                             f"hyper_stride {self.hyper_stride}")
        if self.res_blocks < 0 or len(self.channels) < 2 and self.res_blocks:
            raise ValueError(f"res_blocks must be >= 0 and needs a hidden layer (two or more channels entries): "
                             f"{self.res_blocks}, channels {self.channels}")
        if any(c < 1 for c in self.channels) or self.hyper_channels < 1:
            raise ValueError(f"channels must be positive: {self.channels}, hyper_channels {self.hyper_channels}")
        if self.quantization not in ("noise", "ste"):
            raise ValueError(f"quantization must be 'noise' or 'ste', not {self.quantization!r}")
        if self.entropy not in ("hyperprior", "factorized"):
            raise ValueError(f"entropy must be 'hyperprior' or 'factorized', not {self.entropy!r}")
        if not 1 <= self.bound <= 0x7FFF:
            raise ValueError(f"bound must be in 1..32767, got {self.bound}")
        t, s = self.total_stride
        for name, size, st in (("clip_len", self.clip_len, t), ("image_size", self.image_size, s[0]),
                               ("image_size", self.image_size, s[1])):
            if size % st:
                raise ValueError(f"{name}={size} is not divisible by the total stride {st} along that axis")
        if self.entropy == "hyperprior" and any(n % h for n, h in zip(self.latent_shape[1:], self.hyper_stride)):
            raise ValueError(f"latent {self.latent_shape[1:]} is not divisible by hyper_stride {self.hyper_stride}")

    def to_dict(self) -> dict:
        d = super().to_dict()
        if not self.rates:  # a single-rate model's config (and so its identity, vaelib.vxn.model_id) is as before
            del d["rates"]
        return d

    @property
    def total_stride(self) -> tuple[int, tuple[int, int]]:
        """Product of the strides along time, and along (height, width)."""
        st = np.prod(np.array(self.strides), axis=0)
        return int(st[0]), (int(st[1]), int(st[2]))

    @property
    def multiple(self) -> tuple[int, int, int]:
        """(time, height, width): a clip's sides must be multiples of these (the strides, times the hyperprior's)."""
        t, (h, w) = self.total_stride
        if self.entropy != "hyperprior":
            return t, h, w
        ht, hh, hw = self.hyper_stride
        return t * ht, h * hh, w * hw

    def padded_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        """The smallest (T, H, W) at least this large whose sides are multiples of ``multiple``: what a clip of
        any size is padded to (``pad_clip``) before it is coded."""
        return tuple(-(-n // m) * m for n, m in zip((frames, height, width), self.multiple))

    def latent_shape_of(self, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(channels, time, height, width) of the latent of a clip of ``frames`` frames of ``height`` x ``width``."""
        t, (h, w) = self.total_stride
        return (self.channels[-1], frames // t, height // h, width // w)

    def side_shape_of(self, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(channels, time, height, width) of the side latent z of such a clip."""
        _, t, h, w = self.latent_shape_of(frames, height, width)
        ht, hh, hw = self.hyper_stride
        return (self.hyper_channels, t // ht, h // hh, w // hw)

    @property
    def latent_shape(self) -> tuple[int, int, int, int]:
        """(channels, time, height, width) of one training clip's latent."""
        return self.latent_shape_of(self.clip_len, self.image_size, self.image_size)

    @property
    def side_shape(self) -> tuple[int, int, int, int]:
        """(channels, time, height, width) of one training clip's side latent z."""
        return self.side_shape_of(self.clip_len, self.image_size, self.image_size)

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


def _conv(c_in: int, c_out: int, stride: Sequence[int], transpose: bool = False) -> nn.Module:
    kind = nn.ConvTranspose3d if transpose else nn.Conv3d
    return kind(c_in, c_out, _kernel(stride), stride=tuple(stride), padding=1)


class GDN(nn.Module):
    """Generalized divisive normalization over channels (Balle et al.), 3D: y_i = x_i / sqrt(b_i + sum_j g_ij x_j^2).

    ``inverse=True`` multiplies instead (IGDN, for the synthesis transform). beta and gamma are kept
    positive by taking absolute values.
    """
    def __init__(self, channels: int, inverse: bool = False):
        super().__init__()
        self.inverse = inverse
        self.beta = nn.Parameter(torch.ones(channels))
        self.gamma = nn.Parameter(0.1 * torch.eye(channels))

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        weight, bias = self.gamma.abs().view(c, c, 1, 1, 1), self.beta.abs() + 1e-6
        if torch.is_grad_enabled():
            norm = F.conv3d(x * x, weight, bias)
            return x * torch.sqrt(norm) if self.inverse else x * torch.rsqrt(norm)
        # Coding (no autograd): each voxel on its own, a few frames at a time into the output, so that a large clip
        # (720p) needs the input and the output, not two more temporaries of their size.
        out = torch.empty_like(x)
        step = max(1, GDN_CHUNK // max(1, x[:, :, :1].numel()))
        for a in range(0, x.shape[2], step):
            part = x[:, :, a:a + step]
            norm = F.conv3d(part * part, weight, bias)
            out[:, :, a:a + step] = (norm.sqrt_() if self.inverse else norm.rsqrt_()).mul_(part)
        return out


GDN_CHUNK = 1 << 24
"""Values per chunk of GDN's coding path (64 MB of float32): one 720p frame of 48 channels is 11 M."""


class ResBlock3d(nn.Module):
    """x + conv(relu(conv(x))), 3x3x3 convolutions keeping the shape. The second conv starts at zero, so a
    new block is the identity: inserted into a trained model (``voxen_train.deepen``) it changes nothing."""
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv3d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv3d(channels, channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


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


def gaussian_likelihood(y: Tensor, scale: Tensor, floor: float = 1e-9) -> Tensor:
    """P(y - 1/2 < Y < y + 1/2) for Y ~ N(0, scale^2), scale bounded below as the coder bounds it."""
    s = scale.clamp(bitstream.SCALE_MIN, bitstream.SCALE_MAX) * math.sqrt(2.0)
    v = y.abs()  # symmetric: the upper tail is computed accurately where the lower one would cancel
    return (0.5 * torch.erfc((v - 0.5) / s) - 0.5 * torch.erfc((v + 0.5) / s)).clamp_min(floor)


class VoxEn(nn.Module):
    """g_a / g_s (Conv3d + GDN, and residual blocks), and a scale hyperprior h_a / h_s (or a factorized prior only)."""
    def __init__(self, config: VoxEnConfig):
        super().__init__()
        self.config = c = config
        widths = [3] + c.channels
        n = len(c.strides)
        enc: list[nn.Module] = []
        for i, st in enumerate(c.strides):
            enc.append(_conv(widths[i], widths[i + 1], st))
            if i < n - 1:
                enc.append(GDN(widths[i + 1]))
            if i == n - 2:
                enc += [ResBlock3d(widths[i + 1]) for _ in range(c.res_blocks)]
        self.g_a = nn.Sequential(*enc)
        with torch.no_grad():
            # A freshly initialised encoder outputs values of about 0.1, which rounding (or the unit
            # noise standing in for it) would wipe out; starting the latent on the scale of the
            # quantization step lets the decoder learn from it at once.
            enc[-1].weight.mul_(c.latent_init_gain)
            enc[-1].bias.mul_(c.latent_init_gain)
        dec: list[nn.Module] = []
        for i in reversed(range(n)):
            dec.append(_conv(widths[i + 1], widths[i], c.strides[i], transpose=True))
            if i > 0:
                dec.append(GDN(widths[i], inverse=True))
            if i == n - 1 and n > 1:
                dec += [ResBlock3d(widths[i]) for _ in range(c.res_blocks)]
        self.g_s = nn.Sequential(*dec)
        m, hz = c.channels[-1], c.hyper_channels
        if c.entropy == "hyperprior":
            self.h_a = nn.Sequential(_conv(m, hz, [1, 1, 1]), nn.ReLU(), _conv(hz, hz, c.hyper_stride))
            self.h_s = nn.Sequential(_conv(hz, hz, c.hyper_stride, transpose=True), nn.ReLU(),
                                     _conv(hz, m, [1, 1, 1]), nn.Softplus())
            self.prior = EntropyModel(hz, c.mixture)     # the side latent z's factorized prior
        else:
            self.prior = EntropyModel(m, c.mixture)      # the ablation: y under a per-channel prior
        if c.rates:
            # Gain units (Cui et al. 2021): per trained rate, a gain per latent channel before quantization and an
            # inverse gain after it, on y and on z; kept as logs (0: a gain of 1, the single-rate model).
            n = len(c.rates)
            self.log_gain = nn.Parameter(torch.zeros(n, m))
            self.log_inverse_gain = nn.Parameter(torch.zeros(n, m))
            if c.entropy == "hyperprior":
                self.log_side_gain = nn.Parameter(torch.zeros(n, hz))
                self.log_side_inverse_gain = nn.Parameter(torch.zeros(n, hz))

    def gain(self, log_gains: Tensor, rate: float | None) -> Tensor | None:
        """The gain vector (1, C, 1, 1, 1) of ``log_gains`` (one row per trained rate) at ``rate``, a lambda within
        ``config.rates``: between two trained rates g_i^(1-t) * g_(i+1)^t, t the position in log lambda. None for a
        single-rate model (which has one rate and ignores ``rate``)."""
        rates = self.config.rates
        if not rates:
            return None
        if rate is None or not (math.isfinite(rate) and rates[0] * (1 - 1e-6) <= rate <= rates[-1] * (1 + 1e-6)):
            raise ValueError(f"this variable-rate VoxEn codes at a lambda from {rates[0]:g} to {rates[-1]:g} "
                             f"(its trained rates {rates}); got rate {rate}")
        i = max(0, min(int(np.searchsorted(rates, rate, side="right")) - 1, len(rates) - 2))
        if len(rates) == 1:
            return log_gains[0].exp().view(1, -1, 1, 1, 1)
        t = math.log(rate / rates[i]) / math.log(rates[i + 1] / rates[i])
        t = 0.0 if t < 1e-6 else 1.0 if t > 1 - 1e-6 else t  # a trained rate (as float32): its own gains exactly
        log_g = log_gains[i] if t == 0 else log_gains[i + 1] if t == 1 else \
            (1 - t) * log_gains[i] + t * log_gains[i + 1]
        return log_g.exp().view(1, -1, 1, 1, 1)

    def _scaled(self, v: Tensor, name: str, rate: float | None) -> Tensor:
        g = self.gain(getattr(self, name), rate) if self.config.rates else None
        return v if g is None else v * g

    def encode(self, x: Tensor, rate: float | None = None) -> Tensor:
        """Clips (B, 3, T, H, W) in [0, 1] -> continuous latent y (B, C, t, h, w); T, H, W multiples of
        ``config.multiple`` (the training clips' T = clip_len, H = W = image_size are). ``rate``: the lambda of a
        variable-rate model (its gain is applied here)."""
        self._check_sides(tuple(x.shape[2:]) if x.dim() == 5 and x.shape[1] == 3 else None, tuple(x.shape),
                          "(B, 3, T, H, W)")
        return self._scaled(self.g_a(x), "log_gain", rate)

    def _check_sides(self, sides: tuple[int, ...] | None, shape: tuple[int, ...], layout: str) -> None:
        m = self.config.multiple
        if sides is None or any(n < 1 or n % k for n, k in zip(sides, m)):
            raise ValueError(f"VoxEn expects clips shaped {layout} with T, H, W multiples of {m} (its strides; "
                             f"it trained on clip_len={self.config.clip_len} frames of {self.config.image_size}x"
                             f"{self.config.image_size}), got {shape}: pad them (vaelib.vxn codes videos of any "
                             f"length and size)")

    def decode(self, y: Tensor, rate: float | None = None) -> Tensor:
        """Latent (B, C, t, h, w) -> reconstructed clips (B, 3, T, S, S), unclamped (``rate``: as in ``encode``)."""
        return self.g_s(self._scaled(y, "log_inverse_gain", rate))

    def quantize(self, y: Tensor, mode: Quantizer = None) -> Tensor:
        """"noise": y + U(-1/2, 1/2); "ste": round(y) forward, identity gradient; "round": plain rounding; a function
        of y: that function (``refine``'s annealed rounding, ``sga_round``)."""
        mode = mode or (self.config.quantization if self.training else "round")
        if callable(mode):
            return mode(y)
        if mode == "noise":
            return y + torch.empty_like(y).uniform_(-0.5, 0.5)
        if mode == "ste":
            return y + (torch.round(y) - y).detach()
        if mode == "round":
            return torch.round(y)
        raise ValueError(f"unknown quantization mode {mode!r}")

    def side_latent(self, y: Tensor, rate: float | None = None) -> Tensor:
        """The continuous side latent z of the latent ``y`` (``rate``: as in ``encode``)."""
        return self._scaled(self.h_a(y.abs()), "log_side_gain", rate)

    def scales(self, z_hat: Tensor, rate: float | None = None) -> Tensor:
        """The Gaussian scale of every latent element, from the quantized side latent (``rate``: as in ``encode``)."""
        return self.h_s(self._scaled(z_hat, "log_side_inverse_gain", rate))

    def forward(self, x: Tensor, y: Tensor | None = None, mode: Quantizer = None,
                rate: float | None = None) -> dict[str, Tensor]:
        """Reconstruction, quantized latent, and the rate in bits per pixel (latent + side) from the entropy models.

        ``y`` replaces the encoder's latent (``refine``); ``mode`` the quantization (see ``quantize``); ``rate`` the
        lambda a variable-rate model codes at (``config.rates``; a single-rate model ignores it)."""
        y = self.encode(x, rate) if y is None else y
        y_hat, bits, side = self.code_length(y, mode, rate)
        n_pixels = x.shape[0] * x.shape[2] * x.shape[3] * x.shape[4]
        return {"x_hat": self.decode(y_hat, rate), "y_hat": y_hat, "bpp": (bits + side) / n_pixels,
                "side_bpp": side / n_pixels}

    def code_length(self, y: Tensor, mode: Quantizer = None,
                    rate: float | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """(quantized latent, bits of the latent, bits of the side latent) under the entropy models, summed over
        the batch: sums of -log2 p. The bits of a variable-rate stream's rate header are not included."""
        y_hat = self.quantize(y, mode)
        if self.config.entropy == "hyperprior":
            z_hat = self.quantize(self.side_latent(y, rate), mode)
            side = -torch.log2(self.prior.likelihood(z_hat)).sum()
            bits = -torch.log2(gaussian_likelihood(y_hat, self.scales(z_hat, rate))).sum()
        else:
            side = y.new_zeros(())
            bits = -torch.log2(self.prior.likelihood(y_hat)).sum()
        return y_hat, bits, side

    def refine(self, x: Tensor, lmbda: float, steps: int, lr: float = 0.04, seed: int = 0) -> Tensor:
        """The latent of clips ``x``, improved for them alone: ``steps`` of Adam on ``rd_loss`` at ``lmbda`` over
        the latent, decoder and entropy models fixed, with rounding replaced by stochastic Gumbel annealing
        (``sga_round``, its temperature falling from 0.5 to 0 over the steps; random draws from ``seed``).

        The encoder is one pass for every clip; this closes part of its gap to the best latent for one
        clip (Campos et al. 2019, Yang et al. 2020). The decoder and the bitstream format are unchanged:
        a refined latent is decoded like any other. ``steps=0`` returns the encoder's latent."""
        with torch.no_grad():
            y0 = self.encode(x, lmbda)
        if steps <= 0:
            return y0
        y = y0.clone().requires_grad_(True)
        opt = torch.optim.Adam([y], lr=lr)
        with torch.enable_grad(), torch.random.fork_rng(devices=[x.device] if x.is_cuda else []):
            torch.manual_seed(seed)
            for i in range(steps):
                anneal = partial(sga_round, tau=0.5 * (1 - i / steps) + 1e-3)
                loss = rd_loss(self, x, lmbda, y=y, mode=anneal)["loss"]
                y.grad, = torch.autograd.grad(loss, [y])  # the weights get no gradient
                opt.step()
        return y.detach()

    # --- the real codec -------------------------------------------------------------------------

    @torch.no_grad()
    def compress(self, clip: np.ndarray, lmbda: float | None = None, refine_steps: int = 0) -> tuple[bytes, np.ndarray]:
        """Encode one uint8 clip (T, H, W, 3) to bytes; return (bytes, the integer latent). T, H and W are multiples
        of ``config.multiple``; the bytes do not hold them (``decompress`` is told: ``shape``).

        ``refine_steps`` > 0 (with the model's ``lmbda``) optimizes the latent for this clip first (``refine``).
        Given ``lmbda``, a clip holding a scene cut (``scene_cut``) is coded as two clips split there when that
        lowers the rate-distortion loss (``split_at_cut``). The latent is (C, t, h, w), or (C, 2t, h, w) for
        the two parts of a split clip, one after the other in time.

        A variable-rate model (``config.rates``) codes at ``lmbda``, which it needs, rounded to float32; its bytes
        begin with that rate (32 bits), so ``decompress`` needs no more than a single-rate model's."""
        b = self.config.bound
        enc = bitstream.new_encoder()
        if self.config.rates:
            lmbda = self._write_rate(enc, lmbda)
        cut, y = self._plan(clip, lmbda, refine_steps)
        y_q = torch.round(y).clamp(-b, b)
        bitstream.write_symbol(enc, cut, self._cut_probs(len(clip)))
        for part in range(len(y)):
            if self.config.entropy == "hyperprior":
                z_q = torch.round(self.side_latent(y[part:part + 1], lmbda)).clamp(-b, b)
                bitstream.write_factorized(enc, z_q[0].cpu().numpy().astype(np.int32), self.prior.pmf, b)
                bitstream.write_gaussian(enc, y_q[part].cpu().numpy().astype(np.int32),
                                      self.scales(z_q, lmbda)[0].cpu().numpy(), b)
            else:
                bitstream.write_factorized(enc, y_q[part].cpu().numpy().astype(np.int32), self.prior.pmf, b)
        return bitstream.finish_bitstream(enc), torch.cat(list(y_q), dim=1).cpu().numpy().astype(np.int32)

    def _write_rate(self, enc, lmbda: float | None) -> float:
        """Write a variable-rate stream's header, the rate as the 32 bits of a float32 (two uniform 16-bit symbols);
        return the rate as written, the one to code with."""
        self.gain(self.log_gain, lmbda)  # refuses a rate outside the trained range, naming it
        bits = int(np.array(lmbda, dtype="<f4").view("<u4"))
        for half in (bits >> 16, bits & 0xFFFF):
            bitstream.write_symbol(enc, half, RATE_PROBS)
        return float(np.array(bits, dtype="<u4").view("<f4"))

    def _read_rate(self, dec) -> float:
        bits = (bitstream.read_symbol(dec, RATE_PROBS) << 16) | bitstream.read_symbol(dec, RATE_PROBS)
        rate = float(np.array(bits, dtype="<u4").view("<f4"))
        self.gain(self.log_gain, rate)  # a rate outside the trained range: not this model's stream
        return rate

    def _cut_probs(self, frames: int) -> np.ndarray:
        # the header symbol: 0 = one shot (costs 0.02 bits), else the first frame of the second shot
        if frames < 2:
            return np.ones(1)
        p = np.full(frames, CUT_PROBABILITY / (frames - 1))
        p[0] = 1.0 - CUT_PROBABILITY
        return p

    def _latent(self, clips: np.ndarray, lmbda: float | None, refine_steps: int) -> Tensor:
        x = clips_to_tensor(np.asarray(clips), device=self.device)
        if refine_steps <= 0:
            return self.encode(x, lmbda)
        if lmbda is None:
            raise ValueError("refine_steps > 0 needs the model's lmbda, the rate-distortion trade-off to refine for")
        return self.refine(x, lmbda, refine_steps)

    def _plan(self, clip: np.ndarray, lmbda: float | None, refine_steps: int) -> tuple[int, Tensor]:
        """(cut, continuous latents (parts, C, t, h, w)) of what ``compress`` codes: the clip whole (cut 0), or
        split at its scene cut if, at ``lmbda``, that costs less (estimated bits + lambda * 255^2 * MSE)."""
        clip = np.asarray(clip)
        self._check_sides(clip.shape[:3] if clip.ndim == 4 and clip.shape[3] == 3 else None, clip.shape,
                          "(T, H, W, 3)")
        whole = self._latent(clip[None], lmbda, refine_steps)
        cut = scene_cut(clip) if lmbda is not None else 0
        if not cut:
            return 0, whole
        parts = self._latent(split_at_cut(clip, cut), lmbda, refine_steps)
        x = clips_to_tensor(clip[None], device=self.device)
        n_pixels = clip.shape[0] * clip.shape[1] * clip.shape[2]

        def cost(c: int, y: Tensor) -> float:  # rd_loss in bits per pixel, rounded as coded
            x_hat = self._reconstruct(c, torch.round(y), lmbda)
            return self._bits(c, y, lmbda) / n_pixels + lmbda * 255 ** 2 * float(F.mse_loss(x_hat, x))
        return (cut, parts) if cost(cut, parts) < cost(0, whole) else (0, whole)

    def _reconstruct(self, cut: int, y_hat: Tensor, rate: float | None = None) -> Tensor:
        """The clip (1, 3, T, S, S) decoded from the latents of its parts (see ``compress``), unclamped."""
        x_hat = self.decode(y_hat, rate)
        if not cut:
            return x_hat
        return torch.cat([x_hat[:1, :, :cut], x_hat[1:, :, cut:]], dim=2)

    def _bits(self, cut: int, y: Tensor, rate: float | None = None) -> float:
        """The entropy models' code length in bits of the latents ``y`` after rounding, with the header symbols."""
        _, bits, side = self.code_length(y, "round", rate)
        cut_p = self._cut_probs(y.shape[2] * self.config.total_stride[0])[cut]
        header = 32 * bool(self.config.rates) - math.log2(cut_p)
        return float(bits + side) + header

    def _read(self, data: bytes, name: str, shape: Sequence[int] | None) -> tuple[int, np.ndarray, float | None]:
        b, c = self.config.bound, self.config
        shape = tuple(shape) if shape is not None else (c.clip_len, c.image_size, c.image_size)
        self._check_sides(shape if len(shape) == 3 else None, shape, "(T, H, W)")
        dec = bitstream.open_bitstream(data, name)  # checks the frame: magic, length, CRC32
        other = (f"{name} does not decode with this VoxEn (channels {c.channels}, entropy {c.entropy!r}) as a clip "
                 f"of {shape[0]} frames of {shape[2]}x{shape[1]}: was it written by another model, for another size, "
                 f"or forged with a valid frame?")
        try:
            rate = self._read_rate(dec) if c.rates else None
            cut = bitstream.read_symbol(dec, self._cut_probs(shape[0]))
            parts = []
            for _ in range(2 if cut else 1):
                if c.entropy == "hyperprior":
                    z_q = bitstream.read_factorized(dec, c.side_shape_of(*shape), self.prior.pmf, b)
                    z_hat = torch.from_numpy(z_q).float()[None].to(self.device)
                    scales = self.scales(z_hat, rate)[0].cpu().numpy()
                    parts.append(bitstream.read_gaussian(dec, scales, b))
                else:
                    parts.append(bitstream.read_factorized(dec, c.latent_shape_of(*shape), self.prior.pmf, b))
        except (ValueError, RuntimeError, AssertionError) as e:  # constriction's own errors name no file
            raise ValueError(f"{other} ({e})") from e
        if not dec.maybe_exhausted():  # a stream of this model ends with its last symbol
            raise ValueError(f"{other} (words are left after the last symbol)")
        return cut, np.concatenate(parts, axis=1), rate

    @torch.no_grad()
    def decode_bitstream(self, data: bytes, name: str = "bitstream", shape: Sequence[int] | None = None) -> np.ndarray:
        """The integer latent in the bytes of ``compress`` (as there); a damaged stream raises naming ``name``.
        ``shape``: the clip's (T, H, W), by default the training clip's (clip_len, image_size, image_size)."""
        return self._read(data, name, shape)[1]

    @torch.no_grad()
    def decompress(self, data: bytes, name: str = "bitstream", shape: Sequence[int] | None = None) -> np.ndarray:
        """Decode bytes of ``compress`` to a uint8 clip (T, H, W, 3) of ``shape`` (T, H, W), by default the training
        clip's (clip_len, image_size, image_size)."""
        cut, q, rate = self._read(data, name, shape)
        y_hat = torch.from_numpy(q).float().to(self.device)
        y_hat = torch.stack(y_hat.chunk(2 if cut else 1, dim=1))
        return tensor_to_clips(self._reconstruct(cut, y_hat, rate))[0]

    def stream_rate(self, data: bytes, name: str = "bitstream") -> float | None:
        """The lambda a variable-rate model's bytes of ``compress`` were coded at (their header); None for a
        single-rate model."""
        return self._read_rate(bitstream.open_bitstream(data, name)) if self.config.rates else None

    @torch.no_grad()
    def estimated_bits(self, clip: np.ndarray, lmbda: float | None = None, refine_steps: int = 0) -> float:
        """The size in bits of the bytes ``compress`` writes with the same arguments, from the entropy models: the
        code length (sum of -log2 p: the latent, the side latent and the header symbol) of the rounded latent, plus
        the fixed frame around it (``bitstream.FRAME``: 96 bits)."""
        if self.config.rates:
            self.gain(self.log_gain, lmbda)
            lmbda = float(np.float32(lmbda))
        return self._bits(*self._plan(clip, lmbda, refine_steps), lmbda) + 8 * bitstream.FRAME.size

    @property
    def device(self) -> torch.device:
        """The device the model's parameters are on."""
        return next(self.parameters()).device

    @torch.no_grad()
    def layer_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """(layer, output shape (C, T, H, W)) through g_a, h_a, h_s and g_s, for one clip."""
        c = self.config
        h = torch.zeros(1, 3, c.clip_len, c.image_size, c.image_size, device=self.device)
        rows = [("input", tuple(h.shape[1:]))]
        parts = [("g_a", self.g_a)]
        if c.entropy == "hyperprior":
            parts += [("h_a", self.h_a), ("h_s", self.h_s)]
        parts.append(("g_s", self.g_s))
        y = None
        for name, part in parts:
            if name == "g_s":
                h = y
            for i, layer in enumerate(part):
                h = layer(h)
                if isinstance(layer, (nn.Conv3d, nn.ConvTranspose3d)):
                    rows.append((f"{name}.{i} {type(layer).__name__} stride {tuple(layer.stride)}", tuple(h.shape[1:])))
                elif isinstance(layer, ResBlock3d):
                    rows.append((f"{name}.{i} ResBlock3d (two 3x3x3 Conv3d)", tuple(h.shape[1:])))
            if name == "g_a":
                y = h
        return rows


def pad_clip(frames: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """``frames`` (T, H, W, 3) grown to ``shape`` (T', H', W') by repeating the last frame, row and column; the
    decoded clip is cropped back to (T, H, W). Repeated edges cost few bits and do not blur the picture's border."""
    t, h, w = (a - b for a, b in zip(shape, frames.shape[:3]))
    if min(t, h, w) < 0:
        raise ValueError(f"cannot pad a clip of {frames.shape[:3]} to the smaller {tuple(shape)}")
    return np.pad(frames, ((0, t), (0, h), (0, w), (0, 0)), mode="edge") if t or h or w else frames


RATE_PROBS = np.full(1 << 16, 1.0 / (1 << 16))
"""A variable-rate stream's header: the float32 bits of its rate, as two 16-bit symbols of equal probability."""
CUT_PROBABILITY = 1 / 64
"""The header's prior probability that a clip holds a scene cut: a clip without one pays 0.02 bits for saying so."""


def sga_round(y: Tensor, tau: float) -> Tensor:
    """Stochastic Gumbel annealing (Yang et al. 2020): each value a random soft mix of its floor and its ceiling, the
    nearer one likelier; as the temperature ``tau`` falls to 0 it becomes rounding. Differentiable in ``y``."""
    floor = torch.floor(y)
    frac = y - floor
    logit_floor = -torch.atanh(frac.clamp(max=1 - 1e-5)) / tau
    logit_ceil = -torch.atanh((1 - frac).clamp(max=1 - 1e-5)) / tau
    gumbel = -torch.log(-torch.log(torch.rand((2, *y.shape), device=y.device).clamp(1e-9, 1 - 1e-9)))
    return floor + torch.sigmoid(logit_ceil + gumbel[1] - logit_floor - gumbel[0])
