"""Benchmark: chapter 3's boundary signals over several MMD-VAE training runs, on held-out synthetic data.

A bootstrap over events measures the data's noise, not the training run's (issue 15): two trainings
of the same model can rank the latent signals differently. So this benchmark

1. makes synthetic movies with other seeds and sizes than the book's default (``--movies`` x
   ``--seconds``, data seed ``--data-seed``), stored at ``fps / --stride`` frames per second;
2. trains the MMD-VAE (chapter 2's ``default`` preset) once per training seed in ``--seeds`` on the
   same frames, and embeds every frame;
3. computes every boundary signal per seed (:func:`vaelib.signals.compute_signals`: latent signals,
   the event models of :mod:`vaelib.events`, the ``_memory`` signals on codes that know time, with
   ``--voxen`` the ``_voxen`` signals on VoxEn's latent; the pixel baselines once, they do not depend on
   the seed), and each signal's r with the observers,
   r and F1 against the coarse truth and F1 against the fine truth (:func:`vaelib.boundaries.comparison_table`),
   with bootstrap intervals over events;
   The best latent and the best pixel signal are picked per seed among many: either side counts as
   ahead only when a studentized max-T test pays for the choice of the leading side's best, the other side's
   strongest as the rival (two-sided at 0.05, a simultaneous interval that excludes 0 exactly then:
   :func:`vaelib.stats.versus`); besides, a latent signal declared in advance (``--declared``,
   SEM's surprise) is tested against the best pixel baseline per seed, that choice in the null, by the
   function the pre-registered runs use (:func:`vaelib.comparison.declared_vs_best_pixel`);
4. the event models' speed: seconds for 10,000 steps of 8 and 16 dimensions;
5. per seed, a paired test of the best latent signal against the best pixel baseline for each
   metric (:func:`vaelib.comparison.best_latent_vs_pixel`), and over seeds each figure's mean, min and max.

The claim "latents beat pixels" is made only when it holds, with p < 0.05, for every seed.

With ``--preregistered benchmarks/preregistered.json`` the data draw, training seeds and statistics come
from that declaration (committed before the draw was first made), and each declared hypothesis (a latent
signal against the best pixel baseline of the draw, that choice inside a max-T null:
:func:`vaelib.comparison.declared_vs_best_pixel`) gets a test per seed and a verdict: ``holds`` in every
seed, ``opposite`` or ``no verdict`` (:func:`vaelib.comparison.preregistered_verdict`). A declaration with
``"rule": "lead"`` (``benchmarks/preregistered_lead.json``) declares leads instead: the best of one kind against
the strongest of the other (:func:`vaelib.comparison.declared_lead`), ``holds`` when its simultaneous lower bound
is above 0 in every seed (:func:`vaelib.comparison.lead_verdict`). Writes
``benchmarks/results/boundaries_prereg.json`` (for ``preregistered_NAME.json``: ``boundaries_prereg_NAME.json``).
Slow steps are cached in ``--work``, in a folder named by a digest of the frames (rerun to redo only
the statistics; frames made by other preprocessing code get their own cache). Writes
``benchmarks/results/boundaries.json`` and prints a summary. With one thread the defaults took
6 minutes from scratch on 2026-11-29 (352 s on a shared 2-core machine under load; the three trainings
62-132 s each), most of it training; a rerun on the cache, 12-31 s.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _common import write_results

from vaelib import boundaries as bd
from vaelib import boundary_report, comparison
from vaelib import signals as sg
from vaelib.annotations import for_movies, read_boundary_csv, read_presses
from vaelib.boundary_data import boundary_counts, pretrained_voxen, read_preregistration, voxen_trajectory
from vaelib.data import split_frames
from vaelib.losses import MMDLossConfig
from vaelib.metrics import psnr
from vaelib.mmdvae import MMDVAEConfig, embed, reconstruct
from vaelib.mmdvae_train import train_mmdvae
from vaelib.paths import PROJECT_ROOT, atomic_path, save_npy, write_json
from vaelib.preprocess import preprocess
from vaelib.synthetic import make_synthetic_dataset
from vaelib.train import TrainConfig, cpu_model

METRICS = bd.METRICS


def frames_digest(path: Path) -> str:
    """The first 12 hex digits of the SHA-1 of a frame store's frames: cached results belong to these frames."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()[:12]


