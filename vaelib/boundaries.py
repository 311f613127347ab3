"""How well each boundary signal matches human and true boundaries: binning, matching, resampling units, the table.

The comparison bins signals and human presses on the same grid of ``bin_s`` seconds per movie:

* continuous signals are averaged within a bin, discrete ones (change points) take the bin's max;
* Pearson r between the binned signal and the group boundary frequency, pooled over movies after
  standardizing both within each movie (for a 0/1 signal this is the point-biserial r);
* its null distribution comes from phase-randomized surrogates of the binned signal within each movie
  (:func:`vaelib.stats.surrogate_test`), which keep the signal's autocorrelation and break only its
  alignment with the boundaries;
* against ground-truth boundary times: precision, recall and F1 of the signal's boundaries
  (its highest peaks, as many as there are true boundaries) within +-``tolerance_s``, against the
  coarse and the fine truth;
* every figure with a 95% bootstrap interval over events (:class:`Comparison`, :func:`comparison_table`), and r
  per bin width (:func:`r_across_bins`).

Signals set against each other (the best latent against the best pixel signal, declared leads, the response lag,
the combined detector) are :mod:`vaelib.comparison`'s; chapter 3's take-away in words is
:mod:`vaelib.boundary_report`'s.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.signal import find_peaks

from .annotations import bin_centers, group_frequency, n_bins
from .signals import SIGNALS, fill_nan, signal_names, smooth
from .stats import Interval, Paired, bootstrap_ci, standardize, surrogate_test, versus

# --------------------------------------------------------------------------- binning and matching


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


def matched_pairs(detected: np.ndarray, truth: np.ndarray, tolerance_s: float = 1.0) -> np.ndarray:
    """A one-to-one matching of detected to true boundary times within ``tolerance_s`` (greedy, closest pairs
    first): ``(n_matches, 2)`` indices (detected, truth)."""
    detected, truth = np.asarray(detected, float), np.asarray(truth, float)
    if len(detected) == 0 or len(truth) == 0:
        return np.zeros((0, 2), dtype=int)
    d = np.abs(detected[:, None] - truth[None, :])
    pairs = np.argwhere(d <= tolerance_s)
    pairs = pairs[np.argsort(d[pairs[:, 0], pairs[:, 1]], kind="stable")]
    used_d, used_t, out = set(), set(), []
    for i, j in pairs:
        if i not in used_d and j not in used_t:
            used_d.add(i)
            used_t.add(j)
            out.append((i, j))
    return np.array(out, dtype=int).reshape(-1, 2)


def matched_truth(detected: np.ndarray, truth: np.ndarray, tolerance_s: float = 1.0) -> np.ndarray:
    """Which true boundaries a one-to-one matching with the detected ones hits within ``tolerance_s``
    (:func:`matched_pairs`): a boolean array over ``truth``."""
    hit = np.zeros(len(truth), dtype=bool)
    hit[matched_pairs(detected, truth, tolerance_s)[:, 1]] = True
    return hit


def match_boundaries(detected: np.ndarray, truth: np.ndarray, tolerance_s: float = 1.0) -> int:
    """One-to-one matches between detected and true boundary times within ``tolerance_s`` (greedy, closest first)."""
    return int(matched_truth(detected, truth, tolerance_s).sum())


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


# --------------------------------------------------------------------------- targets and binned signals


@dataclass
class Targets:
    """What signals are compared with, per movie: durations, presses (relabelled to the movies) and true boundaries."""
    durations: dict[str, float]
    presses: pd.DataFrame | None = None
    truth: dict[str, np.ndarray] | None = None
    fine: dict[str, np.ndarray] | None = None      # true boundaries of a finer grain, for F1 against them

    def frequency(self, movie: str, bin_s: float, lag_s: float = 0.0) -> np.ndarray:
        """The group boundary frequency; with ``lag_s``, of the presses moved ``lag_s`` earlier (later when
        negative; kept within the movie), to line up presses that come ``lag_s`` after what prompted them."""
        presses = self.presses
        if lag_s:
            end = presses["movie"].map(self.durations).fillna(np.inf)
            presses = presses.assign(time_s=np.clip(presses["time_s"] - lag_s, 0.0, end))
        return group_frequency(presses, movie, self.durations[movie], bin_s)

    def truth_marks(self, movie: str, bin_s: float) -> np.ndarray:
        """One number per ``bin_s`` bin of ``movie``: 1 where a true boundary falls, else 0."""
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


def binned_signal(signals: pd.DataFrame, name: str, movie: str, targets: Targets, bin_s: float) -> np.ndarray:
    sub = signals[signals["movie"] == movie]
    how = "max" if SIGNALS.get(name, ("", False))[1] else "mean"
    return bin_series(sub[name].to_numpy(), sub["time_s"].to_numpy(), targets.durations[movie], bin_s, how)


def detected_times(signals: pd.DataFrame, name: str, movie: str, n: int, min_distance_s: float = 2.0) -> np.ndarray:
    """A signal's boundary times in one movie: its change points, or its ``n`` highest peaks."""
    sub = signals[signals["movie"] == movie]
    if SIGNALS.get(name, ("", False))[1]:
        return sub["time_s"].to_numpy()[sub[name].to_numpy() > 0]
    return peak_times(sub[name].to_numpy(), sub["time_s"].to_numpy(), n, min_distance_s)


