"""Figures shared by chapters. Every figure a chapter shows is also saved, small, to ``figures/``."""
from __future__ import annotations

import os
from collections.abc import Sequence
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
import matplotlib.ticker
import numpy as np
import pandas as pd

from .annotations import bin_centers, group_frequency
from .paths import atomic_path, resolve
from .signals import SIGNALS, fill_nan, signal_names
from .stats import standardize
from .video_io import read_frame_at


def save_figure(fig: plt.Figure, figures_dir: str | os.PathLike, name: str, dpi: int = 100) -> Path:
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


def enlarge(images: np.ndarray, scale: int) -> np.ndarray:
    """Images (..., H, W, C) enlarged ``scale`` times with nearest-neighbour (blocky) pixels."""
    images = np.asarray(images)
    return images if scale == 1 else np.repeat(np.repeat(images, scale, -3), scale, -2)


def contact_sheet(frames, index, movies: list[str], rows_of, per_movie: int = 8):
    """One row of ``per_movie`` evenly spaced frames per movie, labelled with their times."""
    fig, axes = plt.subplots(len(movies), per_movie, figsize=(1.3 * per_movie, 1.45 * len(movies)), squeeze=False)
    for r, movie in enumerate(movies):
        rows = rows_of(movie)
        picks = np.linspace(rows.start, rows.stop - 1, per_movie).astype(int)
        for c, i in enumerate(picks):
            ax = axes[r, c]
            ax.imshow(frames[i])
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"{index.time_s.iloc[i]:.1f} s", fontsize=7)
        axes[r, 0].set_ylabel(movie, fontsize=8)
    fig.tight_layout()
    return fig


