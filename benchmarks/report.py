"""The results page, written from the committed result files so that it cannot drift from them.

    python benchmarks/report.py            # writes docs/results.md and the README's results block
    python benchmarks/report.py --check    # exit 1 if either differs from what the files give (tests/test_docs.py)

Every number on the page is read from a JSON file in ``benchmarks/results/`` (the benchmarks write them) or in
``figures/metrics/`` (the book writes one per chapter beside its figures), and every sentence that says a claim
held, or did not, "in every training seed" is made from that file's own verdict. Rerun it after a benchmark or
``make book`` and commit the page with the files.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from typing import Any

from vaelib.paths import PROJECT_ROOT, atomic_path

RESULTS = PROJECT_ROOT / "benchmarks" / "results"
FIGURE_METRICS = PROJECT_ROOT / "figures" / "metrics"
PAGE = PROJECT_ROOT / "docs" / "results.md"
README = PROJECT_ROOT / "README.md"
README_START, README_END = "<!-- results start: written by benchmarks/report.py -->", "<!-- results end -->"


def load(name: str) -> Any:
    """A committed result file of ``benchmarks/results/``, by name."""
    return json.loads((RESULTS / name).read_text())


def num(x: float | None, digits: int = 2, sign: bool = False) -> str:
    """``x`` rounded for reading; an em dash where there is none."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:+.{digits}f}" if sign else f"{x:,.{digits}f}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


# --- chapter 4: VoxEn against the classic codecs ------------------------------------------------------------------

def codec_curves() -> dict[str, tuple[list, list, list]]:
    """Per data set of ``voxen_rd.json``: (the reference curves of every codec, VoxEn's from-scratch seed points)."""
    from vaelib.rd import load_rd

    out: dict[str, tuple[list, list, list]] = {}
    for p in load_rd(RESULTS / "voxen_rd.json"):
        curves, spread, _ = out.setdefault(p.dataset, ([], [], []))
        (spread if p.codec == "voxen" and p.seed != 0 else curves).append(p)
    return out


def rd_section() -> tuple[list[str], dict[str, str]]:
    """Chapter 4's benchmark as markdown, and the few numbers the README quotes."""
    from vaelib.rd import bd_table, rate_at_quality

    lines = ["## VoxEn against the classic codecs", "",
             "`benchmarks/voxen_rd.py`, `benchmarks/results/voxen_rd.json`: the reference models of `weights/voxen/` "
             "and x264, x265, VP9, AV1 and MJPEG through ffmpeg, in real bytes, on held-out clips of 32 frames of "
             "64 x 64. BD-rate against x264 (negative: fewer bits for the same quality) over the quality range both "
             "curves share; the interval resamples the clips (95%). `voxen-fast` is VoxEn without the per-clip "
             "refinement of the latent.", ""]
    quoted: dict[str, str] = {}
    for dataset, (points, spread, _) in codec_curves().items():
        bd = bd_table(points).sort_values("bd_rate_psnr_%")
        lines += [f"### {dataset}", ""]
        lines += table(["codec", "BD-rate PSNR", "95% interval", "BD-rate YUV PSNR", "BD-rate MS-SSIM",
                        "shared PSNR (dB)", "PSNR (dB)", "bpp"],
                       [[r.codec, num(r["bd_rate_psnr_%"], 1, True) + "%",
                         f"{num(r['psnr_ci95_lo_%'], 0, True)}% to {num(r['psnr_ci95_hi_%'], 0, True)}%",
                         num(r["bd_rate_psnr_yuv_%"], 1, True) + "%", num(r["bd_rate_ms_ssim_%"], 1, True) + "%",
                         r.common_psnr, r.psnr_range, r.bpp_range] for _, r in bd.iterrows()])
        voxen = sorted((p for p in points if p.codec == "voxen"), key=lambda p: p.bpp)
        x264 = [p for p in points if p.codec == "x264"]
        ratios = [p.bpp / rate_at_quality(x264, p.psnr) for p in voxen]
        lines += ["", "VoxEn's points, and its rate as a multiple of x264's at the same PSNR: " + "; ".join(
            f"lambda {p.setting:g}: {num(p.bpp, 3)} bpp at {num(p.psnr, 1)} dB "
            + (f"({num(x, 2)}x)" if math.isfinite(x) else "(above x264's highest PSNR)")
            for p, x in zip(voxen, ratios)) + "."]
        crossing = next((a.psnr + (b.psnr - a.psnr) * math.log(xa) / (math.log(xa) - math.log(xb))
                         for a, b, xa, xb in zip(voxen, voxen[1:], ratios, ratios[1:])
                         if math.isfinite(xa) and math.isfinite(xb) and xa < 1 <= xb), None)
        if spread:
            psnrs, bpps = [p.psnr for p in spread], [p.bpp for p in spread]
            lines += ["", f"Training-seed spread: lambda {spread[0].setting:g} trained from scratch with "
                      f"{len(spread)} seeds for {spread[0].train_steps:,} steps lands at {num(min(psnrs), 1)}-"
                      f"{num(max(psnrs), 1)} dB and {num(min(bpps), 3)}-{num(max(bpps), 3)} bpp."]
        lines.append("")
        row = bd.set_index("codec").loc["voxen"]
        key = "synthetic" if dataset.startswith("synthetic") else "real"
        quoted[key] = (f"{num(row['bd_rate_psnr_%'], 1, True)}% (95% over clips: "
                       f"{num(row['psnr_ci95_lo_%'], 0, True)}% to {num(row['psnr_ci95_hi_%'], 0, True)}%)")
        if crossing is not None:
            lines[-1:-1] = ["", f"Above about {num(crossing, 1)} dB VoxEn needs more bits than x264 on these clips "
                                f"(where its rate multiple, interpolated in log, reaches 1)."]
            quoted[key] += f", but above about {num(crossing, 1)} dB it needs more bits than x264"
    return lines, quoted


