"""Benchmark: chapter 3's test of "one side's best leads the other side's best", in simulation.

The chapter compares the best of ~15 latent signals with the best of 3 pixel baselines, both picked on the data.
Two tests are compared on simulated per-event sums, with everything known:

* ``max_t_both`` (:func:`vaelib.stats.best_vs_best`): both choices in one sign-flip max-T null over every
  (latent, pixel) pair, unstudentized, one-sided each way at ``alpha``;
* ``lead`` (:func:`vaelib.stats.versus` / :func:`vaelib.stats.lead_test`): the claiming side's choice in a
  studentized max-T bootstrap null, the strongest rival as the rival.

Settings (``--units`` events of ``--bins`` bins; r with a target, or F1 of detections against one true boundary
per event): 15 latent candidates, one "strong" and 14 weak and noisy, and 3 pixel candidates, one strong and 2
weak. Under the null the strong pixel and the strong latent are equally good (the least favourable case of
"pixels lead": the best pixel exactly as good as the best latent); for power the strong pixel is better by a
planted amount. Reported per test: the rate of "pixels lead" (one-sided at ``alpha``, the declared direction),
of "latents lead", and of either (the chapter's two-sided rule), with binomial standard errors; and the coverage
of the simultaneous interval of ``versus``. Writes ``benchmarks/results/best_vs_best_sim.json``.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import write_results

from vaelib import stats as st
from vaelib.boundaries import f1_from_sums, r_from_sums
from vaelib.paths import PROJECT_ROOT

N_LATENT, N_PIXEL = 15, 3


def r_units(a: float, noise: float, y: np.ndarray, shared: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-event sums ``n, x, y, xx, yy, xy`` of a signal ``x = a y + noise e + shared`` against target ``y``."""
    x = a * y + noise * rng.standard_normal(y.shape) + shared
    return np.stack([np.full(len(y), y.shape[1], float), x.sum(1), y.sum(1), (x * x).sum(1), (y * y).sum(1),
                     (x * y).sum(1)], axis=1)


def r_of(a: float, noise: float, shared_sd: float) -> float:
    """The population r of :func:`r_units`' signal with a unit-variance target."""
    return a / np.sqrt(a * a + noise * noise + shared_sd * shared_sd)


