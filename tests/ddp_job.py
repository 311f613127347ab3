"""A tiny MMD-VAE training run for tests/test_distributed.py, started by torchrun (or plainly, for one process).

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/ddp_job.py RUN_DIR [--steps N]
        [--stop-at N] [--batch-size B] [--die-at STEP --die-rank R --die-how raise|kill|nan] [--device cpu]
        [--max-seconds S --late-at STEP --late-rank R]

Weights end up in RUN_DIR/checkpoint.pt; the test compares them between runs.
"""
import argparse
import os
import signal
import time

import numpy as np
import torch

from vaelib import distributed
from vaelib.data import frame_sampler
from vaelib.losses import MMDLossConfig, mmd_vae_loss_fn
from vaelib.mmdvae import MMDVAE, MMDVAEConfig
from vaelib.train import TrainConfig, seed_everything, train

TINY = MMDVAEConfig(image_size=16, channels=(4, 8), hidden=16, z_dim=3)


def frames(n=40, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (4, 16, 16, 3))
    return np.clip(base[np.arange(n) % 4] + rng.integers(-20, 20, (n, 16, 16, 3)), 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--stop-at", type=int)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--die-at", type=int, help="this step's loss makes rank --die-rank fail")
    ap.add_argument("--die-rank", type=int, default=1)
    ap.add_argument("--die-how", choices=["raise", "kill", "nan"], default="raise")
    ap.add_argument("--max-seconds", type=float)
    ap.add_argument("--late-at", type=int, help="from this step on, rank --late-rank's clock reads 1000 s later")
    ap.add_argument("--late-rank", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = frames()
    seed_everything(0)
    model = MMDVAE(TINY)
    loss_cfg = MMDLossConfig(mmd_weight=1.0)
    base_loss = mmd_vae_loss_fn(loss_cfg)
    calls = {"n": 0}

    clock = time.perf_counter

    def loss_fn(m, batch):
        calls["n"] += 1
        if args.late_at is not None and distributed.rank() == args.late_rank and calls["n"] == args.late_at:
            time.perf_counter = lambda: clock() + 1000.0  # this rank alone runs out of time
        if args.die_at is not None and distributed.rank() == args.die_rank and calls["n"] == args.die_at:
            if args.die_how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if args.die_how == "nan":
                return {k: v * float("nan") for k, v in base_loss(m, batch).items()}
            raise RuntimeError(f"rank {args.die_rank} fails on purpose")
        return base_loss(m, batch)

    val_x = torch.from_numpy(data[:8]).permute(0, 3, 1, 2).float() / 255
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=3e-3, seed=0, device=args.device,
                      log_every=2, val_every=4, checkpoint_every=5, max_seconds=args.max_seconds)
    train(model, loss_fn, frame_sampler(data, np.arange(len(data)), args.batch_size), cfg, args.run_dir,
          val_fn=lambda m: base_loss(m, val_x.to(next(m.parameters()).device)),
          extra_config={"model": TINY.to_dict()}, stop_at=args.stop_at,
          progress=False)


if __name__ == "__main__":
    main()