def boundary_timeline(durations: dict[str, float], truth=None, presses=None, title: str = ""):
    """Per movie, ground-truth boundaries (coarse tall, fine short) above each observer's presses (dots).

    ``truth`` has columns ``movie, time_s[, level]``; ``presses`` has ``subject, movie, time_s``.
    """
    movies = list(durations)
    fig, axes = plt.subplots(len(movies), 1, figsize=(10, 1.9 * len(movies)), squeeze=False)
    for ax, movie in zip(axes[:, 0], movies):
        n_obs = 0
        if presses is not None:
            p = presses[presses.movie == movie]
            subjects = sorted(p.subject.unique())
            n_obs = len(subjects)
            for k, s in enumerate(subjects):
                t = p[p.subject == s].time_s
                ax.plot(t, np.full(len(t), k), "|", color="0.35", ms=5)
        top = n_obs + 1
        if truth is not None:
            b = truth[truth.movie == movie]
            levels = b.level if "level" in b else np.full(len(b), "boundary")
            for t, lev in zip(b.time_s, levels):
                coarse = lev == "coarse"
                ax.vlines(t, top, top + (3 if coarse else 1.5), color="C3" if coarse else "C0", lw=2 if coarse else 1)
            ax.plot([], [], color="C3", label="coarse (truth)")
            ax.plot([], [], color="C0", label="fine (truth)")
        ax.set_xlim(0, durations[movie])
        ax.set_ylim(-1, top + 3.5)
        ax.set_yticks([])
        ax.set_ylabel(f"{movie}\n{n_obs} obs.", fontsize=8)
        ax.set_xlabel("time (s)")
    if truth is not None:
        axes[0, 0].legend(loc="upper right", fontsize=7, ncol=2, framealpha=0.9)
    if title:
        axes[0, 0].set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def full_vs_small(frameset, n: int = 4):
    """``n`` source frames (decoded from the videos) above their stored small versions."""
    picks = np.linspace(0, len(frameset) - 1, n + 2).astype(int)[1:-1]
    fig, axes = plt.subplots(2, n, figsize=(2.6 * n, 4.2), squeeze=False)
    for c, i in enumerate(picks):
        movie = frameset.index.movie.iloc[i]
        src = read_frame_at(frameset.source_path(movie), float(frameset.index.time_s.iloc[i]))
        axes[0, c].imshow(src)
        axes[0, c].set_title(f"{movie} {frameset.index.time_s.iloc[i]:.1f} s\n{src.shape[1]}x{src.shape[0]}",
                             fontsize=8)
        axes[1, c].imshow(frameset.frames[i])
        axes[1, c].set_title(f"stored {frameset.size}x{frameset.size}", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return fig


def loss_curves(metrics, names: list[str] | None = None, title: str = ""):
    """Training and validation curves from a run's tidy ``metrics.csv`` (``vaelib.train.read_metrics``).

    One panel per metric (``names``, default: every metric logged for training), training as a
    line and validation as dots; log scale on the y axis where all values are positive.
    """
    names = names or list(dict.fromkeys(metrics[metrics.split == "train"].metric))
    fig, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names), 2.8), squeeze=False)
    for ax, name in zip(axes[0], names):
        for split, style in (("train", "-"), ("val", "o-")):
            d = metrics[(metrics.split == split) & (metrics.metric == name)]
            if len(d):
                ax.plot(d.step, d.value, style, ms=3, lw=1, label=split)
        vals = metrics[metrics.metric == name].value
        if len(vals) and (vals > 0).all():
            ax.set_yscale("log")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def image_figure(images: np.ndarray, ncols: int, title: str = "", inches_per_image: float = 0.9):
    """Show frames (N, H, W, 3) uint8 as one tiled picture, without axes."""
    grid = image_grid(images, ncols)
    nrows = int(np.ceil(len(images) / ncols))
    fig, ax = plt.subplots(figsize=(inches_per_image * ncols, inches_per_image * nrows + (0.3 if title else 0)))
    ax.imshow(grid, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def originals_and_reconstructions(originals: np.ndarray, reconstructions: np.ndarray, ncols: int = 8,
                                  title: str = ""):
    """Rows of originals, each followed by the row of their reconstructions (both (N, H, W, 3) uint8)."""
    n = (len(originals) // ncols) * ncols or len(originals)
    ncols = min(ncols, n)
    rows = []
    for i in range(0, n, ncols):
        rows += [originals[i:i + ncols], reconstructions[i:i + ncols]]
    fig = image_figure(np.concatenate(rows), ncols, title or "originals (odd rows) | reconstructions (even rows)")
    return fig


def save_side_by_side_gif(truth: np.ndarray, recon: np.ndarray, figures_dir: str | os.PathLike, name: str,
                          fps: float = 12.0, scale: int = 2, pad: int = 2, every: int = 1) -> Path:
    """Write a looping GIF of ground truth | reconstruction side by side (both (T, H, W, 3) uint8), atomically.

    ``every`` keeps every n-th frame (and plays them at ``fps / every``), to keep the file small.
    """
    from PIL import Image

    truth, recon = np.asarray(truth), np.asarray(recon)
    if truth.shape != recon.shape or truth.ndim != 4 or truth.shape[-1] != 3:
        raise ValueError(f"need two clips shaped (T, H, W, 3) alike, got {truth.shape} and {recon.shape}")
    fps = fps / every
    frames = [image_grid(np.stack([a, b]), ncols=2, pad=pad) for a, b in zip(truth[::every], recon[::every])]
    frames = [enlarge(f, scale) for f in frames]
    out = resolve(figures_dir) / (name if name.endswith(".gif") else f"{name}.gif")
    images = [Image.fromarray(f) for f in frames]
    with atomic_path(out, suffix=".gif") as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=int(round(1000 / fps)), loop=0)
    return out


def rd_curves(points, metrics: tuple[str, ...] = ("psnr", "ms_ssim"), title: str = ""):
    """Rate-distortion curves (bpp from real byte counts vs each metric), one line per codec.

    ``points`` is a list of ``vaelib.rd.RDPoint`` or of dicts with codec, bpp and the metrics.
    """
    rows = [p if isinstance(p, dict) else p.to_dict() for p in points]
    codecs_ = list(dict.fromkeys(r["codec"] for r in rows))
    labels = {"psnr": "PSNR (RGB, dB)", "ms_ssim": "MS-SSIM (RGB)"}
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.3), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for c in codecs_:
            pts = sorted((r["bpp"], r[metric]) for r in rows if r["codec"] == c)
            ax.plot(*zip(*pts), marker="o", ms=3, lw=2 if c == "voxen" else 1.2, label=c)
        ax.set_xscale("log")
        ax.set_xlabel("bits per pixel (log scale)")
        ax.set_ylabel(labels.get(metric, metric))
        ax.grid(alpha=0.3, which="both")
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def runs_curves(runs: dict[str, pd.DataFrame], metrics: dict[str, str], log_first: bool = True):
    """One panel per metric (``metrics``: name -> title), one colour per run (``runs``: label -> tidy
    ``metrics.csv`` frame); training as lines, validation as dots."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.25 * len(metrics), 3), squeeze=False)
    for ax, (name, title) in zip(axes[0], metrics.items()):
        for i, (label, df) in enumerate(runs.items()):
            for split, style in (("train", "-"), ("val", "o")):
                d = df[(df.split == split) & (df.metric == name)]
                if len(d):
                    ax.plot(d.step, d.value, style, color=f"C{i}", ms=3, lw=1, label=f"{label} {split}")
        ax.set_xlabel("step")
        ax.set_title(title, fontsize=10)
    if log_first:
        axes[0][0].set_yscale("log")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def validation_curves(runs: dict[str, pd.DataFrame], metrics: dict[str, str], title: str = "",
                      log: Sequence[str] = ("bpp",), xlabel: str = "step"):
    """One panel per metric (``metrics``: name -> axis label), one line per run (``runs``: label -> tidy
    ``metrics.csv`` frame), validation only: its clips are the same at every step, so its curve shows what training
    changed (a training batch's numbers jump with the batch). ``log``: metrics drawn on a log scale."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.25 * len(metrics), 3.2), squeeze=False)
    for ax, (name, label) in zip(axes[0], metrics.items()):
        for i, (run, df) in enumerate(runs.items()):
            d = df[(df.split == "val") & (df.metric == name)].sort_values("step")
            if len(d):
                ax.plot(d.step, d.value, "o-", color=f"C{i}", ms=3, lw=1.2, label=run)
        if name in log:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def ablation_rd(record: dict, names: dict[str, str] | None = None):
    """The time-stride ablation (``benchmarks/voxen_ablation.py``'s record): one panel per data set, PSNR against
    bpp for every arm, the mean over training seeds with bars spanning the seeds' range (``names``: data set ->
    title)."""
    results = record["results"]
    fig, axes = plt.subplots(1, len(results), figsize=(4.4 * len(results), 3.4), squeeze=False)
    for ax, (dataset, res) in zip(axes[0], results.items()):
        for i, (arm, rows) in enumerate(res.get("rd", {}).items()):
            rows = sorted(rows, key=lambda r: r["bpp"])
            bpp, q = np.array([r["bpp"] for r in rows]), np.array([r["psnr"] for r in rows])
            xerr = np.abs(np.array([r["bpp_seed_range"] for r in rows]).T - bpp)
            yerr = np.abs(np.array([r["psnr_seed_range"] for r in rows]).T - q)
            info = record.get("arms", {}).get(arm, {})
            label = f"time stride {info.get('total_time_stride', arm)}" + (
                " (parameters matched)" if info.get("control") else "")
            ax.errorbar(bpp, q, xerr=xerr, yerr=yerr, fmt="o--" if info.get("control") else "o-", ms=3, lw=1.2,
                        capsize=2, color=f"C{i}", label=label)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())   # minor labels of a short decade collide
        ax.set_xlabel("bits per pixel (log scale)")
        ax.set_ylabel("PSNR (RGB, dB)")
        ax.set_title(f"{(names or {}).get(dataset, dataset)} ({res.get('n_clips', '?')} clips)", fontsize=10)
        ax.grid(alpha=0.3, which="both")
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- chapter 3: event boundaries


