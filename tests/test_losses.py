"""The MMD loss is right: near zero for one distribution, growing as two move apart, pulling codes to N(0, I)."""
import numpy as np
import pytest
import torch

from vaelib.losses import MMDLossConfig, kernel_matrix, mmd, mmd_to_prior, mmd_vae_loss

torch.set_num_threads(1)
KINDS = [("rbf", (1.0,)), ("imq", (1.0,)), ("rbf", (0.2, 1.0, 5.0)), ("imq", (0.1, 1.0, 10.0))]


def normal(n, d=8, mean=0.0, std=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) * std + mean


def test_kernels_match_their_formulas():
    x, y = normal(5, 4, seed=1), normal(6, 4, seed=2)
    d2 = ((x[:, None] - y[None]) ** 2).sum(-1)
    assert torch.allclose(kernel_matrix(x, y, "rbf"), torch.exp(-d2 / 16))  # exp(-|x-y|^2 / D^2), D = 4
    # the reference implementation's form: exp(-mean((x - y)^2) / D)
    assert torch.allclose(kernel_matrix(x, y, "rbf"), torch.exp(-((x[:, None] - y[None]) ** 2).mean(-1) / 4))
    assert torch.allclose(kernel_matrix(x, y, "imq", (2.0,)), 16 / (16 + d2))
    assert torch.allclose(kernel_matrix(x, y, "rbf", (1.0, 3.0)), torch.exp(-d2 / 16) + torch.exp(-d2 / 48))
    assert torch.allclose(kernel_matrix(x, x, "rbf").diagonal(), torch.ones(5, dtype=x.dtype))


@pytest.mark.parametrize("kernel,scales", KINDS)
def test_same_distribution_near_zero_and_shrinks_with_n(kernel, scales):
    def mean_mmd(n):
        return float(np.mean([mmd(normal(n, seed=2 * s), normal(n, seed=2 * s + 1), kernel, scales)
                              for s in range(10)]))
    small, large = mean_mmd(32), mean_mmd(512)
    shifted = float(mmd(normal(512), normal(512, mean=1.0, seed=1), kernel, scales))
    assert large < small / 4          # the biased estimate falls roughly like 1/n
    assert large < shifted / 20       # and is small against a real difference
    assert small > 0


@pytest.mark.parametrize("kernel,scales", KINDS)
def test_unbiased_is_zero_in_expectation(kernel, scales):
    vals = np.array([float(mmd(normal(64, seed=2 * s), normal(64, seed=2 * s + 1), kernel, scales, unbiased=True))
                     for s in range(200)])
    biased = np.array([float(mmd(normal(64, seed=2 * s), normal(64, seed=2 * s + 1), kernel, scales))
                       for s in range(200)])
    assert (vals < 0).any() and (vals > 0).any()              # unbiased: scatters around zero
    assert abs(vals.mean()) < 3 * vals.std() / np.sqrt(len(vals)) + 1e-12
    assert biased.mean() > abs(vals.mean()) + 3 * biased.std() / np.sqrt(len(vals))  # biased sits above 0


@pytest.mark.parametrize("kernel,scales", KINDS)
@pytest.mark.parametrize("unbiased", [False, True])
def test_grows_with_mean_shift_and_variance_change(kernel, scales, unbiased):
    x = normal(400, seed=0)
    shifts = [float(mmd(x, normal(400, mean=m, seed=1), kernel, scales, unbiased)) for m in (0.0, 0.25, 0.5, 1.0, 2.0)]
    assert all(a < b for a, b in zip(shifts, shifts[1:])), shifts
    spreads = [float(mmd(x, normal(400, std=s, seed=1), kernel, scales, unbiased)) for s in (1.0, 1.5, 2.0, 3.0)]
    assert all(a < b for a, b in zip(spreads, spreads[1:])), spreads
    narrower = [float(mmd(x, normal(400, std=s, seed=1), kernel, scales, unbiased)) for s in (1.0, 0.5, 0.1)]
    assert all(a < b for a, b in zip(narrower, narrower[1:])), narrower


