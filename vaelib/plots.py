"""Figures shared by chapters. Every figure a chapter shows is also saved, small, to ``figures/``."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib

if not os.environ.get("DISPLAY") and "ipykernel" not in matplotlib.get_backend().lower():
    # Headless (papermill, CI): no display needed; notebooks keep their inline backend.
    try:
        import IPython

        if IPython.get_ipython() is None:
            matplotlib.use("Agg")
    except ImportError:
        matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from .paths import atomic_path, resolve


def save_figure(fig: "plt.Figure", figures_dir: str | os.PathLike, name: str, dpi: int = 100) -> Path:
    """Save ``fig`` as ``figures_dir/name`` (PNG unless ``name`` says otherwise), atomically; return the path."""
    out = resolve(figures_dir) / name
    if not out.suffix:
        out = out.with_suffix(".png")
    with atomic_path(out, suffix=out.suffix) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=out.suffix.lstrip("."))
    return out


def image_grid(images: np.ndarray, ncols: int, pad: int = 2, fill: int = 255) -> np.ndarray:
    """Tile ``images`` (N, H, W, 3) uint8 into one (rows*H, ncols*W, 3) image with ``pad`` pixels between."""
    images = np.asarray(images)
    n, h, w = images.shape[:3]
    nrows = int(np.ceil(n / ncols))
    grid = np.full((nrows * (h + pad) - pad, ncols * (w + pad) - pad, 3), fill, dtype=np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, ncols)
        grid[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = img
    return grid