# --- chapter 4: the ablation, one model for every rate, files at their own size -----------------------------------

def pct(x: float | None, digits: int = 1) -> str:
    """A percentage with its sign, or 'undefined' (curves that share no PSNR range)."""
    return "undefined" if x is None else num(x, digits, True) + "%"


def span(pair: list | None, digits: int = 1) -> str:
    return "-" if not pair else f"{num(pair[0], digits, True)}% to {num(pair[1], digits, True)}%"


def ablation_section() -> tuple[list[str], str]:
    """``voxen_ablation.json``: does a longer time stride pay at an equal training budget?"""
    d = load("voxen_ablation.json")
    lines = ["## Does the third dimension pay? The time-stride ablation", "",
             "`benchmarks/voxen_ablation.py`, `benchmarks/results/voxen_ablation.json`"
             + (" (**partial**)" if d["partial"] else "") + f": {d['question']} The same VoxEn with only its time "
             f"strides changed, trained alike ({d['scaled_down']}), BD-rate against time stride 1 with an interval "
             "over clips and the range over pairings of training seeds.", ""]
    for dataset, res in d["results"].items():
        lines += [f"### {dataset} ({res['n_clips']} clips)", ""]
        lines += table(["arm", "time stride", "parameters", "BD-rate vs stride 1", "95% over clips",
                        "seed pairings", "rate / stride 1's, by lambda"],
                       [[arm, str(d["arms"][arm]["total_time_stride"]), f"{d['arms'][arm]['params']:,}",
                         pct(r.get("bd_rate_%")), span(r.get("ci95_over_clips_%")), span(r.get("seed_pairs_range_%")),
                         ", ".join(f"{num(v, 2)}x (lambda {k})" for k, v in r.get("rate_vs_t1_by_lambda", {}).items())]
                        for arm, r in res["bd_rate_vs_t1"].items()])
        lines += ["", res["verdict"], ""]
    real = d["results"]["real"]["bd_rate_vs_t1"]["t16_matched"]
    saved = "an undefined share of" if real.get("bd_rate_%") is None else f"{num(-real['bd_rate_%'], 0)}%"
    quoted = (f"time stride 16 at stride 1's parameter count needs {saved} fewer bits than stride 1 on real clips "
              f"(95% over clips: {span(real['ci95_over_clips_%'], 0)}), small models briefly trained")
    return lines, quoted


