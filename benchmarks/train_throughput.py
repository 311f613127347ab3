"""Benchmark: training frames/s of the MMD-VAE default preset and of VoxEn in 1 and N processes; embedding frames/s.

(a) Training throughput through ``vaelib.train.train`` itself (sampler, DDP, logging, checkpoints):
    for each model and each process count in ``--nprocs``, the script starts itself under ``torchrun``
    (gloo on CPU, NCCL on CUDA), trains ``--warmup-steps`` steps, then resumes for ``--seconds`` and
    counts the frames of the steps done in that time (a VoxEn clip of T frames counts T frames). On a
    CPU each case is P processes of T torch threads (``--cases``), e.g. 1x2 against 2x1 on two cores;
    ``--variants`` times training options too (``bf16``, ``channels_last``, ``compile`` or combinations).
    Every case is timed ``--rounds`` times, the cases interleaved, and the median is reported (on a
    shared machine the load changes from minute to minute).
(b) Embedding frames/s of the MMD-VAE default preset in one process: ``vaelib.mmdvae.embed`` (batched,
    inference mode) against one frame at a time (inference mode).

Frames are random uint8 pictures (the speed does not depend on what they show). Writes
``benchmarks/results/train_throughput[_<device>].json`` with the device's name and prints the figures.
On a GPU: ``--device cuda --variants fp32 bf16+channels_last+compile``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from _common import embedding_speed, write_results

from vaelib import distributed
from vaelib.data import frame_sampler
from vaelib.losses import MMDLossConfig, mmd_vae_loss_fn, rd_loss
from vaelib.mmdvae import MMDVAE, MMDVAEConfig, n_parameters
from vaelib.paths import PROJECT_ROOT, write_json
from vaelib.train import TrainConfig, pick_device, reproducibility, seed_everything, train
from vaelib.voxen import VoxEn, VoxEnConfig
from vaelib.voxen_train import training_sampler

MODELS = ("mmdvae", "voxen")


class _Store:
    """The two things ``ClipSampler`` needs of a frame store: frames and one movie's rows."""

    def __init__(self, frames: np.ndarray):
        self.frames = frames

    def movie_rows(self, movie: str) -> slice:
        return slice(0, len(self.frames))