MIN_BINS = 3          # a phase surrogate needs three values; a width giving a movie fewer is left out


def usable_bin_sizes(durations: dict[str, float], bin_sizes: Sequence[float],
                     movies: Iterable[str] | None = None) -> list[float]:
    """The bin widths that cut every movie into at least ``MIN_BINS`` bins; each one left out is said so, with
    the shortest movie."""
    dur = {m: durations[m] for m in (durations if movies is None else movies)}
    shortest = min(dur, key=dur.__getitem__)
    kept = [float(b) for b in bin_sizes if n_bins(dur[shortest], b) >= MIN_BINS]
    dropped = [float(b) for b in bin_sizes if float(b) not in kept]
    if dropped:
        print(f"bin widths {', '.join(f'{b:g}' for b in dropped)} s left out: movie {shortest!r} "
              f"({dur[shortest]:.1f} s) would have fewer than {MIN_BINS} bins of them")
    return kept


# --------------------------------------------------------------------------- resampling units and intervals


def unit_edges(targets: Targets, movie: str, units: str = "events") -> np.ndarray:
    """Where one movie is cut into resampling units for bootstrap intervals and paired tests (times in s).

    ``"events"``: one unit per true boundary (the observers' boundaries without truth), from the
    midpoint with the previous boundary to the midpoint with the next, so that a boundary and the
    detections that match it fall into the same unit; ``"movies"``: the whole movie is one unit.
    """
    if units == "movies":
        return np.zeros(0)
    if units != "events":
        raise ValueError(f"units must be 'events' or 'movies', not {units!r}")
    if targets.truth is not None:
        marks = np.sort(np.asarray(targets.truth.get(movie, []), float))
    elif targets.presses is not None:
        per = targets.presses[targets.presses["movie"] == movie].groupby("subject").size()
        marks = observer_boundaries(targets, movie, int(round(per.mean())) if len(per) else 0)
    else:
        raise ValueError("resampling by events needs true boundaries or presses")
    return (marks[1:] + marks[:-1]) / 2


def unit_of(times: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.searchsorted(edges, np.asarray(times, float), side="right")


def r_units(xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], edges: Sequence[np.ndarray],
            bin_s: float) -> np.ndarray:
    """Per resampling unit, the sums ``n, x, y, xx, yy, xy`` of the binned signal ``x`` and target ``y``,
    both standardized within their movie: an ``(n_units, 6)`` array for :func:`r_from_sums`."""
    rows = []
    for x, y, e in zip(xs, ys, edges):
        x, y = standardize(x), standardize(y)
        u = unit_of((np.arange(len(x)) + 0.5) * bin_s, e)
        cols = [np.ones_like(x), x, y, x * x, y * y, x * y]
        rows.append(np.stack([np.bincount(u, weights=c, minlength=len(e) + 1) for c in cols], axis=1))
    return np.concatenate(rows)


