"""Benchmark: the MMD-VAE presets on the same frames, and batched against frame-at-a-time embedding.

(a) seconds per training step of ``default`` and ``original`` at the same batch size;
(b) held-out PSNR each reaches within the same wall-clock training budget (``--budget-s``);
(c) embedding speed in frames/s: batched under ``torch.inference_mode()`` (vaelib), one frame at a
    time under ``inference_mode``, and one frame at a time with gradients on (as the original did).

Frames: ``--frames`` (a chapter-1 frame store; default ``data/frames`` if it exists), else a small
synthetic set made in a temporary folder. Held-out frames: contiguous time blocks (``split_frames``).
Writes ``benchmarks/results/mmd_vae.json`` and prints the figures.
"""
from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import embedding_speed, frames_or_synthetic, write_results

from vaelib.data import frame_sampler, split_frames
from vaelib.losses import MMDLossConfig, mmd_vae_loss_fn
from vaelib.metrics import psnr
from vaelib.mmdvae import MMDVAE, MMDVAEConfig, n_parameters, reconstruct
from vaelib.paths import PROJECT_ROOT
from vaelib.train import TrainConfig, pick_device, seed_everything, train


def seconds_per_step(model: MMDVAE, frames: np.ndarray, rows: np.ndarray, batch: int, steps: int) -> float:
    """Mean wall time of ``steps`` Adam steps after one warm-up step."""
    loss_fn = mmd_vae_loss_fn(MMDLossConfig())
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    sample, g = frame_sampler(frames, rows, batch), torch.Generator().manual_seed(0)
    device = next(model.parameters()).device
    times = []
    for i in range(steps + 1):
        x = sample(g).to(device)
        t0 = time.perf_counter()
        out = loss_fn(model, x)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - t0)
    return float(np.mean(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=Path, help="a chapter-1 frame store (default: data/frames, else synthetic)")
    ap.add_argument("--presets", nargs="+", default=["default", "original"])
    ap.add_argument("--batch-size", type=int, default=8, help="the same for every preset")
    ap.add_argument("--timed-steps", type=int, default=3, help="(a) steps timed per preset")
    ap.add_argument("--budget-s", type=float, default=60.0, help="(b) training wall-clock budget per preset")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--embed-frames", type=int, default=256, help="(c) frames embedded per way")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--out", type=Path, default=PROJECT_ROOT / "benchmarks" / "results" / "mmd_vae.json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)

    with tempfile.TemporaryDirectory() as tmp:
        fs = frames_or_synthetic(args.frames, Path(tmp), n_movies=2, seconds=20.0, seed=0, n_observers=2,
                                 activity_seconds=(6.0, 9.0))
        split = split_frames(fs.index, "time", val_fraction=0.2)
        val_frames = np.asarray(fs.frames[split.val[np.linspace(0, len(split.val) - 1, 128).astype(int)]])
        print(f"{len(fs)} frames ({len(split.train)} train, {len(split.val)} held out) on {device}, "
              f"{torch.get_num_threads()} threads")
        results = {"device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
                   "platform": platform.platform(), "frames_dir": str(fs.root), "frames": len(fs),
                   "batch_size": args.batch_size,
                   "budget_s": args.budget_s, "lr": args.lr, "presets": {}}
        for preset in args.presets:
            cfg = MMDVAEConfig.from_preset(preset, image_size=fs.size)
            seed_everything(0)
            model = MMDVAE(cfg).to(device)
            r = {"parameters": n_parameters(model), "z_dim": cfg.z_dim}
            r["s_per_step"] = seconds_per_step(model, fs.frames, split.train, args.batch_size, args.timed_steps)
            print(f"[{preset}] {r['parameters'] / 1e6:.1f} M parameters, {r['s_per_step']:.3f} s/step "
                  f"at batch {args.batch_size}", flush=True)

            seed_everything(0)
            model = MMDVAE(cfg)
            tc = TrainConfig(steps=10**9, batch_size=args.batch_size, lr=args.lr, device=str(device),
                             max_seconds=args.budget_s, val_every=10**9, checkpoint_every=10**9, log_every=10)
            res = train(model, mmd_vae_loss_fn(MMDLossConfig()), frame_sampler(fs.frames, split.train, args.batch_size),
                        tc, Path(tmp) / f"run_{preset}", resume=False, progress=False)
            r["budget_steps"] = res.step
            r["budget_val_psnr"] = float(psnr(val_frames, reconstruct(model, val_frames, progress=False)))
            print(f"[{preset}] {res.step} steps in {res.seconds:.0f} s -> held-out PSNR {r['budget_val_psnr']:.2f} dB",
                  flush=True)

            n = args.embed_frames if preset == "default" else max(16, args.embed_frames // 8)
            speed = embedding_speed(model, fs.frames[:n], with_grad=True)
            r["embed_frames_per_s"] = {"batched_inference_mode": speed["batched"],
                                       "one_at_a_time_inference_mode": speed["one_at_a_time"],
                                       "one_at_a_time_with_grad": speed["one_at_a_time_with_grad"]}
            e = r["embed_frames_per_s"]
            print(f"[{preset}] embedding frames/s: batched {e['batched_inference_mode']:.0f}, one at a time "
                  f"{e['one_at_a_time_inference_mode']:.0f} (inference mode), {e['one_at_a_time_with_grad']:.0f} "
                  f"(with grad); batched speed-up x{e['batched_inference_mode'] / e['one_at_a_time_with_grad']:.1f}",
                  flush=True)
            results["presets"][preset] = r
            del model
    if "default" in results["presets"] and "original" in results["presets"]:
        d, o = results["presets"]["default"], results["presets"]["original"]
        results["original_over_default_s_per_step"] = o["s_per_step"] / d["s_per_step"]
        print(f"original / default time per step: x{results['original_over_default_s_per_step']:.1f}; "
              f"PSNR within {args.budget_s:.0f} s: default {d['budget_val_psnr']:.2f} dB, "
              f"original {o['budget_val_psnr']:.2f} dB")
    write_results(results, args.out)


if __name__ == "__main__":
    main()
