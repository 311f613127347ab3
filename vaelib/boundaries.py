"""Event-boundary signals from latents and pixels, and how well they match human and true boundaries.

Every signal is a number per stored frame (or, for change points, a 0/1 marker per frame). The
comparison bins signals and human presses on the same grid of ``bin_s`` seconds per movie:

* continuous signals are averaged within a bin, discrete ones (change points) take the bin's max;
* Pearson r between the binned signal and the group boundary frequency, pooled over movies after
  standardizing both within each movie (for a 0/1 signal this is the point-biserial r);
* its null distribution comes from circular shifts of the binned signal within each movie, which
  keep the signal's autocorrelation and break only its alignment with the boundaries;
* against ground-truth boundary times: precision, recall and F1 of the signal's boundaries
  (its highest peaks, as many as there are true boundaries) within +-``tolerance_s``.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks
from tqdm.auto import tqdm

from .annotations import bin_centers, for_movies, group_frequency, n_bins, read_boundary_csv, read_presses
from .paths import atomic_path, resolve
from .video import load_frames

# --------------------------------------------------------------------------- signals of one movie


def smooth(x: np.ndarray, fps: float, sigma_s: float) -> np.ndarray:
    """Gaussian smoothing of a per-frame series with a kernel of ``sigma_s`` seconds (NaNs filled from neighbours)."""
    x = fill_nan(np.asarray(x, dtype=float))
    if sigma_s <= 0 or len(x) < 2:
        return x
    return gaussian_filter1d(x, sigma=sigma_s * fps, mode="nearest")


def fill_nan(x: np.ndarray) -> np.ndarray:
    """A float copy of ``x``, NaN/inf replaced by linear interpolation between finite neighbours (all-NaN: zeros)."""
    x = np.array(x, dtype=float)
    bad = ~np.isfinite(x)
    if bad.all():
        return np.zeros_like(x)
    if bad.any():
        idx = np.arange(len(x))
        x[bad] = np.interp(idx[bad], idx[~bad], x[~bad])
    return x


def latent_speed(z: np.ndarray) -> np.ndarray:
    """``||z_t - z_{t-1}||`` per frame of one movie; the first frame gets the second frame's value."""
    z = np.asarray(z, dtype=float)
    if len(z) < 2:
        raise ValueError(f"latent speed needs at least two frames, got {len(z)}")
    v = np.linalg.norm(np.diff(z, axis=0), axis=1)
    return np.concatenate([v[:1], v])