def train_and_embed(fs, seed: int, steps: int, batch_size: int, z_dim: int, work: Path) -> tuple[np.ndarray, dict]:
    """Codes of every frame from an MMD-VAE trained with ``seed`` (cached in ``work``), and its training record
    (``val_psnr``: held-out PSNR, ``steps``, ``seconds``)."""
    cache, info = work / f"embeddings_seed{seed}.npy", work / f"train_seed{seed}.json"
    if cache.exists() and info.exists():
        return np.load(cache), json.loads(info.read_text())
    split = split_frames(fs.index, how="time", val_fraction=0.2)
    cfg = MMDVAEConfig.from_preset("default", z_dim=z_dim, image_size=fs.size)
    tc = TrainConfig(steps=steps, batch_size=batch_size, lr=1e-3, seed=seed, device="cpu",
                     val_every=10**9, checkpoint_every=10**9, log_every=50)
    model, res = train_mmdvae(fs, split, work / f"run_seed{seed}", cfg, MMDLossConfig(), tc, progress=False)
    z = embed(model, fs.frames, progress=False)
    val = fs.frames[split.val[np.linspace(0, len(split.val) - 1, 256).astype(int)]]
    val_psnr = float(psnr(val, reconstruct(model, val, progress=False)))
    record = {"val_psnr": val_psnr, "steps": res.step, "seconds": round(res.seconds, 1)}
    save_npy(cache, z)                  # both atomically: a run cut short leaves no cache that looks complete
    write_json(info, record, indent=None)
    print(f"  seed {seed}: {res.step} steps in {res.seconds:.0f} s, held-out PSNR {val_psnr:.2f} dB", flush=True)
    return z, record


# --------------------------------------------------------------------------- one seed's statistics


def seed_statistics(signals: pd.DataFrame, targets: bd.Targets, args: argparse.Namespace) -> dict:
    """The comparison table (observers, coarse and fine truth; bootstrap intervals over events), the paired
    tests of the best latent signal against the best pixel one and of the declared latent signal against the
    best pixel one, each choice of a best signal inside a max-T null (:mod:`vaelib.comparison`)."""
    table = bd.comparison_table(signals, targets, bin_s=args.bin_s, tolerance_s=args.tolerance_s,
                                n_null=args.n_null, seed=0, n_boot=args.n_boot)
    versus = comparison.best_latent_vs_pixel(signals, targets, table, bin_s=args.bin_s, tolerance_s=args.tolerance_s,
                                             n_boot=args.n_boot, seed=0)
    paired = {r["metric"]: {k: r[k] for k in ("best_latent", "best_pixel", "diff", "lo", "hi", "p", "p_latent",
                                              "p_pixel", "lo_unadjusted", "hi_unadjusted", "verdict")}
              for r in versus.to_dict("records")}
    memory = comparison.paired_table(signals, targets, sg.temporal_pairs(signals), bin_s=args.bin_s,
                                     tolerance_s=args.tolerance_s, n_boot=args.n_boot, seed=0)
    # the declared latent signal (chosen before looking, so no selection among latents) against the best pixel
    # baseline, that choice in the max-T null: the pre-registered test (p: latent ahead, p_opposite: pixel ahead)
    declared = {}
    for m in paired:
        t = comparison.declared_vs_best_pixel(signals, targets, args.declared, m, "latent_beats_pixel",
                                              bin_s=args.bin_s, tolerance_s=args.tolerance_s, n_boot=args.n_boot,
                                              seed=0)
        declared[m] = {"latent": args.declared, "pixel": t["rival"],
                       **{k: float(t[k]) for k in ("diff", "p", "p_opposite", "lo", "hi")}}
    return {"table": table, "paired": paired, "temporal": memory, "declared": declared}