def variable_rate_section() -> tuple[list[str], str]:
    """``voxen_variable_rate.json``: one VoxEn with gain units against the five per-lambda models."""
    d = load("voxen_variable_rate.json")
    t = d["training"]
    lines = ["## One model for every rate", "",
             "`benchmarks/voxen_variable_rate.py`, `benchmarks/results/voxen_variable_rate.json`"
             + (" (**partial**)" if d["partial"] else "") + f": {d['what']}. Warm start: {d['warm_start']}; "
             f"{t['variable_rate']['steps']:,} steps in {num(t['variable_rate']['seconds'] / 60, 0)} min against the "
             f"five models' {t['references_total']['steps']:,} steps in "
             f"{num(t['references_total']['seconds'] / 3600, 1)} h; weights "
             f"{num(d['weights_bytes']['variable_rate_half'] / 1e6, 2)} MB against "
             f"{num(d['weights_bytes']['references_total'] / 1e6, 2)} MB. BD-rate of the one model against the five "
             "over their common PSNR range (positive: it needs more bits).", ""]
    lines += table(["clips", "BD-rate vs the five", "95% over clips", "common PSNR (dB)", "top PSNR: one / five (dB)"],
                   [[name, pct(v["bd_rate_%"]), span(v["bd_rate_ci95_%"]),
                     f"{num(v['common_psnr_db'][0], 1)}-{num(v['common_psnr_db'][1], 1)}",
                     f"{num(v['psnr_span_db']['variable_rate'][1], 1)} / {num(v['psnr_span_db']['references'][1], 1)}"]
                    for name, v in d["summary"].items()]) + [""]
    first = next(iter(d["summary"].values()))
    share = num(100 * t["variable_rate"]["steps"] / t["references_total"]["steps"], 0)
    more = f"{num(abs(first['bd_rate_%']), 0)}% {'more' if first['bd_rate_%'] >= 0 else 'fewer'}"
    quoted = (f"one model with gain units, trained for {share}% of the five models' steps, needs {more} bits "
              f"than they do on held-out synthetic clips (95% over clips: {span(first['bd_rate_ci95_%'], 0)})")
    return lines, quoted


def codec_file_section() -> list[str]:
    """``voxen_codec.json``: the file codec's speed, and VoxEn at a clip's own size."""
    d = load("voxen_codec.json")
    lines = ["## VoxEn files at their own size", "",
             "`benchmarks/voxen_codec.py`, `benchmarks/results/voxen_codec.json` "
             f"({d['meta']['threads']} threads; refinement {d['meta']['refine_steps']} steps): frames per second of "
             "`python -m vaelib.vxn`, and VoxEn against the classic codecs at a clip's own size.", ""]
    lines += table(["clip", "encode (frames/s)", "encode refined", "decode"],
                   [[s["setting"], num(s["one_pass"]["encode_fps"], 1), num(s["refined"]["encode_fps"], 2),
                     num(s["one_pass"]["decode_fps"], 1)] for s in d["speed"]])
    return lines + ["", d["summary"], ""]


# --- chapter 3: event boundaries -------------------------------------------------------------------------------------

def verdict_words(verdict: str) -> str:
    """A pre-registered hypothesis' verdict, as the file states it, in words."""
    return {"holds": "**holds** in every training seed", "rejected": "**the opposite holds** in every training seed",
            "no verdict": "**no verdict**: it did not hold in every training seed",
            "does not hold": "**does not hold**: not in every training seed"}[verdict]


def preregistered_section() -> tuple[list[str], dict[str, tuple[str, str]]]:
    lines = ["## Event boundaries: the pre-registered tests", "",
             "`benchmarks/boundaries.py --preregistered FILE`: hypotheses declared and committed before their data "
             "were drawn, each tested on a new synthetic draw in every training seed, each under the rule its file "
             "declares. A hypothesis holds when its difference has the declared sign with p below its alpha in every "
             "seed.", ""]
    quoted = {}
    for name in ("boundaries_prereg_lead.json", "boundaries_prereg.json", "boundaries_prereg_voxen.json"):
        pre = load(name)["preregistered"]
        rule = RULES[pre.get("declaration", {}).get("rule", "max-T")]
        lines += [f"### `{pre['file']}` (`benchmarks/results/{name}`)", "", f"Rule: {rule}", ""]
        rows = []
        for h in pre["hypotheses"]:
            seeds = "; ".join(f"seed {s}: {num(v['diff'], 3, True)} vs {v['rival']}, p {num(v['p'], 3)}"
                              for s, v in h["per_seed"].items())
            rows.append([h["id"], h["text"], num(h["alpha"], 4), seeds, verdict_words(h["verdict"])])
            quoted[h["id"]] = (h["text"], h["verdict"])
        lines += table(["", "hypothesis", "alpha", "difference per seed", "verdict"], rows) + [""]
    return lines, quoted


RULES = {"lead": "the claiming side's best signal against the other side's strongest, studentized max-T over the "
                 "claiming side's candidates (the rule chapter 3 uses).",
         "max-T": "a declared latent signal against the best pixel baseline, that choice inside a max-T null (an "
                  "earlier rule)."}
SIDE = {"latent_beats_pixel_every_seed": "a latent signal beats the best pixel baseline in every seed",
        "pixel_beats_latent_every_seed": "the best pixel baseline beats every latent signal in every seed"}
METRIC = {"r_observers": "r with the observers", "r_truth": "r with the true boundaries",
          "f1": "F1, coarse truth", "f1_fine": "F1, fine truth"}


