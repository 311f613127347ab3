"""Chapter 3's inputs and outputs: frames, latents, presses and true boundaries in; result tables out.

Besides the MMD-VAE's per-frame codes, :func:`voxen_trajectory` gives a trajectory that knows time:
VoxEn's latent of 32-frame clips, one vector per latent time step, brought back to the frames.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .annotations import at_level, for_movies, read_boundary_csv, read_presses
from .boundaries import METRICS, Targets
from .boundary_report import preregistered_summary, seed_spread
from .comparison import CLAIMS, DIRECTIONS
from .data import clips_to_tensor
from .framestore import load_frames
from .mmdvae import decode
from .paths import PROJECT_ROOT, atomic_path, resolve, write_json
from .provenance import is_synthetic, read_record
from .signals import SIGNALS, VOXEN_SUFFIX
from .stats import principal_axes
from .voxen import VoxEn
from .zoo import load_mmdvae, load_pretrained

EVENTS_VOXEN_DIR = PROJECT_ROOT / "weights" / "voxen_events"  # chapter 3's VoxEn (see pretrained_voxen)


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


def save_results(table: pd.DataFrame, out_dir: str | os.PathLike, name: str,
                 meta: dict | None = None) -> tuple[Path, Path]:
    """Write ``table`` as ``out_dir/name.csv`` and ``out_dir/name.json`` (``{"meta", "results"}``), atomically."""
    out = resolve(out_dir)
    csv, js = out / f"{name}.csv", out / f"{name}.json"
    with atomic_path(csv, ".csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    records = json.loads(table.to_json(orient="records", double_precision=6))
    write_json(js, {"meta": meta or {}, "results": records})
    return csv, js


@dataclass
class BoundaryData:
    """Everything chapter 3 compares: frames, latents, presses, true boundaries; ``reconstruct`` decodes latents."""
    fs: object                      # vaelib.framestore.FrameSet
    z: np.ndarray
    model_dir: Path                 # chapter 2's run folder: the MMD-VAE that wrote ``z``
    presses: pd.DataFrame
    truth: dict[str, np.ndarray] | None
    fine: dict[str, np.ndarray] | None
    durations: dict[str, float]
    fps: dict[str, float]

    def targets(self) -> Targets:
        """The boundary targets (observers, truth) that the comparisons of ``vaelib.boundaries`` score against."""
        return Targets(self.durations, self.presses, self.truth, self.fine)

    def reconstruct(self, rows: np.ndarray) -> np.ndarray:
        """Reconstructions (uint8 frames) of the frames ``rows``: their codes decoded by chapter 2's model."""
        model = load_mmdvae(self.model_dir)
        if model.config.z_dim != self.z.shape[1]:
            raise ValueError(f"the model in {self.model_dir} has z_dim {model.config.z_dim}, the latents "
                             f"{self.z.shape[1]} columns; rerun chapter 2")
        return decode(model, np.array(self.z[rows]))  # a writable copy of the memory-mapped rows


