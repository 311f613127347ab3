"""Run one notebook through papermill over a grid of parameters, in parallel, and collect its metrics.

    python -m vaelib.sweep 02_mmd_vae --grid z_dim=4,8,16,32 kernel=rbf,imq --jobs 2 \\
        --set steps=500 threads=1 --out build/sweeps/mmd_vae

``NOTEBOOK`` is a chapter name (``notebooks/<name>.py``) or a path to a ``.py``/``.ipynb`` notebook.
Every combination of the ``--grid`` values is one run; ``--set`` fixes a parameter for all runs.
Values are read as Python literals (``4``, ``1e-3``, ``True``, ``"rbf"``); anything else is a string.

The convention between the sweep and a notebook
-----------------------------------------------
* The notebook's ``parameters`` cell declares ``metrics_path`` (for example
  ``metrics_path = ""`` meaning "the chapter's usual place", such as ``{data_dir}/mmd_vae/metrics.json``).
  The notebook writes its metrics there as one JSON object: numbers, strings, booleans, nested
  objects (flattened to ``a.b`` columns). The sweep sets ``metrics_path`` to ``<run folder>/metrics.json``.
* If the parameters cell also declares ``run_dir`` and/or ``figures_dir``, the sweep sets them to
  ``<run folder>`` and ``<run folder>/figures``, so parallel runs never write over each other's model
  files or figures (a notebook that writes model files elsewhere should take ``run_dir``).
* Every parameter the sweep passes must be declared in the parameters cell; a typo is an error
  before anything runs.

Outputs, under ``--out`` (default ``build/sweeps/<notebook name>/``)::

    <NNN>-<name>=<value>-.../   one folder per run: <notebook>.ipynb (executed), parameters.json,
                                metrics.json, figures/, error.txt (only if the run failed)
    results.csv                 one row per run: run, status, the grid parameters, the metrics
                                (a metric named like a parameter becomes metrics.<name>), notebook, error
    results.png                 metrics against the first grid parameter, one line per combination
                                of the others (default: the numeric metrics that vary; --plot picks)

A failed run (a cell raised, or no metrics were written) is reported with the path of its executed
notebook and the error; the other runs go on, and the command exits with status 1. Each finished run
leaves ``run.json`` (its parameters, the notebook's hash, its status and metrics); a sweep into the same
folder skips the runs that finished there with the same parameters and notebook.

On a cluster, ``--shard i/N`` runs only the i-th of N shares of the grid (run k belongs to shard
``k % N + 1``), one task of a job array each (``sbatch --array=1-N``), and writes
``shards/i-of-N.json`` when its share is done; ``--collect`` then merges every run into ``results.csv``
and ``results.png``, or names the shards and runs still missing. Each run's kernel
gets ``OMP_NUM_THREADS`` = cores / jobs unless it is already set, and so does the notebook's ``threads``
parameter when it declares one and it is not given, so parallel runs do not fight.

Every chapter of the book declares ``run_dir``, ``metrics_path`` and ``threads`` (see ``vaelib.chapter``),
so every chapter can be swept.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import importlib
import itertools
import json
import math
import os
import re
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .book import run_chapter
from .parameters import check_parameters, declared_parameters, notebook_source, parse_assignment
from .paths import BUILD_DIR, PROJECT_ROOT, atomic_path, claim_output, mark_output, resolve, write_json
from .plots import plt, save_figure

RESERVED = ("metrics_path", "run_dir")
RUN_RECORD = "run.json"         # written into a run folder when the run has finished (ok or failed)
UNCOMPARED = ("threads",)       # parameters that may differ between a finished run and its rerun (the machine's)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def grid_runs(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the first parameter varying slowest."""
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]


def run_name(index: int, params: dict[str, Any]) -> str:
    """A folder name for run ``index``: ``003-z_dim=16-kernel=imq`` (unsafe characters become ``_``)."""
    parts = [f"{index:03d}"] + [f"{k}={v}" for k, v in params.items()]
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", "-".join(parts))[:120]


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    if isinstance(obj, (int, float, str, bool)) or obj is None:
        return {prefix[:-1]: obj}
    return {}  # lists and other structures are left to the metrics.json itself


