"""Boundary signals set against each other, on the resampling units of :mod:`vaelib.boundaries`:

* the best latent signal against the best pixel baseline (:func:`best_latent_vs_pixel`,
  :func:`vaelib.stats.versus`: a side leads when its best beats the other side's strongest, the choice of its best
  paid for; simultaneous intervals), overall and per bin width (:func:`latent_vs_pixel_by_bin`); any pairs of
  signals (:func:`paired_table`);
* claims declared in advance, tested per training seed and judged over the seeds: leads (:func:`declared_lead`,
  :func:`lead_verdict`) and, by an earlier rule, a declared latent signal against the best pixel baseline
  (:func:`declared_vs_best_pixel`, :func:`preregistered_verdict`);
* the observers' response lag, chosen on other movies (:func:`lag_table`);
* a cross-fitted logistic detector on all signals and whether the latents add to the pixels
  (:func:`combined_detector`).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .boundaries import (
    MIN_UNITS,
    STATISTICS,
    Comparison,
    Targets,
    binned_signal,
    interval_or_none,
    observer_boundaries,
    r_from_sums,
    r_units,
    unit_edges,
    unit_of,
)
from .signals import SIGNALS, signal_names
from .stats import (
    Paired,
    best_vs_best,
    crossfit_lag_test,
    fit_logistic,
    lead_test,
    logistic_loss,
    paired_difference,
    pooled_r,
    standardize,
    versus,
)

# --------------------------------------------------------------------------- the best latent against the best pixel


VERSUS_COLUMNS = ["best_latent", "best_pixel", "latent", "pixel", "diff", "lo", "hi", "p", "p_latent", "p_pixel",
                  "lo_unadjusted", "hi_unadjusted", "verdict", "n_units"]


VERDICTS = {"a": "latent leads", "b": "pixel leads", "": "no detectable lead"}


def _versus_row(side: dict[str, dict[str, np.ndarray]], stat: Callable[[np.ndarray], np.ndarray], n_boot: int,
                seed: int, alpha: float) -> dict:
    """The best latent against the best pixel signal (:func:`vaelib.stats.versus`) as one row of
    ``VERSUS_COLUMNS``; too few resampling units (``boundaries.MIN_UNITS``) give the two values and no test."""
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


def best_of_kind(table: pd.DataFrame, metric: str, kind: str) -> str | None:
    """The signal of ``kind`` (``latent``, ``pixel``) with the highest ``metric`` in a comparison table."""
    sub = table[(table["kind"] == kind) & table[metric].notna()] if metric in table else table.iloc[:0]
    return None if sub.empty else str(sub.loc[sub[metric].idxmax(), "signal"])


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


def latent_vs_pixel_by_bin(signals: pd.DataFrame, targets: Targets, across: pd.DataFrame, n_boot: int = 1000,
                           seed: int = 0, units: str = "events", alpha: float = 0.05) -> pd.DataFrame:
    """At each bin width of an :func:`vaelib.boundaries.r_across_bins` table: the best latent signal's r against
    the best pixel baseline's, paired on the same events, as :func:`best_latent_vs_pixel` does it (columns ``bin_s``
    and ``VERSUS_COLUMNS``)."""
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


def paired_table(signals: pd.DataFrame, targets: Targets, pairs: Sequence[tuple[str, str]], bin_s: float = 1.0,
                 tolerance_s: float = 1.0, n_boundaries: Callable[[str], int] | dict[str, int] | None = None,
                 n_boot: int = 2000, seed: int = 0, units: str = "events") -> pd.DataFrame:
    """``a`` minus ``b`` for each pair of signals and each metric the targets allow, paired on the same
    resampling units (:meth:`vaelib.boundaries.Comparison.paired`). Columns ``a, b, metric, value_a, value_b, diff,
    lo, hi, p``."""
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


# --------------------------------------------------------------------------- claims declared in advance


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


# --------------------------------------------------------------------------- the response lag


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
              else [binned_signal(signals, name, m, targets, bin_s) for m in movies])
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
    unit = np.concatenate([unit_of((np.arange(len(y)) + 0.5) * bin_s, e) + off for y, e, off in
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
