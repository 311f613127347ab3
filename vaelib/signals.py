"""Event-boundary signals: one number per stored frame, from the latents or from the pixels.

Latent signals: speed ``||z_t - z_{t-1}||``, the cross-fitted error of a linear predictor of ``z_t``
from its recent past, change points of ``z`` (``ruptures``), and the signals of the event models in
:mod:`vaelib.events`. Pixel baselines: frame difference, PySceneDetect's content score, optical-flow
magnitude. :func:`compute_signals` makes the table of all of them, one row per frame; some latent signals
are computed again on codes that know time: filtered with a memory (suffix ``_memory``) and on VoxEn's
latent of 32-frame clips (suffix ``_voxen``, :func:`vaelib.boundary_data.voxen_trajectory`).
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter1d
from tqdm.auto import tqdm

from . import events as ev
from .stats import principal_axes

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
_LATENT: dict[str, bool] = {"latent_speed": False, "prediction_error": False, "change_points": True,
                            "sem_surprise": False, "sem_boundaries": True,
                            "bocpd_surprise": False, "bocpd_boundaries": True}
# the latent signals that are also computed on the codes filtered with a memory (events.memory_filter)
TEMPORAL_SUFFIX = "_memory"
TEMPORAL = ("latent_speed", "prediction_error", "sem_surprise", "sem_boundaries")
# the same signals on VoxEn's latent trajectory (one vector per 16 frames, seen in 32-frame clips)
VOXEN_SUFFIX = "_voxen"
SIGNALS: dict[str, tuple[str, bool]] = {
    **{n: ("latent", d) for n, d in _LATENT.items()},
    **{n + TEMPORAL_SUFFIX: ("latent", _LATENT[n]) for n in TEMPORAL},
    **{n + VOXEN_SUFFIX: ("latent", _LATENT[n]) for n in TEMPORAL},
    "frame_difference": ("pixel", False),
    "content_score": ("pixel", False),
    "flow_magnitude": ("pixel", False),
}
# per-frame event labels of the event models: columns of the table that are not signals
LABELS = ("sem_event", "bocpd_event")


def _latent_columns(z_by_movie: list[np.ndarray], fps: list[float], smooth_s: float, n_lags: int, lag: int,
                    n_folds: int, n_bkps: list[int | None], cpd_rate_hz: float, event_rate_hz: float | list[float],
                    which: Sequence[str], sem: dict | None, bocpd: dict | None) -> dict[str, list[np.ndarray]]:
    """The latent signals in ``which`` (and the event labels with their models), per movie (``event_rate_hz``:
    one rate for all movies, or one per movie)."""
    out: dict[str, list[np.ndarray]] = {}
    rates = list(event_rate_hz) if isinstance(event_rate_hz, (list, tuple)) else [event_rate_hz] * len(z_by_movie)
    if "prediction_error" in which:
        errs = prediction_error(z_by_movie, n_lags=n_lags, lag=lag, n_folds=n_folds)
        out["prediction_error"] = [smooth(e, f, smooth_s) for e, f in zip(errs, fps)]
    for z, f, k, rate in zip(z_by_movie, fps, n_bkps, rates):
        if "latent_speed" in which:
            out.setdefault("latent_speed", []).append(smooth(latent_speed(z), f, smooth_s))
        if "change_points" in which:
            marks = np.zeros(len(z))
            marks[change_points(z, f, n_bkps=k, rate_hz=cpd_rate_hz)] = 1.0
            out.setdefault("change_points", []).append(marks)
        for model, settings in (("sem", sem), ("bocpd", bocpd)):
            if f"{model}_surprise" in which or f"{model}_boundaries" in which:
                seg = ev.segment_frames(z, f, model, rate_hz=rate, **(settings or {}))
                out.setdefault(f"{model}_surprise", []).append(smooth(seg.surprise, f, smooth_s))
                out.setdefault(f"{model}_boundaries", []).append(seg.marks())
                out.setdefault(f"{model}_event", []).append(seg.labels.astype(float))
    return out


def compute_signals(index: pd.DataFrame, z: np.ndarray, frames: np.ndarray | None, fps: dict[str, float],
                    smooth_s: float = 0.25, n_lags: int = 3, lag_s: float = 0.2, n_folds: int = 5,
                    n_bkps: dict[str, int] | None = None, cpd_rate_hz: float = 4.0,
                    event_rate_hz: float = 10.0, temporal: bool = True, memory_s: float | None = 1.0,
                    sem: dict | None = None, bocpd: dict | None = None, voxen: np.ndarray | None = None,
                    voxen_step_frames: int | None = None, progress: bool = True) -> pd.DataFrame:
    """Every boundary signal, one row per frame: ``movie, frame, time_s`` and one column per signal.

    ``index`` is the frame index (movie, frame, time_s), ``z`` the latents (one row per index row),
    ``frames`` the uint8 frames (pixel baselines are skipped when None), ``fps`` the stored frame
    rate per movie. Latent speed, prediction error and the event models' surprise are smoothed with
    ``smooth_s`` seconds; change points and event-model boundaries are 0/1 markers (``n_bkps[movie]``
    change points when given, else a penalty). The event models (:mod:`vaelib.events`, settings
    ``sem`` and ``bocpd``) run at ``event_rate_hz``; their per-frame labels are the columns in
    ``LABELS``. With ``temporal``, the signals in ``TEMPORAL`` are computed again on codes with a
    memory of ``memory_s`` seconds (None: fitted per movie; :func:`vaelib.events.memory_filter`),
    suffix ``_memory``. With ``voxen`` (another trajectory, one row per index row:
    :func:`vaelib.boundary_data.voxen_trajectory`), the signals in ``TEMPORAL`` are computed on it too,
    suffix ``_voxen``; with ``voxen_step_frames`` (the trajectory's time step, 16 for VoxEn) its event models
    see one sample per step (at most ``event_rate_hz``): between steps an interpolated trajectory holds no
    information, and sampled faster the event models would see a kink at every step.
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
    if voxen is not None:
        voxen = np.asarray(voxen, dtype=float)
        if voxen.ndim != 2 or len(voxen) != len(index):
            raise ValueError(f"the VoxEn trajectory has shape {voxen.shape} ({len(voxen)} rows) but the frame index "
                             f"has {len(index)} rows: make it from the same frame store (voxen_trajectory)")
        if not np.isfinite(voxen).all():
            raise ValueError("the VoxEn trajectory contains NaN or infinite values")
        if voxen_step_frames is not None and voxen_step_frames < 1:
            raise ValueError(f"voxen_step_frames must be a positive number of frames, got {voxen_step_frames}")
    movies = list(dict.fromkeys(index["movie"]))
    rows = {m: np.flatnonzero(index["movie"].to_numpy() == m) for m in movies}
    for m in movies:
        if len(rows[m]) < 2:
            raise ValueError(f"movie {m!r} has {len(rows[m])} frame(s); every movie needs at least two")
        if m not in fps:
            raise ValueError(f"no frame rate given for movie {m!r}")
    out = index[["movie", "frame", "time_s"]].copy().reset_index(drop=True)
    common_lag = min(max(1, int(round(lag_s * fps[m]))) for m in movies)
    need = n_lags * common_lag + n_folds
    for m in movies:
        if len(rows[m]) < need:
            raise ValueError(f"movie {m!r} has {len(rows[m])} frames; the prediction error needs at least {need} "
                             f"({n_lags} lags of {common_lag} frames and {n_folds} folds): lower n_lags, lag_s or "
                             "n_folds, or leave the movie out")
    f_list = [fps[m] for m in movies]
    k_list = [None if n_bkps is None else n_bkps.get(m) for m in movies]
    settings = dict(smooth_s=smooth_s, n_lags=n_lags, lag=common_lag, n_folds=n_folds, n_bkps=k_list,
                    cpd_rate_hz=cpd_rate_hz, event_rate_hz=event_rate_hz, sem=sem, bocpd=bocpd)
    z_movies = [np.asarray(z[rows[m]], dtype=float) for m in movies]
    latent = [n for n, (kind, _) in SIGNALS.items() if kind == "latent" and not n.endswith(TEMPORAL_SUFFIX)]
    parts = _latent_columns(z_movies, f_list, which=latent, **settings)
    if temporal:
        filtered = [ev.memory_filter(zm, f, memory_s) for zm, f in zip(z_movies, f_list)]
        parts.update({n + TEMPORAL_SUFFIX: v for n, v in
                      _latent_columns(filtered, f_list, which=TEMPORAL, **settings).items() if n in TEMPORAL})
    if voxen is not None:
        v_movies = [voxen[rows[m]] for m in movies]
        if voxen_step_frames is not None:
            settings["event_rate_hz"] = [min(event_rate_hz, f / voxen_step_frames) for f in f_list]
        parts.update({n + VOXEN_SUFFIX: v for n, v in
                      _latent_columns(v_movies, f_list, which=TEMPORAL, **settings).items() if n in TEMPORAL})
    cols = {name: np.concatenate(v) for name, v in parts.items()}
    order = np.concatenate([rows[m] for m in movies])
    for name in [n for n in SIGNALS if n in cols] + [n for n in LABELS if n in cols]:
        v = np.empty(len(index))
        v[order] = cols[name]
        out[name] = v
    if frames is not None:
        for name in ("frame_difference", "content_score", "flow_magnitude"):
            out[name] = 0.0
        for m in tqdm(movies, desc="pixel signals", disable=not progress):
            r, f = rows[m], fps[m]
            fr = frames[r[0]: r[-1] + 1] if (np.diff(r) == 1).all() else frames[r]
            out.loc[r, "frame_difference"] = frame_difference(fr)
            out.loc[r, "content_score"] = content_score(fr, f)
            out.loc[r, "flow_magnitude"] = flow_magnitude(fr)
    return out[["movie", "frame", "time_s", *[n for n in SIGNALS if n in out], *[n for n in LABELS if n in out]]]


def temporal_pairs(signals: pd.DataFrame) -> list[tuple[str, str]]:
    """``(name_memory, name)`` and ``(name_voxen, name)`` for every signal of ``TEMPORAL`` present in a signal
    table with its twin on the codes with a memory or on VoxEn's latent: the pairs that ask whether temporal
    context helps."""
    cols = set(signals.columns)
    return [(n + suffix, n) for suffix in (TEMPORAL_SUFFIX, VOXEN_SUFFIX) for n in TEMPORAL
            if n in cols and n + suffix in cols]


def pca_2d(z: np.ndarray) -> np.ndarray:
    """Project latents onto their first two principal components (fitted on at most ~40,000 of them)."""
    z = np.asarray(z, dtype=float)
    mean, axes, _ = principal_axes(z, 2, fit_every=max(1, len(z) // 20000))
    return (z - mean) @ axes.T


def segment_labels(times: np.ndarray, boundaries: np.ndarray) -> np.ndarray:
    """Event number of each time: how many boundaries precede it."""
    return np.searchsorted(np.sort(np.asarray(boundaries, float)), np.asarray(times, float), side="right")


def signal_names(signals: pd.DataFrame) -> list[str]:
    """The signal columns of a :func:`compute_signals` table (not ``movie, frame, time_s`` nor event labels)."""
    return [c for c in signals.columns if c not in ("movie", "frame", "time_s", *LABELS)]
