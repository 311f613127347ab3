"""How well boundary signals match human and true boundaries: binning, nulls, matching, the comparison table.

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
* every figure with a 95% bootstrap interval over events (:class:`Comparison`), the best latent signal
  against the best pixel baseline (:func:`best_latent_vs_pixel`, :func:`vaelib.stats.versus`: a side leads
  when its best beats the other side's strongest, the choice of its best paid for; simultaneous intervals),
  overall and per bin width; leads declared in advance (:func:`declared_lead`);
* the observers' response lag, chosen on other movies (:func:`lag_table`); a cross-fitted logistic
  detector on all signals and whether the latents add to the pixels (:func:`combined_detector`);
* chapter 3's take-away, computed from all of the above and the training-seed spread (:func:`conclusion`), and
  its appendix of pre-registered verdicts (:func:`preregistered_appendix`).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.signal import find_peaks

from .annotations import bin_centers, group_frequency, n_bins
from .signals import SIGNALS, VOXEN_SUFFIX, fill_nan, signal_names, smooth
from .stats import (
    Interval,
    Paired,
    best_vs_best,
    bootstrap_ci,
    crossfit_lag_test,
    fit_logistic,
    lead_test,
    logistic_loss,
    paired_difference,
    pooled_r,
    standardize,
    surrogate_test,
    versus,
)

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


# --------------------------------------------------------------------------- the comparison


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


def _binned(signals: pd.DataFrame, name: str, movie: str, targets: Targets, bin_s: float) -> np.ndarray:
    sub = signals[signals["movie"] == movie]
    how = "max" if SIGNALS.get(name, ("", False))[1] else "mean"
    return bin_series(sub[name].to_numpy(), sub["time_s"].to_numpy(), targets.durations[movie], bin_s, how)


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


VERSUS_COLUMNS = ["best_latent", "best_pixel", "latent", "pixel", "diff", "lo", "hi", "p", "p_latent", "p_pixel",
                  "lo_unadjusted", "hi_unadjusted", "verdict", "n_units"]
VERDICTS = {"a": "latent leads", "b": "pixel leads", "": "no detectable lead"}


def _versus_row(side: dict[str, dict[str, np.ndarray]], stat: Callable[[np.ndarray], np.ndarray], n_boot: int,
                seed: int, alpha: float) -> dict:
    """The best latent against the best pixel signal (:func:`vaelib.stats.versus`) as one row of
    ``VERSUS_COLUMNS``; too few resampling units (``MIN_UNITS``) give the two values and no test."""
    values = {n: float(stat(u.sum(0))) for k in ("latent", "pixel") for n, u in side[k].items()}
    n_units = len(next(iter(side["latent"].values())))
    a, b = (max(side[k], key=values.__getitem__) for k in ("latent", "pixel"))
    row = {"best_latent": a, "best_pixel": b, "latent": values[a], "pixel": values[b], "diff": values[a] - values[b],
           "n_units": n_units}
    if n_units < MIN_UNITS:
        return {**row, "verdict": f"too little data to resample ({n_units} units)"}
    res = versus(side["latent"], side["pixel"], stat, alpha, n_boot, seed)
    return {**row, "diff": res.diff, "lo": res.lo, "hi": res.hi, "p": res.p, "p_latent": res.p_a, "p_pixel": res.p_b,
            "lo_unadjusted": res.lo_unadjusted, "hi_unadjusted": res.hi_unadjusted, "verdict": VERDICTS[res.verdict]}


def latent_vs_pixel_by_bin(signals: pd.DataFrame, targets: Targets, across: pd.DataFrame, n_boot: int = 1000,
                           seed: int = 0, units: str = "events", alpha: float = 0.05) -> pd.DataFrame:
    """At each bin width of an :func:`r_across_bins` table: the best latent signal's r against the best pixel
    baseline's, paired on the same events, as :func:`best_latent_vs_pixel` does it (columns ``bin_s`` and
    ``VERSUS_COLUMNS``)."""
    metric = "r_observers" if (across["target"] == "observers").all() else "r_truth"
    kinds = across["signal"].map(lambda n: SIGNALS.get(n, ("other", False))[0])
    rows = []
    for b, sub in across.assign(kind=kinds).groupby("bin_s"):
        cmp = Comparison(signals, targets, float(b), units=units)
        side = {k: {n: cmp.units(n, metric) for n, kk in zip(sub["signal"], sub["kind"]) if kk == k}
                for k in ("latent", "pixel")}
        if not side["latent"] or not side["pixel"]:
            continue
        rows.append({"bin_s": float(b), **_versus_row(side, r_from_sums, n_boot, seed, alpha)})
    return pd.DataFrame(rows, columns=["bin_s", *VERSUS_COLUMNS])


def detected_times(signals: pd.DataFrame, name: str, movie: str, n: int, min_distance_s: float = 2.0) -> np.ndarray:
    """A signal's boundary times in one movie: its change points, or its ``n`` highest peaks."""
    sub = signals[signals["movie"] == movie]
    if SIGNALS.get(name, ("", False))[1]:
        return sub["time_s"].to_numpy()[sub[name].to_numpy() > 0]
    return peak_times(sub[name].to_numpy(), sub["time_s"].to_numpy(), n, min_distance_s)


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


