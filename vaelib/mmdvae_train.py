"""Train the MMD-VAE on a frame store from the command line: chapter 2's training, in one process or under torchrun.

    python -m vaelib.mmdvae_train --frames data/frames --run-dir runs/mmd --steps 2000
    torchrun --standalone --nproc-per-node 8 -m vaelib.mmdvae_train --frames data/frames --run-dir runs/mmd \\
        --device cuda --batch-size 512 --precision bf16 --channels-last --compile inductor

The run folder is ``vaelib.train``'s (config, environment, metrics, checkpoint); running the same
command again resumes it. ``--batch-size`` is the global batch, split over the processes.
``vaelib.zoo.load_mmdvae`` loads the trained model back.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from . import distributed
from .data import Split, frame_sampler, split_frames
from .framestore import FrameSet, load_frames
from .losses import MMDLossConfig, mmd_vae_loss_fn
from .mmdvae import MMDVAE, MMDVAEConfig, mmd_vae_val_fn, n_parameters
from .train import TrainConfig, TrainResult, seed_everything, train


def train_mmdvae(fs: FrameSet, split: Split, run_dir: str | Path, model_cfg: MMDVAEConfig | None = None,
                 loss_cfg: MMDLossConfig | None = None, train_cfg: TrainConfig | None = None,
                 resume: bool = True, progress: bool = True,
                 extra_config: dict | None = None) -> tuple[MMDVAE, TrainResult]:
    """Train an MMD-VAE on the frames ``split.train`` of ``fs`` in ``run_dir``; return (model, result).

    Chapter 2 and the command line both train through here. ``model_cfg`` defaults to the ``default``
    preset at the store's frame size; the frames ``split.val`` are scored every ``val_every`` steps.
    ``extra_config`` is recorded in the run folder's config beside the model and loss configs, and so is the
    data (the frames' ``digest``, the split's ``identity``, and ``extra_config["data"]``): a resume on other
    frames or another split is refused.
    """
    model_cfg = model_cfg or MMDVAEConfig.from_preset("default", image_size=fs.size)
    loss_cfg, train_cfg = loss_cfg or MMDLossConfig(), train_cfg or TrainConfig()
    seed_everything(train_cfg.seed)
    model = MMDVAE(model_cfg)
    extra = dict(extra_config or {})
    data = {"frames": fs.digest, "split": split.identity(), **extra.pop("data", {})}
    result = train(model, mmd_vae_loss_fn(loss_cfg), frame_sampler(fs.frames, split.train, train_cfg.batch_size),
                   train_cfg, run_dir, val_fn=mmd_vae_val_fn(fs.frames[split.val], loss_cfg),
                   extra_config={"model": model_cfg.to_dict(), "loss": loss_cfg.to_dict(), "data": data, **extra},
                   resume=resume, progress=progress)
    return model, result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=Path, required=True, help="a frame store (chapter 1 writes data/frames)")
    ap.add_argument("--run-dir", type=Path, required=True)
    ap.add_argument("--preset", default="default", help="default or original")
    ap.add_argument("--z-dim", type=int)
    ap.add_argument("--mmd-weight", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=64, help="the global batch (split over torchrun's processes)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda (under torchrun each process takes one GPU)")
    ap.add_argument("--precision", default="fp32", help="fp32 or bf16")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--compile", help="a torch.compile backend, e.g. inductor")
    ap.add_argument("--max-seconds", type=float)
    ap.add_argument("--val-split", default="time", help="time (held-out blocks of every movie) or movie")
    ap.add_argument("--restart", action="store_true", help="start over instead of resuming the run folder")
    args = ap.parse_args(argv)
    every = max(1, args.steps // 10)
    train_cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                            device=args.device, precision=args.precision, channels_last=args.channels_last,
                            compile=args.compile, max_seconds=args.max_seconds, val_every=every,
                            checkpoint_every=every)
    fs = load_frames(args.frames)
    model_cfg = MMDVAEConfig.from_preset(args.preset, image_size=fs.size, z_dim=args.z_dim)
    model, result = train_mmdvae(fs, split_frames(fs.index, how=args.val_split), args.run_dir, model_cfg,
                                 MMDLossConfig(mmd_weight=args.mmd_weight), train_cfg, resume=not args.restart,
                                 extra_config={"frames": str(args.frames), "data": {"val_split": args.val_split}})
    if distributed.is_main():
        print(f"{n_parameters(model) / 1e6:.2f} M parameters; {result.step} steps in {result.seconds:.0f} s "
              f"in {distributed.world_size()} process(es); validation: "
              f"{ {k: round(v, 4) for k, v in result.last_val.items()} }; run folder {result.run_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