def event_trajectory(xy: np.ndarray, times: np.ndarray, labels: np.ndarray, boundaries: np.ndarray,
                    title: str = ""):
    """The 2-D latent trajectory of one movie, coloured by event, true boundaries marked with crosses."""
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.plot(xy[:, 0], xy[:, 1], color="0.85", lw=0.6, zorder=1)
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=labels % 10, cmap="tab10", vmin=0, vmax=9, s=4, zorder=2)
    bi = np.searchsorted(times, boundaries).clip(0, len(times) - 1)
    ax.scatter(xy[bi, 0], xy[bi, 1], marker="x", color="k", s=40, zorder=3, label="boundary")
    ax.scatter(*xy[0], marker="o", facecolor="none", edgecolor="k", s=60, zorder=3, label="start")
    ax.set_xlabel("PC 1"), ax.set_ylabel("PC 2"), ax.set_title(title, fontsize=10)
    ax.legend(loc="best", fontsize=8)
    del sc
    fig.tight_layout()
    return fig


def boundary_signals(signals: pd.DataFrame, movie: str, frequency: tuple[np.ndarray, np.ndarray] | None,
                 boundaries: np.ndarray | None = None):
    """Each signal of one movie over time (standardized), above the group boundary frequency."""
    sub = signals[signals["movie"] == movie]
    names = signal_names(signals)
    k = len(names) + (frequency is not None)
    fig, axes = plt.subplots(k, 1, figsize=(10, 1.0 * k + 0.6), sharex=True, squeeze=False)
    axes = axes[:, 0]
    t = sub["time_s"].to_numpy()
    for a, n in zip(axes, names):
        v = sub[n].to_numpy()
        finite = v[np.isfinite(v)]
        if not len(finite) or np.ptp(finite) == 0:   # nothing to draw: say what the signal is
            a.text(0.5, 0.5, "no values in this movie" if not len(finite) else
                   f"constant ({finite[0]:g}) in this movie: no boundaries", transform=a.transAxes, ha="center",
                   va="center", fontsize=8, color="0.4")
        elif SIGNALS.get(n, ("", False))[1]:
            a.vlines(t[v > 0], 0, 1, color="tab:green", lw=1.5)
        else:
            a.plot(t, standardize(fill_nan(v)), lw=0.7, color="tab:blue")
        a.set_ylabel(n.replace("_", "\n"), rotation=0, ha="right", va="center", fontsize=8)
        a.set_yticks([])
    if frequency is not None:
        axes[-1].fill_between(frequency[0], frequency[1], step="mid", color="tab:orange", lw=0)
        axes[-1].set_ylabel("group\nfrequency", rotation=0, ha="right", va="center", fontsize=8)
    for a in axes:
        for b in (boundaries if boundaries is not None else []):
            a.axvline(b, color="k", lw=0.7, ls=":")
    axes[-1].set_xlabel("time (s)")
    axes[0].set_xlim(t[0], t[-1])
    axes[0].set_title(f"{movie}: boundary signals (dotted: true boundaries)", fontsize=10)
    fig.tight_layout(h_pad=0.2)
    return fig