def _unit_of(times: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.searchsorted(edges, np.asarray(times, float), side="right")


def r_units(xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], edges: Sequence[np.ndarray],
            bin_s: float) -> np.ndarray:
    """Per resampling unit, the sums ``n, x, y, xx, yy, xy`` of the binned signal ``x`` and target ``y``,
    both standardized within their movie: an ``(n_units, 6)`` array for :func:`r_from_sums`."""
    rows = []
    for x, y, e in zip(xs, ys, edges):
        x, y = standardize(x), standardize(y)
        u = _unit_of((np.arange(len(x)) + 0.5) * bin_s, e)
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
        det_unit = _unit_of(d, e)
        det_unit[pairs[:, 0]] = _unit_of(t[pairs[:, 1]], e)
        rows.append(np.stack([np.bincount(_unit_of(t[pairs[:, 1]], e), minlength=k),
                              np.bincount(det_unit, minlength=k),
                              np.bincount(_unit_of(t, e), minlength=k)], axis=1).astype(float))
    return np.concatenate(rows)


def f1_from_sums(t: np.ndarray) -> np.ndarray:
    """F1 = 2 hits / (detections + true boundaries) from the totals of :func:`f1_units`."""
    h, d, n = np.moveaxis(np.asarray(t, float), -1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(d + n > 0, 2 * h / (d + n), 0.0)


STATISTICS = {"r": r_from_sums, "f1": f1_from_sums}
MIN_UNITS = 4        # fewer resampling units (events, movies) than this: no interval and no test, too little data


# --------------------------------------------------------------------------- the comparison


METRICS = ("r_observers", "r_truth", "f1", "f1_fine")


def interval_or_none(units: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray], n_boot: int = 1000,
                     seed: int = 0) -> Interval:
    """:func:`vaelib.stats.bootstrap_ci` over resampling units; with fewer than ``MIN_UNITS`` units the figure
    alone with NaN ends: too little data to resample, so no interval is reported."""
    units = np.asarray(units, float)
    if len(units) < MIN_UNITS:
        return Interval(float(statistic(units.sum(0))), float("nan"), float("nan"))
    return bootstrap_ci(units, statistic, n_boot, rng=seed)


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
        return [_binned(self.signals, name, m, self.targets, self.bin_s) for m in self.movies]

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


def best_of_kind(table: pd.DataFrame, metric: str, kind: str) -> str | None:
    """The signal of ``kind`` (``latent``, ``pixel``) with the highest ``metric`` in a comparison table."""
    sub = table[(table["kind"] == kind) & table[metric].notna()] if metric in table else table.iloc[:0]
    return None if sub.empty else str(sub.loc[sub[metric].idxmax(), "signal"])


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


def best_latent_vs_pixel(signals: pd.DataFrame, targets: Targets, table: pd.DataFrame, bin_s: float = 1.0,
                         tolerance_s: float = 1.0, n_boundaries: Callable[[str], int] | dict[str, int] | None = None,
                         n_boot: int = 2000, seed: int = 0, units: str = "events", alpha: float = 0.05
                         ) -> pd.DataFrame:
    """For each metric of ``table``: the best latent signal against the best pixel baseline, paired on the same
    resampling units (:func:`vaelib.stats.versus`). Columns ``metric`` and ``VERSUS_COLUMNS``: the two winners
    and their values, ``diff`` (latent minus pixel) with its simultaneous interval ``lo, hi`` (the same max-T
    quantiles as the test: it excludes 0 exactly when a side leads), ``p`` (two-sided), ``p_latent`` and
    ``p_pixel`` (one-sided, each at ``alpha / 2`` in the verdict), the unadjusted 95% percentile interval of the two
    winners' difference (neither choice paid for), ``verdict`` (``latent leads``, ``pixel leads``, ``no detectable
    lead``, or too little data to resample) and ``n_units``. A lead pays for the choice of the leading side's best
    among its signals; the rival is the other side's strongest. A metric without a latent or a pixel signal is
    left out."""
    cmp = Comparison(signals, targets, bin_s, tolerance_s, n_boundaries, units)
    kinds = table.set_index("signal")["kind"]
    t = table.set_index("signal")
    rows = []
    for metric in cmp.metrics():
        side = {k: {n: cmp.units(n, metric) for n in cmp.names if kinds.get(n) == k and pd.notna(t.loc[n, metric])}
                for k in ("latent", "pixel")} if metric in t else {}
        if not side or not side["latent"] or not side["pixel"]:
            continue
        rows.append({"metric": metric, **_versus_row(side, STATISTICS[metric[:2].rstrip("_")], n_boot, seed, alpha)})
    return pd.DataFrame(rows, columns=["metric", *VERSUS_COLUMNS])


def paired_table(signals: pd.DataFrame, targets: Targets, pairs: Sequence[tuple[str, str]], bin_s: float = 1.0,
                 tolerance_s: float = 1.0, n_boundaries: Callable[[str], int] | dict[str, int] | None = None,
                 n_boot: int = 2000, seed: int = 0, units: str = "events") -> pd.DataFrame:
    """``a`` minus ``b`` for each pair of signals and each metric the targets allow, paired on the same
    resampling units (:meth:`Comparison.paired`). Columns ``a, b, metric, value_a, value_b, diff, lo, hi, p``."""
    cmp = Comparison(signals, targets, bin_s, tolerance_s, n_boundaries, units)
    rows = []
    for a, b in pairs:
        for metric in cmp.metrics():
            stat = STATISTICS[metric[:2].rstrip("_")]
            res = cmp.paired(a, b, metric, n_boot, seed)
            rows.append({"a": a, "b": b, "metric": metric, "value_a": float(stat(cmp.units(a, metric).sum(0))),
                         "value_b": float(stat(cmp.units(b, metric).sum(0))), "diff": res.diff, "lo": res.lo,
                         "hi": res.hi, "p": res.p})
    return pd.DataFrame(rows, columns=["a", "b", "metric", "value_a", "value_b", "diff", "lo", "hi", "p"])


