"""How well boundary signals match human and true boundaries: binning, nulls, matching, the comparison table.

The comparison bins signals and human presses on the same grid of ``bin_s`` seconds per movie:

* continuous signals are averaged within a bin, discrete ones (change points) take the bin's max;
* Pearson r between the binned signal and the group boundary frequency, pooled over movies after
  standardizing both within each movie (for a 0/1 signal this is the point-biserial r);
* its null distribution comes from phase-randomized surrogates of the binned signal within each movie
  (:func:`vaelib.stats.surrogate_test`), which keep the signal's autocorrelation and break only its
  alignment with the boundaries;
* against ground-truth boundary times: precision, recall and F1 of the signal's boundaries
  (its highest peaks, as many as there are true boundaries) within +-``tolerance_s``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.signal import find_peaks

from .annotations import bin_centers, group_frequency, n_bins
from .signals import SIGNALS, fill_nan, signal_names, smooth
from .stats import surrogate_test

# --------------------------------------------------------------------------- binning and statistics


def bin_series(values: np.ndarray, times: np.ndarray, duration_s: float, bin_s: float,
               how: str = "mean") -> np.ndarray:
    """Bin a per-frame series on the grid of :func:`vaelib.annotations.n_bins`; empty bins are interpolated."""
    nb = n_bins(duration_s, bin_s)
    b = np.minimum((np.asarray(times) / bin_s).astype(int), nb - 1)
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    if how == "mean":
        s = np.bincount(b[ok], weights=v[ok], minlength=nb)
        c = np.bincount(b[ok], minlength=nb)
        out = np.where(c > 0, s / np.maximum(c, 1), np.nan)
    elif how == "max":
        out = np.full(nb, -np.inf)
        np.maximum.at(out, b[ok], v[ok])
        out[np.isinf(out)] = np.nan
    else:
        raise ValueError(f"how must be 'mean' or 'max', not {how!r}")
    return fill_nan(out)

def match_boundaries(detected: np.ndarray, truth: np.ndarray, tolerance_s: float = 1.0) -> int:
    """One-to-one matches between detected and true boundary times within ``tolerance_s`` (greedy, closest first)."""
    detected, truth = np.asarray(detected, float), np.asarray(truth, float)
    if len(detected) == 0 or len(truth) == 0:
        return 0
    d = np.abs(detected[:, None] - truth[None, :])
    pairs = np.argwhere(d <= tolerance_s)
    pairs = pairs[np.argsort(d[pairs[:, 0], pairs[:, 1]], kind="stable")]
    used_d, used_t, hits = set(), set(), 0
    for i, j in pairs:
        if i not in used_d and j not in used_t:
            used_d.add(i), used_t.add(j)
            hits += 1
    return hits


def precision_recall_f1(detected: Iterable[np.ndarray], truth: Iterable[np.ndarray],
                        tolerance_s: float = 1.0) -> tuple[float, float, float]:
    """Precision, recall and F1 of detected boundary times against true ones, summed over movies."""
    hits = n_det = n_true = 0
    for d, t in zip(detected, truth):
        hits += match_boundaries(d, t, tolerance_s)
        n_det += len(d)
        n_true += len(t)
    p = hits / n_det if n_det else 0.0
    r = hits / n_true if n_true else 0.0
    f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return p, r, f1


def peak_times(values: np.ndarray, times: np.ndarray, n: int, min_distance_s: float = 2.0) -> np.ndarray:
    """Times of the ``n`` highest peaks of a per-frame series, at least ``min_distance_s`` apart."""
    v = fill_nan(values)
    times = np.asarray(times, dtype=float)
    if n <= 0 or len(v) < 3:
        return np.zeros(0)
    dt = np.median(np.diff(times)) if len(times) > 1 else 1.0
    peaks, props = find_peaks(v, distance=max(1, int(round(min_distance_s / dt))), height=-np.inf)
    top = peaks[np.argsort(props["peak_heights"])[::-1][:n]]
    return np.sort(times[top])


# --------------------------------------------------------------------------- the comparison


@dataclass
class Targets:
    """What signals are compared with, per movie: durations, presses (relabelled to the movies) and true boundaries."""
    durations: dict[str, float]
    presses: pd.DataFrame | None = None
    truth: dict[str, np.ndarray] | None = None

    def frequency(self, movie: str, bin_s: float) -> np.ndarray:

        return group_frequency(self.presses, movie, self.durations[movie], bin_s)

    def truth_marks(self, movie: str, bin_s: float) -> np.ndarray:

        nb = n_bins(self.durations[movie], bin_s)
        m = np.zeros(nb)
        t = np.asarray(self.truth.get(movie, []), dtype=float)
        m[np.minimum((t / bin_s).astype(int), nb - 1)] = 1.0
        return m


def observer_boundaries(targets: Targets, movie: str, n: int, bin_s: float = 0.2, sigma_s: float = 0.5,
                        min_distance_s: float = 2.0) -> np.ndarray:
    """The observers' boundaries in one movie: the ``n`` highest peaks of the group frequency.

    The frequency is taken in fine ``bin_s`` bins and smoothed with a Gaussian of ``sigma_s`` seconds
    before its peaks (at least ``min_distance_s`` apart) are picked; times are bin centres.
    """
    f = smooth(targets.frequency(movie, bin_s), 1 / bin_s, sigma_s)
    return peak_times(f, bin_centers(targets.durations[movie], bin_s), n, min_distance_s)


def _binned(signals: pd.DataFrame, name: str, movie: str, targets: Targets, bin_s: float) -> np.ndarray:
    sub = signals[signals["movie"] == movie]
    how = "max" if SIGNALS.get(name, ("", False))[1] else "mean"
    return bin_series(sub[name].to_numpy(), sub["time_s"].to_numpy(), targets.durations[movie], bin_s, how)


def r_across_bins(signals: pd.DataFrame, targets: Targets, bin_sizes: Sequence[float] = (0.2, 0.5, 1, 2, 4, 8),
                  target: str = "observers", n_null: int = 500, seed: int = 0) -> pd.DataFrame:
    """For each signal and bin width: r with the group frequency (``target="observers"``) or the true
    boundaries (``"truth"``), its surrogate p-value and null band. One tidy row per (signal, bin_s)."""
    movies = list(dict.fromkeys(signals["movie"]))
    rows = []
    for b in bin_sizes:
        ys = [targets.frequency(m, b) if target == "observers" else targets.truth_marks(m, b) for m in movies]
        for name in signal_names(signals):
            xs = [_binned(signals, name, m, targets, b) for m in movies]
            t = surrogate_test(xs, ys, n_null=n_null, rng=seed)
            lo, hi = t.null_band
            rows.append({"signal": name, "target": target, "bin_s": float(b), "r": t.r, "p": t.p,
                         "null_lo": lo, "null_hi": hi, "null_mean": float(t.null.mean())})
    return pd.DataFrame(rows)


def detected_times(signals: pd.DataFrame, name: str, movie: str, n: int, min_distance_s: float = 2.0) -> np.ndarray:
    """A signal's boundary times in one movie: its change points, or its ``n`` highest peaks."""
    sub = signals[signals["movie"] == movie]
    if SIGNALS.get(name, ("", False))[1]:
        return sub["time_s"].to_numpy()[sub[name].to_numpy() > 0]
    return peak_times(sub[name].to_numpy(), sub["time_s"].to_numpy(), n, min_distance_s)


