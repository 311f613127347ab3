"""Generic statistics for time series compared movie by movie: surrogate nulls, bootstrap intervals, paired tests.

Everything here works on plain arrays, one per movie (or one per resampling unit), so that
:mod:`vaelib.boundaries` and :mod:`vaelib.comparison` can apply it to any signal and target:

* :func:`phase_surrogates` and :func:`surrogate_test`: pooled Pearson r of signals with targets and its
  null from phase-randomized surrogates of the signals (the same amplitude spectrum, hence
  autocorrelation, with random phases, given the series' two end values). Unlike circular shifts
  this stays calibrated for very persistent signals (AR(1) up to 0.99, random walks) against targets
  with slow trends, where a shift moves the signal's wrap-around jump into the middle;
* :func:`crossfit_lag_test`: r at a lag chosen on the other movies, with the lag search in the null;
* :func:`bootstrap_ci`, :func:`paired_sign_flip` and :func:`paired_difference`: intervals and paired
  tests from per-unit sums (an event, a movie), for statistics that are ratios of sums (pooled r, F1);
  :func:`best_of_many_p`: the same with the choice of the best of several methods in the null, and
  :func:`best_vs_best`: the best of one side against the best of the other, both choices in the null, either way
  (the rule of earlier pre-registrations);
* :func:`lead_test` and :func:`versus`: whether one side's best leads the other side's strongest, a studentized
  max-T bootstrap whose null pays for the claimant's choice only, with simultaneous intervals that exclude 0
  exactly when a side leads (chapter 3's rule);
* :func:`fit_logistic`: L2-penalized logistic regression (damped Newton), for the combined detector;
* :func:`pearson`: plain Pearson r of two arrays (NaN when either is constant), for observer agreement;
* :func:`principal_axes`: PCA of the rows of an array (mean, leading directions, spread along each).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import expit


def standardize(x: np.ndarray) -> np.ndarray:
    """``(x - mean) / sd``; zeros for a constant series."""
    x = np.asarray(x, dtype=float)
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two 1-D arrays; NaN when either is constant."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    x = x - x.mean()
    y = y - y.mean()
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 0 else float("nan")


def principal_axes(x: np.ndarray, k: int, fit_every: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA of the rows of ``x`` (N, d): their mean (d,), the first ``k`` principal directions (k, d), orthonormal,
    and the spread (sd, ddof 1) along each (k,); only min(k, fitted rows, d) of them where there are fewer fitted
    rows or columns than ``k``. In float64 whatever ``x``'s dtype. ``fit_every``: fit the directions (and spreads)
    on every that-many-th row only (the mean is over all rows), to bound the cost for very many rows."""
    x = np.asarray(x, dtype=float)
    mean = x.mean(0)
    fit = (x - mean)[::fit_every]
    _, s, vt = np.linalg.svd(fit, full_matrices=False)
    return mean, vt[:k], s[:k] / np.sqrt(max(len(fit) - 1, 1))


# Above this lag-1 autocorrelation a series is treated as a random walk. An estimated AR(1) coefficient is
# biased low (a random walk of 200 steps shows about 0.97), and the AR(1) decomposition then leaves part of
# the ends' line in the rest, which makes the null conservative for persistent series; the straight line keeps
# it near its nominal level from white noise to random walks. tests/test_boundaries.py checks that
# (test_null_p_values_are_uniform_for_unrelated_signals: phi 0 to 1, targets as they are and with a trend,
# between 2% and 8.5% of 300 unrelated pairs called significant at 0.05).
RANDOM_WALK_PHI = 0.9