def temporal_context_text(pairs: pd.DataFrame, what: dict[str, str], alpha: float = 0.05,
                          unit: str = "signal x measure pairs") -> str:
    """Does temporal context help? One sentence per kind of trajectory that knows time: ``what`` maps a signal
    suffix (``signals.TEMPORAL_SUFFIX``, ``signals.VOXEN_SUFFIX``) to its description, ``pairs`` is a
    :func:`paired_table` of ``signals.temporal_pairs`` (rows of several seeds may be stacked; ``unit`` names what
    a row is). Counts the rows where the signal on that trajectory matches better or worse than on the
    single-frame codes (paired p < ``alpha``); a suffix without rows is left out."""
    out = []
    for suffix, desc in what.items():
        mine = pairs[pairs["a"].str.endswith(suffix)]
        if len(mine) and mine["p"].isna().all():
            out.append(f"With {desc}: too little data to resample, no test.")
        elif len(mine):
            sure = mine[mine["p"] < alpha]
            out.append(f"With {desc} the latent signals match better in {int((sure['diff'] > 0).sum())} and worse "
                       f"in {int((sure['diff'] < 0).sum())} of {len(mine)} {unit} (paired p < {alpha:g}); no "
                       "difference in the rest.")
    return " ".join(out)


DIRECTIONS = ("latent_beats_pixel", "pixel_beats_latent")