def load_boundary_data(data_dir: str | os.PathLike, annotations: str = "", boundaries_csv: str = "",
                       truth_level: str = "coarse") -> BoundaryData:
    """Read ``data_dir/frames``, ``data_dir/mmd_vae/embeddings.npy``, the presses and the truth.

    ``annotations``: a Zacks-format file (default ``data_dir/synthetic/observers.dat``), relabelled to
    the movies (every movie must be covered). ``boundaries_csv``: true boundaries (default
    ``data_dir/synthetic/boundaries.csv`` when it exists and covers the movies, else none, with a
    message; ``"none"``: no truth), restricted to ``truth_level`` when it has levels; its ``fine``
    level, when it has one and the truth is another level, becomes ``fine`` (for F1 against it).
    """
    data = resolve(data_dir)
    fs = load_frames(data / "frames")
    z = np.load(data / "mmd_vae" / "embeddings.npy", mmap_mode="r")
    if len(z) != len(fs):
        raise ValueError(f"{data / 'mmd_vae'}: embeddings {z.shape} do not match the {len(fs)} frames in "
                         f"{fs.root}; rerun chapter 2 on these frames")
    presses = for_movies(read_presses(resolve(annotations) if annotations else
                                      data / "synthetic" / "observers.dat", fs.durations()), fs.movies)
    truth_path = (None if boundaries_csv == "none" else resolve(boundaries_csv) if boundaries_csv
                  else data / "synthetic" / "boundaries.csv")
    truth = fine = None
    if truth_path is not None and (boundaries_csv or truth_path.exists()):
        every = read_boundary_csv(truth_path, fs.durations())
        tb = at_level(every, truth_level)
        try:
            tb = for_movies(tb, fs.movies)
            truth = {m: tb[tb["movie"] == m]["time_s"].to_numpy() for m in fs.movies}
            if "level" in every and truth_level and truth_level != "fine" and (every["level"] == "fine").any():
                fb = for_movies(every[every["level"] == "fine"], fs.movies)
                fine = {m: fb[fb["movie"] == m]["time_s"].to_numpy() for m in fs.movies}
        except ValueError as e:
            if boundaries_csv:       # asked for explicitly: it must fit
                raise
            print(f"the default ground truth {truth_path} does not fit these movies ({e}); going on without it")
    return BoundaryData(fs, z, data / "mmd_vae" / "run", presses, truth, fine, fs.durations(),
                        {m: fs.fps(m) for m in fs.movies})


def book_synthetic(data_dir: str | os.PathLike, annotations: str = "") -> bool:
    """Whether chapter 3's data are the book's synthetic movies with their simulated observers, so that the
    committed synthetic benchmark may be quoted beside them. The one place that decides it.

    Chapter 1's record (:func:`vaelib.provenance.is_synthetic`) says whether the frames are the synthetic movies;
    the presses must also be their simulated observers (``annotations`` empty or ``data_dir/synthetic/
    observers.dat``). Without a record (a frame store made by other means), the presses alone decide: the
    simulated observers' file, present."""
    data = resolve(data_dir)
    default = data / "synthetic" / "observers.dat"
    presses = resolve(annotations) if annotations else default
    simulated_presses = presses.resolve() == default.resolve()
    if read_record(data) is not None:
        return is_synthetic(data) and simulated_presses
    return simulated_presses and presses.exists()


def read_benchmark_results(spread_path: str | os.PathLike,
                           prereg_paths: Sequence[str | os.PathLike] = ()) -> tuple[dict | None, list[dict]]:
    """What chapter 3 quotes from the boundary benchmark's committed results: the training-run spread
    (:func:`vaelib.boundary_report.seed_spread` of ``spread_path``; ``""``: none) and the pre-registered verdicts
    (:func:`vaelib.boundary_report.preregistered_summary` of each of ``prereg_paths`` that holds some). A file that is
    not there is said so and left out; one that is not JSON is a ValueError naming it."""
    def read(name: str | os.PathLike) -> dict | None:
        path = resolve(name)
        if not path.exists():
            print(f"{path} not found: not quoted (run benchmarks/boundaries.py, or fix the path)")
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not JSON ({e}): rerun benchmarks/boundaries.py or fix the path") from e

    if isinstance(prereg_paths, (str, os.PathLike)):     # one path, not its characters
        prereg_paths = [prereg_paths]
    results = read(spread_path) if spread_path else None
    prereg = [preregistered_summary(r) for r in map(read, prereg_paths) if r is not None]
    return (seed_spread(results) if results is not None else None), [p for p in prereg if p is not None]


def pretrained_voxen(lmbda: float, weights_dir: str | os.PathLike | None = None) -> VoxEn:
    """The committed VoxEn model of rate-distortion weight ``lmbda`` for :func:`voxen_trajectory`, from
    ``weights_dir`` (default ``weights/voxen_events``: the models chapter 3's pre-registered VoxEn test was
    declared on, frozen there so that training chapter 4's codecs further does not change chapter 3's
    signals); a lambda that is not there is an error listing the ones that are."""
    models = load_pretrained(weights_dir or EVENTS_VOXEN_DIR)
    for k, m in models.items():
        if abs(k - float(lmbda)) <= 1e-9 * max(1.0, abs(k)):
            return m
    raise ValueError(f"no VoxEn reference model with lambda {lmbda}: there are {sorted(models)}")


