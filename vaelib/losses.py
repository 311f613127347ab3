"""The training losses: maximum mean discrepancy (MMD) and the MMD-VAE loss built on it; VoxEn's rate-distortion
loss (``rd_loss``).

MMD^2(P, Q) = E k(x, x') + E k(y, y') - 2 E k(x, y) for x, x' ~ P and y, y' ~ Q. With a
characteristic kernel it is zero exactly when P = Q, and it grows as the two distributions
move apart. The MMD-VAE (InfoVAE, Zhao et al. 2017) adds ``mmd_weight * MMD^2(q(z), p(z))``
to the reconstruction error, where q(z) is the aggregate posterior (the codes of a batch) and
p(z) = N(0, I) is the prior, so the codes of all frames together are pulled toward N(0, I).

Two kernels:

- ``rbf``: the Gaussian kernel of the reference implementation, exp(-||x - y||^2 / (s * D^2))
  for latent dimension D (s = 1 gives the reference's exp(-mean((x - y)^2) / D)).
- ``imq``: the inverse multiquadric C / (C + ||x - y||^2) with C = 2 * D * s, as in the WAE paper;
  its heavy tails keep a gradient when the two samples are far apart.

``scales`` sums the kernel over several bandwidth multipliers s. Two estimators of MMD^2:
the biased V-statistic (>= 0; includes the k(x, x) = 1 diagonal) and the unbiased U-statistic
(diagonals removed; zero in expectation when P = Q, so it can come out slightly negative).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import distributed
from .config import JSONConfig

KERNELS = ("rbf", "imq")


def squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Matrix of squared Euclidean distances ||x_i - y_j||^2 between rows of ``x`` (n, D) and ``y`` (m, D)."""
    # Direct differences rather than the |x|^2 + |y|^2 - 2xy trick: exact zeros on the diagonal
    # and no cancellation error; n and m are batch sizes, so (n, m, D) is small.
    return (x[:, None, :] - y[None, :, :]).pow(2).sum(-1)


def kernel_matrix(x: torch.Tensor, y: torch.Tensor, kernel: str = "rbf",
                  scales: Sequence[float] = (1.0,)) -> torch.Tensor:
    """k(x_i, y_j) for all pairs, summed over the bandwidth multipliers ``scales`` (see the module doc)."""
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"expected samples shaped (n, D) and (m, D), got {tuple(x.shape)} and {tuple(y.shape)}")
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose from {KERNELS}")
    if not scales or any(s <= 0 for s in scales):
        raise ValueError(f"scales must be positive, got {scales!r}")
    dim = x.shape[1]
    d2 = squared_distances(x, y)
    out = torch.zeros_like(d2)
    for s in scales:
        if kernel == "rbf":
            out = out + torch.exp(-d2 / (s * dim * dim))
        else:
            c = 2.0 * dim * s
            out = out + c / (c + d2)
    return out


def mmd(x: torch.Tensor, y: torch.Tensor, kernel: str = "rbf", scales: Sequence[float] = (1.0,),
        unbiased: bool = False) -> torch.Tensor:
    """Estimate MMD^2 between the distributions that produced samples ``x`` (n, D) and ``y`` (m, D).

    ``unbiased=False``: the V-statistic, mean(Kxx) + mean(Kyy) - 2 mean(Kxy), never negative.
    ``unbiased=True``: the U-statistic, with the diagonals of Kxx and Kyy left out.
    The result does not depend on the order of the rows of either sample.
    """
    n, m = x.shape[0], y.shape[0]
    kxx = kernel_matrix(x, x, kernel, scales)
    kyy = kernel_matrix(y, y, kernel, scales)
    kxy = kernel_matrix(x, y, kernel, scales)
    if not unbiased:
        return kxx.mean() + kyy.mean() - 2.0 * kxy.mean()
    if n < 2 or m < 2:
        raise ValueError(f"the unbiased estimator needs at least 2 samples on each side, got {n} and {m}")
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return sxx + syy - 2.0 * kxy.mean()