def _lagged(z: np.ndarray, n_lags: int, lag: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Design matrix of the past ``n_lags`` states ``lag`` frames apart, the targets, and the target rows."""
    span = n_lags * lag
    rows = np.arange(span, len(z))
    x = np.concatenate([z[rows - k * lag] for k in range(1, n_lags + 1)], axis=1)
    return x, z[rows], rows


def prediction_error(z_by_movie: Sequence[np.ndarray], n_lags: int = 3, lag: int = 1,
                     n_folds: int = 5, ridge: float = 1.0) -> list[np.ndarray]:
    """Cross-fitted error of a linear (ridge) model predicting ``z_t`` from ``z_{t-lag}, ..., z_{t-n_lags*lag}``.

    Each movie is cut into ``n_folds`` contiguous blocks. The error of the frames in block k (of
    every movie) comes from a model fitted on the other blocks only, leaving out the training rows
    whose window touches block k, so the model never sees what it scores. Returns, per movie, the
    squared error per latent dimension for each frame (NaN for the first ``n_lags*lag`` frames).
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds}")
    span = n_lags * lag
    xs, ys, rows, folds, fold_masks = [], [], [], [], []
    for m, z in enumerate(z_by_movie):
        z = np.asarray(z, dtype=float)
        if len(z) < span + n_folds:
            raise ValueError(f"movie {m}: {len(z)} frames are too few for {n_lags} lags of {lag} and {n_folds} folds")
        x, y, r = _lagged(z, n_lags, lag)
        block = np.minimum((np.arange(len(z)) * n_folds) // len(z), n_folds - 1)
        xs.append(x), ys.append(y), rows.append(r), folds.append(block[r])
        # training rows excluded from fold k: targets in block k or windows reaching into it
        touch = np.zeros((n_folds, len(r)), dtype=bool)
        for k in range(n_folds):
            in_k = np.flatnonzero(block == k)
            lo, hi = in_k[0], in_k[-1] + span
            touch[k] = (r >= lo) & (r <= hi)
        fold_masks.append(touch)
    x_all, y_all = np.concatenate(xs), np.concatenate(ys)
    fold_all, touch_all = np.concatenate(folds), np.concatenate(fold_masks, axis=1)
    pred = np.empty_like(y_all)
    for k in range(n_folds):
        train = ~touch_all[k]
        test = fold_all == k
        if train.sum() < 2:
            raise ValueError("too few frames to fit the prediction model outside a fold")
        mu_x, sd_x = x_all[train].mean(0), x_all[train].std(0) + 1e-8
        mu_y = y_all[train].mean(0)
        xt = (x_all[train] - mu_x) / sd_x
        w = np.linalg.solve(xt.T @ xt + ridge * np.eye(xt.shape[1]), xt.T @ (y_all[train] - mu_y))
        pred[test] = ((x_all[test] - mu_x) / sd_x) @ w + mu_y
    err = ((y_all - pred) ** 2).mean(axis=1)
    out, start = [], 0
    for z, r in zip(z_by_movie, rows):
        e = np.full(len(z), np.nan)
        e[r] = err[start:start + len(r)]
        out.append(e)
        start += len(r)
    return out


def change_points(z: np.ndarray, fps: float, n_bkps: int | None = None, pen: float | None = None,
                  rate_hz: float = 4.0, min_size_s: float = 1.0) -> np.ndarray:
    """Change points of one movie's latent series (``ruptures`` KernelCPD, linear kernel): frame indices.

    The series is standardized and averaged down to about ``rate_hz`` samples per second first
    (the search is quadratic in length). Give ``n_bkps`` (exactly that many change points) or a
    penalty ``pen``; with neither, ``pen = 3 * dims * log(n)`` (a BIC-like default).
    """
    import ruptures as rpt

    z = np.asarray(z, dtype=float)
    step = max(1, int(round(fps / rate_hz)))
    n = len(z) // step
    if n < 3:
        return np.zeros(0, dtype=np.int64)
    zs = (z - z.mean(0)) / (z.std(0) + 1e-8)
    zs = zs[: n * step].reshape(n, step, -1).mean(1)
    min_size = max(1, int(round(min_size_s * fps / step)))
    algo = rpt.KernelCPD(kernel="linear", min_size=min_size).fit(zs)
    if n_bkps is not None:
        n_bkps = int(min(n_bkps, n // min_size - 1))
        if n_bkps < 1:
            return np.zeros(0, dtype=np.int64)
        bkps = algo.predict(n_bkps=n_bkps)
    else:
        bkps = algo.predict(pen=pen if pen is not None else 3.0 * zs.shape[1] * np.log(n))
    return np.asarray([b * step for b in bkps[:-1]], dtype=np.int64)


def frame_difference(frames: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Mean absolute difference between consecutive frames (uint8 RGB), per frame; the first copies the second."""
    n = len(frames)
    if n < 2:
        raise ValueError(f"frame difference needs at least two frames, got {n}")
    out = np.empty(n)
    for s in range(1, n, chunk):
        a = np.asarray(frames[s - 1: s + chunk], dtype=np.int16)
        out[s: s + len(a) - 1] = np.abs(np.diff(a, axis=0)).mean(axis=(1, 2, 3))
    out[0] = out[1]
    return out


def content_score(frames: np.ndarray, fps: float) -> np.ndarray:
    """PySceneDetect ContentDetector's per-frame content score (``content_val``: HSV and edge change)."""
    from scenedetect import ContentDetector, FrameTimecode, StatsManager

    det = ContentDetector()
    stats = StatsManager()
    det.stats_manager = stats
    out = np.zeros(len(frames))
    for i in range(len(frames)):
        tc = FrameTimecode(i, fps)
        det.process_frame(tc, cv2.cvtColor(np.ascontiguousarray(frames[i]), cv2.COLOR_RGB2BGR))
        if i > 0:
            out[i] = stats.get_metrics(tc, [ContentDetector.FRAME_SCORE_KEY])[0]
    if len(out) > 1:
        out[0] = out[1]
    return out


def flow_magnitude(frames: np.ndarray) -> np.ndarray:
    """Mean Farneback optical-flow magnitude (pixels per frame) between consecutive frames; frame 0 copies frame 1."""
    n = len(frames)
    if n < 2:
        raise ValueError(f"optical flow needs at least two frames, got {n}")
    out = np.empty(n)
    prev = cv2.cvtColor(np.ascontiguousarray(frames[0]), cv2.COLOR_RGB2GRAY)
    for i in range(1, n):
        cur = cv2.cvtColor(np.ascontiguousarray(frames[i]), cv2.COLOR_RGB2GRAY)
        flow = cv2.calcOpticalFlowFarneback(prev, cur, None, 0.5, 2, 9, 3, 5, 1.1, 0)
        out[i] = float(np.sqrt((flow ** 2).sum(-1)).mean())
        prev = cur
    out[0] = out[1]
    return out


# --------------------------------------------------------------------------- all signals, all movies

# name -> (kind, discrete)
SIGNALS: dict[str, tuple[str, bool]] = {
    "latent_speed": ("latent", False),
    "prediction_error": ("latent", False),
    "change_points": ("latent", True),
    "frame_difference": ("pixel", False),
    "content_score": ("pixel", False),
    "flow_magnitude": ("pixel", False),
}


def compute_signals(index: pd.DataFrame, z: np.ndarray, frames: np.ndarray | None, fps: dict[str, float],
                    smooth_s: float = 0.25, n_lags: int = 3, lag_s: float = 0.2, n_folds: int = 5,
                    n_bkps: dict[str, int] | None = None, cpd_rate_hz: float = 4.0,
                    progress: bool = True) -> pd.DataFrame:
    """Every boundary signal, one row per frame: ``movie, frame, time_s`` and one column per signal.

    ``index`` is the frame index (movie, frame, time_s), ``z`` the latents (one row per index row),
    ``frames`` the uint8 frames (pixel baselines are skipped when None), ``fps`` the stored frame
    rate per movie. Latent speed and prediction error are smoothed with ``smooth_s`` seconds;
    change points are 0/1 markers (``n_bkps[movie]`` of them when given, else a penalty).
    """
    z = np.asarray(z)
    if z.ndim != 2:
        raise ValueError(f"latents must be a 2-D array (frames x dims), got shape {z.shape}")
    if len(z) != len(index):
        raise ValueError(f"latents have {len(z)} rows but the frame index has {len(index)}: "
                         "they must come from the same frame store (rerun the MMD-VAE chapter)")
    if frames is not None and len(frames) != len(index):
        raise ValueError(f"frames have {len(frames)} rows but the frame index has {len(index)}")
    if not np.isfinite(z).all():
        raise ValueError("latents contain NaN or infinite values")
    movies = list(dict.fromkeys(index["movie"]))
    rows = {m: np.flatnonzero(index["movie"].to_numpy() == m) for m in movies}
    for m in movies:
        if len(rows[m]) < 2:
            raise ValueError(f"movie {m!r} has {len(rows[m])} frame(s); every movie needs at least two")
        if m not in fps:
            raise ValueError(f"no frame rate given for movie {m!r}")
    out = index[["movie", "frame", "time_s"]].copy().reset_index(drop=True)
    cols = {name: np.zeros(len(index)) for name in SIGNALS if frames is not None or SIGNALS[name][0] != "pixel"}
    lag = {m: max(1, int(round(lag_s * fps[m]))) for m in movies}
    common_lag = min(lag.values())
    errs = prediction_error([z[rows[m]] for m in movies], n_lags=n_lags, lag=common_lag, n_folds=n_folds)
    for m, e in zip(tqdm(movies, desc="signals", disable=not progress), errs):
        r, f = rows[m], fps[m]
        cols["latent_speed"][r] = smooth(latent_speed(z[r]), f, smooth_s)
        cols["prediction_error"][r] = smooth(e, f, smooth_s)
        cp = change_points(z[r], f, n_bkps=None if n_bkps is None else n_bkps.get(m), rate_hz=cpd_rate_hz)
        marks = np.zeros(len(r))
        marks[cp] = 1.0
        cols["change_points"][r] = marks
        if frames is not None:
            fr = frames[r[0]: r[-1] + 1] if (np.diff(r) == 1).all() else frames[r]
            cols["frame_difference"][r] = frame_difference(fr)
            cols["content_score"][r] = content_score(fr, f)
            cols["flow_magnitude"][r] = flow_magnitude(fr)
    for name, v in cols.items():
        out[name] = v
    return out


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


def standardize(x: np.ndarray) -> np.ndarray:
    """``(x - mean) / sd``; zeros for a constant series."""
    x = np.asarray(x, dtype=float)
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)


@dataclass
class ShiftTest:
    """Pearson r of a binned signal with a target, and its circular-shift null."""
    r: float
    p: float
    null: np.ndarray

    @property
    def null_band(self) -> tuple[float, float]:
        """The null's 2.5th and 97.5th percentiles."""
        return float(np.percentile(self.null, 2.5)), float(np.percentile(self.null, 97.5))


def shift_test(xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], n_shifts: int = 1000,
               rng: np.random.Generator | int | None = 0, min_shift: int = 1) -> ShiftTest:
    """Pooled Pearson r of signals ``xs`` with targets ``ys`` (one pair per movie) and a one-sided p-value.

    Both are standardized within each movie, then pooled. The null shifts each movie's signal
    circularly by an independent random offset in ``[min_shift, n - min_shift]`` bins;
    ``p = (1 + #{null >= r}) / (1 + n_shifts)``.
    """
    rng = np.random.default_rng(rng)
    xs = [standardize(x) for x in xs]
    ys = [standardize(y) for y in ys]
    if any(len(x) != len(y) for x, y in zip(xs, ys)):
        raise ValueError("signal and target have different numbers of bins")
    total = sum(len(x) for x in xs)
    r = float(sum((x * y).sum() for x, y in zip(xs, ys)) / total)
    null = np.zeros(n_shifts)
    for x, y in zip(xs, ys):
        n = len(x)
        if n < 2 * min_shift + 1:
            raise ValueError(f"{n} bins are too few for circular shifts of at least {min_shift}")
        k = rng.integers(min_shift, n - min_shift + 1, size=n_shifts)
        idx = (np.arange(n)[None, :] - k[:, None]) % n
        null += (x[idx] * y[None, :]).sum(1)
    null /= total
    p = float((1 + (null >= r - 1e-12).sum()) / (1 + n_shifts))
    return ShiftTest(r, p, null)


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


def _binned(signals: pd.DataFrame, name: str, movie: str, targets: Targets, bin_s: float) -> np.ndarray:
    sub = signals[signals["movie"] == movie]
    how = "max" if SIGNALS.get(name, ("", False))[1] else "mean"
    return bin_series(sub[name].to_numpy(), sub["time_s"].to_numpy(), targets.durations[movie], bin_s, how)


def signal_names(signals: pd.DataFrame) -> list[str]:
    """The signal columns of a :func:`compute_signals` table."""
    return [c for c in signals.columns if c not in ("movie", "frame", "time_s")]


def r_across_bins(signals: pd.DataFrame, targets: Targets, bin_sizes: Sequence[float] = (0.2, 0.5, 1, 2, 4, 8),
                  target: str = "observers", n_shifts: int = 500, seed: int = 0) -> pd.DataFrame:
    """For each signal and bin width: r with the group frequency (``target="observers"``) or the true
    boundaries (``"truth"``), its circular-shift p-value and null band. One tidy row per (signal, bin_s)."""
    movies = list(dict.fromkeys(signals["movie"]))
    rows = []
    for b in bin_sizes:
        ys = [targets.frequency(m, b) if target == "observers" else targets.truth_marks(m, b) for m in movies]
        for name in signal_names(signals):
            xs = [_binned(signals, name, m, targets, b) for m in movies]
            t = shift_test(xs, ys, n_shifts=n_shifts, rng=seed)
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
                     n_shifts: int = 1000, seed: int = 0,
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
            t = shift_test([_binned(signals, n, m, targets, bin_s) for m in movies], ys, n_shifts, seed)
            rows[n].update(r_observers=t.r, p_observers=t.p, null95_observers=float(np.percentile(t.null, 95)))
    if targets.truth is not None:
        count = n_boundaries if n_boundaries is not None else {m: len(targets.truth.get(m, [])) for m in movies}
        k = count if callable(count) else count.__getitem__
        ys = [targets.truth_marks(m, bin_s) for m in movies]
        truth = [np.asarray(targets.truth.get(m, [])) for m in movies]
        for n in names:
            t = shift_test([_binned(signals, n, m, targets, bin_s) for m in movies], ys, n_shifts, seed)
            det = [detected_times(signals, n, m, k(m)) for m in movies]
            p, r, f1 = precision_recall_f1(det, truth, tolerance_s)
            rows[n].update(r_truth=t.r, p_truth=t.p, precision=p, recall=r, f1=f1)
        if targets.presses is not None:
            freq_fine = 0.2
            xs = [targets.frequency(m, bin_s) for m in movies]
            t = shift_test(xs, ys, n_shifts, seed)
            det = []
            for m in movies:
                f = smooth(targets.frequency(m, freq_fine), 1 / freq_fine, 0.5)
                det.append(peak_times(f, (np.arange(len(f)) + 0.5) * freq_fine, k(m)))
            p, r, f1 = precision_recall_f1(det, truth, tolerance_s)
            rows["observers"] = {"signal": "observers", "kind": "human", "r_truth": t.r, "p_truth": t.p,
                                 "precision": p, "recall": r, "f1": f1}
    return pd.DataFrame(list(rows.values()))


# --------------------------------------------------------------------------- chapter helpers


def pca_2d(z: np.ndarray) -> np.ndarray:
    """Project latents onto their first two principal components."""
    z = np.asarray(z, dtype=float)
    zc = z - z.mean(0)
    _, _, vt = np.linalg.svd(zc[:: max(1, len(zc) // 20000)], full_matrices=False)
    return zc @ vt[:2].T


def segment_labels(times: np.ndarray, boundaries: np.ndarray) -> np.ndarray:
    """Event number of each time: how many boundaries precede it."""
    return np.searchsorted(np.sort(np.asarray(boundaries, float)), np.asarray(times, float), side="right")


def boundary_counts(movies: Sequence[str], truth: dict[str, np.ndarray] | None,
                    presses: pd.DataFrame | None) -> dict[str, int]:
    """How many boundaries a detector places per movie: the true count, else the mean observer's count."""
    out = {}
    for m in movies:
        if truth is not None and m in truth:
            out[m] = len(truth[m])
        elif presses is not None:
            per = presses[presses["movie"] == m].groupby("subject").size()
            out[m] = int(round(per.mean())) if len(per) else 0
        else:
            raise ValueError(f"movie {m!r}: neither true boundaries nor presses to set a boundary count")
    return out


def save_results(table: pd.DataFrame, out_dir, name: str, meta: dict | None = None) -> tuple:
    """Write ``table`` as ``out_dir/name.csv`` and ``out_dir/name.json`` (``{"meta", "results"}``), atomically."""

    out = resolve(out_dir)
    csv, js = out / f"{name}.csv", out / f"{name}.json"
    with atomic_path(csv, ".csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    records = json.loads(table.to_json(orient="records", double_precision=6))
    with atomic_path(js, ".json") as tmp:
        tmp.write_text(json.dumps({"meta": meta or {}, "results": records}, indent=2))
    return csv, js


@dataclass
class BoundaryData:
    """Everything chapter 3 compares: frames, latents, reconstructions, presses, true boundaries."""
    fs: object                      # vaelib.video.FrameSet
    z: np.ndarray
    reconstructions: np.ndarray
    presses: pd.DataFrame
    truth: dict[str, np.ndarray] | None
    durations: dict[str, float]
    fps: dict[str, float]

    def targets(self) -> Targets:
        return Targets(self.durations, self.presses, self.truth)


def load_boundary_data(data_dir, annotations: str = "", boundaries_csv: str = "",
                       truth_level: str = "coarse") -> BoundaryData:
    """Read ``data_dir/frames``, ``data_dir/mmd_vae/{embeddings,reconstructions}.npy``, the presses and the truth.

    ``annotations``: a Zacks-format file (default ``data_dir/synthetic/observers.dat``), relabelled to
    the movies (every movie must be covered). ``boundaries_csv``: true boundaries (default
    ``data_dir/synthetic/boundaries.csv`` when it exists and covers the movies, else none, with a
    message; ``"none"``: no truth), restricted to ``truth_level`` when it has levels.
    """
    data = resolve(data_dir)
    fs = load_frames(data / "frames")
    z = np.load(data / "mmd_vae" / "embeddings.npy", mmap_mode="r")
    recon = np.load(data / "mmd_vae" / "reconstructions.npy", mmap_mode="r")
    if len(z) != len(fs) or recon.shape != fs.frames.shape:
        raise ValueError(f"{data / 'mmd_vae'}: embeddings {z.shape} / reconstructions {recon.shape} do not match "
                         f"the {len(fs)} frames {fs.frames.shape} in {fs.root}; rerun chapter 2 on these frames")
    presses = for_movies(read_presses(resolve(annotations) if annotations else
                                      data / "synthetic" / "observers.dat"), fs.movies)
    truth_path = (None if boundaries_csv == "none" else resolve(boundaries_csv) if boundaries_csv
                  else data / "synthetic" / "boundaries.csv")
    truth = None
    if truth_path is not None and (boundaries_csv or truth_path.exists()):
        tb = read_boundary_csv(truth_path)
        if truth_level and "level" in tb:
            tb = tb[tb["level"] == truth_level]
        try:
            tb = for_movies(tb, fs.movies)
            truth = {m: tb[tb["movie"] == m]["time_s"].to_numpy() for m in fs.movies}
        except ValueError as e:
            if boundaries_csv:       # asked for explicitly: it must fit
                raise
            print(f"the default ground truth {truth_path} does not fit these movies ({e}); going on without it")
    return BoundaryData(fs, z, recon, presses, truth, fs.durations(), {m: fs.fps(m) for m in fs.movies})


# --------------------------------------------------------------------------- figures


def plot_trajectory(xy: np.ndarray, times: np.ndarray, labels: np.ndarray, boundaries: np.ndarray,
                    title: str = ""):
    """The 2-D latent trajectory of one movie, coloured by event, true boundaries marked with crosses."""
    import matplotlib.pyplot as plt

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


def plot_signals(signals: pd.DataFrame, movie: str, frequency: tuple[np.ndarray, np.ndarray] | None,
                 boundaries: np.ndarray | None = None):
    """Each signal of one movie over time (standardized), above the group boundary frequency."""
    import matplotlib.pyplot as plt

    sub = signals[signals["movie"] == movie]
    names = signal_names(signals)
    k = len(names) + (frequency is not None)
    fig, axes = plt.subplots(k, 1, figsize=(10, 1.0 * k + 0.6), sharex=True, squeeze=False)
    axes = axes[:, 0]
    t = sub["time_s"].to_numpy()
    for a, n in zip(axes, names):
        v = sub[n].to_numpy()
        if SIGNALS.get(n, ("", False))[1]:
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


def plot_r_across_bins(across: pd.DataFrame, truth_across: pd.DataFrame | None = None):
    """r of each signal with the group frequency across bin widths, with the circular-shift null's 95% band."""
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(across["signal"]))
    ncols = min(3, len(names))
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.6 * nrows), sharex=True, sharey=True,
                             squeeze=False)
    for a, n in zip(axes.flat, names):
        d = across[across["signal"] == n].sort_values("bin_s")
        a.fill_between(d["bin_s"], d["null_lo"], d["null_hi"], color="0.8", lw=0, label="null 95%, observers")
        a.plot(d["bin_s"], d["r"], "o-", color="tab:blue", ms=3, label="vs observers")
        if truth_across is not None:
            e = truth_across[truth_across["signal"] == n].sort_values("bin_s")
            a.fill_between(e["bin_s"], e["null_lo"], e["null_hi"], color="tab:red", alpha=0.12, lw=0,
                           label="null 95%, truth")
            a.plot(e["bin_s"], e["r"], "s--", color="tab:red", ms=3, label="vs truth")
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


def plot_group_frequency(presses: pd.DataFrame, durations: dict[str, float], bin_s: float = 1.0):
    """The group boundary frequency of each movie over time, one panel per movie, one line per condition."""
    import matplotlib.pyplot as plt


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


def plot_agreement(agreement: pd.DataFrame, title: str = ""):
    """Histogram of observers' leave-one-out agreement r, per condition."""
    import matplotlib.pyplot as plt

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
