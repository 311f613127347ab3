"""Benchmark: preprocessing many short clips with 1 and 2 worker processes (frames/s, peak memory).

Makes ``--clips`` short synthetic clips (ffmpeg's test picture with noise, 160x120, 25 fps, 2 s) in a
folder tree ``class/clip.avi`` under ``data/bench_many/`` (once), then, each in a fresh process,
preprocesses the tree to 64 x 64 with each worker count. Peak memory per worker is read by each worker
(its own peak RSS, in the per-file report), and again over a fifth of the clips: it should not grow with
the number of videos. Prints the numbers; writes ``benchmarks/results/preprocess_many.json`` (with another
``--clips N``, ``preprocess_many_N.json``, so that it does not replace the 240-clip record).

Measure on an otherwise idle machine, at normal priority (each run records its scheduling policy and
nice value): other processes, even niced ones, take a core from a worker that is bound to it. ``--clips 960``
shows what grows with the number of clips (the probe and the merge run in the main process).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vaelib.paths import PROJECT_ROOT

# _common (and with it numpy) is imported inside the functions: each spawned worker imports this script
# again, and numpy cost it 0.12 s of CPU that preprocess's workers no longer spend


def make_clips(root: Path, n: int, classes: int = 12) -> Path:
    from vaelib.video_io import ffmpeg_exe

    for k in range(n):
        path = root / f"class{k % classes:02d}" / f"clip{k:04d}.avi"
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=size=160x120:rate=25:duration=2,noise=alls=30:allf=t:all_seed={k}",
                        "-c:v", "mpeg4", "-q:v", "4", str(path)], check=True)
    return root


def run(folder: str, workers: int, limit: int) -> dict:
    """One preprocessing run (in this process); the numbers."""
    # The libraries preprocess needs in this process are imported before the clock starts, as they were when
    # vaelib imported them at its top (it now imports them where used, so its workers need not)
    import cv2  # noqa: F401
    import pandas  # noqa: F401
    import tqdm.auto  # noqa: F401
    from _common import cpu_seconds

    from vaelib.preprocess import list_videos, preprocess

    videos = list_videos(folder, recursive=True)[:limit]
    with tempfile.TemporaryDirectory() as d:
        cpu0, t0 = cpu_seconds(), time.perf_counter()     # the imports above are not the run's CPU time
        fs = preprocess(videos, Path(d) / "frames", size=64, progress=False, workers=workers)
        seconds = time.perf_counter() - t0
        cpu = cpu_seconds() - cpu0
        report = fs.report()
        n = len(fs)
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    policy = {os.SCHED_OTHER: "other", os.SCHED_FIFO: "fifo", os.SCHED_RR: "rr"}.get(os.sched_getscheduler(0), "?")
    return {"workers": workers, "scheduler": policy, "nice": os.nice(0),
            "videos": len(videos), "frames": n, "seconds": seconds, "frames_per_s": n / seconds,
            "cpu_s": cpu,
            "frames_per_cpu_s": n / cpu, "cores_busy": cpu / seconds,
            "peak_rss_main_mib": me.ru_maxrss / 1024,
            "peak_rss_worker_mib": float(report.peak_rss_mib.max()),
            "peak_rss_children_mib": kids.ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=240)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--run", nargs=3, help=argparse.SUPPRESS)       # child process: folder workers limit
    ap.add_argument("--out", type=Path, help="default benchmarks/results/preprocess_many.json, or "
                    "preprocess_many_N.json for --clips N other than 240")
    args = ap.parse_args()
    args.out = args.out or PROJECT_ROOT / "benchmarks" / "results" / (
        "preprocess_many.json" if args.clips == 240 else f"preprocess_many_{args.clips}.json")
    from _common import write_results

    if args.run:
        print(json.dumps(run(args.run[0], int(args.run[1]), int(args.run[2]))))
        return
    folder = make_clips(PROJECT_ROOT / "data" / "bench_many", args.clips)

    def child(workers: int, limit: int) -> dict:
        cmd = [sys.executable, __file__, "--run", str(folder), str(workers), str(limit)]
        return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)

    runs = []
    for w in (int(x) for x in args.workers.split(",")):
        r = child(w, args.clips)
        runs.append(r)
        print(f"{w} worker(s): {r['videos']} videos, {r['frames']} frames in {r['seconds']:.1f} s = "
              f"{r['frames_per_s']:.0f} frames/s ({r['frames_per_cpu_s']:.0f} per CPU-s, {r['cores_busy']:.2f} cores "
              f"busy); peak RSS main {r['peak_rss_main_mib']:.0f} MiB, "
              f"per worker {r['peak_rss_worker_mib']:.0f} MiB")
    small = child(1, max(1, args.clips // 5))
    print(f"1 worker over {small['videos']} videos: peak RSS per worker {small['peak_rss_worker_mib']:.0f} MiB "
          f"(vs {runs[0]['peak_rss_worker_mib']:.0f} MiB over {runs[0]['videos']})")
    speedup = runs[1]["frames_per_s"] / runs[0]["frames_per_s"] if len(runs) > 1 else None
    if speedup is not None:
        print(f"speed-up with {runs[1]['workers']} workers: {speedup:.2f}x (CPU cost per frame "
              f"{runs[0]['frames_per_cpu_s'] / runs[1]['frames_per_cpu_s']:.2f}x of one worker's)")
    record = {"benchmark": "preprocess_many", "clips": args.clips, "clip": "160x120, 25 fps, 2 s, mpeg4 in AVI",
              "size": 64, "runs": runs, "fewer_videos": small, "speedup": speedup,
              "cpus": os.cpu_count(), "load_average_1min": os.getloadavg()[0],
              "python": platform.python_version(), "machine": platform.machine()}
    write_results(record, args.out)


if __name__ == "__main__":
    main()
