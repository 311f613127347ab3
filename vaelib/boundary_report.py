"""Chapter 3's results in words: the take-away computed from a run (:func:`conclusion`), whether temporal context
helps (:func:`temporal_context_text`), and the appendix of what the committed boundary benchmark says
(:func:`preregistered_appendix`): its training-seed spread (:func:`seed_spread`) and its pre-registered verdicts
(:func:`preregistered_summary`).
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .boundaries import METRICS
from .comparison import CombinedDetector
from .signals import VOXEN_SUFFIX

LABELS = {"r_observers": "r with the observers", "r_truth": "r with the true boundaries",
          "f1": "F1 against the coarse truth", "f1_fine": "F1 against the fine truth",
          "detector": "held-out prediction by the combined detector"}


def seed_spread(results: dict) -> dict:
    """The training-run spread in a boundary benchmark's results (``benchmarks/results/boundaries.json``):
    per latent signal and metric, max - min over the MMD-VAE training seeds; its seeds and its claim. The
    ``_voxen`` signals are left out: they do not depend on the MMD-VAE seed, and their range 0 says nothing about
    retraining VoxEn (a signal without a range is judged by the largest latent one, :func:`_spread_of`). The
    claim's text names each metric as the chapter does (``LABELS``: "r with the observers", not ``r_observers``);
    ``rule``: ``lead`` when the benchmark judged by the lead rule, else ``earlier``."""
    ranges = {n: {m: v[m]["max"] - v[m]["min"] for m in METRICS if m in v}
              for n, v in results.get("summary", {}).items()
              if v.get("kind") == "latent" and not n.endswith(VOXEN_SUFFIX)}
    claim = re.sub(r"(^|; )(" + "|".join(sorted(METRICS, key=len, reverse=True)) + r")(?=[:,])",
                   lambda m: m[1] + LABELS[m[2]], results.get("claim", {}).get("text", ""))
    lead = any("verdict" in t for v in results.get("per_seed", {}).values() for t in v.get("paired", {}).values())
    return {"seeds": results.get("meta", {}).get("train", {}).get("seeds", []), "ranges": ranges, "claim": claim,
            "rule": "lead" if lead else "earlier"}


def preregistered_summary(results: dict) -> dict | None:
    """The pre-registered verdicts in a boundary benchmark's results (``benchmarks/results/boundaries_prereg*.json``,
    ``benchmarks/boundaries.py --preregistered``): the draw, the training seeds, the declaring commit, the rule
    (``lead``: :func:`vaelib.comparison.declared_lead`; else ``declared``:
    :func:`vaelib.comparison.declared_vs_best_pixel`) and, per hypothesis, its text, verdict, per-seed differences
    and p-values (for ``lead`` also the lower bounds and the winners). None when the results hold none."""
    pre = results.get("preregistered")
    if not pre:
        return None
    decl = pre["declaration"]
    lead = decl.get("rule") == "lead"
    hyps = []
    for h in pre["hypotheses"]:
        tests = list(h["per_seed"].values())
        one = {"id": h["id"], "metric": h["metric"], "alpha": float(h["alpha"]), "verdict": h["verdict"],
               "seeds": list(h["per_seed"]), "diffs": [t["diff"] for t in tests], "ps": [t["p"] for t in tests]}
        if lead:
            one.update(text=h.get("text", f"{h['claim']} on {h['metric']}"), claim=h["claim"], latent="",
                       bounds=[t["bound"] for t in tests], best=[t["best"] for t in tests],
                       rivals=[t["rival"] for t in tests])
        else:
            one.update(text=h.get("text", f"{h['latent']} {h['direction']} on {h['metric']}"), latent=h["latent"],
                       direction=h["direction"], rivals=sorted({t["rival"] for t in tests}),
                       candidates=list(dict.fromkeys(r for t in tests for r in t.get("rivals", []))))
        hyps.append(one)
    fps = results.get("meta", {}).get("data", {}).get("fps")
    return {"file": pre.get("file", ""), "commit": (pre.get("declared_in_commit") or "").split(" ")[0][:7],
            "rule": "lead" if lead else "declared", "data": {**decl["data"], "fps": fps},
            "seeds": decl["train"]["seeds"], "hypotheses": hyps}


def _preregistered_text(pre: dict) -> str:
    """One paragraph: each pre-registered hypothesis with its verdict and per-seed numbers, under the rule it ran."""
    d = pre["data"]
    commit = f" in commit {pre['commit']}" if pre.get("commit") else ""
    rate = f" at {d['fps']:g} fps" if d.get("fps") else ""
    draw = (f"{d['movies']} synthetic movies x {d['seconds']:g} s{rate}, data seed {d['data_seed']}; MMD-VAE "
            f"training seeds {pre['seeds']}")
    if pre.get("rule") == "lead":
        parts = [f"{h['id']}, {h['text']} (alpha {h['alpha']:g}): "
                 + ("**holds** in every seed" if h["verdict"] == "holds" else f"**{h['verdict']}**")
                 + "; per seed " + ", ".join(f"{sd}: `{b}` over `{r}` by {x:+.3f} (lower bound {lb:+.3f}, p "
                                            f"{format(q, '.3f' if q >= 0.001 else '.1g')})"
                                            for sd, b, r, x, lb, q in zip(h["seeds"], h["best"], h["rivals"],
                                                                          h["diffs"], h["bounds"], h["ps"]))
                 for h in pre["hypotheses"]]
        return (f"**Pre-registered test, the lead rule** (declared{commit} before its draw was made: {draw}; the "
                "claiming kind's best signal against the other kind's strongest, the choice of the best in a "
                "studentized max-T null; a hypothesis holds when its simultaneous lower bound is above 0 in every "
                "seed): " + "; ".join(parts) + ".")
    said = {"holds": "**holds** in every seed", "opposite": "**fails: the opposite holds** in every seed",
            "no verdict": "**fails**: not in every seed with p < alpha"}
    parts = [f"{h['id']}, {h['text']} (alpha {h['alpha']:g}): {said.get(h['verdict'], h['verdict'])}; "
             f"difference per seed " + ", ".join(f"{sd}: {x:+.3f} (p {q:.3f})"
                                                  for sd, x, q in zip(h["seeds"], h["diffs"], h["ps"]))
             + f", rival {' / '.join(f'`{r}`' for r in h['rivals'])}"
             for h in pre["hypotheses"]]
    voxen = (" (the VoxEn rows do not depend on them: one test, repeated)"
             if any(h.get("latent", "").endswith(VOXEN_SUFFIX) for h in pre["hypotheses"]) else "")
    # the pixel baselines that really competed (a declaration's prose may name others; the run used what it had)
    candidates = list(dict.fromkeys(c for h in pre["hypotheses"] for c in h.get("candidates", [])))
    rival = (f"the best of the pixel baselines {', '.join(f'`{c}`' for c in candidates)}" if candidates
             else "the best pixel baseline")
    return (f"**Pre-registered test, an earlier rule** (a declared latent signal against the best pixel baseline, "
            f"declared{commit} before a new draw was made: {draw}{voxen}; the rival is {rival} on that draw, its "
            f"choice inside an unstudentized max-T null; a hypothesis holds only when it does in every seed): "
            + "; ".join(parts) + ".")


def _spread_of(spread: dict | None, signal: str, metric: str) -> float | None:
    """The training-run range of ``signal``'s ``metric``; for a signal the benchmark lacks, the largest latent one."""
    if not spread or not spread["ranges"]:
        return None
    own = spread["ranges"].get(signal, {}).get(metric)
    if own is not None:
        return float(own)
    vals = [r[metric] for r in spread["ranges"].values() if metric in r]
    return float(max(vals)) if vals else None