def r_by_bin(across: pd.DataFrame, truth_across: pd.DataFrame | None = None):
    """r of each signal with the group frequency across bin widths, its 95% interval over events (when the
    table has ``r_lo``/``r_hi``) and the surrogate null's 95% band."""
    names = list(dict.fromkeys(across["signal"]))
    ncols = min(3, len(names))
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.6 * nrows), sharex=True, sharey=True,
                             squeeze=False)
    for a, n in zip(axes.flat, names):
        d = across[across["signal"] == n].sort_values("bin_s")
        a.fill_between(d["bin_s"], d["null_lo"], d["null_hi"], color="0.8", lw=0, label="null 95%, observers")
        a.plot(d["bin_s"], d["r"], "o-", color="tab:blue", ms=3, label="vs observers")
        if "r_lo" in d:
            a.vlines(d["bin_s"], d["r_lo"], d["r_hi"], color="tab:blue", lw=1, label="95% interval (events)")
        if truth_across is not None:
            e = truth_across[truth_across["signal"] == n].sort_values("bin_s")
            a.fill_between(e["bin_s"], e["null_lo"], e["null_hi"], color="tab:red", alpha=0.12, lw=0,
                           label="null 95%, truth")
            a.plot(e["bin_s"], e["r"], "s--", color="tab:red", ms=3, label="vs truth")
            if "r_lo" in e:
                a.vlines(e["bin_s"] * 1.06, e["r_lo"], e["r_hi"], color="tab:red", lw=1)
        a.axhline(0, color="k", lw=0.5)
        a.set_xscale("log")
        a.set_xticks(sorted(d["bin_s"].unique()))
        a.set_xticks([], minor=True)
        a.set_xticklabels([f"{b:g}" for b in sorted(d["bin_s"].unique())], fontsize=7)
        a.set_title(n.replace("_", " "), fontsize=9)
    for a in axes.flat[len(names):]:
        a.axis("off")
    for a in axes[-1]:
        a.set_xlabel("bin width (s)")
    for a in axes[:, 0]:
        a.set_ylabel("Pearson r")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def group_frequency_figure(presses: pd.DataFrame, durations: dict[str, float], bin_s: float = 1.0):
    """The group boundary frequency of each movie over time, one panel per movie, one line per condition."""
    movies = sorted(presses["movie"].unique())
    fig, axes = plt.subplots(len(movies), 1, figsize=(10, 1.5 * len(movies) + 0.5), squeeze=False)
    for a, m in zip(axes[:, 0], movies):
        for cond, g in presses.groupby("condition"):
            if (g["movie"] == m).any():
                a.step(bin_centers(durations[m], bin_s), group_frequency(g, m, durations[m], bin_s),
                       where="mid", lw=0.8, label=cond)
        a.set_xlim(0, durations[m])
        a.set_ylabel(f"movie {m}\nfraction", fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="upper right")
    axes[0, 0].set_title(f"group boundary frequency ({bin_s:g}-s bins)", fontsize=10)
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    return fig


def agreement_histogram(agreement: pd.DataFrame, title: str = ""):
    """Histogram of observers' leave-one-out agreement r, per condition."""
    fig, ax = plt.subplots(figsize=(5, 3))
    bins = np.linspace(min(-0.1, agreement["r"].min()), max(0.8, agreement["r"].max()), 25)
    for cond, g in agreement.groupby("condition"):
        ax.hist(g["r"].dropna(), bins=bins, alpha=0.6, label=f"{cond} (mean {g['r'].mean():.2f})")
    ax.axvline(0, color="k", lw=0.6)
    ax.set_xlabel("agreement with the other observers (point-biserial r)")
    ax.set_ylabel("observer x movie")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