@pytest.mark.parametrize("unbiased", [False, True])
def test_batch_order_does_not_matter(unbiased):
    x, y = normal(50, seed=3), normal(70, mean=0.3, seed=4)
    ref = mmd(x, y, "imq", (0.5, 1.0), unbiased)
    px, py = torch.randperm(50), torch.randperm(70)
    assert torch.allclose(mmd(x[px], y[py], "imq", (0.5, 1.0), unbiased), ref, rtol=1e-12, atol=1e-12)
    assert torch.allclose(mmd(y, x, "imq", (0.5, 1.0), unbiased), ref, rtol=1e-12, atol=1e-12)  # symmetric


def test_total_loss_moves_the_right_way():
    x = torch.rand(16, 3, 8, 8)
    z_prior, z_far = normal(16, 4, seed=5).float(), normal(16, 4, mean=3.0, seed=5).float()
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731 - same prior samples each time
    cfg = MMDLossConfig(mmd_weight=10.0)
    near = mmd_vae_loss(x, x * 0.9, z_prior, cfg, g())
    far = mmd_vae_loss(x, x * 0.9, z_far, cfg, g())
    worse_recon = mmd_vae_loss(x, x * 0.5, z_prior, cfg, g())
    for out in (near, far, worse_recon):  # loss = recon + weight * mmd, exactly
        assert torch.allclose(out["loss"], out["recon"] + 10.0 * out["mmd"])
    assert far["mmd"] > near["mmd"] and far["loss"] > near["loss"]       # positive sign: far codes cost more
    assert worse_recon["loss"] > near["loss"]
    # the gradient on the codes points toward the prior: a small step along -grad lowers the MMD
    z = z_far.clone().requires_grad_(True)
    mmd_to_prior(z, 256, generator=g()).backward()
    assert (z.grad.mean(0) > 0).all()  # codes sit at +3, so descending moves them down toward 0
    assert MMDLossConfig(mmd_weight=0.0) and pytest.raises(ValueError, MMDLossConfig, mmd_weight=-1.0)


def fit_codes(mmd_weight, kernel, scales, steps=300, seed=0):
    """A linear autoencoder 6-D -> 2-D: only reconstruction, or reconstruction + MMD to N(0, I)."""
    g = torch.Generator().manual_seed(seed)
    rotation = torch.linalg.qr(torch.randn(6, 6, generator=g))[0]
    data = (torch.randn(1024, 6, generator=g) * torch.tensor([3.0, 2.0, 0.3, 0.2, 0.1, 0.1])) @ rotation + 2.0
    torch.manual_seed(seed)
    enc, dec = torch.nn.Linear(6, 2), torch.nn.Linear(2, 6)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=0.03)
    cfg = MMDLossConfig(mmd_weight=mmd_weight, kernel=kernel, scales=scales)
    for _ in range(steps):
        x = data[torch.randint(len(data), (128,), generator=g)]
        z = enc(x)
        out = mmd_vae_loss(x, dec(z), z, cfg, g)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    with torch.no_grad():
        z = enc(data)
    return float(z.mean(0).norm()), float((torch.cov(z.T) - torch.eye(2)).norm()), float(out["recon"].detach())


@pytest.mark.parametrize("kernel,scales", [("rbf", (1.0,)), ("imq", (0.2, 0.5, 1.0, 2.0, 5.0))])
def test_penalty_pulls_aggregate_posterior_to_prior(kernel, scales):
    mean0, cov0, recon0 = fit_codes(0.0, kernel, scales)
    mean1, cov1, recon1 = fit_codes(10.0, kernel, scales)
    assert mean1 < 0.3 and cov1 < 0.3, (mean1, cov1)            # lambda > 0: mean ~ 0, covariance ~ I
    assert mean0 > 2.0 and cov0 > 2.0, (mean0, cov0)            # lambda = 0: nothing pulls the codes
    assert recon1 < 0.1 and recon0 < 0.1                         # both still reconstruct the data
