"""Benchmark: what chapter 3's VoxEn rows cost (issue 10's target: chapter 3 at the default size within +60 s).

Chapter 3 encodes every frame with a committed VoxEn reference model in 32-frame clips
(:func:`vaelib.boundary_data.voxen_trajectory`) and computes the latent signals again on that trajectory
(:func:`vaelib.signals.compute_signals` with ``voxen=``, the ``_voxen`` rows). This script times both on
chapter 1's default data (its declared parameters: 7 x 180 s at 30 fps, 37,800 frames of 64 x 64; made in
``--work`` unless ``--frames`` or ``data/frames`` is given) and writes
``benchmarks/results/voxen_trajectory.json``: seconds to encode, seconds for the extra signals, frames/s,
and the trajectory's time resolution.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from _common import frames_or_synthetic, write_results

from vaelib import boundary_data
from vaelib import signals as sg
from vaelib.parameters import declared_parameters
from vaelib.paths import PROJECT_ROOT
from vaelib.train import cpu_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=Path, default=None, help="a frame store (default: data/frames, else made)")
    ap.add_argument("--work", type=Path, default=PROJECT_ROOT / "data" / "bench_voxen_trajectory",
                    help="where the default synthetic movies are made when no frame store is given")
    ap.add_argument("--lmbda", type=float, default=0.0018, help="the VoxEn model (weights/voxen_events)")
    ap.add_argument("--dims", type=int, default=16, help="principal components kept (chapter 3's voxen_dims)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=PROJECT_ROOT / "benchmarks" / "results" / "voxen_trajectory.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    p = declared_parameters("01_preprocess")
    fs = frames_or_synthetic(args.frames, args.work, n_movies=p["synthetic_movies"], seconds=p["synthetic_seconds"],
                             seed=p["seed"], n_observers=p["n_observers"],
                             activity_seconds=tuple(p["activity_seconds"]))
    fps = {m: fs.fps(m) for m in fs.movies}
    print(f"{len(fs)} frames of {fs.size}x{fs.size}, {len(fs.movies)} movies at {fps[fs.movies[0]]:g} fps", flush=True)
    model = boundary_data.pretrained_voxen(args.lmbda)
    t0 = time.perf_counter()
    vox = boundary_data.voxen_trajectory(fs.frames, fs.index, model, n_dims=args.dims)
    encode_s = time.perf_counter() - t0
    z = np.random.default_rng(0).standard_normal((len(fs), 16))       # stand-in codes: only the difference counts
    t0 = time.perf_counter()
    sg.compute_signals(fs.index, z, None, fps, temporal=False, progress=False)
    base_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    sg.compute_signals(fs.index, z, None, fps, temporal=False, voxen=vox,
                       voxen_step_frames=model.config.total_stride[0], progress=False)
    signals_s = time.perf_counter() - t0 - base_s
    step = model.config.total_stride[0]
    record = {"frames": len(fs), "movies": len(fs.movies), "fps": fps[fs.movies[0]], "lmbda": args.lmbda,
              "dims": int(vox.shape[1]), "step_frames": step, "step_s": step / fps[fs.movies[0]],
              "encode_s": round(encode_s, 1), "encode_frames_per_s": round(len(fs) / encode_s, 1),
              "extra_signals_s": round(signals_s, 1), "added_s": round(encode_s + signals_s, 1),
              "threads": args.threads, "torch": torch.__version__, "cpu": cpu_model(),
              "platform": platform.platform(), "load_average": os.getloadavg()[0]}
    print(f"VoxEn trajectory: {record['encode_s']} s ({record['encode_frames_per_s']} frames/s), extra signals "
          f"{record['extra_signals_s']} s: chapter 3 takes about {record['added_s']} s longer", flush=True)
    write_results(record, args.out)


if __name__ == "__main__":
    main()