def mmd_to_prior(z: torch.Tensor, n_prior: int | None = None, kernel: str = "rbf",
                 scales: Sequence[float] = (1.0,), unbiased: bool = False,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """MMD^2 between the codes ``z`` (n, D) and ``n_prior`` fresh samples of N(0, I) (default: n)."""
    shape = (n_prior or z.shape[0], z.shape[1])
    device = generator.device if generator is not None else z.device
    prior = torch.randn(shape, generator=generator, device=device, dtype=z.dtype).to(z.device)
    return mmd(z, prior, kernel, scales, unbiased)


@dataclass
class MMDLossConfig(JSONConfig):
    """How the MMD-VAE loss is weighed: loss = reconstruction + mmd_weight * MMD^2(codes, N(0, I)).

    ``reconstruction`` is the mean squared error per pixel value (in [0, 1]), as in the reference
    implementation; so ``mmd_weight = 1`` weighs one unit of MMD^2 like one unit of per-pixel MSE.
    """
    mmd_weight: float = 1.0
    kernel: str = "rbf"
    scales: tuple[float, ...] = (1.0,)
    unbiased: bool = False
    n_prior: int | None = None  # prior samples per step; None: as many as the batch

    def __post_init__(self) -> None:
        self.scales = tuple(float(s) for s in self.scales)
        if self.mmd_weight < 0:
            raise ValueError(f"mmd_weight must be >= 0, got {self.mmd_weight}")
        if self.kernel not in KERNELS:
            raise ValueError(f"unknown kernel {self.kernel!r}; choose from {KERNELS}")


def mmd_vae_loss(x: torch.Tensor, x_hat: torch.Tensor, z: torch.Tensor, cfg: MMDLossConfig,
                 generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """The MMD-VAE objective for one batch: {"loss", "recon", "mmd"} (loss = recon + mmd_weight * mmd)."""
    recon = F.mse_loss(x_hat, x)
    z = z.float()  # under bf16 autocast the codes come in bfloat16: the kernel sums need float32
    div = mmd_to_prior(z, cfg.n_prior, cfg.kernel, cfg.scales, cfg.unbiased, generator)
    return {"loss": recon + cfg.mmd_weight * div, "recon": recon, "mmd": div}


def mmd_vae_loss_fn(cfg: MMDLossConfig) -> Callable[[torch.nn.Module, torch.Tensor], dict[str, torch.Tensor]]:
    """A ``loss_fn(model, batch)`` for ``vaelib.train.train``: the model maps a batch to (x_hat, z).

    Under ``torchrun`` each process holds a slice of the batch while training (gradients on): the MMD
    term is then taken over the codes of all processes (``distributed.gather``) against prior samples
    drawn once on rank 0, so N processes optimise what one would with the same global batch.
    """
    def loss_fn(model: torch.nn.Module, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        x_hat, z = model(batch)
        if not (distributed.active() and torch.is_grad_enabled()):
            return mmd_vae_loss(batch, x_hat, z, cfg)
        recon = F.mse_loss(x_hat, batch)
        z_all = distributed.gather(z.float())
        prior = distributed.shared_randn((cfg.n_prior or z_all.shape[0], z_all.shape[1]), z.device, z.dtype)
        div = mmd(z_all, prior, cfg.kernel, cfg.scales, cfg.unbiased)
        return {"loss": recon + cfg.mmd_weight * div, "recon": recon, "mmd": div}
    return loss_fn


def rd_loss(model: torch.nn.Module, batch: torch.Tensor, lmbda: float, y: torch.Tensor | None = None,
            mode: str | Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """VoxEn's training loss (``vaelib.voxen.VoxEn``): rate + lambda * distortion, CompressAI's convention
    ``bpp + lmbda * 255^2 * MSE`` on [0, 1] pixels.

    ``y`` and ``mode`` go to ``VoxEn.forward`` (a latent other than the encoder's; the quantization), and ``lmbda``
    as the rate a variable-rate model codes at."""
    out = model(batch, y=y, mode=mode, rate=lmbda)
    mse = F.mse_loss(out["x_hat"], batch)
    psnr = 10 * torch.log10(1.0 / mse.detach().clamp_min(1e-10))
    return {"loss": out["bpp"] + lmbda * 255 ** 2 * mse, "bpp": out["bpp"].detach(), "mse": mse.detach(),
            "psnr": psnr, "side_bpp": out["side_bpp"].detach()}