def r_from_sums(t: np.ndarray) -> np.ndarray:
    """Pearson r from the totals of :func:`r_units` (vectorized over leading axes); 0 where the signal or
    the target is constant, as in :func:`vaelib.stats.pooled_r`."""
    n, sx, sy, sxx, syy, sxy = np.moveaxis(np.asarray(t, float), -1, 0)
    cov = sxy - sx * sy / n
    var = (sxx - sx * sx / n) * (syy - sy * sy / n)
    ok = var > 1e-12 * np.maximum(n, 1) ** 2
    return np.where(ok, cov / np.sqrt(np.where(ok, var, 1.0)), 0.0)


def f1_units(detected: Sequence[np.ndarray], truth: Sequence[np.ndarray], edges: Sequence[np.ndarray],
             tolerance_s: float = 1.0) -> np.ndarray:
    """Per resampling unit: hits, detections, true boundaries: an ``(n_units, 3)`` array for :func:`f1_from_sums`.

    A hit and the detection that made it count in the unit of its true boundary, so no unit holds more hits than
    detections or true boundaries and no resample can give an F1 above 1; an unmatched detection counts in its
    own unit."""
    rows = []
    for d, t, e in zip(detected, truth, edges):
        d, t = np.asarray(d, float), np.asarray(t, float)
        k = len(e) + 1
        pairs = matched_pairs(d, t, tolerance_s)
        det_unit = unit_of(d, e)
        det_unit[pairs[:, 0]] = unit_of(t[pairs[:, 1]], e)
        rows.append(np.stack([np.bincount(unit_of(t[pairs[:, 1]], e), minlength=k),
                              np.bincount(det_unit, minlength=k),
                              np.bincount(unit_of(t, e), minlength=k)], axis=1).astype(float))
    return np.concatenate(rows)


def f1_from_sums(t: np.ndarray) -> np.ndarray:
    """F1 = 2 hits / (detections + true boundaries) from the totals of :func:`f1_units`."""
    h, d, n = np.moveaxis(np.asarray(t, float), -1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(d + n > 0, 2 * h / (d + n), 0.0)


STATISTICS = {"r": r_from_sums, "f1": f1_from_sums}


MIN_UNITS = 4        # fewer resampling units (events, movies) than this: no interval and no test, too little data


METRICS = ("r_observers", "r_truth", "f1", "f1_fine")


def interval_or_none(units: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray], n_boot: int = 1000,
                     seed: int = 0) -> Interval:
    """:func:`vaelib.stats.bootstrap_ci` over resampling units; with fewer than ``MIN_UNITS`` units the figure
    alone with NaN ends: too little data to resample, so no interval is reported."""
    units = np.asarray(units, float)
    if len(units) < MIN_UNITS:
        return Interval(float(statistic(units.sum(0))), float("nan"), float("nan"))
    return bootstrap_ci(units, statistic, n_boot, rng=seed)


# --------------------------------------------------------------------------- the comparison of every signal


