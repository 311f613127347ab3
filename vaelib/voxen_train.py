"""Training and rate-distortion evaluation of VoxEn (the model itself is in ``vaelib.voxen``).

- ``train_voxen``: one VoxEn at one lambda, through the shared trainer ``vaelib.train.train`` (run
  folder, progress bar, exact resume, metrics).
- ``evaluate_voxen`` / ``rd_comparison``: real bytes and decoded clips, scored as ``RDPoint`` records
  beside the classic codecs.
- ``python -m vaelib.voxen_train``: trains the reference models, one per lambda, resumable.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from functools import partial
from pathlib import Path

import numpy as np
import torch

from .codecs import CLASSIC_CODECS, RDPoint, classic_rd, rd_point
from .data import ClipSampler, clips_to_tensor
from .train import TrainConfig, seed_everything, train
from .voxen import VoxEn, VoxEnConfig, rd_loss


def train_voxen(frameset, movies: Sequence[str], config: VoxEnConfig, lmbda: float, train_config: TrainConfig,
                run_dir: str | Path, val_clips: np.ndarray | None = None, progress: bool = True) -> VoxEn:
    """Train one VoxEn at rate-distortion trade-off ``lmbda`` with the shared trainer ``vaelib.train.train``.

    Clips come from ``movies`` of ``frameset`` (a ``ClipSampler``); ``val_clips`` (uint8, a few held-out
    clips) are scored on rate and PSNR every ``val_every`` steps. Calling it again on a finished run
    folder with the same configs loads the trained weights instead of training again; on an unfinished
    one it resumes exactly.
    """
    seed_everything(train_config.seed)
    model = VoxEn(config)
    sampler = ClipSampler(frameset, movies, config.clip_len, train_config.batch_size)
    val_fn = None
    if val_clips is not None and len(val_clips):
        x_val = clips_to_tensor(np.asarray(val_clips[:4]))

        def val_fn(m: VoxEn) -> dict[str, float]:
            out = rd_loss(m, x_val.to(m._device()), lmbda)
            return {k: float(v) for k, v in out.items()}

    train(model, partial(rd_loss, lmbda=lmbda), sampler, train_config, run_dir, val_fn=val_fn,
          extra_config={"voxen": asdict(config), "lmbda": float(lmbda), "movies": list(movies)},
          progress=progress)
    config.to_json(Path(run_dir) / "voxen.json")
    return model.cpu().eval()


def evaluate_voxen(model: VoxEn, clips: np.ndarray, setting: float, dataset: str = "", fps: float = 0.0,
                   **fields) -> tuple[RDPoint, np.ndarray]:
    """Compress every clip to real bytes, decode them, and score: an ``RDPoint`` and the decoded clips.

    ``fields`` (e.g. ``train_steps``, ``train_s``, ``seed``) go into the record."""
    model = model.cpu().eval()
    decoded, n_bytes, enc_s, dec_s = [], [], [], []
    for clip in clips:
        t0 = time.perf_counter()
        data, _ = model.compress(clip)
        t1 = time.perf_counter()
        decoded.append(model.decompress(data))
        dec_s.append(time.perf_counter() - t1)
        enc_s.append(t1 - t0)
        n_bytes.append(len(data))
    point = rd_point("voxen", setting, list(clips), decoded, n_bytes, enc_s, dec_s, dataset=dataset,
                     settings=f"lambda={setting} " + json.dumps(asdict(model.config), separators=(",", ":")),
                     fps=float(fps), **fields)
    return point, np.stack(decoded)


def rd_comparison(models: dict[float, VoxEn], clips: np.ndarray, dataset: str,
                  codec_settings: dict[str, Sequence[int]] | None = None, fps: float = 25.0,
                  progress: bool = True, voxen_fields: dict[float, dict] | None = None) -> list[RDPoint]:
    """RD points of every VoxEn in ``models`` (keyed by lambda) and of the classic codecs, on the same clips.

    ``voxen_fields[lambda]`` adds record fields (training steps and seconds) to that model's point."""
    voxen_fields = voxen_fields or {}
    points = [evaluate_voxen(m, clips, lmbda, dataset=dataset, fps=fps, **voxen_fields.get(lmbda, {}))[0]
              for lmbda, m in models.items()]
    names = list(codec_settings) if codec_settings else list(CLASSIC_CODECS)
    return points + classic_rd(list(clips), codecs=names, settings=codec_settings, dataset=dataset, fps=fps,
                               progress=progress)


def main(argv: list[str] | None = None) -> int:
    """Train VoxEn reference models, one per lambda, each in its own resumable run folder."""
    from .data import split_movies
    from .paths import resolve
    from .video import load_frames

    ap = argparse.ArgumentParser(prog="python -m vaelib.voxen_train", description=main.__doc__)
    ap.add_argument("--frames", default="data/frames", help="chapter-1 frame store to train on")
    ap.add_argument("--out", default="data/voxen/reference", help="folder of the run folders")
    ap.add_argument("--config", default="", help="VoxEnConfig JSON (file or text); default: VoxEnConfig()")
    ap.add_argument("--lambdas", default="0.001,0.004,0.016")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    fs = load_frames(resolve(args.frames))
    train_movies, _ = split_movies(fs.movies, 1)
    config = VoxEnConfig.from_json(args.config) if args.config else VoxEnConfig()
    for lmbda in [float(x) for x in args.lambdas.split(",")]:
        tc = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed, device="cpu",
                         log_every=10, val_every=10 ** 9, checkpoint_every=50)
        train_voxen(fs, train_movies, config, lmbda, tc, resolve(args.out) / f"lambda_{lmbda:g}_seed{args.seed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