def declared_vs_best_pixel(signals: pd.DataFrame, targets: Targets, latent: str, metric: str,
                           direction: str = "latent_beats_pixel", bin_s: float = 1.0, tolerance_s: float = 1.0,
                           n_boundaries: Callable[[str], int] | dict[str, int] | None = None, n_boot: int = 2000,
                           seed: int = 0, units: str = "events") -> dict:
    """A latent signal declared in advance against the best pixel baseline of these data, on one metric.

    The rival is the pixel baseline (``SIGNALS`` kind ``pixel``) with the highest ``metric`` here; its
    choice is in the null: the one-sided p is a max-T sign-flip test with every pixel baseline as a rival
    (:func:`vaelib.stats.best_vs_best` with one latent: the rule of the earlier pre-registrations), in the
    ``direction`` asked (``latent_beats_pixel`` or ``pixel_beats_latent``). Returns ``latent, rival, rivals,
    metric, direction, value_latent, value_rival``, ``diff`` (in the declared direction: positive when the
    declared side is ahead), its paired 95% interval ``lo, hi``, ``p`` and ``p_opposite`` (the same max-T
    test the other way round). Raises ValueError for an unknown signal, metric or direction."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    cmp = Comparison(signals, targets, bin_s, tolerance_s, n_boundaries, units)
    if latent not in cmp.names:
        raise ValueError(f"declared signal {latent!r} is not in the signal table (it has {cmp.names})")
    if metric not in cmp.metrics():
        raise ValueError(f"metric {metric!r} is not available for these targets (available: {cmp.metrics()})")
    rivals = [n for n in cmp.names if SIGNALS.get(n, ("other",))[0] == "pixel"]
    if not rivals:
        raise ValueError("the signal table has no pixel baseline to compare with")
    stat = STATISTICS[metric[:2].rstrip("_")]
    value = {n: float(stat(cmp.units(n, metric).sum(0))) for n in [latent, *rivals]}
    # one latent on side A (nothing to choose there), every pixel baseline on side B
    res = best_vs_best({latent: cmp.units(latent, metric)}, {n: cmp.units(n, metric) for n in rivals}, stat,
                       n_boot, seed)
    rival = res.b
    if direction == "latent_beats_pixel":
        p, p_opp, diff, lo, hi = res.p_a, res.p_b, res.diff, res.lo, res.hi
    else:
        p, p_opp, diff, lo, hi = res.p_b, res.p_a, -res.diff, -res.hi, -res.lo
    return {"latent": latent, "rival": rival, "rivals": rivals, "metric": metric, "direction": direction,
            "value_latent": value[latent], "value_rival": value[rival], "diff": float(diff), "lo": float(lo),
            "hi": float(hi), "p": float(p), "p_opposite": float(p_opp)}


CLAIMS = ("latent_leads", "pixel_leads")


def declared_lead(signals: pd.DataFrame, targets: Targets, claim: str, metric: str, alpha: float,
                  bin_s: float = 1.0, tolerance_s: float = 1.0,
                  n_boundaries: Callable[[str], int] | dict[str, int] | None = None, n_boot: int = 2000,
                  seed: int = 0, units: str = "events") -> dict:
    """A lead declared in advance: the best signal of one kind against the strongest of the other, on one metric.

    ``claim`` ``latent_leads``: the best latent signal (``SIGNALS`` kind ``latent``) leads the strongest pixel
    baseline; ``pixel_leads``: the mirror. :func:`vaelib.stats.lead_test` at ``alpha``: the choice of the claiming
    side's best is in a studentized max-T null, the rival is the other side's strongest. Returns ``claim, metric,
    best, rival, candidates, rivals, value_best, value_rival, diff`` (claiming side minus rival), ``se``, ``q``,
    ``bound`` (the simultaneous lower bound of the lead; above 0 exactly when the lead holds), ``p`` and
    ``alpha``. Raises ValueError for an unknown claim or metric, or a kind without signals."""
    if claim not in CLAIMS:
        raise ValueError(f"claim must be one of {CLAIMS}, got {claim!r}")
    cmp = Comparison(signals, targets, bin_s, tolerance_s, n_boundaries, units)
    if metric not in cmp.metrics():
        raise ValueError(f"metric {metric!r} is not available for these targets (available: {cmp.metrics()})")
    side = {k: {n: cmp.units(n, metric) for n in cmp.names if SIGNALS.get(n, ("other",))[0] == k}
            for k in ("latent", "pixel")}
    mine, other = ("latent", "pixel") if claim == "latent_leads" else ("pixel", "latent")
    if not side[mine] or not side[other]:
        raise ValueError(f"the signal table needs latent and pixel signals (has {cmp.names})")
    stat = STATISTICS[metric[:2].rstrip("_")]
    res = lead_test(side[mine], side[other], stat, alpha, n_boot, seed)
    return {"claim": claim, "metric": metric, "best": res.claim, "rival": res.rival, "candidates": list(side[mine]),
            "rivals": list(side[other]), "value_best": float(stat(side[mine][res.claim].sum(0))),
            "value_rival": float(stat(side[other][res.rival].sum(0))), "diff": res.diff, "se": res.se, "q": res.q,
            "bound": res.bound, "p": res.p, "alpha": res.alpha}


def lead_verdict(tests: Sequence[dict]) -> str:
    """The verdict on one declared lead from its test in every training seed (:func:`declared_lead` records):
    ``holds`` when its lower bound is above 0 (the claiming side ahead with p < alpha) in every seed, else
    ``does not hold``."""
    if not tests:
        raise ValueError("no test results to judge: the hypothesis was run on no seed")
    return "holds" if all(t["bound"] > 0 for t in tests) else "does not hold"


def preregistered_verdict(tests: Sequence[dict], alpha: float) -> str:
    """The verdict on one declared hypothesis from its test in every training seed
    (:func:`declared_vs_best_pixel` records): ``holds`` (the declared side ahead with p < ``alpha`` in every
    seed), ``opposite`` (the other side ahead with ``p_opposite`` < ``alpha`` in every seed) or ``no verdict``."""
    if not tests:
        raise ValueError("no test results to judge: the hypothesis was run on no seed")
    if all(t["diff"] > 0 and t["p"] < alpha for t in tests):
        return "holds"
    if all(t["diff"] < 0 and t["p_opposite"] < alpha for t in tests):
        return "opposite"
    return "no verdict"


def lag_table(signals: pd.DataFrame, targets: Targets, bin_s: float = 1.0,
              lags_s: Sequence[float] = tuple(np.round(np.arange(-1.0, 2.01, 0.1), 2)), n_null: int = 1000,
              seed: int = 0, n_boot: int = 1000, units: str = "events") -> pd.DataFrame:
    """r with the observers when they may press late: per signal, the lag (presses moved earlier by it)
    chosen on the other movies (:func:`vaelib.stats.crossfit_lag_test`).

    Columns ``signal, kind, lag_s`` (the lag that fits all movies best), ``fold_lags_s`` (the lags chosen
    without each movie, as text), ``r_lag`` (cross-fitted r) with its 95% interval over ``units``
    (``r_lag_lo``, ``r_lag_hi``; each movie at its cross-fitted lag), ``p_lag`` (null with the lag
    search), and ``r_0`` (r with no lag). With true boundaries a row ``truth`` asks the same of the 0/1
    true-boundary bins: how late the observers press after a true boundary.
    """
    if targets.presses is None:
        raise ValueError("a response lag needs presses")
    movies = list(dict.fromkeys(signals["movie"]))
    ys = [np.stack([targets.frequency(m, bin_s, lag) for lag in lags_s]) for m in movies]
    y0 = [targets.frequency(m, bin_s) for m in movies]
    edges = [unit_edges(targets, m, units) for m in movies]
    names = signal_names(signals) + (["truth"] if targets.truth is not None else [])
    rows = []
    for name in names:
        xs = ([targets.truth_marks(m, bin_s) for m in movies] if name == "truth"
              else [_binned(signals, name, m, targets, bin_s) for m in movies])
        t = crossfit_lag_test(xs, ys, n_null, seed)
        at_lag = [y[i] for y, i in zip(ys, t.fold_lags)]
        iv = interval_or_none(r_units(xs, at_lag, edges, bin_s), r_from_sums, n_boot, seed)
        rows.append({"signal": name, "kind": "truth" if name == "truth" else SIGNALS.get(name, ("other", False))[0],
                     "lag_s": float(lags_s[t.lag]), "fold_lags_s": " ".join(f"{lags_s[i]:g}" for i in t.fold_lags),
                     "r_lag": t.r, "r_lag_lo": iv.lo, "r_lag_hi": iv.hi, "p_lag": t.p, "r_0": pooled_r(xs, y0)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the combined detector


@dataclass
class CombinedDetector:
    """Held-out skill of logistic regressions on groups of signals, and whether latents add to pixels.

    ``table``: one row per model (``pixel``, ``latent``, ``all``): ``skill`` (held-out log-loss skill,
    1 - loss / loss of a constant rate; 0 = no better than the base rate) with a 95% bootstrap interval
    over events, and ``n_features``. ``gain`` is skill(all) - skill(pixel) with its paired interval and
    ``p``, a permutation p-value: the latent signals of each movie shifted circularly by a random
    offset (keeping their own structure, losing their alignment), the whole cross-fit redone.
    """
    table: pd.DataFrame
    gain: float
    gain_lo: float
    gain_hi: float
    p: float
    target: str


def _skill(t: np.ndarray) -> np.ndarray:
    """1 - model loss / constant loss, from summed per-unit (constant loss, model loss)."""
    c, m = np.moveaxis(np.asarray(t, float), -1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1 - m / c


def _shifted(x: np.ndarray, k: int) -> np.ndarray:
    """``x`` moved ``k`` bins later (edge values repeated)."""
    if k == 0:
        return x
    return np.concatenate([np.full(k, x[0]), x[:-k]]) if k > 0 else np.concatenate([x[-k:], np.full(-k, x[-1])])


def combined_detector(signals: pd.DataFrame, targets: Targets, bin_s: float = 1.0, offsets: Sequence[int] = (-1, 0, 1),
                      n_folds: int = 5, l2: float = 1.0, n_perm: int = 200, n_boot: int = 1000,
                      seed: int = 0, units: str = "events") -> CombinedDetector:
    """Cross-fitted logistic regressions that predict, bin by bin, where the coarse boundaries are.

    The target is 1 in the bins holding a true boundary (an observers' boundary without truth). The
    features are the binned signals, standardized within each movie, each also ``offsets`` bins
    earlier and later (a detector may fire a little before or after). Movies are split into
    ``n_folds`` groups; each group is predicted by models fitted on the others only. Models: the
    pixel baselines, the latent signals, and all of them; the nested question is whether adding the
    latents to the pixels improves the held-out prediction (:class:`CombinedDetector`).
    """
    cmp = Comparison(signals, targets, bin_s, units=units)
    movies = cmp.movies
    if len(movies) < 2:
        raise ValueError(f"a cross-fitted detector needs at least two movies, got {len(movies)}")
    groups = {k: [n for n in cmp.names if SIGNALS.get(n, ("other", False))[0] == k] for k in ("pixel", "latent")}
    if not groups["pixel"] or not groups["latent"]:
        raise ValueError("the combined detector needs both pixel and latent signals")
    if targets.truth is not None:
        target, ys = "true coarse boundaries", [targets.truth_marks(m, bin_s) for m in movies]
    else:
        target = "observers' boundaries"
        ys = []
        for m in movies:
            per = targets.presses[targets.presses["movie"] == m].groupby("subject").size()
            tb = Targets({m: targets.durations[m]}, None, {m: observer_boundaries(targets, m, int(round(per.mean())))})
            ys.append(tb.truth_marks(m, bin_s))
    feats: dict[str, list[np.ndarray]] = {}
    for k, names in groups.items():
        per_name = [cmp.xs(n) for n in names]
        feats[k] = [np.stack([_shifted(standardize(xm[i]), o) for xm in per_name for o in offsets], axis=1)
                    for i in range(len(movies))]
    fold = np.arange(len(movies)) % min(n_folds, len(movies))
    unit = np.concatenate([_unit_of((np.arange(len(y)) + 0.5) * bin_s, e) + off for y, e, off in
                           zip(ys, cmp.edges, np.cumsum([0] + [len(e) + 1 for e in cmp.edges[:-1]]))])
    n_units = sum(len(e) + 1 for e in cmp.edges)
    y_all = np.concatenate(ys)
    movie_of = np.concatenate([np.full(len(y), i) for i, y in enumerate(ys)])

    tests = [np.isin(movie_of, np.flatnonzero(fold == f)) for f in np.unique(fold)]
    const = np.empty(len(y_all))
    for test in tests:                   # the constant model: the training folds' boundary rate
        rate = np.clip(y_all[~test].mean(), 1e-6, 1 - 1e-6)
        const[test] = logistic_loss(np.array([np.log(rate / (1 - rate))]), np.zeros((test.sum(), 0)), y_all[test])
    fitted: dict[tuple[int, int], np.ndarray] = {}

    def losses(x_by_movie: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        x_all = np.concatenate(x_by_movie)
        model = np.empty(len(y_all))
        for i, test in enumerate(tests):
            key = (i, x_all.shape[1])
            w = fit_logistic(x_all[~test], y_all[~test], l2, start=fitted.get(key))
            fitted.setdefault(key, w)     # permuted refits start from the real fit: fewer Newton steps
            model[test] = logistic_loss(w, x_all[test], y_all[test])
        return const, model

    def unit_sums(const: np.ndarray, model: np.ndarray) -> np.ndarray:
        return np.stack([np.bincount(unit, weights=const, minlength=n_units),
                         np.bincount(unit, weights=model, minlength=n_units)], axis=1)

    designs = {"pixel": feats["pixel"], "latent": feats["latent"],
               "all": [np.concatenate([a, b], axis=1) for a, b in zip(feats["pixel"], feats["latent"])]}
    sums, rows = {}, []
    for name, x in designs.items():
        sums[name] = unit_sums(*losses(x))
        iv = interval_or_none(sums[name], _skill, n_boot, seed)
        rows.append({"model": name, "skill": iv.value, "skill_lo": iv.lo, "skill_hi": iv.hi,
                     "n_features": x[0].shape[1]})
    gain = (paired_difference(sums["all"], sums["pixel"], _skill, n_boot, rng=seed) if n_units >= MIN_UNITS else
            Paired(float(_skill(sums["all"].sum(0)) - _skill(sums["pixel"].sum(0))), np.nan, np.nan, np.nan))
    rng = np.random.default_rng(seed)
    base = float(_skill(sums["pixel"].sum(0)))
    null = np.empty(n_perm)
    for i in range(n_perm):
        moved = [np.concatenate([p, np.roll(lat, int(rng.integers(1, len(lat))), axis=0)], axis=1)
                 for p, lat in zip(feats["pixel"], feats["latent"])]
        null[i] = float(_skill(unit_sums(*losses(moved)).sum(0))) - base
    p = float((1 + (null >= gain.diff - 1e-12).sum()) / (1 + n_perm))
    return CombinedDetector(pd.DataFrame(rows), gain.diff, gain.lo, gain.hi, p, target)


# --------------------------------------------------------------------------- the computed conclusion

LABELS = {"r_observers": "r with the observers", "r_truth": "r with the true boundaries",
          "f1": "F1 against the coarse truth", "f1_fine": "F1 against the fine truth",
          "detector": "held-out prediction by the combined detector"}


def seed_spread(results: dict) -> dict:
    """The training-run spread in a boundary benchmark's results (``benchmarks/results/boundaries.json``):
    per latent signal and metric, max - min over the MMD-VAE training seeds; its seeds and its claim. The
    ``_voxen`` signals are left out: they do not depend on the MMD-VAE seed, and their range 0 says nothing about
    retraining VoxEn (a signal without a range is judged by the largest latent one, :func:`_spread_of`). The
    claim's text names each metric as the chapter does (``LABELS``: "r with the observers", not ``r_observers``);
    ``rule``: ``lead`` when the benchmark judged by the lead rule, else ``earlier``."""
    ranges = {n: {m: v[m]["max"] - v[m]["min"] for m in METRICS if m in v}
              for n, v in results.get("summary", {}).items()
              if v.get("kind") == "latent" and not n.endswith(VOXEN_SUFFIX)}
    claim = re.sub(r"(^|; )(" + "|".join(sorted(METRICS, key=len, reverse=True)) + r")(?=[:,])",
                   lambda m: m[1] + LABELS[m[2]], results.get("claim", {}).get("text", ""))
    lead = any("verdict" in t for v in results.get("per_seed", {}).values() for t in v.get("paired", {}).values())
    return {"seeds": results.get("meta", {}).get("train", {}).get("seeds", []), "ranges": ranges, "claim": claim,
            "rule": "lead" if lead else "earlier"}


def preregistered_summary(results: dict) -> dict | None:
    """The pre-registered verdicts in a boundary benchmark's results (``benchmarks/results/boundaries_prereg*.json``,
    ``benchmarks/boundaries.py --preregistered``): the draw, the training seeds, the declaring commit, the rule
    (``lead``: :func:`declared_lead`; else ``declared``: :func:`declared_vs_best_pixel`) and, per hypothesis, its
    text, verdict, per-seed differences and p-values (for ``lead`` also the lower bounds and the winners). None
    when the results hold none."""
    pre = results.get("preregistered")
    if not pre:
        return None
    decl = pre["declaration"]
    lead = decl.get("rule") == "lead"
    hyps = []
    for h in pre["hypotheses"]:
        tests = list(h["per_seed"].values())
        one = {"id": h["id"], "metric": h["metric"], "alpha": float(h["alpha"]), "verdict": h["verdict"],
               "seeds": list(h["per_seed"]), "diffs": [t["diff"] for t in tests], "ps": [t["p"] for t in tests]}
        if lead:
            one.update(text=h.get("text", f"{h['claim']} on {h['metric']}"), claim=h["claim"], latent="",
                       bounds=[t["bound"] for t in tests], best=[t["best"] for t in tests],
                       rivals=[t["rival"] for t in tests])
        else:
            one.update(text=h.get("text", f"{h['latent']} {h['direction']} on {h['metric']}"), latent=h["latent"],
                       direction=h["direction"], rivals=sorted({t["rival"] for t in tests}),
                       candidates=list(dict.fromkeys(r for t in tests for r in t.get("rivals", []))))
        hyps.append(one)
    fps = results.get("meta", {}).get("data", {}).get("fps")
    return {"file": pre.get("file", ""), "commit": (pre.get("declared_in_commit") or "").split(" ")[0][:7],
            "rule": "lead" if lead else "declared", "data": {**decl["data"], "fps": fps},
            "seeds": decl["train"]["seeds"], "hypotheses": hyps}


def _preregistered_text(pre: dict) -> str:
    """One paragraph: each pre-registered hypothesis with its verdict and per-seed numbers, under the rule it ran."""
    d = pre["data"]
    commit = f" in commit {pre['commit']}" if pre.get("commit") else ""
    rate = f" at {d['fps']:g} fps" if d.get("fps") else ""
    draw = (f"{d['movies']} synthetic movies x {d['seconds']:g} s{rate}, data seed {d['data_seed']}; MMD-VAE "
            f"training seeds {pre['seeds']}")
    if pre.get("rule") == "lead":
        parts = [f"{h['id']}, {h['text']} (alpha {h['alpha']:g}): "
                 + ("**holds** in every seed" if h["verdict"] == "holds" else f"**{h['verdict']}**")
                 + "; per seed " + ", ".join(f"{sd}: `{b}` over `{r}` by {x:+.3f} (lower bound {lb:+.3f}, p "
                                            f"{format(q, '.3f' if q >= 0.001 else '.1g')})"
                                            for sd, b, r, x, lb, q in zip(h["seeds"], h["best"], h["rivals"],
                                                                          h["diffs"], h["bounds"], h["ps"]))
                 for h in pre["hypotheses"]]
        return (f"**Pre-registered test, the lead rule** (declared{commit} before its draw was made: {draw}; the "
                "claiming kind's best signal against the other kind's strongest, the choice of the best in a "
                "studentized max-T null; a hypothesis holds when its simultaneous lower bound is above 0 in every "
                "seed): " + "; ".join(parts) + ".")
    said = {"holds": "**holds** in every seed", "opposite": "**fails: the opposite holds** in every seed",
            "no verdict": "**fails**: not in every seed with p < alpha"}
    parts = [f"{h['id']}, {h['text']} (alpha {h['alpha']:g}): {said.get(h['verdict'], h['verdict'])}; "
             f"difference per seed " + ", ".join(f"{sd}: {x:+.3f} (p {q:.3f})"
                                                  for sd, x, q in zip(h["seeds"], h["diffs"], h["ps"]))
             + f", rival {' / '.join(f'`{r}`' for r in h['rivals'])}"
             for h in pre["hypotheses"]]
    voxen = (" (the VoxEn rows do not depend on them: one test, repeated)"
             if any(h.get("latent", "").endswith(VOXEN_SUFFIX) for h in pre["hypotheses"]) else "")
    # the pixel baselines that really competed (a declaration's prose may name others; the run used what it had)
    candidates = list(dict.fromkeys(c for h in pre["hypotheses"] for c in h.get("candidates", [])))
    rival = (f"the best of the pixel baselines {', '.join(f'`{c}`' for c in candidates)}" if candidates
             else "the best pixel baseline")
    return (f"**Pre-registered test, an earlier rule** (a declared latent signal against the best pixel baseline, "
            f"declared{commit} before a new draw was made: {draw}{voxen}; the rival is {rival} on that draw, its "
            f"choice inside an unstudentized max-T null; a hypothesis holds only when it does in every seed): "
            + "; ".join(parts) + ".")


def _spread_of(spread: dict | None, signal: str, metric: str) -> float | None:
    """The training-run range of ``signal``'s ``metric``; for a signal the benchmark lacks, the largest latent one."""
    if not spread or not spread["ranges"]:
        return None
    own = spread["ranges"].get(signal, {}).get(metric)
    if own is not None:
        return float(own)
    vals = [r[metric] for r in spread["ranges"].values() if metric in r]
    return float(max(vals)) if vals else None


