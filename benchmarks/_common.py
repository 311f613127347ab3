"""What several benchmarks share: their frames, the MMD-VAE's embedding speed, CPU time, writing the results.

Not a benchmark itself (``make bench`` runs ``benchmarks/[!_]*.py``); the scripts import it as ``_common``
(they run as ``python benchmarks/NAME.py``, so this folder is on ``sys.path``).

torch and the models are imported inside the functions that use them: a benchmark's worker processes
(``preprocess(workers=2)`` starts them with 'spawn') import the benchmark script again, and with it this
module; importing torch there cost each worker ~1 s of CPU and ~180 MiB before its first video.
"""
from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vaelib.paths import PROJECT_ROOT, write_json

if TYPE_CHECKING:
    from vaelib.framestore import FrameSet
    from vaelib.mmdvae import MMDVAE


def frames_or_synthetic(path: Path | None, tmp: Path, **synthetic) -> FrameSet:
    """The frame store ``path``; if None, ``data/frames`` when chapter 1 wrote it; else synthetic movies made in
    ``tmp`` with ``vaelib.synthetic.make_synthetic_dataset(**synthetic)`` and preprocessed there."""
    from vaelib.framestore import load_frames
    from vaelib.preprocess import preprocess

    if path is None and (PROJECT_ROOT / "data" / "frames" / "manifest.json").exists():
        path = PROJECT_ROOT / "data" / "frames"
    if path is not None:
        return load_frames(path)
    from vaelib.synthetic import make_synthetic_dataset

    ds = make_synthetic_dataset(tmp / "synthetic", progress=False, **synthetic)
    return preprocess(ds.videos, tmp / "frames", progress=False)


def embedding_speed(model: MMDVAE, frames: np.ndarray, with_grad: bool = False) -> dict[str, float]:
    """Frames/s of ``model``'s encoder over ``frames``: ``batched`` (``vaelib.mmdvae.embed``, inference mode),
    ``one_at_a_time`` (inference mode) and, if ``with_grad``, ``one_at_a_time_with_grad`` (autograd recording
    every operation, as the original project embedded)."""
    import torch

    from vaelib.data import to_tensor
    from vaelib.mmdvae import embed

    frames = np.asarray(frames)
    device = next(model.parameters()).device

    def rate(run) -> float:
        t0 = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return len(frames) / (time.perf_counter() - t0)

    def one_at_a_time() -> None:
        for f in frames:
            model.encode(to_tensor(f[None], device)).detach().cpu()

    embed(model, frames[:64], progress=False)  # warm up
    out = {"batched": rate(lambda: embed(model, frames, batch_size=256, progress=False))}
    with torch.inference_mode():
        out["one_at_a_time"] = rate(one_at_a_time)
    if with_grad:
        out["one_at_a_time_with_grad"] = rate(one_at_a_time)
    return out


def cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (decoders, workers), user + system."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def write_results(record: dict, path: Path, note: str = "") -> Path:
    """Write a benchmark's ``record`` as indented JSON to ``path``, atomically; print where (and ``note``)."""
    write_json(path, record)
    print(f"wrote {path}{note}")
    return path