def _end_conditional(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The part of a series its two end values explain, under an AR(1) model fitted to it, and the rest.

    For a Gaussian AR(1) with coefficient phi, ``E[x_t | x_0, x_N] = a_t x_0 + b_t x_N`` and the rest
    is independent of the ends: white noise (phi = 0) keeps only its two end values, a random walk
    (phi -> 1, here any phi above ``RANDOM_WALK_PHI``) its straight line from first to last value (a
    Brownian bridge remains).
    """
    m = len(x)
    mu = x.mean()
    xc = x - mu
    phi = float(np.clip((xc[1:] * xc[:-1]).sum() / max((xc * xc).sum(), 1e-300), 0.0, 1.0))
    n_, t = m - 1, np.arange(m, dtype=float)
    if phi > RANDOM_WALK_PHI:
        a, b = (n_ - t) / n_, t / n_
    elif phi <= 1e-6:
        a, b = (t == 0).astype(float), (t == n_).astype(float)
    else:
        lp, den = np.log(phi), 1 - phi ** (2 * n_)
        a = (np.exp(t * lp) - np.exp((2 * n_ - t) * lp)) / den
        b = (np.exp((n_ - t) * lp) - np.exp((n_ + t) * lp)) / den
    ends = mu + a * xc[0] + b * xc[-1]
    return ends, x - ends


def phase_surrogates(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` surrogates of a 1-D series with its autocorrelation and random Fourier phases: ``(n, len(x))``.

    The part of the series fixed by its two end values (:func:`_end_conditional`) is kept, and the
    rest gets random phases with its own amplitude spectrum. Phase randomization alone treats the
    series as circular, so a persistent series' jump from its last value back to its first leaks
    into every frequency and the null is off (too wide or too narrow, depending on the target).
    """
    x = np.asarray(x, dtype=float)
    m = len(x)
    if m < 3:
        raise ValueError(f"a series of {m} values is too short for phase surrogates")
    ends, rest = _end_conditional(x)
    f = np.fft.rfft(rest)
    phase = rng.uniform(0.0, 2 * np.pi, (n, len(f)))
    phase[:, 0] = 0.0
    if m % 2 == 0:
        phase[:, -1] = 0.0          # the Nyquist term must stay real
    return np.fft.irfft(f[None, :] * np.exp(1j * phase), m) + ends[None, :]


@dataclass
class NullTest:
    """Pooled Pearson r of signals with targets, its null distribution and one-sided p-value."""
    r: float
    p: float
    null: np.ndarray

    @property
    def null_band(self) -> tuple[float, float]:
        """The null's 2.5th and 97.5th percentiles."""
        return float(np.percentile(self.null, 2.5)), float(np.percentile(self.null, 97.5))


def pooled_r(xs: Sequence[np.ndarray], ys: Sequence[np.ndarray]) -> float:
    """Pearson r pooled over movies after standardizing signal and target within each movie."""
    xs, ys = [standardize(x) for x in xs], [standardize(y) for y in ys]
    if any(len(x) != len(y) for x, y in zip(xs, ys)):
        raise ValueError("signal and target have different numbers of bins")
    return float(sum((x * y).sum() for x, y in zip(xs, ys)) / sum(len(x) for x in xs))


def surrogate_test(xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], n_null: int = 1000,
                   rng: np.random.Generator | int | None = 0) -> NullTest:
    """Pooled r of signals ``xs`` with targets ``ys`` (one pair per movie) and a one-sided p-value.

    The null replaces each movie's signal by an independent phase-randomized surrogate
    (:func:`phase_surrogates`) and recomputes the pooled r; ``p = (1 + #{null >= r}) / (1 + n_null)``.
    """
    rng = np.random.default_rng(rng)
    r = pooled_r(xs, ys)
    total = sum(len(x) for x in xs)
    null = np.zeros(n_null)
    for x, y in zip(xs, ys):
        x, y = standardize(x), standardize(y)
        if not y.any() or not x.any():
            continue                # a constant signal or target adds nothing, observed or null
        null += _rows_standardized(phase_surrogates(x, n_null, rng)) @ y
    null /= total
    p = float((1 + (null >= r - 1e-12).sum()) / (1 + n_null))
    return NullTest(r, p, null)


def _rows_standardized(s: np.ndarray) -> np.ndarray:
    s = s - s.mean(1, keepdims=True)
    sd = s.std(1, keepdims=True)
    return np.divide(s, sd, out=np.zeros_like(s), where=sd > 0)


@dataclass
class LagTest:
    """Pooled r at a lag chosen on the other movies (cross-fitted), its null and p; the lags."""
    r: float
    p: float
    null: np.ndarray
    lag: int                 # index of the lag that maximizes the pooled r over all movies
    fold_lags: np.ndarray    # per movie: the lag index chosen on the other movies