def _iv(row: pd.Series, metric: str) -> str:
    lo, hi = row.get(f"{metric}_lo"), row.get(f"{metric}_hi")
    ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None and pd.notna(lo) else " (too little data for an interval)"
    return f"{row[metric]:.3f}{ci}"


def _num(x: float | None, fmt: str = "+.3f") -> str:
    return "n/a" if x is None or not np.isfinite(x) else format(x, fmt)


def conclusion(table: pd.DataFrame, versus: pd.DataFrame, by_bin: pd.DataFrame | None = None,
               lags: pd.DataFrame | None = None, detector: CombinedDetector | None = None,
               spread: dict | None = None, bin_s: float = 1.0, alpha: float = 0.05,
               prereg: dict | Sequence[dict] | None = None) -> str:
    """Chapter 3's take-away, computed from this run, in markdown: the best single signal; one table, per measure, of
    the best latent and the best pixel signal, their difference with its simultaneous interval, the p-value and
    the verdict of :func:`vaelib.comparison.best_latent_vs_pixel` (``versus``), and the training-run spread of the
    latent figure (``spread``: :func:`seed_spread`, only when given); a sentence per measure saying who leads when
    the test says so (a lead smaller than the training-run spread is said not to survive retraining); the bin
    widths (``by_bin``), the response lag (``lags``), the combined detector; a bottom line. With ``prereg``
    (:func:`preregistered_summary`, one or several) the bottom line names the declared claims that held; their
    details are :func:`preregistered_appendix`'s."""
    t = table.set_index("signal")
    out, leads = [], {}
    if "r_observers" in t:
        sig = t[t["kind"] != "human"]["r_observers"].idxmax()
        out.append(f"**Best single signal** for the observers ({LABELS['r_observers']}, {bin_s:g}-s bins): "
                   f"`{sig}` ({t.loc[sig, 'kind']}), r = {_iv(t.loc[sig], 'r_observers')}"
                   + (" (95% interval over events)." if pd.notna(t.loc[sig].get("r_observers_lo")) else "."))
    if len(versus):
        rows, lines = [], []
        for v in versus.to_dict("records"):
            label, verdict = LABELS.get(v["metric"], v["metric"]), str(v["verdict"])
            rng = _spread_of(spread, v["best_latent"], v["metric"])
            tested = pd.notna(v.get("p"))
            rows.append(f"| {label} | `{v['best_latent']}` {v['latent']:.3f} | `{v['best_pixel']}` {v['pixel']:.3f} | "
                        f"{v['diff']:+.3f} [{_num(v.get('lo'))}, {_num(v.get('hi'))}] | "
                        f"{_num(v.get('p'), '.3f')} | {verdict} |" + (f" {_num(rng, '.3f')} |" if spread else ""))
            if verdict in ("latent leads", "pixel leads"):
                winner, loser = ((v["best_latent"], v["best_pixel"]) if verdict == "latent leads"
                                 else (v["best_pixel"], v["best_latent"]))
                kind = verdict.split()[0]
                line = (f"On {label} the {kind} side leads: `{winner}` is ahead of `{loser}` by {abs(v['diff']):.3f} "
                        f"(simultaneous 95% interval of latent minus pixel [{v['lo']:+.3f}, {v['hi']:+.3f}], "
                        f"p = {v['p']:.3f}).")
                if rng is not None and abs(v["diff"]) <= rng:
                    line += (f" But retraining the MMD-VAE moves this latent figure by {rng:.3f}, as much as the "
                             "lead: it is not claimed beyond this training run.")
                    verdict = "within the training spread"
                leads[v["metric"]] = verdict
            elif tested:
                line = (f"On {label} neither side leads detectably (latent minus pixel {v['diff']:+.3f}, simultaneous "
                        f"95% interval [{v['lo']:+.3f}, {v['hi']:+.3f}], p = {v['p']:.3f}).")
                leads[v["metric"]] = "no detectable lead"
            else:
                line = f"On {label} there is {verdict}: no test."
            lines.append(line)
        head = ("| measure | best latent | best pixel | latent − pixel [95% simultaneous] | p | verdict |"
                + (" training-seed spread |" if spread else ""))
        out.append(f"**The best latent signal against the best pixel baseline** ({bin_s:g}-s bins; p two-sided; a "
                   "side leads when its best beats the other side's strongest with the choice of its best paid for, "
                   "and then, and only then, the interval excludes 0"
                   + ("; spread: how much retraining the MMD-VAE moves the latent figure, from the benchmark on "
                      "other synthetic movies, quoted because these are the book's synthetic movies" if spread
                      else "") + "):\n\n"
                   + head + "\n|" + "---|" * (head.count("|") - 1) + "\n" + "\n".join(rows))
        out.append(" ".join(lines))
    if by_bin is not None and len(by_bin):
        ahead = [r.bin_s for r in by_bin.itertuples(index=False) if r.verdict == "latent leads"]
        behind = [r.bin_s for r in by_bin.itertuples(index=False) if r.verdict == "pixel leads"]
        parts = [f"{r.bin_s:g} s: {r.diff:+.3f} [{_num(r.lo)}, {_num(r.hi)}]" for r in by_bin.itertuples(index=False)]
        out.append("**Across bin widths**, the best latent r with the observers minus the best pixel r, with "
                   "simultaneous 95% intervals: " + "; ".join(parts) + ". The latents lead at "
                   + (", ".join(f"{b:g}" for b in ahead) + " s" if ahead else "no width")
                   + "; the pixels lead at " + (", ".join(f"{b:g}" for b in behind) + " s." if behind else "no width."))
    if lags is not None and len(lags):
        lt = lags.set_index("signal")
        parts = []
        if "truth" in lt.index:
            parts.append(f"the observers press {lt.loc['truth', 'lag_s']:.1f} s after a true boundary "
                         f"(folds: {lt.loc['truth', 'fold_lags_s']} s)")
        sigs = lt[lt["kind"].isin(["latent", "pixel"])]
        if len(sigs):
            best = {k: sigs[sigs["kind"] == k]["r_lag"].idxmax() for k in ("latent", "pixel")
                    if (sigs["kind"] == k).any()}
            parts.append("with each signal at its own cross-fitted lag, " + " and ".join(
                f"the best {k} signal is `{n}` (r = {_iv(lt.loc[n], 'r_lag')} at {lt.loc[n, 'lag_s']:.1f} s, "
                f"p = {lt.loc[n, 'p_lag']:.3f}, against {lt.loc[n, 'r_0']:.3f} with no lag)" for k, n in best.items()))
        out.append("**Response lag:** " + "; ".join(parts) + ".")
    if detector is not None:
        d = detector.table.set_index("model")
        helps = detector.p < alpha and detector.gain > 0
        out.append(f"**All signals together** (cross-fitted logistic regression predicting the {detector.target}): "
                   f"the pixel baselines save {_iv(d.loc['pixel'], 'skill')} of the held-out log-loss of a constant "
                   f"rate, the latent signals {_iv(d.loc['latent'], 'skill')}, all of them "
                   f"{_iv(d.loc['all'], 'skill')}. "
                   f"Adding the latents to the pixels changes the skill by {detector.gain:+.3f} "
                   f"[{_num(detector.gain_lo)}, {_num(detector.gain_hi)}], permutation p = {detector.p:.3f}: "
                   + ("the latents carry information about the boundaries beyond the pixel baselines." if helps else
                      "the latents add nothing detectable beyond the pixel baselines."))
        leads["detector"] = "latent leads" if helps else "no detectable lead"
    won = [LABELS.get(m, m) for m, v in leads.items() if v == "latent leads"]
    lost = [LABELS.get(m, m) for m, v in leads.items() if v == "pixel leads"]
    bottom = "; ".join(p for p in (("the latent signals lead on " + ", ".join(won)) if won else "",
                                   ("the pixel baselines lead on " + ", ".join(lost)) if lost else "") if p)
    bottom = (bottom[0].upper() + bottom[1:] + "; elsewhere no side leads detectably." if bottom
              else "No side leads detectably on any measure of this run.")
    pres = [prereg] if isinstance(prereg, dict) else list(prereg or [])
    held = [f"{h['id']} ({h['text']})" for pre in pres for h in pre["hypotheses"] if h["verdict"] == "holds"]
    failed = [h["id"] for pre in pres for h in pre["hypotheses"] if h["verdict"] != "holds"]
    if pres:
        bottom += (" On the book's synthetic movies, of the claims declared in advance and tested on new draws, "
                   + ("; ".join(held) + " held" if held else "none held")
                   + (f"; {', '.join(failed)} did not" if failed else "") + " (appendix).")
    out.append(f"**Bottom line:** {bottom}")
    return "\n\n".join(out)