def _voxen_steps(model: VoxEn, frames: np.ndarray, batch: int) -> np.ndarray:
    """One movie's VoxEn latent y, spatially pooled per channel: ``(n_steps, channels)``, step k covering frames
    ``[k * step, (k + 1) * step)`` (the last clip padded with the last frame; steps of padding only dropped)."""
    c = model.config
    step = c.total_stride[0]
    n = len(frames)
    pad = -n % c.clip_len
    idx = np.concatenate([np.arange(n), np.full(pad, n - 1)]).reshape(-1, c.clip_len)
    out = []
    with torch.no_grad():
        for i in range(0, len(idx), batch):
            y = model.encode(clips_to_tensor(frames[idx[i:i + batch]]))       # (B, C, t, h, w)
            out.append(y.mean(dim=(3, 4)).permute(0, 2, 1).reshape(-1, y.shape[1]).numpy())
    return np.concatenate(out)[: -(-n // step)].astype(float)


def voxen_trajectory(frames: np.ndarray, index: pd.DataFrame, model: VoxEn, how: str = "interpolate",
                     n_dims: int | None = 16, batch: int = 8) -> np.ndarray:
    """A per-frame trajectory from VoxEn's latent: one row per row of the frame ``index``, like the MMD-VAE codes.

    Each movie's frames (they must be ``model.config.image_size`` square) are cut into clips of ``clip_len``
    (32) frames; VoxEn's analysis transform gives the latent y (the one its hyperprior codes) of each clip,
    ``total_stride[0]`` (16) frames per latent time step; y is averaged over space per channel, one vector
    per step, less the mean of its position in the clip over all clips (else a static scene would move from
    step to step). So the trajectory's **time resolution is one latent step, 16 frames** (1.6 s at 10 fps,
    0.53 s at 30): each vector summarizes 16 frames it has seen together with the 16 around it in its clip.
    ``how`` brings the steps back to frames: ``interpolate`` (linear between step centres, held before the
    first and after the last) or ``hold`` (each frame takes its step's vector). With ``n_dims`` the vectors
    are projected on their first ``n_dims`` principal components over all steps of all movies (most of the
    wide latent's channels carry nothing at low rates; the event models then see as many dimensions as the
    MMD-VAE codes); None keeps every channel. Raises ValueError when frames and index differ in length or
    the frames are not the size VoxEn was trained on.
    """
    if len(frames) != len(index):
        raise ValueError(f"frames have {len(frames)} rows but the frame index has {len(index)}: "
                         "they must come from the same frame store")
    c = model.config
    if frames.ndim != 4 or frames.shape[1:] != (c.image_size, c.image_size, 3):
        raise ValueError(f"VoxEn codes {c.image_size}x{c.image_size} RGB frames, got frames shaped "
                         f"{tuple(frames.shape[1:])}: preprocess with size={c.image_size} (chapter 1) "
                         "or leave VoxEn out")
    if how not in ("interpolate", "hold"):
        raise ValueError(f"how must be 'interpolate' or 'hold', got {how!r}")
    model.eval()
    step = c.total_stride[0]
    movie_col = index["movie"].to_numpy()
    movies = list(dict.fromkeys(movie_col))
    rows = {m: np.flatnonzero(movie_col == m) for m in movies}
    steps = {m: _voxen_steps(model, frames[rows[m]], batch) for m in movies}
    # the latent steps of one clip differ by a fixed offset whatever the content (each position in the clip has
    # its own code: a static scene moves ~3 units from step to step); removing each position's mean over all
    # clips keeps what changes with the content
    per_clip = c.clip_len // step
    every = np.concatenate(list(steps.values()))
    phase = np.concatenate([np.arange(len(v)) % per_clip for v in steps.values()])
    offset = np.stack([every[phase == k].mean(0) if (phase == k).any() else np.zeros(every.shape[1])
                       for k in range(per_clip)])
    steps = {m: v - offset[np.arange(len(v)) % per_clip] for m, v in steps.items()}
    if n_dims is not None:
        mean, axes, _ = principal_axes(np.concatenate(list(steps.values())), n_dims)
        steps = {m: (v - mean) @ axes.T for m, v in steps.items()}
    out = np.empty((len(index), next(iter(steps.values())).shape[1]))
    for m in movies:
        f = np.arange(len(rows[m]))
        v = steps[m]
        if how == "hold":
            out[rows[m]] = v[f // step]
        else:
            centres = np.arange(len(v)) * step + (step - 1) / 2
            out[rows[m]] = np.stack([np.interp(f, centres, v[:, j]) for j in range(v.shape[1])], axis=1)
    return out


PREREGISTRATION_KEYS = {"data": ("movies", "seconds", "data_seed", "stride", "n_observers"),
                        "train": ("seeds", "steps", "batch_size", "z_dim"),
                        "analysis": ("bin_s", "tolerance_s", "memory_s", "n_null", "n_boot")}


def read_preregistration(path: str | os.PathLike) -> dict:
    """A pre-registration of boundary hypotheses (``benchmarks/preregistered.json``), checked.

    It fixes the data draw (``data``), the MMD-VAE training seeds (``train``), the statistics
    (``analysis``; with ``voxen_lambda`` also the ``_voxen`` signals of that VoxEn reference model, which a
    hypothesis on a ``_voxen`` signal needs) and the ``hypotheses``: each an ``id``, a latent signal (``latent``, a
    ``SIGNALS`` name of kind ``latent``), a ``metric`` (``METRICS``), a ``direction`` (``DIRECTIONS``) and an
    ``alpha`` in (0, 1); with ``"rule": "lead"`` each names a ``claim`` (``CLAIMS``: the best of one kind leads the
    strongest of the other, :func:`vaelib.comparison.declared_lead`) instead of a latent signal and a direction.
    Raises ValueError naming the file and the field that is missing or wrong."""
    path = resolve(path)
    try:
        decl = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read the pre-registration ({e})") from e
    for section, keys in PREREGISTRATION_KEYS.items():
        missing = [k for k in keys if k not in decl.get(section, {})]
        if missing:
            raise ValueError(f"{path}: section {section!r} lacks {missing}")
    if len(decl["train"]["seeds"]) < 2:
        raise ValueError(f"{path}: give at least two training seeds (train.seeds): the verdict needs every seed")
    hyps = decl.get("hypotheses") or []
    if not hyps:
        raise ValueError(f"{path}: no hypotheses declared")
    for i, h in enumerate(hyps):
        where = f"{path}: hypothesis {h.get('id', i)!r}"
        lead = decl.get("rule") == "lead"
        missing = [k for k in ("id", *(("claim",) if lead else ("latent", "direction")), "metric", "alpha")
                   if k not in h]
        if missing:
            raise ValueError(f"{where} lacks {missing}")
        if h["metric"] not in METRICS:
            raise ValueError(f"{where}: metric {h['metric']!r} is not one of {METRICS}")
        if not 0 < float(h["alpha"]) < 1:
            raise ValueError(f"{where}: alpha {h['alpha']!r} must lie in (0, 1)")
        if lead:
            if h["claim"] not in CLAIMS:
                raise ValueError(f"{where}: claim {h['claim']!r} is not one of {CLAIMS}")
            continue
        if SIGNALS.get(h["latent"], ("",))[0] != "latent":
            raise ValueError(f"{where}: {h['latent']!r} is not a latent signal "
                             f"({[n for n, (k, _) in SIGNALS.items() if k == 'latent']})")
        if h["direction"] not in DIRECTIONS:
            raise ValueError(f"{where}: direction {h['direction']!r} is not one of {DIRECTIONS}")
        if h["latent"].endswith(VOXEN_SUFFIX) and decl["analysis"].get("voxen_lambda") is None:
            raise ValueError(f"{where}: {h['latent']!r} needs the VoxEn trajectory: declare analysis.voxen_lambda")
    if len({h["id"] for h in hyps}) != len(hyps):
        raise ValueError(f"{path}: hypothesis ids repeat")
    return decl
