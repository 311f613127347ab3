"""Peak memory of each chapter: the book's chapters run one at a time (``python -m vaelib.book CHAPTER``), each under
a memory monitor, and the peaks go to ``benchmarks/results/memory.json``.

Two peaks per chapter: ``max_process_mib``, the largest resident set any one process reached (the kernel's own
count, ``ru_maxrss`` of the finished children: what ``/usr/bin/time -v`` reports as "Maximum resident set size"),
and ``tree_mib``, the largest sum of the resident sets of the chapter's whole process tree (papermill, the kernel,
decoders and workers), sampled every ``--every`` seconds. The target: the whole book at most 4 GiB.

    python benchmarks/memory.py                               # every chapter, defaults (the data go to data/)
    python benchmarks/memory.py 01_preprocess 02_mmd_vae      # some chapters, in order
    python benchmarks/memory.py --smoke --data-dir /tmp/d     # the small parameters, elsewhere
    python benchmarks/memory.py --metrics                     # only chapter 2's metrics step, at full size

Chapters read the previous chapter's outputs, so run them in order (or on a data folder that holds them).
Resident sets count the pages of memory-mapped files a process has read (the frame store), as the kernel does.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import write_results

from vaelib.book import CHAPTERS
from vaelib.paths import PROJECT_ROOT

RESULTS = PROJECT_ROOT / "benchmarks" / "results" / "memory.json"
SMOKE_RESULTS = RESULTS.with_name("memory_smoke.json")
TARGET_GIB = 4.0

# Runs the command it is given and prints its children's peak resident set (KiB on Linux), so each chapter's
# ru_maxrss is its own and not the largest of every chapter run before it.
_MAXRSS = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]); "
           "print('MAXRSS_KIB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
           "sys.exit(rc)")


def tree_rss_bytes(root: int) -> int:
    """The summed resident sets of process ``root`` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry.name}/statm") as f:
                resident = int(f.read().split()[1])
        except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError, ValueError):
            continue  # a process that ended meanwhile
        pid, ppid = int(entry.name), int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = resident * page
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


# Chapter 2's metrics step at the default data's size (7 movies x 180 s x 30 fps of 64 x 64 frames): PSNR of the
# training and held-out frames against their reconstructions, in a fresh process; prints the memory it added.
_METRICS = """
import resource, numpy as np
from vaelib.metrics import psnr, ssim
n = 37800
rng = np.random.default_rng(0)
frames = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
recon = frames.copy()
recon[:, ::4] //= 2  # in place: nothing above the two videos before the metrics start
train = np.sort(rng.choice(n, 29000, replace=False))
val = np.setdiff1d(np.arange(n), train)[:7000]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
psnr(frames[val], recon[val]), psnr(frames[train], recon[train]), ssim(frames[val[:500]], recon[val[:500]])
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024, n)
"""


def metrics_step() -> dict:
    """Peak memory that chapter 2's metrics add at the default data's size (MiB)."""
    out = subprocess.run([sys.executable, "-c", _METRICS], cwd=PROJECT_ROOT, capture_output=True, text=True,
                         check=True).stdout.split()
    return {"frames": int(out[1]), "added_mib": round(float(out[0]), 1)}


def run_chapter(chapter: str, smoke: bool, data_dir: str | None, every: float) -> dict:
    """Run one chapter in a fresh process tree; return its peaks (MiB), wall time and exit status."""
    with tempfile.TemporaryDirectory(prefix="memory_bench_") as tmp:
        cmd = [sys.executable, "-m", "vaelib.book", chapter, "--figures-dir", f"{tmp}/figures", "--out", tmp]
        cmd += ["--smoke"] * smoke + (["--data-dir", data_dir] if data_dir else [])
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", _MAXRSS, *cmd], cwd=PROJECT_ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        peak, done = [0], threading.Event()

        def watch() -> None:
            while not done.wait(every):
                peak[0] = max(peak[0], tree_rss_bytes(proc.pid))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        err = proc.communicate()[1]
        done.set()
        watcher.join()
        seconds = time.perf_counter() - t0
    lines = err.splitlines()
    maxrss = [int(line.split()[1]) for line in lines if line.startswith("MAXRSS_KIB")]
    if proc.returncode != 0 or not maxrss:
        tail = "\n".join(line for line in lines if not line.startswith("MAXRSS_KIB"))[-3000:]
        raise RuntimeError(f"{chapter} failed (exit {proc.returncode}):\n{tail}")
    return {"max_process_mib": round(maxrss[0] / 1024, 1), "tree_mib": round(peak[0] / 2 ** 20, 1),
            "seconds": round(seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("chapters", nargs="*", help=f"chapters to run, in order (default: all of {CHAPTERS})")
    ap.add_argument("--smoke", action="store_true", help="the small parameters CI uses")
    ap.add_argument("--data-dir", help="data folder (default: data/)")
    ap.add_argument("--metrics", action="store_true", help="only chapter 2's metrics step at full size")
    ap.add_argument("--every", type=float, default=0.2, help="seconds between samples of the process tree")
    ap.add_argument("--out", type=Path, help=f"the JSON to write (default: {RESULTS.name}, or with --smoke "
                                              f"{SMOKE_RESULTS.name}, in {RESULTS.parent})")
    args = ap.parse_args(argv)
    args.out = args.out or (SMOKE_RESULTS if args.smoke else RESULTS)
    if args.metrics:
        record = json.loads(args.out.read_text()) if args.out.exists() else {}
        record["chapter2_metrics_step"] = found = metrics_step()
        print(f"chapter 2's metrics on {found['frames']:,} frames add {found['added_mib']:,.0f} MiB")
        write_results(record, args.out)
        return 0
    unknown = [c for c in args.chapters if c not in CHAPTERS]
    if unknown:
        ap.error(f"unknown chapter(s) {unknown}; choose from {CHAPTERS}")
    parameters = "smoke" if args.smoke else "defaults"
    record = json.loads(args.out.read_text()) if args.out.exists() else {}
    if record.get("parameters", parameters) != parameters:
        record = {}  # chapters measured with other parameters do not belong in one record
    record.update({"target_gib": TARGET_GIB, "parameters": parameters,
                   "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "cpus": os.cpu_count()})
    record.setdefault("chapters", {})
    for chapter in args.chapters or CHAPTERS:
        found = run_chapter(chapter, args.smoke, args.data_dir, args.every)
        print(f"{chapter}: largest process {found['max_process_mib']:,.0f} MiB, process tree "
              f"{found['tree_mib']:,.0f} MiB, {found['seconds']:.0f} s", flush=True)
        record["chapters"][chapter] = found
        write_results(record, args.out)  # after every chapter: a long run that stops keeps what it measured
    peak = max(max(c["tree_mib"], c["max_process_mib"]) for c in record["chapters"].values()) / 1024
    print(f"peak of the chapters measured: {peak:.2f} GiB (target {TARGET_GIB} GiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