def comparison_table(signals: pd.DataFrame, targets: Targets, bin_s: float = 1.0, tolerance_s: float = 1.0,
                     n_null: int = 1000, seed: int = 0,
                     n_boundaries: Callable[[str], int] | dict[str, int] | None = None) -> pd.DataFrame:
    """The tidy signals x metrics table.

    Columns: ``signal``, ``kind``; with presses: ``r_observers`` (Pearson/point-biserial r with the
    group frequency at ``bin_s``), ``p_observers``, ``null95_observers``; with true boundaries:
    ``r_truth``, ``p_truth`` (r with the 0/1 true-boundary bins), ``precision``, ``recall``, ``f1``
    within +-``tolerance_s`` (continuous signals place as many boundaries per movie as
    ``n_boundaries`` gives, by default the number of true ones). With both, a row ``observers``
    scores the group frequency itself as a detector against the truth.
    """
    movies = list(dict.fromkeys(signals["movie"]))
    names = signal_names(signals)
    rows = {n: {"signal": n, "kind": SIGNALS.get(n, ("other", False))[0]} for n in names}
    if targets.presses is not None:
        ys = [targets.frequency(m, bin_s) for m in movies]
        for n in names:
            t = surrogate_test([_binned(signals, n, m, targets, bin_s) for m in movies], ys, n_null, seed)
            rows[n].update(r_observers=t.r, p_observers=t.p, null95_observers=float(np.percentile(t.null, 95)))
    if targets.truth is not None:
        count = n_boundaries if n_boundaries is not None else {m: len(targets.truth.get(m, [])) for m in movies}
        k = count if callable(count) else count.__getitem__
        ys = [targets.truth_marks(m, bin_s) for m in movies]
        truth = [np.asarray(targets.truth.get(m, [])) for m in movies]
        for n in names:
            t = surrogate_test([_binned(signals, n, m, targets, bin_s) for m in movies], ys, n_null, seed)
            det = [detected_times(signals, n, m, k(m)) for m in movies]
            p, r, f1 = precision_recall_f1(det, truth, tolerance_s)
            rows[n].update(r_truth=t.r, p_truth=t.p, precision=p, recall=r, f1=f1)
        if targets.presses is not None:
            xs = [targets.frequency(m, bin_s) for m in movies]
            t = surrogate_test(xs, ys, n_null, seed)
            det = [observer_boundaries(targets, m, k(m)) for m in movies]
            p, r, f1 = precision_recall_f1(det, truth, tolerance_s)
            rows["observers"] = {"signal": "observers", "kind": "human", "r_truth": t.r, "p_truth": t.p,
                                 "precision": p, "recall": r, "f1": f1}
    return pd.DataFrame(list(rows.values()))