def event_model_speed(n: int = 10_000, dims: tuple[int, ...] = (8, 16)) -> dict:
    """Seconds each event model takes for ``n`` steps of a ``dims``-dimensional series (a random walk with
    planted switches): the fastest of three calls, after a short warm-up (the machine may be shared)."""
    from vaelib import events as ev

    rng = np.random.default_rng(0)
    out = {}
    for d in dims:
        z = np.cumsum(rng.standard_normal((n, d)), axis=0) * 0.1 + np.repeat(rng.standard_normal((n // 500, d)) * 3,
                                                                             500, axis=0)
        for name, fn in (("sem", ev.sem_segment), ("bocpd", ev.bocpd_segment)):
            fn(z[:200])
            best = np.inf
            for _ in range(3):
                t0 = time.perf_counter()
                fn(z)
                best = min(best, time.perf_counter() - t0)
            out[f"{name}_{n}x{d}_s"] = round(best, 3)
    return out


def apply_preregistration(args: argparse.Namespace, decl: dict) -> None:
    """Replace the data, training and statistics settings of ``args`` by the declaration's."""
    d, t, a = decl["data"], decl["train"], decl["analysis"]
    args.movies, args.seconds, args.data_seed, args.stride = d["movies"], d["seconds"], d["data_seed"], d["stride"]
    args.observers = d["n_observers"]
    args.seeds, args.steps, args.batch_size, args.z_dim = t["seeds"], t["steps"], t["batch_size"], t["z_dim"]
    args.bin_s, args.tolerance_s, args.memory_s = a["bin_s"], a["tolerance_s"], a["memory_s"]
    args.n_null, args.n_boot = a["n_null"], a["n_boot"]
    args.voxen = a.get("voxen_lambda")


def declaration_commit(path: Path) -> str | None:
    """The git commit that first added the declaration file (its time stamps the declaration), if known."""
    try:
        out = subprocess.run(["git", "log", "--diff-filter=A", "--format=%H %cI", "--", path.name],
                             cwd=path.parent, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.strip().splitlines()
    return lines[-1] if out.returncode == 0 and lines else None


def preregistered_tests(decl: dict, signals_by_seed: dict[str, pd.DataFrame], targets: bd.Targets,
                        args: argparse.Namespace) -> dict:
    """Each declared hypothesis tested in every training seed, and its verdict."""
    out, lines = [], []
    if decl.get("rule") == "lead":        # the best of one kind against the strongest of the other (studentized)
        for h in decl["hypotheses"]:
            per_seed = {s: comparison.declared_lead(sig, targets, h["claim"], h["metric"], float(h["alpha"]),
                                                    bin_s=args.bin_s, tolerance_s=args.tolerance_s, n_boot=args.n_boot,
                                                    seed=0)
                        for s, sig in signals_by_seed.items()}
            verdict = comparison.lead_verdict(list(per_seed.values()))
            out.append({**h, "per_seed": per_seed, "verdict": verdict})
            lines.append(f"{h['id']} ({h['claim']}, {h['metric']}, alpha {h['alpha']}): {verdict} (" + ", ".join(
                f"seed {s}: {t['best']} - {t['rival']} = {t['diff']:+.3f}, lower bound {t['bound']:+.3f}, "
                f"p {t['p']:.4f}" for s, t in per_seed.items()) + ")")
        return {"hypotheses": out, "text": "; ".join(lines)}
    for h in decl["hypotheses"]:
        per_seed = {s: comparison.declared_vs_best_pixel(sig, targets, h["latent"], h["metric"], h["direction"],
                                                         bin_s=args.bin_s, tolerance_s=args.tolerance_s,
                                                         n_boot=args.n_boot, seed=0)
                    for s, sig in signals_by_seed.items()}
        verdict = comparison.preregistered_verdict(list(per_seed.values()), float(h["alpha"]))
        out.append({**h, "per_seed": per_seed, "verdict": verdict})
        lines.append(f"{h['id']} ({h['latent']}, {h['metric']}, {h['direction']}, alpha {h['alpha']}): {verdict} "
                     "(" + ", ".join(f"seed {s}: {t['diff']:+.3f} vs {t['rival']}, p {t['p']:.3f}"
                                     for s, t in per_seed.items()) + ")")
    return {"hypotheses": out, "text": "; ".join(lines)}


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preregistered", type=Path, default=None,
                    help="a pre-registration (benchmarks/preregistered.json): its data, seeds and statistics replace "
                         "the flags below, and its hypotheses get verdicts; default output boundaries_prereg.json, for "
                         "preregistered_NAME.json boundaries_prereg_NAME.json")
    ap.add_argument("--work", type=Path, default=None,
                    help="cache of data, runs and signals (reused when present; default data/bench_boundaries, "
                         "with --preregistered data/bench_boundaries_<declaration file name>)")
    ap.add_argument("--movies", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=100.0)
    ap.add_argument("--data-seed", type=int, default=11, help="synthetic data seed (the book's default is 0)")
    ap.add_argument("--stride", type=int, default=3, help="store every stride-th frame (30 fps / 3 = 10 fps)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="MMD-VAE training seeds")
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--z-dim", type=int, default=16)
    ap.add_argument("--declared", default="sem_surprise",
                    help="the latent signal tested against the best pixel baseline without selection")
    ap.add_argument("--memory-s", type=float, default=1.0, help="time constant of the codes with a memory (s)")
    ap.add_argument("--voxen", type=float, default=None, metavar="LAMBDA",
                    help="also the latent signals on the VoxEn trajectory of this committed reference model (_voxen "
                         "rows; chapter 3 uses 0.0018); they do not depend on the MMD-VAE seed")
    ap.add_argument("--bin-s", type=float, default=1.0)
    ap.add_argument("--tolerance-s", type=float, default=1.0)
    ap.add_argument("--n-null", type=int, default=500, help="null draws per r")
    ap.add_argument("--n-boot", type=int, default=1000, help="bootstrap and permutation draws")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--observers", type=int, default=16, help="simulated observers")
    ap.add_argument("--out", type=Path, default=None,
                    help="results JSON (default benchmarks/results/boundaries.json, with --preregistered "
                         "boundaries_prereg[_NAME].json)")
    args = ap.parse_args()
    decl = None
    if args.preregistered is not None:
        try:
            decl = read_preregistration(args.preregistered)
        except ValueError as e:
            ap.error(str(e))
        apply_preregistration(args, decl)
        print(f"pre-registered ({args.preregistered}): {args.movies} x {args.seconds:g} s, data seed "
              f"{args.data_seed}, training seeds {args.seeds}; {len(decl['hypotheses'])} hypotheses", flush=True)
    # one cache and one results file per declaration: each has its own draw (preregistered_voxen.json ->
    # boundaries_prereg_voxen.json; before, every declaration's results went to boundaries_prereg.json by default)
    suffix = "" if decl is None else "_" + args.preregistered.stem.replace("preregistered", "prereg")
    args.work = args.work or PROJECT_ROOT / "data" / ("bench_boundaries" if decl is None else
                                                      f"bench_boundaries_{args.preregistered.stem}")
    args.out = args.out or PROJECT_ROOT / "benchmarks" / "results" / f"boundaries{suffix}.json"
    if len(args.seeds) < 2:
        ap.error("give at least two training seeds (--seeds): the point is the spread over them")
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import cv2
    cv2.setNumThreads(args.threads)
    t_start = time.perf_counter()
    cached_before = set(args.work.glob("cache-*/embeddings_seed*.npy"))
    work = args.work
    work.mkdir(parents=True, exist_ok=True)

    ds = make_synthetic_dataset(work / "synthetic", n_movies=args.movies, seconds=args.seconds,
                                seed=args.data_seed, n_observers=args.observers, progress=False)
    fs = preprocess(ds.videos, work / "frames", stride=args.stride, progress=False)
    cache = work / f"cache-{frames_digest(fs.root / 'frames.npy')}"   # runs, codes, pixel signals of these frames
    cache.mkdir(exist_ok=True)
    presses = for_movies(read_presses(ds.root / "observers.dat"), fs.movies)
    tb = for_movies(read_boundary_csv(ds.boundaries_csv), fs.movies)
    truth = {lvl: {m: tb[(tb.movie == m) & (tb.level == lvl)].time_s.to_numpy() for m in fs.movies}
             for lvl in ("coarse", "fine")}
    durations, fps = fs.durations(), {m: fs.fps(m) for m in fs.movies}
    targets = bd.Targets(durations, presses, truth["coarse"], truth["fine"])
    count = boundary_counts(fs.movies, truth["coarse"], presses)
    n_coarse, n_fine = (sum(map(len, truth[lvl].values())) for lvl in ("coarse", "fine"))
    print(f"{len(fs)} frames, {len(fs.movies)} movies at {fps[fs.movies[0]]:g} fps; {n_coarse} coarse and "
          f"{n_fine} fine true boundaries; {presses.subject.nunique()} observers", flush=True)

    pixel_cache = cache / "pixel_signals.csv"
    if pixel_cache.exists():
        pixels = pd.read_csv(pixel_cache)
    else:
        pixels = sg.compute_signals(fs.index, np.zeros((len(fs), 2)), fs.frames, fps, n_bkps=count,
                                    temporal=False, progress=False)
        pixels = pixels[["movie", "frame", "time_s", *[n for n, (k, _) in sg.SIGNALS.items() if k == "pixel"]]]
        with atomic_path(pixel_cache, suffix=".csv") as tmp:   # a half-written CSV would be read back as is
            pixels.to_csv(tmp, index=False)
    speed = event_model_speed()
    vox, vox_step = None, None
    if args.voxen is not None:
        t0 = time.perf_counter()
        vx_model = pretrained_voxen(args.voxen)
        vox, vox_step = voxen_trajectory(fs.frames, fs.index, vx_model), vx_model.config.total_stride[0]
        print(f"VoxEn trajectory (lambda {args.voxen}): {time.perf_counter() - t0:.0f} s", flush=True)
    print("event models, seconds per 10k steps:", speed, flush=True)
    per_seed, signals_by_seed = {}, {}
    for seed in args.seeds:
        z, record = train_and_embed(fs, seed, args.steps, args.batch_size, args.z_dim, cache)
        latent = sg.compute_signals(fs.index, z, None, fps, n_bkps=count, memory_s=args.memory_s, voxen=vox,
                                    voxen_step_frames=vox_step, progress=False)
        signals = pd.concat([latent, pixels.drop(columns=["movie", "frame", "time_s"])], axis=1)
        res = seed_statistics(signals, targets, args)
        if decl is not None:
            signals_by_seed[str(seed)] = signals
        per_seed[str(seed)] = {"val_psnr": record["val_psnr"], "train_seconds": record["seconds"],
                               "table": json.loads(res["table"].to_json(orient="records", double_precision=6)),
                               "paired": res["paired"],
                               "temporal": res["temporal"].to_dict("records"),
                               "declared": res["declared"]}
        for metric, t in res["paired"].items():
            print(f"  seed {seed} {metric}: best latent {t['best_latent']} - best pixel {t['best_pixel']} = "
                  f"{t['diff']:+.3f} [{t['lo']:+.3f}, {t['hi']:+.3f}] (simultaneous), p {t['p']:.3f}: "
                  f"{t['verdict']}", flush=True)

    tables = {s: pd.DataFrame(v["table"]).set_index("signal") for s, v in per_seed.items()}
    names = list(next(iter(tables.values())).index)
    summary = {}
    for n in names:
        summary[n] = {"kind": str(next(iter(tables.values())).loc[n, "kind"])}
        for m in METRICS:
            vals = [float(t.loc[n, m]) for t in tables.values() if m in t.columns and pd.notna(t.loc[n, m])]
            if vals:
                summary[n][m] = {"mean": float(np.mean(vals)), "min": float(np.min(vals)), "max": float(np.max(vals))}
    claim = {}
    for metric in METRICS:
        tests = [v["paired"][metric] for v in per_seed.values() if metric in v["paired"]]
        claim[metric] = {"best_latent": [t["best_latent"] for t in tests],
                         "best_pixel": [t["best_pixel"] for t in tests],
                         "latent_beats_pixel_every_seed": all(t["verdict"] == "latent leads" for t in tests),
                         "pixel_beats_latent_every_seed": all(t["verdict"] == "pixel leads" for t in tests)}
    lines = []
    for metric, c in claim.items():
        diffs = [v["paired"][metric]["diff"] for v in per_seed.values()]
        verdict = ("the best latent signal beats the best pixel baseline for every seed" if
                   c["latent_beats_pixel_every_seed"] else
                   "the best pixel baseline beats the best latent signal for every seed" if
                   c["pixel_beats_latent_every_seed"] else "no claim holds for every seed")
        lines.append(f"{metric}: {verdict} (best latent minus best pixel per seed: "
                     f"{', '.join(f'{d:+.3f}' for d in diffs)})")
    for metric in METRICS:
        tests = [v["declared"][metric] for v in per_seed.values() if metric in v["declared"]]
        if not tests:
            continue
        better = all(t["diff"] > 0 and t["p"] < 0.05 for t in tests)
        worse = all(t["diff"] < 0 and t["p_opposite"] < 0.05 for t in tests)
        claim[f"declared_{metric}"] = {"latent": args.declared, "pixel": [t["pixel"] for t in tests],
                                       "latent_beats_pixel_every_seed": better, "pixel_beats_latent_every_seed": worse}
        lines.append(f"{metric}, declared {args.declared}: " + (
            "beats the best pixel baseline for every seed" if better else
            "loses to the best pixel baseline for every seed" if worse else "no claim holds for every seed")
            + " (one-sided p, the choice of the best pixel baseline inside a max-T null: "
            + ", ".join(f"{t['diff']:+.3f} (p {t['p'] if t['diff'] > 0 else t['p_opposite']:.3f})"
                        for t in tests) + ")")
    claim["text"] = "; ".join(lines)
    temporal = {}
    for r in (r for v in per_seed.values() for r in v["temporal"]):
        t = temporal.setdefault(f"{r['a']} vs {r['b']}", {}).setdefault(r["metric"], {"diffs": [], "better": 0,
                                                                                      "worse": 0})
        t["diffs"].append(r["diff"])
        t["better"] += int(r["p"] < 0.05 and r["diff"] > 0)
        t["worse"] += int(r["p"] < 0.05 and r["diff"] < 0)
    temporal_text = boundary_report.temporal_context_text(
        pd.DataFrame([r for v in per_seed.values() for r in v["temporal"]], columns=["a", "diff", "p"]),
        {sg.TEMPORAL_SUFFIX: f"codes with a memory of {args.memory_s} s",
         sg.VOXEN_SUFFIX: f"VoxEn's latent (lambda {args.voxen})"}, unit="signal x measure x seed comparisons")
    prereg = None
    if decl is not None:
        prereg = {"file": str(args.preregistered), "declared_in_commit": declaration_commit(args.preregistered),
                  "declaration": decl, **preregistered_tests(decl, signals_by_seed, targets, args)}
    results = {
        "meta": {"data": {"movies": args.movies, "seconds": args.seconds, "data_seed": args.data_seed,
                          "stride": args.stride, "fps": fps[fs.movies[0]], "frames": len(fs), "n_coarse": n_coarse,
                          "n_fine": n_fine, "n_observers": int(presses.subject.nunique())},
                 "train": {"seeds": args.seeds, "steps": args.steps, "batch_size": args.batch_size,
                           "z_dim": args.z_dim, "preset": "default"},
                 "declared": args.declared, "bin_s": args.bin_s, "tolerance_s": args.tolerance_s, "units": "events",
                 "memory_s": args.memory_s, "voxen_lambda": args.voxen,
                 "n_null": args.n_null, "n_boot": args.n_boot, "torch": torch.__version__,
                 "threads": args.threads, "cpu": cpu_model(), "platform": platform.platform(),
                 "seconds_this_run": round(time.perf_counter() - t_start, 1),
                 "reused_cached_codes": sorted(p.name for p in cached_before)},
        "event_model_speed": speed, "per_seed": per_seed, "summary": summary, "claim": claim,
        "temporal_context": {"pairs": temporal, "text": temporal_text},
        **({"preregistered": prereg} if prereg is not None else {}),
    }
    print("\nmean [min, max] over seeds:")
    for n, s in summary.items():
        print(f"  {n:24s} " + "  ".join(f"{m} {s[m]['mean']:.3f} [{s[m]['min']:.3f}, {s[m]['max']:.3f}]"
                                         for m in METRICS if m in s))
    print(claim["text"])
    print(temporal_text)
    if prereg is not None:
        print("pre-registered:", prereg["text"])
    write_results(results, args.out, f" in {results['meta']['seconds_this_run']:.0f} s")


if __name__ == "__main__":
    main()