class Comparison:
    """Signals against targets at one bin width: per signal and metric, the per-unit sums behind each figure.

    ``metric`` is ``r_observers`` (r with the group frequency), ``r_truth`` (r with the 0/1 true-boundary
    bins), ``f1`` (F1 of the signal's boundaries against the truth within +-``tolerance_s``) or
    ``f1_fine`` (against ``targets.fine``). A signal's boundaries are its change points, or its highest
    peaks, as many per movie as ``n_boundaries`` gives (default: the true count; for ``f1_fine`` the
    fine count). The name ``observers`` is the group frequency itself, as a detector of the truth.
    """

    def __init__(self, signals: pd.DataFrame, targets: Targets, bin_s: float = 1.0, tolerance_s: float = 1.0,
                 n_boundaries: Callable[[str], int] | dict[str, int] | None = None, units: str = "events"):
        self.signals, self.targets, self.bin_s, self.tolerance_s = signals, targets, bin_s, tolerance_s
        self.movies = list(dict.fromkeys(signals["movie"]))
        short = [m for m in self.movies if n_bins(targets.durations[m], bin_s) < MIN_BINS]
        if short:
            raise ValueError(f"bin_s {bin_s:g} s cuts movie {short[0]!r} ({targets.durations[short[0]]:.1f} s) into "
                             f"fewer than {MIN_BINS} bins: choose a shorter bin_s")
        self.names = signal_names(signals)
        self.edges = [unit_edges(targets, m, units) for m in self.movies]
        if n_boundaries is None and targets.truth is not None:
            n_boundaries = {m: len(targets.truth.get(m, [])) for m in self.movies}
        self._count = n_boundaries if callable(n_boundaries) or n_boundaries is None else n_boundaries.__getitem__
        self._cache: dict = {}

    def metrics(self) -> list[str]:
        """The metrics these targets allow."""
        t = self.targets
        return [m for m, ok in (("r_observers", t.presses is not None), ("r_truth", t.truth is not None),
                                ("f1", t.truth is not None), ("f1_fine", t.fine is not None)) if ok]

    def xs(self, name: str) -> list[np.ndarray]:
        """The binned signal (or the group frequency for ``observers``) per movie."""
        if name == "observers":
            return [self.targets.frequency(m, self.bin_s) for m in self.movies]
        return [binned_signal(self.signals, name, m, self.targets, self.bin_s) for m in self.movies]

    def ys(self, metric: str) -> list[np.ndarray]:
        """The binned target of an r metric per movie."""
        if metric == "r_observers":
            return [self.targets.frequency(m, self.bin_s) for m in self.movies]
        return [self.targets.truth_marks(m, self.bin_s) for m in self.movies]

    def detected(self, name: str, fine: bool = False) -> list[np.ndarray]:
        """A signal's boundary times per movie."""
        truth = self.targets.fine if fine else self.targets.truth
        k = (lambda m: len(truth.get(m, []))) if fine or self._count is None else self._count
        if name == "observers":
            return [observer_boundaries(self.targets, m, k(m)) for m in self.movies]
        return [detected_times(self.signals, name, m, k(m)) for m in self.movies]

    def units(self, name: str, metric: str) -> np.ndarray:
        """Per-unit sums of ``name`` for ``metric``: :func:`r_units` or :func:`f1_units`."""
        key = (name, metric)
        if key not in self._cache:
            if metric.startswith("r_"):
                u = r_units(self.xs(name), self.ys(metric), self.edges, self.bin_s)
            else:
                fine = metric == "f1_fine"
                truth = self.targets.fine if fine else self.targets.truth
                u = f1_units(self.detected(name, fine), [np.asarray(truth.get(m, []), float) for m in self.movies],
                             self.edges, self.tolerance_s)
            self._cache[key] = u
        return self._cache[key]

    def interval(self, name: str, metric: str, n_boot: int = 1000, seed: int = 0) -> Interval:
        """The figure and its 95% bootstrap interval over resampling units; with fewer than ``MIN_UNITS`` units
        the figure alone (NaN ends): too little data to resample."""
        return interval_or_none(self.units(name, metric), STATISTICS[metric[:2].rstrip("_")], n_boot, seed)

    def paired(self, a: str, b: str, metric: str, n_boot: int = 2000, seed: int = 0) -> Paired:
        """``a`` minus ``b`` on ``metric``, the units resampled together: the difference, its 95% interval and the
        two-sided p of one studentized bootstrap test (:func:`vaelib.stats.versus` with one method a side), so
        the interval excludes 0 exactly when p < 0.05."""
        ua, ub, stat = self.units(a, metric), self.units(b, metric), STATISTICS[metric[:2].rstrip("_")]
        if len(ua) < MIN_UNITS:             # too little data to resample: the difference alone, no test
            return Paired(float(stat(ua.sum(0)) - stat(ub.sum(0))), float("nan"), float("nan"), float("nan"))
        res = versus({"a": ua}, {"b": ub}, stat, 0.05, n_boot, seed)
        return Paired(res.diff, res.lo, res.hi, res.p)