def random_frames(n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def worker(args: argparse.Namespace) -> None:
    """One process of one timing (under torchrun, every process runs this); rank 0 writes ``--result``."""
    torch.set_num_threads(args.threads_per_process)
    frames = random_frames(args.n_frames)
    seed_everything(0)
    if args.model == "mmdvae":
        model = MMDVAE(MMDVAEConfig.from_preset("default", image_size=64))
        loss_fn, sampler = mmd_vae_loss_fn(MMDLossConfig()), frame_sampler(frames, np.arange(len(frames)), args.batch)
        frames_per_item = 1
    else:
        cfg = VoxEnConfig()
        model = VoxEn(cfg)
        loss_fn = lambda m, b: rd_loss(m, b, 0.01)  # noqa: E731
        # the reference training's batches: camera clips of photos (rendered per step), then movie clips
        sampler = training_sampler(_Store(frames), ["all"], cfg, args.batch, args.voxen_photo_fraction)
        frames_per_item = cfg.clip_len
    tc = dict(batch_size=args.batch, lr=1e-4, device=args.device, precision=args.precision,
              channels_last=args.channels_last, compile=args.compile, log_every=10, val_every=10**9,
              checkpoint_every=10**9)
    first = train(model, loss_fn, sampler, TrainConfig(steps=args.warmup_steps, **tc), args.run_dir, progress=False)
    timed = train(model, loss_fn, sampler, TrainConfig(steps=10**9, max_seconds=args.seconds, **tc), args.run_dir,
                  progress=False)
    if distributed.is_main():
        steps, seconds = timed.step - first.step, timed.seconds - first.seconds
        out = {"model": args.model, "processes": int(os.environ.get("WORLD_SIZE", "1")),
               "threads_per_process": args.threads_per_process, "global_batch": args.batch,
               "frames_per_step": args.batch * frames_per_item, "parameters": n_parameters(model),
               "steps": steps, "seconds": seconds,
               "frames_per_s": steps * args.batch * frames_per_item / seconds,
               **({"photo_fraction": args.voxen_photo_fraction} if args.model == "voxen" else {})}
        write_json(args.result, out, indent=None)    # atomic: the parent reads it, never half-written


def embedding_speeds(device: torch.device, n: int) -> dict[str, float]:
    """Frames/s of the default preset's encoder on ``n`` random frames: batched (``embed``) and one frame at a time,
    both in inference mode."""
    seed_everything(0)
    model = MMDVAE(MMDVAEConfig.from_preset("default", image_size=64)).to(device).eval()
    speed = embedding_speed(model, random_frames(n, seed=1))
    return {"frames": n, "batched_frames_per_s": speed["batched"], "one_at_a_time_frames_per_s": speed["one_at_a_time"],
            "batched_speedup": speed["batched"] / speed["one_at_a_time"]}


VARIANTS = {"fp32": [], "bf16": ["--precision", "bf16"], "channels_last": ["--channels-last"],
            "compile": ["--compile", "inductor"]}


def variant_flags(variant: str) -> list[str]:
    """Worker flags of a variant such as ``bf16+channels_last+compile``."""
    parts = variant.split("+")
    unknown = [v for v in parts if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; combine {list(VARIANTS)} with '+'")
    return [flag for v in parts for flag in VARIANTS[v]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--cases", nargs="+", help="PxT: P processes of T torch threads each (default on a CPU of C "
                    "cores: 1x1 1xC 2x(C/2); on CUDA: 1x1, and Gx1 for G GPUs)")
    ap.add_argument("--variants", nargs="+", default=["fp32"],
                    help=f"training options to time, each {list(VARIANTS)} or a '+' combination")
    ap.add_argument("--rounds", type=int, default=3, help="every case is timed this often, interleaved; median")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (one GPU per process)")
    ap.add_argument("--seconds", type=float, default=15.0, help="timed training per case and round")
    ap.add_argument("--warmup-steps", type=int, default=3)
    ap.add_argument("--mmdvae-batch", type=int, default=64, help="global batch of frames")
    ap.add_argument("--voxen-batch", type=int, default=2, help="global batch of clips")
    ap.add_argument("--voxen-photo-fraction", type=float, default=0.0,
                    help="share of VoxEn's batch rendered from photos (voxen_train's default is 0.5)")
    ap.add_argument("--n-frames", type=int, default=4096, help="random frames to sample from")
    ap.add_argument("--embed-frames", type=int, default=1024)
    ap.add_argument("--out", type=Path)
    # a worker's own arguments (set by main when it starts the workers)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--threads-per-process", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--run-dir", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    ap.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    ap.add_argument("--channels-last", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--compile", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)

    device = pick_device(args.device)
    rec = reproducibility(device)
    name = rec.get("gpu") or rec["cpu_model"]
    out = args.out or PROJECT_ROOT / "benchmarks" / "results" / (
        "train_throughput.json" if device.type == "cpu" else f"train_throughput_{device.type}.json")
    cores = os.cpu_count() or 1
    if args.cases:
        cases = [tuple(int(v) for v in c.lower().split("x")) for c in args.cases]
    elif device.type == "cuda":
        cases = [(1, 1)] + ([(torch.cuda.device_count(), 1)] if torch.cuda.device_count() > 1 else [])
    else:
        cases = [(1, 1)] + ([(1, cores), (2, cores // 2)] if cores > 1 else [])
    grid = [(m, n, per, v) for m in args.models for n, per in cases for v in args.variants]
    for v in args.variants:
        variant_flags(v)
    results = {"device": device.type, "device_name": name, "torch": torch.__version__, "cpu_count": cores,
               "rounds": args.rounds, "seconds_per_run": args.seconds, "load_average_before": os.getloadavg(),
               "reproducibility": rec, "training": [], "embedding": {}}
    print(f"{name} ({device.type}), torch {torch.__version__}, {cores} cores, load {os.getloadavg()[0]:.1f}; "
          f"{len(grid)} cases x {args.rounds} rounds of {args.seconds:.0f} s, interleaved")
    env = {**os.environ}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    runs: dict[tuple, list[dict]] = {g: [] for g in grid}
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            for model, n, per, variant in grid:
                launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}"] \
                    if n > 1 else [sys.executable]
                tag = f"{model}_{n}x{per}_{variant}_{rnd}"
                result = Path(tmp) / f"{tag}.json"
                cmd = [*launcher, __file__, "--worker", "--model", model,
                       "--batch", str(args.mmdvae_batch if model == "mmdvae" else args.voxen_batch),
                       "--threads-per-process", str(per), "--run-dir", str(Path(tmp) / f"run_{tag}"),
                       "--result", str(result), "--device", args.device, "--seconds", str(args.seconds),
                       "--warmup-steps", str(args.warmup_steps), "--n-frames", str(args.n_frames),
                       "--voxen-photo-fraction", str(args.voxen_photo_fraction),
                       *variant_flags(variant)]
                p = subprocess.run(cmd, env={**env, "OMP_NUM_THREADS": str(per)}, capture_output=True, text=True,
                                   timeout=20 * args.seconds + 900)
                if p.returncode:
                    raise SystemExit(f"{model} {variant} in {n} process(es) failed:\n{p.stderr[-4000:]}")
                r = json.loads(result.read_text())
                runs[(model, n, per, variant)].append(r)
                print(f"[round {rnd + 1}] {model} {variant}, {n} process(es) x {per} thread(s): "
                      f"{r['frames_per_s']:,.0f} frames/s ({r['steps']} steps in {r['seconds']:.1f} s)", flush=True)
    for (model, n, per, variant), rs in runs.items():
        fps = [r["frames_per_s"] for r in rs]
        results["training"].append({**{k: rs[0][k] for k in ("model", "processes", "threads_per_process",
                                                              "global_batch", "frames_per_step", "parameters",
                                                              "photo_fraction") if k in rs[0]},
                                    "variant": variant, "frames_per_s": float(np.median(fps)),
                                    "frames_per_s_runs": fps})
        print(f"{model:6s} {variant:28s} {n} x {per}: median {np.median(fps):,.0f} frames/s "
              f"(runs {', '.join(f'{f:,.0f}' for f in fps)})")
    torch.set_num_threads(cores)
    emb = [embedding_speeds(device, args.embed_frames) for _ in range(args.rounds)]
    results["embedding"] = e = {"frames": args.embed_frames, **{
        k: float(np.median([x[k] for x in emb])) for k in ("batched_frames_per_s", "one_at_a_time_frames_per_s")}}
    e["batched_speedup"] = e["batched_frames_per_s"] / e["one_at_a_time_frames_per_s"]
    print(f"[mmdvae] embedding frames/s (median of {args.rounds}): batched {e['batched_frames_per_s']:,.0f}, "
          f"one at a time {e['one_at_a_time_frames_per_s']:,.0f} (x{e['batched_speedup']:.1f})")
    results["load_average_after"] = os.getloadavg()
    write_results(results, out)


if __name__ == "__main__":
    main()
