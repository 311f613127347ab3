"""Benchmark: preprocessing speed and peak memory against the decode floor and a naive baseline.

On the same videos, each mode in a fresh process (so peak RSS is its own):

- ``decode``:  decode every frame and drop it with ``vaelib.video_io.read_video`` (the floor: no pipeline on the
               same decoder can be faster);
- ``decode_accurate``: ``read_video(accurate=True)``: full-size frames with accurate colours (chroma at full
               resolution before RGB) instead of swscale's fast 4:2:0 path;
- ``decode_ffmpeg``: ffmpeg decoding alone into its null sink (no RGB conversion, no pipe): the decoder's own cost;
- ``decode_opencv``: the same with OpenCV's decoder (the reader before frame times came from ffmpeg);
- ``vaelib``:  ``vaelib.preprocess.preprocess`` (streams area-resized uint8 frames into a .npy on disk);
- ``naive``:   decode into a Python list, stack with ``np.array``, convert to float64, then resize,
               as the original project did.

All modes run in turn, three rounds by default (`--rounds`); prints frames/s, peak RSS above the
interpreter's baseline, and the ratios (medians over the rounds, and each round's); writes
``benchmarks/results/preprocess.json``. Default videos: the book's synthetic dataset (3 x 60 s).
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import cpu_seconds, write_results

from vaelib.paths import PROJECT_ROOT


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_mode(mode: str, videos: list[str], size: int) -> dict:
    import cv2
    import numpy as np

    from vaelib.preprocess import preprocess
    from vaelib.video_io import read_video

    base = _rss_mib()
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    n = 0
    if mode == "decode":
        for v in videos:
            for _ in read_video(v):
                n += 1
    elif mode == "decode_accurate":
        for v in videos:
            for _ in read_video(v, accurate=True):
                n += 1
    elif mode == "decode_ffmpeg":
        import re

        from vaelib.video_io import ffmpeg_exe
        for v in videos:
            log = subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-i", v, "-map", "0:v:0", "-f", "null",
                                  "-"], check=True, capture_output=True, text=True).stderr
            n += int(re.findall(r"frame=\s*(\d+)", log)[-1])
    elif mode == "decode_opencv":
        for v in videos:
            cap = cv2.VideoCapture(v)
            while True:
                ok, bgr = cap.read()
                if not ok:
                    break
                cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                n += 1
            cap.release()
    elif mode == "vaelib":
        with tempfile.TemporaryDirectory() as d:
            fs = preprocess(videos, Path(d) / "frames", size=size, progress=False)
            n = len(fs)
    elif mode == "naive":
        out = []
        for v in videos:
            frames = list(read_video(v))
            arr = np.array(frames).astype(np.float64) / 255.0
            out.append(np.array([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in arr]))
            n += len(frames)
        n = sum(len(o) for o in out)
    else:
        raise ValueError(mode)
    seconds = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    return {"mode": mode, "frames": n, "seconds": seconds, "frames_per_s": n / seconds,
            "cpu_s": cpu, "frames_per_cpu_s": n / cpu,
            "peak_rss_mib": _rss_mib(), "baseline_rss_mib": base, "peak_above_baseline_mib": _rss_mib() - base,
            "peak_rss_decoder_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def _ratios(results: dict[str, dict], modes: list[str]) -> dict[str, float]:
    """vaelib's frames/s and frames per CPU-second against every other mode of one round (and naive's memory)."""
    fps = {m: r["frames_per_s"] for m, r in results.items()}
    cps = {m: r["frames_per_cpu_s"] for m, r in results.items()}
    out = {f"vaelib_speed_vs_{m}": fps["vaelib"] / fps[m] for m in modes if m != "vaelib" and "vaelib" in fps}
    out.update({f"vaelib_cpu_efficiency_vs_{m}": cps["vaelib"] / cps[m]
                for m in modes if m != "vaelib" and "vaelib" in cps})
    if "naive" in results and "vaelib" in results:
        out["naive_peak_rss_vs_vaelib"] = results["naive"]["peak_rss_mib"] / results["vaelib"]["peak_rss_mib"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("videos", nargs="*", help="video files (default: the synthetic dataset)")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--modes", default="decode,decode_accurate,decode_ffmpeg,decode_opencv,vaelib,naive",
                    help="modes to run, comma-separated (naive needs about 8 GB for the default videos)")
    ap.add_argument("--rounds", type=int, default=3, help="run all modes this many times in turn; report medians")
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=PROJECT_ROOT / "benchmarks" / "results" / "preprocess.json")
    args = ap.parse_args()
    if args.mode:                                   # child process: one mode, JSON on stdout
        print(json.dumps(run_mode(args.mode, args.videos, args.size)))
        return
    videos = args.videos
    if not videos:
        from vaelib.synthetic import make_synthetic_dataset
        ds = make_synthetic_dataset(PROJECT_ROOT / "data" / "synthetic", progress=False)
        videos = [str(v) for v in ds.videos]
    modes = args.modes.split(",")
    rounds = []                                     # the modes in turn, ``--rounds`` times: this machine is noisy
    for i in range(args.rounds):
        rounds.append({})
        for mode in modes:
            cmd = [sys.executable, __file__, "--mode", mode, "--size", str(args.size), *videos]
            r = rounds[-1][mode] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            print(f"round {i + 1}  {mode:15s} {r['frames']:6d} frames  {r['frames_per_s']:8.0f} frames/s  "
                  f"{r['frames_per_cpu_s']:8.0f} frames/CPU-s  peak RSS {r['peak_rss_mib']:7.0f} MiB "
                  f"({r['peak_above_baseline_mib']:+.0f} MiB above start)")
    per_round = [_ratios(r, modes) for r in rounds]
    ratios = {k: float(statistics.median(r[k] for r in per_round)) for k in per_round[0]}
    for k, v in ratios.items():
        print(f"{k}: {v:.2f} (median; rounds {', '.join(f'{r[k]:.2f}' for r in per_round)})")
    # each mode's result: its median round by frames/s
    results = {m: sorted((r[m] for r in rounds), key=lambda x: x["frames_per_s"])[len(rounds) // 2] for m in modes}
    record = {"benchmark": "preprocess", "size": args.size, "videos": videos, "rounds": len(rounds),
              "results": results, "ratios": ratios, "ratio_rounds": {k: [r[k] for r in per_round] for k in ratios},
              "python": platform.python_version(), "machine": platform.machine()}
    write_results(record, args.out)


if __name__ == "__main__":
    main()