def run_one(notebook: str, run_dir: str, parameters: dict[str, Any], threads: int = 0) -> dict[str, Any]:
    """Execute one run into ``run_dir``; return its record (never raises for a failing notebook)."""
    from papermill import PapermillExecutionError

    if threads > 0:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        os.environ.setdefault("MKL_NUM_THREADS", str(threads))
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in (Path(parameters["metrics_path"]), out / "error.txt", out / RUN_RECORD):  # an earlier sweep's
        stale.unlink(missing_ok=True)
    write_json(out / "parameters.json", parameters, default=str)
    executed = out / f"{notebook_source(notebook).stem}.ipynb"
    record: dict[str, Any] = {"run": out.name, "status": "ok", "notebook": str(executed), "error": "",
                              "metrics": {}}
    error = ""
    try:
        run_chapter(notebook, parameters, out_dir=out, progress=False)
    except PapermillExecutionError as e:
        error = f"{e.ename}: {e.evalue} (cell {e.exec_count})"
        (out / "error.txt").write_text(_ANSI.sub("", str(e)))
    except Exception as e:  # a kernel that died, a notebook that could not be read, ...
        error = f"{type(e).__name__}: {e}"
        (out / "error.txt").write_text(error + "\n")
    if not error:
        metrics_path = Path(parameters["metrics_path"])
        try:
            metrics = json.loads(metrics_path.read_text())
            if not isinstance(metrics, dict):
                raise ValueError(f"expected a JSON object, got {type(metrics).__name__}")
            record["metrics"] = _flatten(metrics)
        except FileNotFoundError:
            error = f"the notebook wrote no metrics to {metrics_path}"
        except ValueError as e:
            error = f"unreadable metrics in {metrics_path}: {e}"
        if error:
            (out / "error.txt").write_text(error + "\n")
    if error:
        record.update(status="failed", error=error)
    write_json(out / RUN_RECORD, {"parameters": parameters, "notebook_sha256": notebook_hash(notebook), **record},
               default=str)
    return record


def notebook_hash(notebook: str | Path) -> str:
    """The SHA-256 of the notebook's source: a finished run is reused only for the same notebook."""
    return hashlib.sha256(notebook_source(notebook).read_bytes()).hexdigest()


