"""Growing a trained VoxEn without changing what it decodes (net2net-style): the start of further training
when the transform caps quality.

- ``widen_latent``: more latent channels; ``deepen``: more residual blocks in g_a and g_s. Each returns a copy
  that codes every clip exactly as the model it grew from.
"""
from __future__ import annotations

import dataclasses
import math

import torch

from .voxen import ResBlock3d, VoxEn


@torch.no_grad()
def widen_latent(model: VoxEn, channels: int, seed: int = 0) -> VoxEn:
    """A copy of ``model`` with ``channels`` latent channels that decodes every clip exactly as ``model`` does.

    The way to raise a trained model's quality ceiling without starting over (net2net-style): the
    new channels' encoder filters start as a fresh model's, the decoder and hyper-encoder read them
    with zero weights (so reconstructions and the old channels' scales are unchanged), and the
    hyper-decoder gives them a unit scale until training teaches it better. Hyperprior models only.
    """
    old = model.config
    if old.entropy != "hyperprior":
        raise ValueError("widen_latent needs a hyperprior VoxEn (config.entropy == 'hyperprior')")
    m = old.channels[-1]
    if channels < m:
        raise ValueError(f"widen_latent can only add latent channels: {m} -> {channels}")
    with torch.random.fork_rng(devices=[]):    # the fresh filters from ``seed``; the caller's random state as it was
        torch.manual_seed(seed)
        wide = VoxEn(dataclasses.replace(old, channels=old.channels[:-1] + [channels]))
    fresh = {k: v.clone() for k, v in wide.state_dict().items()}
    wide.load_state_dict({k: _pad_like(v, fresh[k]) for k, v in model.state_dict().items()})
    dec, h_a, h_s = wide.g_s[0], wide.h_a[0], wide.h_s[2]  # the new encoder rows keep their fresh values
    dec.weight[m:] = 0.0                       # ConvTranspose3d weight: (in, out, ...)
    h_a.weight[:, m:] = 0.0                    # Conv3d weight: (out, in, ...)
    h_s.weight[m:], h_s.bias[m:] = 0.0, math.log(math.e - 1.0)  # softplus(bias) = 1
    return wide.to(model.device).train(model.training)


@torch.no_grad()
def deepen(model: VoxEn, res_blocks: int, seed: int = 0) -> VoxEn:
    """A copy of ``model`` with ``res_blocks`` residual blocks in g_a and g_s that decodes every clip exactly as
    ``model`` does: the new blocks' second convolutions start at zero (``ResBlock3d``), so each is the identity
    until training changes it."""
    old = model.config
    if res_blocks < old.res_blocks:
        raise ValueError(f"deepen can only add residual blocks: {old.res_blocks} -> {res_blocks}")
    with torch.random.fork_rng(devices=[]):    # the new blocks' first convs from ``seed``; the caller's state as it was
        torch.manual_seed(seed)
        deep = VoxEn(dataclasses.replace(old, res_blocks=res_blocks))
    for name in ("g_a", "g_s"):                # the same layers in the same order, the new blocks after the old ones
        for a, b in zip(_layers(getattr(model, name), old.res_blocks), _layers(getattr(deep, name), old.res_blocks),
                        strict=True):
            b.load_state_dict(a.state_dict())
    for name in ("h_a", "h_s", "prior"):
        if hasattr(model, name):
            getattr(deep, name).load_state_dict(getattr(model, name).state_dict())
    return deep.to(model.device).train(model.training)


def _layers(seq: torch.nn.Sequential, n_res: int) -> list[torch.nn.Module]:
    """The layers of ``seq`` without its residual blocks after the first ``n_res``."""
    kept = [m for m in seq if isinstance(m, ResBlock3d)][:n_res]
    return [m for m in seq if not isinstance(m, ResBlock3d) or any(m is k for k in kept)]


def _pad_like(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``value`` copied into the leading corner of a tensor shaped like ``like`` (the rest from ``like``)."""
    if value.shape == like.shape:
        return value
    out = like.clone()
    out[tuple(slice(0, n) for n in value.shape)] = value.to(like.device)
    return out