def comparison_table(signals: pd.DataFrame, targets: Targets, bin_s: float = 1.0, tolerance_s: float = 1.0,
                     n_null: int = 1000, seed: int = 0,
                     n_boundaries: Callable[[str], int] | dict[str, int] | None = None,
                     n_boot: int = 1000, units: str = "events") -> pd.DataFrame:
    """The tidy signals x metrics table, every figure with a 95% bootstrap interval over ``units``.

    Columns: ``signal``, ``kind``; with presses: ``r_observers`` (Pearson/point-biserial r with the
    group frequency at ``bin_s``), ``p_observers`` (surrogate null), ``null95_observers``; with true
    boundaries: ``r_truth``, ``p_truth`` (r with the 0/1 true-boundary bins), ``precision``, ``recall``,
    ``f1`` within +-``tolerance_s`` (continuous signals place as many boundaries per movie as
    ``n_boundaries`` gives, by default the number of true ones); with ``targets.fine``: ``f1_fine``.
    Each figure ``m`` has ``m_lo`` and ``m_hi`` (:class:`Comparison`). ``note`` says when a signal is
    constant (binned) in some or all movies, where it carries no information. With presses and truth, a
    row ``observers`` scores the group frequency itself as a detector against the truth.
    """
    cmp = Comparison(signals, targets, bin_s, tolerance_s, n_boundaries, units)
    metrics = cmp.metrics()
    rows = {n: {"signal": n, "kind": SIGNALS.get(n, ("other", False))[0]} for n in cmp.names}
    if targets.presses is not None and targets.truth is not None:
        rows["observers"] = {"signal": "observers", "kind": "human"}
    for n, row in rows.items():
        flat = [m for m, x in zip(cmp.movies, cmp.xs(n)) if not np.ptp(x) > 0]
        row["note"] = ("constant in every movie: its r is 0 by definition" if len(flat) == len(cmp.movies) else
                       f"constant in {', '.join(flat)}: no r there" if flat else "")
        for metric in metrics:
            if n == "observers" and metric == "r_observers":
                continue
            iv = cmp.interval(n, metric, n_boot, seed)
            row.update({metric: iv.value, f"{metric}_lo": iv.lo, f"{metric}_hi": iv.hi})
            if metric.startswith("r_"):
                t = surrogate_test(cmp.xs(n), cmp.ys(metric), n_null, seed)
                row[f"p_{metric[2:]}"] = t.p
                if metric == "r_observers":
                    row["null95_observers"] = float(np.percentile(t.null, 95))
            elif metric == "f1":
                h, d, k = cmp.units(n, metric).sum(0)
                row.update(precision=h / d if d else 0.0, recall=h / k if k else 0.0)
    return pd.DataFrame(list(rows.values()))


def r_across_bins(signals: pd.DataFrame, targets: Targets, bin_sizes: Sequence[float] = (0.2, 0.5, 1, 2, 4, 8),
                  target: str = "observers", n_null: int = 500, seed: int = 0, n_boot: int = 1000,
                  units: str = "events") -> pd.DataFrame:
    """For each signal and bin width: r with the group frequency (``target="observers"``) or the true
    boundaries (``"truth"``), its 95% bootstrap interval over ``units`` (``r_lo``, ``r_hi``), its surrogate
    p-value and null band. One tidy row per (signal, bin_s)."""
    metric = "r_observers" if target == "observers" else "r_truth"
    rows = []
    for b in usable_bin_sizes(targets.durations, bin_sizes, signals["movie"].unique()):
        cmp = Comparison(signals, targets, b, units=units)
        ys = cmp.ys(metric)
        for name in cmp.names:
            xs = cmp.xs(name)
            t = surrogate_test(xs, ys, n_null=n_null, rng=seed)
            iv = cmp.interval(name, metric, n_boot, seed)
            lo, hi = t.null_band
            rows.append({"signal": name, "target": target, "bin_s": float(b), "r": t.r, "r_lo": iv.lo, "r_hi": iv.hi,
                         "p": t.p, "null_lo": lo, "null_hi": hi, "null_mean": float(t.null.mean())})
    return pd.DataFrame(rows)