def finished_run(run_dir: str | Path, parameters: dict[str, Any], sha256: str,
                 ok_only: bool = True) -> dict[str, Any] | None:
    """The record of the run that finished in ``run_dir`` with these ``parameters`` (``threads`` aside) and this
    notebook, or None (none, another run's, or a failed one when ``ok_only``)."""
    try:
        rec = json.loads((Path(run_dir) / RUN_RECORD).read_text())
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("notebook_sha256") != sha256:
        return None
    same = {k: v for k, v in json.loads(json.dumps(parameters, default=str)).items() if k not in UNCOMPARED}
    if {k: v for k, v in rec.get("parameters", {}).items() if k not in UNCOMPARED} != same:
        return None
    if ok_only and rec.get("status") != "ok":
        return None
    return {k: rec[k] for k in ("run", "status", "notebook", "error", "metrics")}


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` (shard i of N, 1 <= i <= N) as ``(i, N)``; a clear error otherwise."""
    i, sep, n = text.partition("/")
    try:
        shard = (int(i), int(n))
    except ValueError:
        shard = (0, 0)
    if not sep or not 1 <= shard[0] <= shard[1]:
        raise ValueError(f"--shard {text}: expected i/N with 1 <= i <= N (e.g. 1/4 for the first of 4 shards; "
                         f"SLURM: --shard ${{SLURM_ARRAY_TASK_ID}}/N with --array=1-N)")
    return shard


def shard_of(index: int, shards: int) -> int:
    """The shard (1 to ``shards``) that runs grid run ``index`` (0-based): every ``shards``-th run, round-robin."""
    return index % shards + 1


def write_table(records: list[dict[str, Any]], grid_names: list[str], path: Path) -> Path:
    """Write one CSV row per run (run, status, grid parameters, metrics, notebook, error), atomically."""
    metric_names: list[str] = []
    for r in records:
        metric_names += [m for m in r["metrics"] if m not in metric_names]
    column = {m: f"metrics.{m}" if m in grid_names or m in ("run", "status", "notebook", "error") else m
              for m in metric_names}  # a metric named like a parameter (z_dim) keeps its own column
    columns = ["run", "status", *grid_names, *column.values(), "notebook", "error"]
    with atomic_path(path, suffix=".csv") as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=columns)
            w.writeheader()
            for r in records:
                row = {"run": r["run"], "status": r["status"], "notebook": r["notebook"], "error": r["error"]}
                row.update({k: r["parameters"][k] for k in grid_names})
                row.update({column[m]: v for m, v in r["metrics"].items()})
                w.writerow(row)
    return path


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def varying_metrics(records: list[dict[str, Any]], grid_names: list[str]) -> list[str]:
    """The numeric metrics of the successful runs that differ between them, grid parameters excepted."""
    ok = [r for r in records if r["status"] == "ok"]
    names: list[str] = []
    for r in ok:
        names += [m for m, v in r["metrics"].items() if _is_number(v) and m not in names and m not in grid_names]
    return [m for m in names if len({r["metrics"].get(m) for r in ok}) > 1]


def plot_results(records: list[dict[str, Any]], grid_names: list[str], path: Path,
                 metrics: list[str] | None = None, max_metrics: int = 9) -> Path | None:
    """Metrics against the first grid parameter, one line per combination of the others.

    ``metrics``: the names to draw; by default every numeric metric that varies between the runs
    and is not itself a grid parameter (at most ``max_metrics``). Failed runs leave gaps. Returns
    None (and draws nothing) when there is no such metric.
    """
    ok = [r for r in records if r["status"] == "ok"]
    if metrics is None:
        metrics = varying_metrics(records, grid_names)[:max_metrics]
    missing = [m for m in metrics if not any(_is_number(r["metrics"].get(m)) for r in ok)]
    if missing:
        print(f"not drawn, no run has a number for: {', '.join(missing)}")
        metrics = [m for m in metrics if m not in missing]
    if not metrics:
        return None
    x_name, others = grid_names[0], grid_names[1:]
    xs = list(dict.fromkeys(r["parameters"][x_name] for r in records))
    numeric_x = all(_is_number(x) for x in xs)
    pos = {x: (x if numeric_x else i) for i, x in enumerate(xs)}
    ncols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 3 * nrows), squeeze=False)
    groups = list(dict.fromkeys(tuple(r["parameters"][k] for k in others) for r in records))
    for ax, m in zip(axes.flat, metrics):
        for g in groups:
            pts = sorted((pos[r["parameters"][x_name]], r["metrics"][m]) for r in ok
                         if tuple(r["parameters"][k] for k in others) == g and _is_number(r["metrics"].get(m)))
            if pts:
                label = ", ".join(f"{k}={v}" for k, v in zip(others, g)) or None
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=label)
        ax.set_xlabel(x_name)
        ax.set_title(m, fontsize=10)
        if numeric_x and min(xs) > 0 and max(xs) / min(xs) >= 8:
            ax.set_xscale("log", base=2)
        ax.set_xticks([pos[x] for x in xs], [str(x) for x in xs])
        ax.minorticks_off()
        if others and len(groups) > 1:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    fig.suptitle(f"sweep of {len(records)} runs ({len(records) - len(ok)} failed)", fontsize=10)
    fig.tight_layout()
    out = save_figure(fig, path.parent, path.name)
    plt.close(fig)
    return out


def plan_runs(notebook: str | Path, grid: dict[str, list[Any]], fixed: dict[str, Any] | None = None,
              out_dir: str | Path | None = None, jobs: int = 1) -> tuple[Path, Path, list[tuple], int]:
    """Check the sweep's parameters (before anything runs) and lay out its runs: the notebook, the sweep folder,
    ``(index, run folder, all parameters, grid parameters)`` per run, and each run's threads."""
    src = notebook_source(notebook)
    fixed = dict(fixed or {})
    if not grid:
        raise ValueError("the grid is empty: give at least one --grid name=v1,v2")
    both = set(grid) & set(fixed)
    if both:
        raise ValueError(f"parameters {sorted(both)} are both in the grid and fixed")
    declared = declared_parameters(src)
    if "metrics_path" not in declared:
        raise ValueError(f"{src} declares no metrics_path in its parameters cell; a swept notebook must "
                         f"write its metrics as JSON to metrics_path (see vaelib.sweep)")
    given = set(grid) | set(fixed)
    unknown = sorted(given - set(declared))
    if unknown:
        raise ValueError(f"{src} has no parameter(s) {unknown} in its parameters cell "
                         f"(it declares {sorted(declared)})")
    reserved = sorted(given & set(RESERVED))
    if reserved:
        raise ValueError(f"{reserved} are set by the sweep for each run and cannot be given")
    for params in grid_runs(grid):                  # wrong types refused before the first run starts
        check_parameters(src, {**fixed, **params})

    out = resolve(out_dir) if out_dir is not None else BUILD_DIR / "sweeps" / src.stem
    mark_output(claim_output(out, "sweep", own=("[0-9][0-9][0-9]*", "results.csv", "results.png")), "sweep")
    jobs = max(1, int(jobs))
    threads = max(1, (os.cpu_count() or 1) // jobs)
    todo = []
    for i, params in enumerate(grid_runs(grid)):
        run_dir = out / run_name(i, params)
        p = {**fixed, **params, "metrics_path": str(run_dir / "metrics.json")}
        if "run_dir" in declared:
            p["run_dir"] = str(run_dir)
        if "figures_dir" in declared and "figures_dir" not in p:
            p["figures_dir"] = str(run_dir / "figures")
        if "threads" in declared and "threads" not in p:
            p["threads"] = threads
        todo.append((i, run_dir, p, params))
    return src, out, todo, threads


def sweep(notebook: str | Path, grid: dict[str, list[Any]], fixed: dict[str, Any] | None = None,
          out_dir: str | Path | None = None, jobs: int = 1, progress: bool = True,
          plot_metrics: list[str] | None = None, shard: tuple[int, int] | None = None) -> list[dict[str, Any]]:
    """Run ``notebook`` once per combination of ``grid`` (plus ``fixed``), ``jobs`` at a time.

    Returns one record per run, in grid order: ``run``, ``status`` ("ok" or "failed"), ``parameters``,
    ``metrics`` (flattened), ``notebook`` (the executed notebook's path) and ``error``. A run that finished in
    its folder with the same parameters and notebook is not run again. Writes ``results.csv`` and
    ``results.png`` into ``out_dir``; see the module docstring for the layout. With ``shard=(i, N)`` only the
    runs of shard i run, ``shards/i-of-N.json`` says so when they are done, and :func:`collect` writes the table.
    """
    src, out, todo, threads = plan_runs(notebook, grid, fixed, out_dir, jobs)
    if shard is not None:
        k, n = shard
        if not 1 <= k <= n:
            raise ValueError(f"shard {k}/{n}: expected 1 <= i <= N")
        todo = [t for t in todo if shard_of(t[0], n) == k]
    out.mkdir(parents=True, exist_ok=True)
    sha = notebook_hash(src)
    records: dict[int, dict[str, Any]] = {}
    for i, run_dir, p, params in todo:
        rec = finished_run(run_dir, p, sha)
        if rec is not None:
            records[i] = {**rec, "parameters": params}
    if records and progress:
        print(f"{len(records)} of {len(todo)} runs already finished with the same parameters: not run again")
    left = [t for t in todo if t[0] not in records]

    worker = importlib.import_module("vaelib.sweep").run_one  # picklable even under `python -m`
    bar = tqdm(total=len(left), desc=f"sweep {src.stem}", unit="run", disable=not progress)
    if left:
        with ProcessPoolExecutor(max_workers=min(jobs, len(left)), mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(worker, str(src), str(run_dir), p, threads): (i, run_dir, p, params)
                       for i, run_dir, p, params in left}
            for fut in as_completed(futures):
                i, run_dir, p, params = futures[fut]
                try:
                    rec = fut.result()
                except Exception as e:  # the worker process itself died
                    rec = {"run": run_dir.name, "status": "failed", "metrics": {},
                           "error": f"{type(e).__name__}: {e}", "notebook": str(run_dir / f"{src.stem}.ipynb")}
                rec["parameters"] = params
                records[i] = rec
                if rec["status"] != "ok":
                    bar.write(f"FAILED {rec['run']}: {rec['notebook']}: {rec['error']}")
                bar.update(1)
    bar.close()
    done = [records[i] for i in sorted(records)]
    if shard is not None:
        write_json(out / "shards" / f"{shard[0]}-of-{shard[1]}.json",
                   {"shard": list(shard), "runs": [{"run": r["run"], "status": r["status"]} for r in done]})
        return done
    write_table(done, list(grid), out / "results.csv")
    plot_results(done, list(grid), out / "results.png", metrics=plot_metrics)
    return done


def collect(notebook: str | Path, grid: dict[str, list[Any]], fixed: dict[str, Any] | None = None,
            out_dir: str | Path | None = None, plot_metrics: list[str] | None = None) -> list[dict[str, Any]]:
    """Merge the runs of a sharded sweep (the same notebook, grid, fixed parameters and folder) into
    ``results.csv`` and ``results.png``; refuse, naming the shards not done and the runs missing, while any is."""
    src, out, todo, _ = plan_runs(notebook, grid, fixed, out_dir)
    sha = notebook_hash(src)
    markers = sorted((out / "shards").glob("*-of-*.json"), key=lambda m: m.stat().st_mtime) \
        if (out / "shards").is_dir() else []
    counts = [int(m.stem.split("-of-")[1]) for m in markers if m.stem.split("-of-")[1].isdigit()]
    records, missing = [], []
    for i, run_dir, p, params in todo:
        rec = finished_run(run_dir, p, sha, ok_only=False)
        if rec is None:
            missing.append((i, run_dir.name))
        else:
            records.append({**rec, "parameters": params})
    if missing:
        n = counts[-1] if counts else None  # the shard count of the latest sharded run
        shards = f"shards not finished: {sorted({f'{shard_of(i, n)}/{n}' for i, _ in missing})}; " if n else ""
        raise ValueError(f"cannot collect {out}: {shards}{len(missing)} of {len(todo)} runs missing "
                         f"({', '.join(name for _, name in missing[:10])}{', ...' if len(missing) > 10 else ''}); "
                         f"run the missing shards (--shard i/N) first")
    write_table(records, list(grid), out / "results.csv")
    plot_results(records, list(grid), out / "results.png", metrics=plot_metrics)
    return records


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vaelib.sweep", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebook", help="chapter name (e.g. 02_mmd_vae) or path to a .py/.ipynb notebook")
    ap.add_argument("--grid", nargs="+", required=True, metavar="NAME=V1,V2",
                    help="parameters to sweep, every combination is one run")
    ap.add_argument("--set", nargs="+", action="extend", default=[], metavar="NAME=VALUE",
                    help="parameters fixed for every run (e.g. data_dir=data epochs=3)")
    ap.add_argument("--jobs", "-j", type=int, default=1, help="runs at the same time (default 1)")
    ap.add_argument("--out", help="sweep folder (default build/sweeps/<notebook>)")
    ap.add_argument("--shard", metavar="I/N", help="run only shard I of N of the grid (e.g. a SLURM array task: "
                    "--shard ${SLURM_ARRAY_TASK_ID}/N with --array=1-N); then --collect")
    ap.add_argument("--collect", action="store_true", help="merge the finished runs of the shards into results.csv")
    ap.add_argument("--plot", metavar="METRIC,...",
                    help="metrics to draw in results.png (default: every numeric metric that varies, at most 9)")
    args = ap.parse_args(argv)
    try:
        grid = dict(parse_assignment(g, many=True) for g in args.grid)
        fixed = dict(parse_assignment(s, many=False) for s in args.set)
        plot = [m.strip() for m in args.plot.split(",") if m.strip()] if args.plot else None
        if args.collect and args.shard:
            raise ValueError("--collect merges every shard: give it without --shard")
        if args.collect:
            records = collect(args.notebook, grid, fixed, out_dir=args.out, plot_metrics=plot)
        else:
            shard = parse_shard(args.shard) if args.shard else None
            records = sweep(args.notebook, grid, fixed, out_dir=args.out, jobs=args.jobs, plot_metrics=plot,
                            shard=shard)
    except (ValueError, TypeError, FileNotFoundError) as e:
        ap.error(str(e))
    failed = [r for r in records if r["status"] != "ok"]
    if args.shard:
        print(f"shard {args.shard}: {len(records) - len(failed)} of {len(records)} runs ok; when every shard is done, "
              f"merge them with --collect")
    else:
        out = Path(records[0]["notebook"]).parent.parent
        show = (lambda p: p.relative_to(PROJECT_ROOT) if p.is_relative_to(PROJECT_ROOT) else p)
        print(f"{len(records) - len(failed)} of {len(records)} runs ok; table {show(out / 'results.csv')}, "
              f"figure {show(out / 'results.png')}")
    for r in failed:
        print(f"failed {r['run']}: {r['error']}\n    executed notebook: {r['notebook']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