def exploratory_section() -> list[str]:
    lines = ["## Event boundaries: the exploratory benchmark", "",
             "`benchmarks/boundaries.py` on draws made with other seeds and sizes than the book's, over several "
             "MMD-VAE training seeds: per seed the best latent signal against the best pixel baseline, both chosen "
             "on the data. A claim is made only where the file says it holds for every seed. `boundaries.json` is "
             "judged by the lead rule the chapter uses; `boundaries_5x90.json` by the earlier rule (both choices "
             "inside one max-T null).", ""]
    for name in ("boundaries.json", "boundaries_5x90.json"):
        d = load(name)
        data = d["meta"]["data"]
        lines += [f"### `benchmarks/results/{name}`: {data['movies']} movies of {num(data['seconds'], 0)} s, "
                  f"data seed {data['data_seed']}, training seeds {', '.join(d['per_seed'])}", ""]
        rows = []
        for metric, words in METRIC.items():
            per_seed = [s["paired"] for s in d["per_seed"].values()]
            diffs = ", ".join(num(p[metric]["diff"], 3, True) for p in per_seed)
            ps = ", ".join(num(p[metric]["p"] if "p" in p[metric] else p[metric]["p_best"], 3) for p in per_seed)
            claim = d["claim"][metric]
            said = [SIDE[k] for k in SIDE if claim[k]] or ["no claim holds for every seed"]
            rows.append([words, ", ".join(dict.fromkeys(claim["best_latent"])),
                         ", ".join(dict.fromkeys(claim["best_pixel"])), diffs, ps, said[0]])
        lines += table(["metric", "best latent", "best pixel", "difference per seed", "p per seed", "verdict"], rows)
        lines.append("")
    return lines


# --- speed and memory ------------------------------------------------------------------------------------------------

def speed_section() -> list[str]:
    lines = ["## Speed and memory", ""]
    mem = RESULTS / "memory.json"
    if mem.exists():
        m = json.loads(mem.read_text())
        which = {"defaults": "the default parameters", "smoke": "the smoke parameters"}[m["parameters"]]
        lines += [f"Peak memory per chapter (`benchmarks/memory.py`, {which}, {m['cpus']} CPUs, "
                  f"`benchmarks/results/memory.json`; target: at most {num(m['target_gib'], 0)} GiB):", ""]
        lines += table(["chapter", "largest process (MiB)", "process tree (MiB)", "seconds"],
                       [[c, num(v["max_process_mib"], 0), num(v["tree_mib"], 0), num(v["seconds"], 0)]
                        for c, v in m["chapters"].items()]) + [""]
        if "chapter2_metrics_step" in m:
            step = m["chapter2_metrics_step"]
            lines += [f"Chapter 2's metrics step alone (`--metrics`: PSNR and SSIM of {step['frames']:,} frames of "
                      f"64 x 64 against their reconstructions, streamed in chunks) adds "
                      f"{num(step['added_mib'], 0)} MiB to the two videos it compares (with the copies of the rows "
                      f"it takes).", ""]
    pre = load("preprocess.json")["results"]
    lines += ["Preprocessing the default synthetic data (`benchmarks/preprocess.py`, `benchmarks/results/"
              "preprocess.json`), frames per second:", ""]
    lines += table(["mode", "frames/s", "frames per CPU-second", "peak RSS (MiB)"],
                   [[k, num(v["frames_per_s"], 0), num(v["frames_per_cpu_s"], 0), num(v["peak_rss_mib"], 0)]
                    for k, v in pre.items()]) + [""]
    for name in ("preprocess_many.json", "preprocess_many_960.json"):
        d = load(name)
        lines.append(f"- `{name}`: {d['clips']} clips ({d['clip']}), 2 worker processes against 1: "
                     f"{num(d['speedup'], 2)}x.")
    mmd = load("mmd_vae.json")
    lines.append(f"- `mmd_vae.json`: the MMD-VAE presets on {mmd['frames']:,} frames, one thread, batch "
                 f"{mmd['batch_size']}: " + "; ".join(
                     f"{k} {num(v['s_per_step'], 3)} s per step, {num(v['budget_val_psnr'], 1)} dB held-out PSNR "
                     f"after {num(mmd['budget_s'], 0)} s" for k, v in mmd["presets"].items()) + ".")
    traj = load("voxen_trajectory.json")
    lines.append(f"- `voxen_trajectory.json`: chapter 3's VoxEn signals on {traj['frames']:,} frames: "
                 f"{num(traj['encode_s'], 1)} s to encode, {num(traj['added_s'], 1)} s in all.")
    speed = load("boundaries.json")["event_model_speed"]
    lines.append(f"- The event models of `vaelib.events` on 10,000 steps of 16 dimensions "
                 f"(`boundaries.json`): {num(speed['sem_10000x16_s'], 2)} s (SEM), "
                 f"{num(speed['bocpd_10000x16_s'], 2)} s (change points).")
    lines.append("")
    for name in ("train_throughput.json", "train_throughput_options.json", "train_throughput_voxen_mixed.json"):
        d = load(name)
        lines += [f"Training throughput, `benchmarks/train_throughput.py` (`{name}`; {d['device_name']}, "
                  f"{d['cpu_count']} cores, load average {num(d['load_average_before'][0], 1)} before): medians of "
                  f"{d['rounds']} runs, frames/s.", ""]
        lines += table(["model", "processes x threads", "variant", "frames/s", "runs"],
                       [[r["model"], f"{r['processes']} x {r['threads_per_process']}", r.get("variant", ""),
                         num(r["frames_per_s"], 0), ", ".join(num(x, 0) for x in r["frames_per_s_runs"])]
                        for r in d["training"]]) + [""]
    return lines