def f1_units(p_hit: float, false_rate: float, difficulty: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-event hits, detections, true boundaries (one per event) of a detector that hits an event with
    probability ``p_hit`` (events of one ``difficulty`` are hard or easy for every detector) and adds
    Poisson(``false_rate``) false detections per event."""
    own = rng.random(len(difficulty))
    u = np.where(rng.random(len(difficulty)) < 0.5, difficulty, own)          # half shared, half its own luck
    hit = (u < p_hit).astype(float)
    det = hit + rng.poisson(false_rate, len(difficulty))
    return np.stack([hit, det, np.ones(len(difficulty))], axis=1)


def draw(measure: str, effect: float, n_units: int, n_bins: int, rng: np.random.Generator
         ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], float]:
    """One simulated comparison: latent and pixel per-event sums, and the true lead of the best pixel over the
    best latent (0 under the null)."""
    if measure == "r":
        y = rng.standard_normal((n_units, n_bins))
        shared = 0.7 * rng.standard_normal((n_units, n_bins))
        a0, s0 = 0.35, 1.0
        latent = {f"latent{i}": r_units(a0, s0, y, shared, rng) if i == 0 else r_units(0.05, 2.0, y, shared, rng)
                  for i in range(N_LATENT)}
        # the strong pixel: the same noise, a larger loading when an effect is planted (solved for the r lead)
        target = r_of(a0, s0, 0.7) + effect
        a1 = target * np.sqrt(s0 ** 2 + 0.49) / np.sqrt(1 - target ** 2)
        pixel = {f"pixel{i}": r_units(a1, s0, y, shared, rng) if i == 0 else r_units(0.05, 1.5, y, shared, rng)
                 for i in range(N_PIXEL)}
        return latent, pixel, float(r_of(a1, s0, 0.7) - r_of(a0, s0, 0.7))
    difficulty = rng.random(n_units)
    p0, fr = 0.5, 0.5
    latent = {f"latent{i}": f1_units(p0, fr, difficulty, rng) if i == 0 else f1_units(0.15, 1.0, difficulty, rng)
              for i in range(N_LATENT)}
    pixel = {f"pixel{i}": f1_units(p0 + effect, fr, difficulty, rng) if i == 0 else
             f1_units(0.15, 1.0, difficulty, rng) for i in range(N_PIXEL)}

    def f1(p: float) -> float:                # expected hits p, detections p + fr, truths 1 per event
        return 2 * p / (p + fr + 1)
    return latent, pixel, float(f1(p0 + effect) - f1(p0))


def one_rep(measure: str, effect: float, args: argparse.Namespace, rng: np.random.Generator) -> dict:
    latent, pixel, truth = draw(measure, effect, args.units, args.bins, rng)
    stat = r_from_sums if measure == "r" else f1_from_sums
    seed = int(rng.integers(1 << 31))
    new = st.versus(latent, pixel, stat, args.alpha, args.n_boot, seed)
    claim = st.lead_test(pixel, latent, stat, args.alpha, args.n_boot, seed)        # the declared direction
    old = st.best_vs_best(latent, pixel, stat, args.n_boot, seed)
    return {
        "lead_pixels": claim.bound > 0, "lead_latents_two_sided": new.verdict == "a",
        "lead_pixels_two_sided": new.verdict == "b",
        # the interval covers the true difference of the two strong ones (latent0 - pixel0) when they are the
        # picked pair; on other picks it is not about that pair and is not counted
        "covered": (new.lo <= -truth <= new.hi) if (new.a, new.b) == ("latent0", "pixel0") else None,
        "old_lead_pixels": old.diff < 0 and old.p_b < args.alpha,
        "old_lead_latents": old.diff > 0 and old.p_a < args.alpha,
    }


def rate(flags: list[bool]) -> dict:
    """A rate with its binomial standard error."""
    k, n = int(np.sum(flags)), len(flags)
    r = k / n if n else float("nan")
    return {"rate": r, "se": float(np.sqrt(r * (1 - r) / n)) if n else float("nan"), "n": n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=2000, help="simulated comparisons under the null, per measure")
    ap.add_argument("--power-reps", type=int, default=400, help="simulated comparisons per planted effect")
    ap.add_argument("--units", type=int, default=40, help="events per comparison (chapter 3's draws: 20-40)")
    ap.add_argument("--bins", type=int, default=20, help="bins per event, for r")
    ap.add_argument("--n-boot", type=int, default=1000, help="resamples per test (chapter 3's default)")
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--effects-r", type=float, nargs="+", default=[0.05, 0.10, 0.15])
    ap.add_argument("--effects-f1", type=float, nargs="+", default=[0.10, 0.20, 0.30],
                    help="planted gain in the strong pixel's hit probability")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=PROJECT_ROOT / "benchmarks" / "results" / "best_vs_best_sim.json")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    out = {"meta": {k: v for k, v in vars(args).items() if k != "out"} | {"n_latent": N_LATENT, "n_pixel": N_PIXEL},
           "null": {}, "power": {}}
    for measure, effects in (("r", args.effects_r), ("f1", args.effects_f1)):
        reps = [one_rep(measure, 0.0, args, rng) for _ in range(args.reps)]
        cov = [r["covered"] for r in reps if r["covered"] is not None]
        out["null"][measure] = {
            "lead_pixels_one_sided": rate([r["lead_pixels"] for r in reps]),
            "lead_either_two_sided": rate([r["lead_pixels_two_sided"] or r["lead_latents_two_sided"] for r in reps]),
            "lead_latents_two_sided": rate([r["lead_latents_two_sided"] for r in reps]),
            "old_lead_pixels": rate([r["old_lead_pixels"] for r in reps]),
            "old_lead_latents": rate([r["old_lead_latents"] for r in reps]),
            "interval_coverage": rate(cov)}
        print(f"{measure} null ({args.reps} reps): " + ", ".join(f"{k} {v['rate']:.3f}"
                                                               for k, v in out["null"][measure].items()), flush=True)
        out["power"][measure] = []
        for eff in effects:
            reps = [one_rep(measure, eff, args, rng) for _ in range(args.power_reps)]
            _, _, lead = draw(measure, eff, args.units, args.bins, np.random.default_rng(0))
            row = {"planted": eff, "true_lead": lead,
                   "lead_pixels_one_sided": rate([r["lead_pixels"] for r in reps]),
                   "lead_pixels_two_sided": rate([r["lead_pixels_two_sided"] for r in reps]),
                   "old_lead_pixels": rate([r["old_lead_pixels"] for r in reps])}
            out["power"][measure].append(row)
            print(f"{measure} lead {lead:.3f}: new one-sided {row['lead_pixels_one_sided']['rate']:.3f}, new "
                  f"two-sided {row['lead_pixels_two_sided']['rate']:.3f}, old {row['old_lead_pixels']['rate']:.3f}",
                  flush=True)
    out["meta"]["seconds"] = round(time.perf_counter() - t0, 1)
    write_results(out, args.out, f" in {out['meta']['seconds']:.0f} s")


if __name__ == "__main__":
    main()
