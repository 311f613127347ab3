"""Several processes training one model: the process group under ``torchrun``, ranks, and collectives.

``vaelib.train.train`` trains in one process unless it is started by ``torchrun`` (which sets
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address); then every process runs the
same script, and :func:`setup` joins them into one group (gloo on CPU, NCCL on CUDA, one GPU per
process: ``cuda:LOCAL_RANK``). Outside ``torchrun`` every helper here is a no-op that returns what
one process would have, so code written for many processes runs unchanged in one.

Batches are sharded: every rank draws the same global batch indices from the same seeded
generator and loads only its own ``1/world_size`` slice (:func:`shard_range`); gradients are
averaged by ``DistributedDataParallel``. A loss that depends on the whole batch at once (the
MMD-VAE's MMD term) gathers the codes of all ranks with :func:`gather` (gradients flow back to
each rank's own slice) and draws the random numbers it shares with the other ranks on rank 0
(:func:`shared_randn`), so that N processes compute what one process would with the same global batch.
"""
from __future__ import annotations

import atexit
import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist

T = TypeVar("T")

# How long a collective waits for the other ranks before failing (a rank that died or hangs).
TIMEOUT_S = float(os.environ.get("VAELIB_DIST_TIMEOUT_S", 600))


def launched() -> bool:
    """True when this process was started by ``torchrun`` with more than one process in all."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    """True when a process group of more than one process is set up."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 in a single process)."""
    return dist.get_rank() if active() else 0


def world_size() -> int:
    """The number of processes training together (1 in a single process)."""
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0: the one process that writes the run folder."""
    return rank() == 0


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s own random numbers (e.g. noise in a loss): ``seed`` itself on rank 0.

    Other ranks get well-mixed seeds (``numpy.random.SeedSequence``), so rank 1 of seed 0 does not
    replay rank 0 of seed 1.
    """
    if rank == 0:
        return seed
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, dtype=np.uint64)[0] % 2**63)


def setup(device_name: str) -> torch.device:
    """Join the process group ``torchrun`` started this process in (once); return this rank's device.

    ``device_name`` is ``TrainConfig.device``: ``"auto"``, ``"cpu"`` or ``"cuda"`` (each process takes
    ``cuda:LOCAL_RANK``; gloo on CPU, NCCL on CUDA). A device index, Apple MPS, CUDA where there is
    none, or more processes on a node than it has GPUs are refused with a message saying what to pass.
    """
    if not dist.is_available():
        raise RuntimeError("torchrun started several processes, but this torch build has no torch.distributed")
    n = os.environ.get("WORLD_SIZE", "1")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    n_local = int(os.environ.get("LOCAL_WORLD_SIZE", n))
    if ":" in device_name:
        raise ValueError(f"TrainConfig.device={device_name!r} names one device, but torchrun started {n} "
                         f"processes; pass device='cuda' (each process takes cuda:LOCAL_RANK) or 'cpu'")
    if device_name == "mps" or (device_name == "auto" and not torch.cuda.is_available()
                                and torch.backends.mps.is_available()):
        raise ValueError("several processes on Apple MPS are not supported; pass device='cpu' or train in one process")
    if device_name not in ("auto", "cpu", "cuda"):
        raise ValueError(f"TrainConfig.device={device_name!r}: under torchrun pass 'auto', 'cpu' or 'cuda'")
    if device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError(f"TrainConfig.device={device_name!r} asked for CUDA, but CUDA is not available "
                               f"here; pass device='cpu' (torchrun then trains over gloo)")
        if torch.cuda.device_count() < n_local:
            raise RuntimeError(f"torchrun started {n_local} processes on this node but it has "
                               f"{torch.cuda.device_count()} GPU(s); pass --nproc-per-node "
                               f"{torch.cuda.device_count()} or fewer")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        # Once per process: later calls (e.g. a second ``train``) reuse the group; it is left at exit.
        dist.init_process_group(backend, timeout=timedelta(seconds=TIMEOUT_S))
        atexit.register(teardown)
        global _HOST_GROUP
        # flags the ranks agree on every step (``any_rank``) go over gloo on the host: no GPU sync for them
        _HOST_GROUP = dist.new_group(backend="gloo") if backend != "gloo" else None
    elif dist.get_backend() != backend:
        raise RuntimeError(f"this process joined a {dist.get_backend()} group; TrainConfig.device={device_name!r} "
                           f"needs {backend}: use the same device in every train call of one torchrun job")
    return device