def figures_section() -> list[str]:
    """The headline numbers of the run that made the committed figures (``figures/metrics/<chapter>.json``)."""
    lines = ["## The run behind the figures", ""]
    files = sorted(FIGURE_METRICS.glob("*.json")) if FIGURE_METRICS.exists() else []
    if not files:
        return lines + ["No chapter metrics are committed beside the figures yet: `make book` writes "
                        "`figures/metrics/<chapter>.json` with the figures.", ""]
    for f in files:
        scalars = {k: v for k, v in json.loads(f.read_text()).items() if isinstance(v, (int, float, str))
                   and not isinstance(v, bool)}
        lines += [f"### `figures/metrics/{f.name}`", ""]
        lines += table(["metric", "value"], [[k, num(v, 4) if isinstance(v, float) else str(v)]
                                             for k, v in scalars.items()]) + [""]
    return lines


# --- the page and the README block -----------------------------------------------------------------------------------

def page() -> tuple[str, str]:
    """The results page and the README's results block, as text."""
    rd, rd_quoted = rd_section()
    ablation, ablation_quoted = ablation_section()
    variable, variable_quoted = variable_rate_section()
    pre, pre_quoted = preregistered_section()
    lines = ["# Results", "",
             "Written by `python benchmarks/report.py` from the committed files it names; do not edit it by hand "
             "(`tests/test_docs.py` fails when it differs from what they give). Training is not bitwise "
             "reproducible across machines, so every number here belongs to the file and run it names.", "",
             *rd, *ablation, *variable, *codec_file_section(), *pre, *exploratory_section(), *speed_section(),
             *figures_section()]
    text = "\n".join(lines).rstrip() + "\n"
    held = [k for k, v in pre_quoted.items() if v[1] == "holds"]
    block = "\n".join([
        README_START,
        "- **VoxEn against x264** (`benchmarks/results/voxen_rd.json`): BD-rate on held-out synthetic clips",
        f"  {rd_quoted['synthetic']}; on real clips it never trained on {rd_quoted['real']}.",
        f"- **Does the third dimension pay?** (`benchmarks/results/voxen_ablation.json`): {ablation_quoted}.",
        f"- **One model for every rate** (`benchmarks/results/voxen_variable_rate.json`): {variable_quoted}.",
        f"- **Event boundaries** (`benchmarks/results/boundaries_prereg*.json`): of {len(pre_quoted)} hypotheses "
        f"declared before their data were drawn,",
        f"  {len(held)} held in every training seed"
        + (": " + "; ".join(f"{k}, {pre_quoted[k][0]}" for k in held) if held else "") + ".",
        README_END])
    return text, block


def with_block(readme: str, block: str) -> str:
    """``readme`` with its results block replaced by ``block``; an error if the markers are missing."""
    pattern = re.compile(re.escape(README_START) + r".*?" + re.escape(README_END), re.S)
    if not pattern.search(readme):
        raise ValueError(f"{README} has no results block ({README_START} ... {README_END})")
    return pattern.sub(lambda _: block, readme)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 where a file would change")
    args = ap.parse_args(argv)
    text, block = page()
    readme = with_block(README.read_text(), block)
    stale = [p for p, new in ((PAGE, text), (README, readme)) if not p.exists() or p.read_text() != new]
    if args.check:
        for p in stale:
            print(f"{p.relative_to(PROJECT_ROOT)} differs from its sources: run python benchmarks/report.py")
        return 1 if stale else 0
    for p, new in ((PAGE, text), (README, readme)):
        with atomic_path(p, suffix=p.suffix) as tmp:
            tmp.write_text(new)
        print(f"wrote {p.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
