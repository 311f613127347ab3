"""What every chapter does the same way: its CPU threads, its output folder, its metrics JSON.

Every chapter's parameters cell declares the same three parameters with the same meaning:

- ``run_dir``: where the chapter writes what it makes (``""``: the chapter's usual place under ``data_dir``);
  ``python -m vaelib.sweep`` sets it to one folder per run so parallel runs never collide;
- ``metrics_path``: the chapter's headline numbers as one JSON object (``""``: ``run_dir/metrics.json``);
- ``threads``: CPU threads for torch and OpenCV (``0``: the libraries' default, all cores).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import cv2
import torch

from .paths import resolve, write_json


def use_threads(threads: int) -> int:
    """Use ``threads`` CPU threads in torch and OpenCV (0 keeps their defaults); return torch's count."""
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 0:
        raise ValueError(f"threads must be a whole number >= 0 (0: all cores), got {threads!r}")
    if threads:
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
    return torch.get_num_threads()


def output_dir(run_dir: str | os.PathLike, default: str | os.PathLike) -> Path:
    """The chapter's output folder: ``run_dir`` if given, else ``default``; created if missing."""
    out = resolve(run_dir) if str(run_dir) else resolve(default)
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_metrics(metrics: dict[str, Any], metrics_path: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Write the chapter's headline ``metrics`` as JSON (atomically) to ``metrics_path`` or ``out_dir/metrics.json``."""
    path = resolve(metrics_path) if str(metrics_path) else resolve(out_dir) / "metrics.json"
    return write_json(path, _strict(metrics), allow_nan=False)


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