_HOST_GROUP = None  # a gloo group for host-side flags when the main group is NCCL (set by ``setup``)


def teardown() -> None:
    """Leave the process group (:func:`setup` arranges this for the end of the process)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard_range(n: int) -> slice:
    """This rank's part of ``n`` items (the global batch): a contiguous slice of ``n // world_size``."""
    w, r = world_size(), rank()
    if n % w:
        raise ValueError(f"the batch of {n} cannot be split evenly over {w} processes")
    k = n // w
    return slice(r * k, (r + 1) * k)


def gather(x: torch.Tensor) -> torch.Tensor:
    """All ranks' ``x`` concatenated along dim 0 in rank order; gradients flow back to each rank's own part.

    Every rank must call it, with tensors of the same shape. In a single process it returns ``x``.
    The gradient of rank r's part is the sum over ranks of the gradients that reach it, so a loss
    every rank computes alike on the gathered tensor, with gradients averaged by DDP, gets the
    gradient one process would.
    """
    if not active():
        return x
    return _Gather.apply(x)


class _Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        parts = [torch.empty_like(x) for _ in range(world_size())]
        dist.all_gather(parts, x.contiguous())
        ctx.n = x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # (gloo has no reduce-scatter): sum everywhere, keep this rank's rows
        return grad[rank() * ctx.n:(rank() + 1) * ctx.n]


def shared_randn(shape: tuple[int, ...], device: torch.device, dtype: torch.dtype,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal samples drawn on rank 0 and sent to every rank (so all ranks use the same ones).

    In a single process: ``torch.randn`` from ``generator`` (or the global generator).
    """
    gen_device = generator.device if generator is not None else device
    if not active():
        return torch.randn(shape, generator=generator, device=gen_device, dtype=dtype).to(device)
    if is_main():
        out = torch.randn(shape, generator=generator, device=gen_device, dtype=dtype).to(device)
    else:
        out = torch.empty(shape, device=device, dtype=dtype)
    dist.broadcast(out, src=0)
    return out


def all_mean(values: torch.Tensor) -> torch.Tensor:
    """The mean over ranks of a float tensor (itself in a single process)."""
    if not active():
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values / world_size()


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order, on every rank."""
    if not active():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` (picklable), on every rank."""
    if not active():
        return obj
    box = [obj if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def any_rank(flag: bool) -> bool:
    """Whether ``flag`` is true on any rank: one byte over gloo on the host, no device sync (``flag`` itself)."""
    if not active():
        return flag
    t = torch.tensor([int(flag)], dtype=torch.uint8)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=_HOST_GROUP)
    return bool(t.item())


def barrier() -> None:
    """Wait until every rank gets here (nothing in a single process); host-side, over gloo."""
    if active():
        dist.barrier(group=_HOST_GROUP)


def main_first(fn: Callable[[], T]) -> T:
    """``fn()`` on rank 0, then on the other ranks once it is done (rank 0 may write what they read).

    An error on rank 0 is raised on every rank (they do not call ``fn``), so none waits for a rank that failed.
    """
    if not active():
        return fn()
    error = None
    if is_main():
        try:
            out = fn()
        except Exception as e:  # noqa: BLE001 - sent to the other ranks, raised below
            error = e
    error = broadcast_object(error)
    if error is not None:
        raise error
    return out if is_main() else fn()