def _crossfit(s: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cross-fitted pooled r from per-movie sums ``s`` (..., movies, lags) and bin counts ``n`` (movies,)."""
    rest = (s.sum(-2, keepdims=True) - s) / (n.sum() - n)[:, None]          # r on the other movies, per lag
    pick = rest.argmax(-1)                                                   # (..., movies)
    chosen = np.take_along_axis(s, pick[..., None], -1)[..., 0]
    return chosen.sum(-1) / n.sum(), pick


def crossfit_lag_test(xs: Sequence[np.ndarray], ys_by_lag: Sequence[np.ndarray], n_null: int = 1000,
                      rng: np.random.Generator | int | None = 0) -> LagTest:
    """Pooled r of signals ``xs`` with targets at the lag that fits the *other* movies best.

    ``ys_by_lag[m]`` is ``(n_lags, len(xs[m]))``: movie m's target at each candidate lag. For every movie
    the lag is chosen on the other movies (the pooled r over them is largest), and the movie is scored
    at that lag; the null repeats the whole procedure, lag search included, on phase-randomized
    surrogates of the signals (:func:`phase_surrogates`), so searching for a lag buys nothing by chance.
    """
    if len(xs) < 2:
        raise ValueError(f"a cross-fitted lag needs at least two movies, got {len(xs)}")
    rng = np.random.default_rng(rng)
    n = np.array([len(x) for x in xs], dtype=float)
    obs, null = [], []
    for x, ys in zip(xs, ys_by_lag):
        ys = np.asarray(ys, dtype=float)
        if ys.ndim != 2 or ys.shape[1] != len(x):
            raise ValueError(f"targets by lag must be (n_lags, {len(x)}), got {ys.shape}")
        ys = _rows_standardized(ys)
        x = standardize(x)
        obs.append(ys @ x)
        null.append(_rows_standardized(phase_surrogates(x, n_null, rng)) @ ys.T if x.any()
                    else np.zeros((n_null, len(ys))))
    s_obs, s_null = np.stack(obs), np.stack(null, axis=1)                  # (movies, lags), (n_null, movies, lags)
    r, pick = _crossfit(s_obs, n)
    r_null, _ = _crossfit(s_null, n)
    p = float((1 + (r_null >= r - 1e-12).sum()) / (1 + n_null))
    return LagTest(float(r), p, r_null, int(s_obs.sum(0).argmax()), pick)


# --------------------------------------------------------------------------- resampling units


@dataclass
class Interval:
    """A point estimate with a percentile bootstrap interval."""
    value: float
    lo: float
    hi: float


def bootstrap_ci(units: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray], n_boot: int = 2000,
                 level: float = 0.95, rng: np.random.Generator | int | None = 0) -> Interval:
    """Percentile bootstrap interval of a statistic of per-unit sums.

    ``units`` is ``(n_units, k)``: k additive quantities per resampling unit (e.g. hits, detections
    and true boundaries of one event). ``statistic`` maps ``(..., k)`` totals to values, vectorized
    over leading axes. Units are resampled with replacement ``n_boot`` times.
    """
    rng = np.random.default_rng(rng)
    units = np.asarray(units, dtype=float)
    if units.ndim != 2 or len(units) < 2:
        raise ValueError(f"need at least two resampling units as an (n_units, k) array, got shape {units.shape}")
    value = float(statistic(units.sum(0)))
    idx = rng.integers(0, len(units), (n_boot, len(units)))
    counts = np.stack([np.bincount(i, minlength=len(units)) for i in idx])
    boot = statistic(counts @ units)
    a = (1 - level) / 2
    lo, hi = np.nanpercentile(boot, [100 * a, 100 * (1 - a)])
    return Interval(value, float(lo), float(hi))


def paired_sign_flip(units_a: np.ndarray, units_b: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray],
                     n_perm: int = 5000, rng: np.random.Generator | int | None = 0) -> tuple[float, float]:
    """Paired permutation test of ``statistic(A) - statistic(B)``; returns the difference and a two-sided p.

    ``units_a``/``units_b`` are ``(n_units, k)`` per-unit sums of two methods on the same units. Under
    the null that the methods are exchangeable within every unit, each unit's pair is swapped at
    random; ``p = (1 + #{|null| >= |observed|}) / (1 + n_perm)``.
    """
    rng = np.random.default_rng(rng)
    a, b = np.asarray(units_a, float), np.asarray(units_b, float)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"paired units must have one (n_units, k) shape, got {a.shape} and {b.shape}")
    diff = float(statistic(a.sum(0)) - statistic(b.sum(0)))
    swap = rng.random((n_perm, len(a))) < 0.5
    ta = (~swap) @ a + swap @ b
    tb = swap @ a + (~swap) @ b
    null = statistic(ta) - statistic(tb)
    p = float((1 + (np.abs(null) >= abs(diff) - 1e-12).sum()) / (1 + n_perm))
    return diff, p


@dataclass
class Paired:
    """``A - B`` of one statistic on the same units: the difference, its 95% paired bootstrap interval,
    and a two-sided sign-flip permutation p-value."""
    diff: float
    lo: float
    hi: float
    p: float


def paired_difference(units_a: np.ndarray, units_b: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray],
                      n_boot: int = 2000, rng: np.random.Generator | int | None = 0) -> Paired:
    """Paired comparison of two methods scored on the same units (:func:`bootstrap_ci`'s layout): the units
    are resampled together for the interval of the difference; the p-value is :func:`paired_sign_flip`'s."""
    rng = np.random.default_rng(rng)
    a, b = np.asarray(units_a, float), np.asarray(units_b, float)
    diff, p = paired_sign_flip(a, b, statistic, n_boot, rng)
    idx = rng.integers(0, len(a), (n_boot, len(a)))
    counts = np.stack([np.bincount(i, minlength=len(a)) for i in idx])
    lo, hi = np.nanpercentile(statistic(counts @ a) - statistic(counts @ b), [2.5, 97.5])
    return Paired(diff, float(lo), float(hi), p)


def best_of_many_p(units_a: Sequence[np.ndarray], units_b: np.ndarray | Sequence[np.ndarray],
                   statistic: Callable[[np.ndarray], np.ndarray], n_perm: int = 2000,
                   rng: np.random.Generator | int | None = 0) -> float:
    """One-sided p-value that the best of several methods A beats the best of methods B, both choices included.

    The observed statistic is ``max_i statistic(A_i) - max_j statistic(B_j)``. Its null (a max-T sign-flip
    test): one random swap pattern of units is applied to every pair (A_i, B_j) and the largest difference
    kept, so that picking the winner among many is as lucky in the null as in the data. A plain paired test
    of the winner against B ignores that luck. ``units_b`` is one ``(n_units, k)`` array (one rival) or a
    sequence of them: with several rivals the best one on these data is the rival, and keeping every pair in
    the null's maximum keeps the test valid whichever rival is truly best (conservative otherwise).
    """
    rng = np.random.default_rng(rng)
    a = [np.asarray(u, float) for u in units_a]
    bs = [np.asarray(units_b, float)] if np.ndim(units_b[0]) == 1 else [np.asarray(u, float) for u in units_b]
    if not a or not bs:
        raise ValueError("best_of_many_p needs at least one method on each side")
    if any(u.shape != bs[0].shape or u.ndim != 2 for u in a + bs):
        raise ValueError(f"paired units must share one (n_units, k) shape, got {sorted({u.shape for u in a + bs})}")
    obs = max(float(statistic(u.sum(0))) for u in a) - max(float(statistic(b.sum(0))) for b in bs)
    swap = rng.random((n_perm, len(bs[0]))) < 0.5
    null = np.max([statistic((~swap) @ u + swap @ b) - statistic(swap @ u + (~swap) @ b) for u in a for b in bs],
                  axis=0)
    return float((1 + (null >= obs - 1e-12).sum()) / (1 + n_perm))


@dataclass
class BestVsBest:
    """The best method of side A against the best of side B (:func:`best_vs_best`): their names, ``a - b`` with
    its 95% paired bootstrap interval, and two one-sided max-T p-values with both choices in the null: ``p_a``
    (A's best ahead of B's best) and ``p_b`` (B's best ahead of A's best)."""
    a: str
    b: str
    diff: float
    lo: float
    hi: float
    p_a: float
    p_b: float


def best_vs_best(units_a: dict[str, np.ndarray], units_b: dict[str, np.ndarray],
                 statistic: Callable[[np.ndarray], np.ndarray], n_boot: int = 2000,
                 rng: int | None = 0) -> BestVsBest:
    """The best of methods A against the best of methods B, each picked on these data, judged the same way in
    either direction.

    ``units_a`` and ``units_b`` map names to ``(n_units, k)`` per-unit sums (:func:`bootstrap_ci`'s layout). The
    best of each side is the one with the highest ``statistic``; the difference and its interval are
    :func:`paired_difference`'s. Both p-values are :func:`best_of_many_p`'s, once each way, so a verdict "A beats
    B" and a verdict "B beats A" both pay for picking the best on either side (a plain paired test of the two
    winners ignores that luck and calls a winner too often). ``rng`` is an int seed (each step starts from it).
    The test is valid whichever methods are truly best, but conservative when a side holds weak methods: a weak
    method's pairs vary most under the swaps, and the null's maximum is taken over every pair.
    """
    if not units_a or not units_b:
        raise ValueError("best_vs_best needs at least one method on each side")
    value = {n: float(statistic(np.asarray(u, float).sum(0))) for n, u in [*units_a.items(), *units_b.items()]}
    a, b = max(units_a, key=value.__getitem__), max(units_b, key=value.__getitem__)
    res = paired_difference(units_a[a], units_b[b], statistic, n_boot, rng)
    side_a, side_b = list(units_a.values()), list(units_b.values())
    return BestVsBest(a, b, res.diff, res.lo, res.hi, best_of_many_p(side_a, side_b, statistic, n_boot, rng),
                      best_of_many_p(side_b, side_a, statistic, n_boot, rng))


def _boot_counts(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_boot, n)`` bootstrap counts: how often each of ``n`` units is drawn in each resample."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)


def _critical(null: np.ndarray, alpha: float) -> float:
    """The max-T critical value that matches ``p = (1 + #{null >= T}) / (1 + len(null))``: ``T > q`` exactly when
    ``p < alpha`` (``inf`` when no T can reach it with this many draws)."""
    b = len(null)
    k = np.arange(b + 1)
    ok = (1 + k) / (1 + b) < alpha
    if not ok.any():
        return float("inf")
    m = int(k[ok].max())                     # at most m null draws may reach T
    return float(np.sort(null)[::-1][m]) if m < b else float("-inf")


@dataclass
class Lead:
    """The claiming side's best method against the rival side's strongest one (:func:`lead_test`).

    ``claim``/``rival``: their names; ``diff``: ``claim - rival``; ``se``: its bootstrap standard error;
    ``t = diff / se``; ``q``: the max-T critical value at ``alpha``; ``bound = diff - q * se``: the simultaneous
    one-sided lower confidence bound of the lead (``q`` taken as 0 if below), above 0 exactly when the claiming
    side is ahead and ``p < alpha``; ``p``: one-sided p that the claiming side leads; ``n_candidates``: the
    claiming side's methods whose choice is paid for in the null."""
    claim: str
    rival: str
    diff: float
    se: float
    t: float
    q: float
    bound: float
    p: float
    alpha: float
    n_candidates: int


def _lead(values: dict[str, float], boot: dict[str, np.ndarray], claim_side: Sequence[str],
          rival_side: Sequence[str], alpha: float, n_units: int) -> Lead:
    """:func:`lead_test` on computed statistics (``values``) and their bootstrap draws (``boot``, one resample
    pattern shared by every method)."""
    rival = max(rival_side, key=values.__getitem__)
    best = max(claim_side, key=values.__getitem__)
    d = np.array([values[c] - values[rival] for c in claim_side])
    dstar = np.stack([boot[c] - boot[rival] for c in claim_side])            # (candidates, n_boot)
    se = dstar.std(axis=1, ddof=1)
    ok = se > 0
    with np.errstate(invalid="ignore"):        # no spread: +-inf by the difference's sign, 0 for none
        t = np.nan_to_num(np.where(ok, d / np.where(ok, se, 1.0), np.sign(d) * np.inf), nan=0.0, posinf=np.inf,
                          neginf=-np.inf)
    centred = np.where(ok[:, None], (dstar - d[:, None]) / np.where(ok, se, 1.0)[:, None], 0.0)
    # a candidate far behind the rival cannot be the one that leads by chance: its draws stay where it is
    # (Hansen's SPA recentring, threshold sqrt(2 log log n)), so hopeless candidates do not widen the null
    # (the claimed best always keeps its centred draws: its bound then stays a real interval's end)
    i = claim_side.index(best)
    far = t < -np.sqrt(2 * np.log(np.log(max(n_units, 16))))
    far[i] = False
    null = (centred + np.where(far, t, 0.0)[:, None]).max(axis=0)
    q = _critical(null, alpha)
    p = float((1 + (null >= t[i]).sum()) / (1 + len(null)))
    # the bound never passes the estimate (q >= 0): a lead needs the claiming side ahead and p < alpha
    bound = float(d[i] - max(q, 0.0) * se[i]) if np.isfinite(q) else float("-inf")
    return Lead(best, rival, float(d[i]), float(se[i]), float(t[i]), q, bound, p, float(alpha), len(claim_side))


def lead_test(units_claim: dict[str, np.ndarray], units_rival: dict[str, np.ndarray],
              statistic: Callable[[np.ndarray], np.ndarray], alpha: float = 0.05, n_boot: int = 2000,
              rng: np.random.Generator | int | None = 0) -> Lead:
    """Does the best method of the claiming side lead the strongest method of the rival side? A one-sided test
    whose null matches that claim.

    ``units_claim``/``units_rival`` map names to ``(n_units, k)`` per-unit sums on the same units
    (:func:`bootstrap_ci`'s layout). The rival is the rival side's method with the highest ``statistic``: picking
    the strongest rival works against the claim, so it needs no correction. The claiming side's best is picked
    among several, so that choice is paid for: a studentized max-T bootstrap over the claiming side's candidates,
    each candidate's difference from the rival divided by its own bootstrap standard error (a noisy candidate
    does not widen the null), candidates far behind the rival left at their place (Hansen 2005's SPA
    recentring). The same resamples give the p-value and the simultaneous lower bound ``diff - q * se``, so the
    bound is above 0 exactly when ``p < alpha``. Raises ValueError with fewer than two units or an empty side."""
    rng = np.random.default_rng(rng)
    if not units_claim or not units_rival:
        raise ValueError("lead_test needs at least one method on each side")
    units = {n: np.asarray(u, float) for n, u in [*units_rival.items(), *units_claim.items()]}
    shapes = {u.shape for u in units.values()}
    if len(shapes) != 1 or next(iter(shapes))[0] < 2 or len(next(iter(shapes))) != 2:
        raise ValueError(f"paired units must share one (n_units >= 2, k) shape, got {sorted(shapes)}")
    n = next(iter(shapes))[0]
    counts = _boot_counts(n, n_boot, rng)
    values = {k: float(statistic(u.sum(0))) for k, u in units.items()}
    boot = {k: statistic(counts @ u) for k, u in units.items()}
    return _lead(values, boot, list(units_claim), list(units_rival), alpha, n)


@dataclass
class Versus:
    """Side A's best against side B's best, judged either way by :func:`lead_test` (:func:`versus`).

    ``a``, ``b``: the two best methods; ``diff = a - b``; ``lo, hi``: the simultaneous interval, ``lo`` from the
    test "A leads" and ``hi`` from "B leads", each at ``alpha / 2``: it excludes 0 exactly when one side leads
    (``p < alpha``); ``p``: two-sided, ``2 min(p_a, p_b)`` capped at 1; ``p_a``, ``p_b``: the one-sided p-values;
    ``lo_unadjusted, hi_unadjusted``: the plain 95% percentile interval of the two winners' difference, with
    neither choice paid for (labelled so wherever shown); ``verdict``: ``"a"``, ``"b"`` or ``""``."""
    a: str
    b: str
    diff: float
    lo: float
    hi: float
    p: float
    p_a: float
    p_b: float
    lo_unadjusted: float
    hi_unadjusted: float
    verdict: str


def versus(units_a: dict[str, np.ndarray], units_b: dict[str, np.ndarray],
           statistic: Callable[[np.ndarray], np.ndarray], alpha: float = 0.05, n_boot: int = 2000,
           rng: np.random.Generator | int | None = 0) -> Versus:
    """The best of methods A against the best of methods B, with the lead tested in whichever direction the data
    point (two-sided: :func:`lead_test` each way at ``alpha / 2`` on one set of resamples). The interval
    ``[lo, hi]`` is the simultaneous one from the same max-T quantiles, so "A leads" (``lo > 0``) and "B leads"
    (``hi < 0``) hold exactly when ``p < alpha``."""
    rng = np.random.default_rng(rng)
    if not units_a or not units_b:
        raise ValueError("versus needs at least one method on each side")
    if set(units_a) & set(units_b):
        raise ValueError(f"a method is on both sides: {sorted(set(units_a) & set(units_b))}")
    units = {n: np.asarray(u, float) for n, u in [*units_a.items(), *units_b.items()]}
    shapes = {u.shape for u in units.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2 or next(iter(shapes))[0] < 2:
        raise ValueError(f"paired units must share one (n_units >= 2, k) shape, got {sorted(shapes)}")
    n = next(iter(shapes))[0]
    counts = _boot_counts(n, n_boot, rng)
    values = {k: float(statistic(u.sum(0))) for k, u in units.items()}
    boot = {k: statistic(counts @ u) for k, u in units.items()}
    la = _lead(values, boot, list(units_a), list(units_b), alpha / 2, n)
    lb = _lead(values, boot, list(units_b), list(units_a), alpha / 2, n)
    a, b = la.claim, lb.claim
    diff = values[a] - values[b]
    lo, hi = la.bound + 0.0, -lb.bound + 0.0         # + 0.0: no -0.0 printed
    p = float(min(1.0, 2 * min(la.p, lb.p)))
    lo_u, hi_u = np.nanpercentile(boot[a] - boot[b], [2.5, 97.5])
    verdict = "a" if lo > 0 else "b" if hi < 0 else ""
    return Versus(a, b, float(diff), float(lo), float(hi), p, la.p, lb.p, float(lo_u), float(hi_u), verdict)


# --------------------------------------------------------------------------- logistic regression


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, max_iter: int = 50,
                 start: np.ndarray | None = None) -> np.ndarray:
    """Weights (intercept first) of a logistic regression of 0/1 ``y`` on the columns of ``x``, with an L2
    penalty ``l2`` on every weight but the intercept, fitted by Newton's method with step halving (plain
    Newton overshoots on heavy-tailed features and diverges), from ``start`` if given."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"x must be (n, k) with one row per y; got {x.shape} and {y.shape}")
    xx = np.c_[np.ones(len(x)), x]
    pen = l2 * np.eye(xx.shape[1])
    pen[0, 0] = 0.0
    mean = np.clip(y.mean(), 1e-6, 1 - 1e-6)
    w = np.zeros(xx.shape[1])
    w[0] = np.log(mean / (1 - mean))
    if start is not None:
        w = np.array(start, dtype=float)

    def objective(v: np.ndarray) -> float:
        z = np.einsum("nk,k->n", xx, v)
        return float(np.logaddexp(0.0, z).sum() - y @ z + 0.5 * v @ pen @ v)

    # einsum, not BLAS: these products are small, and a threaded BLAS on a busy machine spends 20x longer
    # synchronizing its threads than computing them
    f = objective(w)
    for _ in range(max_iter):
        p = expit(np.einsum("nk,k->n", xx, w))
        grad = np.einsum("nk,n->k", xx, p - y) + pen @ w
        hess = np.einsum("nk,nj->kj", xx * (p * (1 - p) + 1e-9)[:, None], xx) + pen
        step = np.linalg.solve(hess, grad)
        t = 1.0                                  # damped Newton: halve the step until the objective falls
        while t > 1e-6 and objective(w - t * step) > f + 1e-12:
            t /= 2
        w = w - t * step
        f_new = objective(w)
        if abs(f - f_new) < 1e-10 * max(1.0, abs(f)) or np.abs(t * step).max() < 1e-8:
            break
        f = f_new
    return w


def logistic_loss(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-row log loss (nats) of :func:`fit_logistic`'s weights on ``x``, ``y``."""
    p = np.clip(expit(w[0] + np.einsum("nk,k->n", np.asarray(x, float), w[1:])), 1e-12, 1 - 1e-12)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))
