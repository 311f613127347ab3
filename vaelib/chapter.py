"""What every chapter does the same way: its CPU threads, its output folder, its metrics JSON.

Every chapter's parameters cell declares the same three parameters with the same meaning:

- ``run_dir``: where the chapter writes what it makes (``""``: the chapter's usual place under ``data_dir``);
  ``python -m vaelib.sweep`` sets it to one folder per run so parallel runs never collide;
- ``metrics_path``: the chapter's headline numbers as one JSON object (``""``: ``run_dir/metrics.json``);
- ``threads``: CPU threads for torch and OpenCV (``0``: the cores that other jobs leave idle, see ``auto_threads``).

When the book runs a chapter (``vaelib.book``), its metrics also go beside the figures, to
``figures/metrics/<chapter>.json``: the book names that file in the environment variable ``FIGURE_METRICS_ENV``
and ``write_metrics`` writes a copy there, so the figures and the numbers quoted about them are refreshed by
one run.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import cv2
import torch

from .paths import resolve, write_json

FIGURE_METRICS_ENV = "VAELIB_FIGURE_METRICS"


def use_threads(threads: int) -> int:
    """Use ``threads`` CPU threads in torch and OpenCV (0: ``auto_threads()``); return torch's count."""
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 0:
        raise ValueError(f"threads must be a whole number >= 0 (0: the idle cores), got {threads!r}")
    threads = threads or auto_threads()
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    return torch.get_num_threads()


def auto_threads(cores: int | None = None, busy: float | None = None) -> int:
    """How many threads to use: the cores that other jobs leave idle, at least 1.

    ``cores`` defaults to ``usable_cores()``, ``busy`` to the cores other processes keep busy
    now (``busy_cores``). All cores on an idle machine; on a busy one fewer: torch's threads wait for each
    other at every operation, so one thread that shares its core with another job stalls them all (on 2 cores
    beside other jobs, 2 threads trained at a fifth of the speed of 1).
    """
    cores = cores or usable_cores()
    busy = busy_cores() if busy is None else busy
    return max(1, min(cores, math.floor(cores - busy + 0.5)))


def usable_cores() -> int:
    """The CPUs this process may run on, at most ``OMP_NUM_THREADS`` where that is set (a limit the user chose)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    limit = os.environ.get("OMP_NUM_THREADS", "")
    return min(cores, int(limit)) if limit.isdigit() and int(limit) > 0 else cores


def busy_cores(seconds: float = 0.25) -> float:
    """The number of cores other processes keep busy: measured over ``seconds`` from ``/proc/stat`` (Linux, while
    this process sleeps), else the 1-minute load average; 0 where neither can be read."""
    def ticks() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        return sum(fields[:8]), fields[3] + fields[4]  # (all, idle + iowait) over user..steal

    try:
        (total0, idle0), _ = ticks(), time.sleep(seconds)
        total1, idle1 = ticks()
        cpus = os.cpu_count() or 1
        return cpus * (1 - (idle1 - idle0) / max(total1 - total0, 1))
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0]
        except (OSError, AttributeError):
            return 0.0


def output_dir(run_dir: str | os.PathLike, default: str | os.PathLike) -> Path:
    """The chapter's output folder: ``run_dir`` if given, else ``default``; created if missing."""
    out = resolve(run_dir) if str(run_dir) else resolve(default)
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_metrics(metrics: dict[str, Any], metrics_path: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Write the chapter's headline ``metrics`` as JSON (atomically) to ``metrics_path`` or ``out_dir/metrics.json``,
    and a copy to the file named by ``$VAELIB_FIGURE_METRICS`` when the book set it (``figures/metrics/``)."""
    path = resolve(metrics_path) if str(metrics_path) else resolve(out_dir) / "metrics.json"
    strict = _strict(metrics)
    written = write_json(path, strict, allow_nan=False)
    if os.environ.get(FIGURE_METRICS_ENV):
        write_json(resolve(os.environ[FIGURE_METRICS_ENV]), strict, allow_nan=False)
    return written


def _strict(value: Any) -> Any:
    """``value`` as strict JSON values: numpy scalars and arrays as numbers and lists, paths as strings,
    NaN and infinities as null (JSON has no NaN; a reader of metrics.json must not meet one)."""
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if hasattr(value, "tolist"):
        return _strict(value.tolist())
    if isinstance(value, os.PathLike):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float)):
        return value
    raise TypeError(f"metric value {value!r} of type {type(value).__name__} is not JSON-serializable")