def _iv(row: pd.Series, metric: str) -> str:
    lo, hi = row.get(f"{metric}_lo"), row.get(f"{metric}_hi")
    ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None and pd.notna(lo) else " (too little data for an interval)"
    return f"{row[metric]:.3f}{ci}"


def _num(x: float | None, fmt: str = "+.3f") -> str:
    return "n/a" if x is None or not np.isfinite(x) else format(x, fmt)


def conclusion(table: pd.DataFrame, versus: pd.DataFrame, by_bin: pd.DataFrame | None = None,
               lags: pd.DataFrame | None = None, detector: CombinedDetector | None = None,
               spread: dict | None = None, bin_s: float = 1.0, alpha: float = 0.05,
               prereg: dict | Sequence[dict] | None = None) -> str:
    """Chapter 3's take-away, computed from this run, in markdown: the best single signal; one table, per measure,
    of the best latent and the best pixel signal, their difference with its simultaneous interval, the p-value and
    the verdict of :func:`best_latent_vs_pixel` (``versus``), and the training-run spread of the latent figure
    (``spread``: :func:`seed_spread`, only when given); a sentence per measure saying who leads when the test
    says so (a lead smaller than the training-run spread is said not to survive retraining); the bin widths
    (``by_bin``), the response lag (``lags``), the combined detector; a bottom line. With ``prereg``
    (:func:`preregistered_summary`, one or several) the bottom line names the declared claims that held; their
    details are :func:`preregistered_appendix`'s."""
    t = table.set_index("signal")
    out, leads = [], {}
    if "r_observers" in t:
        sig = t[t["kind"] != "human"]["r_observers"].idxmax()
        out.append(f"**Best single signal** for the observers ({LABELS['r_observers']}, {bin_s:g}-s bins): "
                   f"`{sig}` ({t.loc[sig, 'kind']}), r = {_iv(t.loc[sig], 'r_observers')}"
                   + (" (95% interval over events)." if pd.notna(t.loc[sig].get("r_observers_lo")) else "."))
    if len(versus):
        rows, lines = [], []
        for v in versus.to_dict("records"):
            label, verdict = LABELS.get(v["metric"], v["metric"]), str(v["verdict"])
            rng = _spread_of(spread, v["best_latent"], v["metric"])
            tested = pd.notna(v.get("p"))
            rows.append(f"| {label} | `{v['best_latent']}` {v['latent']:.3f} | `{v['best_pixel']}` {v['pixel']:.3f} | "
                        f"{v['diff']:+.3f} [{_num(v.get('lo'))}, {_num(v.get('hi'))}] | "
                        f"{_num(v.get('p'), '.3f')} | {verdict} |" + (f" {_num(rng, '.3f')} |" if spread else ""))
            if verdict in ("latent leads", "pixel leads"):
                winner, loser = ((v["best_latent"], v["best_pixel"]) if verdict == "latent leads"
                                 else (v["best_pixel"], v["best_latent"]))
                kind = verdict.split()[0]
                line = (f"On {label} the {kind} side leads: `{winner}` is ahead of `{loser}` by {abs(v['diff']):.3f} "
                        f"(simultaneous 95% interval of latent minus pixel [{v['lo']:+.3f}, {v['hi']:+.3f}], "
                        f"p = {v['p']:.3f}).")
                if rng is not None and abs(v["diff"]) <= rng:
                    line += (f" But retraining the MMD-VAE moves this latent figure by {rng:.3f}, as much as the "
                             "lead: it is not claimed beyond this training run.")
                    verdict = "within the training spread"
                leads[v["metric"]] = verdict
            elif tested:
                line = (f"On {label} neither side leads detectably (latent minus pixel {v['diff']:+.3f}, simultaneous "
                        f"95% interval [{v['lo']:+.3f}, {v['hi']:+.3f}], p = {v['p']:.3f}).")
                leads[v["metric"]] = "no detectable lead"
            else:
                line = f"On {label} there is {verdict}: no test."
            lines.append(line)
        head = ("| measure | best latent | best pixel | latent − pixel [95% simultaneous] | p | verdict |"
                + (" training-seed spread |" if spread else ""))
        out.append(f"**The best latent signal against the best pixel baseline** ({bin_s:g}-s bins; p two-sided; a "
                   "side leads when its best beats the other side's strongest with the choice of its best paid for, "
                   "and then, and only then, the interval excludes 0"
                   + ("; spread: how much retraining the MMD-VAE moves the latent figure, from the benchmark on "
                      "other synthetic movies, quoted because these are the book's synthetic movies" if spread
                      else "") + "):\n\n"
                   + head + "\n|" + "---|" * (head.count("|") - 1) + "\n" + "\n".join(rows))
        out.append(" ".join(lines))
    if by_bin is not None and len(by_bin):
        ahead = [r.bin_s for r in by_bin.itertuples(index=False) if r.verdict == "latent leads"]
        behind = [r.bin_s for r in by_bin.itertuples(index=False) if r.verdict == "pixel leads"]
        parts = [f"{r.bin_s:g} s: {r.diff:+.3f} [{_num(r.lo)}, {_num(r.hi)}]" for r in by_bin.itertuples(index=False)]
        out.append("**Across bin widths**, the best latent r with the observers minus the best pixel r, with "
                   "simultaneous 95% intervals: " + "; ".join(parts) + ". The latents lead at "
                   + (", ".join(f"{b:g}" for b in ahead) + " s" if ahead else "no width")
                   + "; the pixels lead at " + (", ".join(f"{b:g}" for b in behind) + " s." if behind else "no width."))
    if lags is not None and len(lags):
        lt = lags.set_index("signal")
        parts = []
        if "truth" in lt.index:
            parts.append(f"the observers press {lt.loc['truth', 'lag_s']:.1f} s after a true boundary "
                         f"(folds: {lt.loc['truth', 'fold_lags_s']} s)")
        sigs = lt[lt["kind"].isin(["latent", "pixel"])]
        if len(sigs):
            best = {k: sigs[sigs["kind"] == k]["r_lag"].idxmax() for k in ("latent", "pixel")
                    if (sigs["kind"] == k).any()}
            parts.append("with each signal at its own cross-fitted lag, " + " and ".join(
                f"the best {k} signal is `{n}` (r = {_iv(lt.loc[n], 'r_lag')} at {lt.loc[n, 'lag_s']:.1f} s, "
                f"p = {lt.loc[n, 'p_lag']:.3f}, against {lt.loc[n, 'r_0']:.3f} with no lag)" for k, n in best.items()))
        out.append("**Response lag:** " + "; ".join(parts) + ".")
    if detector is not None:
        d = detector.table.set_index("model")
        helps = detector.p < alpha and detector.gain > 0
        out.append(f"**All signals together** (cross-fitted logistic regression predicting the {detector.target}): "
                   f"the pixel baselines save {_iv(d.loc['pixel'], 'skill')} of the held-out log-loss of a constant "
                   f"rate, the latent signals {_iv(d.loc['latent'], 'skill')}, all of them "
                   f"{_iv(d.loc['all'], 'skill')}. "
                   f"Adding the latents to the pixels changes the skill by {detector.gain:+.3f} "
                   f"[{_num(detector.gain_lo)}, {_num(detector.gain_hi)}], permutation p = {detector.p:.3f}: "
                   + ("the latents carry information about the boundaries beyond the pixel baselines." if helps else
                      "the latents add nothing detectable beyond the pixel baselines."))
        leads["detector"] = "latent leads" if helps else "no detectable lead"
    won = [LABELS.get(m, m) for m, v in leads.items() if v == "latent leads"]
    lost = [LABELS.get(m, m) for m, v in leads.items() if v == "pixel leads"]
    bottom = "; ".join(p for p in (("the latent signals lead on " + ", ".join(won)) if won else "",
                                   ("the pixel baselines lead on " + ", ".join(lost)) if lost else "") if p)
    bottom = (bottom[0].upper() + bottom[1:] + "; elsewhere no side leads detectably." if bottom
              else "No side leads detectably on any measure of this run.")
    pres = [prereg] if isinstance(prereg, dict) else list(prereg or [])
    held = [f"{h['id']} ({h['text']})" for pre in pres for h in pre["hypotheses"] if h["verdict"] == "holds"]
    failed = [h["id"] for pre in pres for h in pre["hypotheses"] if h["verdict"] != "holds"]
    if pres:
        bottom += (" On the book's synthetic movies, of the claims declared in advance and tested on new draws, "
                   + ("; ".join(held) + " held" if held else "none held")
                   + (f"; {', '.join(failed)} did not" if failed else "") + " (appendix).")
    out.append(f"**Bottom line:** {bottom}")
    return "\n\n".join(out)


def preregistered_appendix(spread: dict | None = None, prereg: dict | Sequence[dict] | None = None) -> str:
    """The details behind the take-away's quotes of the committed benchmark, in markdown: the benchmark's per-seed
    claim over the training seeds (``spread``: :func:`seed_spread`) and each pre-registered test with its
    per-seed numbers (``prereg``: :func:`preregistered_summary`, one or several). Empty when there is neither."""
    out = []
    if spread and spread.get("claim"):
        rule = ("the lead rule" if spread.get("rule") == "lead" else
                "an earlier rule: both choices of a best signal in one unstudentized max-T null")
        out.append(f"**Training seeds** {spread['seeds']} (the boundary benchmark on other synthetic movies, "
                   f"benchmarks/results/boundaries.json, judged by {rule}): {spread['claim']}.")
    pres = [prereg] if isinstance(prereg, dict) else list(prereg or [])
    out += [_preregistered_text(pre) for pre in pres]
    return "\n\n".join(out)