def preregistered_appendix(spread: dict | None = None, prereg: dict | Sequence[dict] | None = None) -> str:
    """The details behind the take-away's quotes of the committed benchmark, in markdown: the benchmark's per-seed
    claim over the training seeds (``spread``: :func:`seed_spread`) and each pre-registered test with its
    per-seed numbers (``prereg``: :func:`preregistered_summary`, one or several). Empty when there is neither."""
    out = []
    if spread and spread.get("claim"):
        rule = ("the lead rule" if spread.get("rule") == "lead" else
                "an earlier rule: both choices of a best signal in one unstudentized max-T null")
        out.append(f"**Training seeds** {spread['seeds']} (the boundary benchmark on other synthetic movies, "
                   f"benchmarks/results/boundaries.json, judged by {rule}): {spread['claim']}.")
    pres = [prereg] if isinstance(prereg, dict) else list(prereg or [])
    out += [_preregistered_text(pre) for pre in pres]
    return "\n\n".join(out)


def temporal_context_text(pairs: pd.DataFrame, what: dict[str, str], alpha: float = 0.05,
                          unit: str = "signal x measure pairs") -> str:
    """Does temporal context help? One sentence per kind of trajectory that knows time: ``what`` maps a signal suffix
    (``signals.TEMPORAL_SUFFIX``, ``signals.VOXEN_SUFFIX``) to its description, ``pairs`` is a
    :func:`vaelib.comparison.paired_table` of ``signals.temporal_pairs`` (rows of several seeds may be stacked;
    ``unit`` names what a row is). Counts the rows where the signal on that trajectory matches better or worse
    than on the single-frame codes (paired p < ``alpha``); a suffix without rows is left out."""
    out = []
    for suffix, desc in what.items():
        mine = pairs[pairs["a"].str.endswith(suffix)]
        if len(mine) and mine["p"].isna().all():
            out.append(f"With {desc}: too little data to resample, no test.")
        elif len(mine):
            sure = mine[mine["p"] < alpha]
            out.append(f"With {desc} the latent signals match better in {int((sure['diff'] > 0).sum())} and worse "
                       f"in {int((sure['diff'] < 0).sum())} of {len(mine)} {unit} (paired p < {alpha:g}); no "
                       "difference in the rest.")
    return " ".join(out)
