"""Run the book's chapters headless, in order, through papermill.

``python -m vaelib.book`` runs every chapter with its full-size defaults on the built-in synthetic
data; ``--smoke`` runs the same code path with the small parameters the tests use;
``--set name=value ...`` sets chapter parameters (values read as in ``python -m vaelib.sweep``: a Python
literal if it is one, else a string), each for the chosen chapters that declare it. Executed
notebooks go to ``build/notebooks/`` (git ignores it); figures go to ``figures/``.

Every parameter is checked before a kernel starts (``vaelib.parameters.check_parameters``), and again by each
chapter in its first code cell.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from .parameters import check_parameters, declared_parameters, notebook_source, parse_assignment
from .paths import BUILD_DIR, NOTEBOOKS_DIR, PROJECT_ROOT, ZACKS_DAT, claim_output, mark_output

# The chapters, in reading order: every numbered notebook in notebooks/ (01_preprocess, 02_mmd_vae, ...).
CHAPTERS = sorted(p.stem for p in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.py"))

# Where a chapter run by the book writes a copy of its metrics: vaelib.chapter.FIGURE_METRICS_ENV, named again
# here so that the book's process does not import torch.
FIGURE_METRICS_ENV = "VAELIB_FIGURE_METRICS"

# Small parameters for CI: the same code path as a full run, minutes instead of hours.
# Each chapter owns its own entry; `data_dir` and `figures_dir` are added by run_book.
SMOKE_PARAMETERS: dict[str, dict[str, Any]] = {
    "01_preprocess": {"synthetic_movies": 2, "synthetic_seconds": 20, "activity_seconds": [6.0, 9.0],
                      "n_observers": 8},
    "02_mmd_vae": {"steps": 60, "batch_size": 16, "z_dim": 4, "threads": 1},
    "03_event_boundaries": {"n_null": 200, "n_boot": 200, "n_perm": 20, "bin_sizes": [0.2, 1.0, 4.0]},
    "04_voxen": {"pretrained": False, "T": 8, "channels": [8, 16, 4], "strides": [[2, 2, 2], [2, 2, 2], [2, 1, 1]],
                 "lambdas": [0.003, 0.03], "steps": 15, "batch_size": 2, "threads": 1, "n_eval_clips": 2,
                 "refine_steps": 3,
                 "real_videos": ["carphone_pristine"], "real_clips_per_video": 1,
                 "codec_settings": {"x264": [26, 38, 51], "x265": [26, 38, 51], "vp9": [30, 63], "av1": [30, 63],
                                    "mjpeg": [4, 31]}},
}


def found_data_parameters() -> dict[str, dict[str, Any]]:
    """Parameters for data found beside the project: the real Zacks presses when ``../shared`` has them."""
    return {"03_event_boundaries": {"zacks_dat": str(ZACKS_DAT)}} if ZACKS_DAT.exists() else {}


def notebook_to_ipynb(name: str | Path, out_dir: Path) -> Path:
    """Write the ``.ipynb`` of ``name`` (see ``notebook_source``) into ``out_dir`` and return its path."""
    import jupytext

    src = notebook_source(name)
    nb = jupytext.read(src)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    out_dir.mkdir(parents=True, exist_ok=True)
    dst = out_dir / f"{src.stem}.input.ipynb"
    jupytext.write(nb, dst, fmt="ipynb")
    return dst


KERNEL_START_TRIES = 3  # a kernel that dies before it answers is started again, up to this many times in all
_KERNEL_START_FAILURES = ("Kernel died before replying to kernel_info", "Kernel didn't respond in")


def run_chapter(name: str | Path, parameters: dict[str, Any] | None = None,
                out_dir: Path | None = None, progress: bool = True) -> Path:
    """Execute one chapter (a name or a notebook path) through papermill; return the executed notebook's path.

    The notebook runs with the project root as its working directory. ``parameters`` are checked first
    (:func:`check_parameters`). A failing cell raises ``papermill.PapermillExecutionError``; the executed
    notebook with the error is kept for reading. A kernel that dies before answering (no cell has run) is
    started again, up to ``KERNEL_START_TRIES`` times.
    """
    import papermill as pm

    parameters = check_parameters(name, parameters or {})
    out_dir = Path(out_dir or BUILD_DIR / "notebooks")
    src = notebook_to_ipynb(name, out_dir)
    dst = out_dir / f"{notebook_source(name).stem}.ipynb"
    try:
        for attempt in range(KERNEL_START_TRIES):
            try:
                pm.execute_notebook(
                    str(src), str(dst), parameters=parameters, cwd=str(PROJECT_ROOT),
                    kernel_name="python3", progress_bar=progress, log_output=False,
                )
                break
            except RuntimeError as e:
                # the kernel never started (e.g. kernels launched at once in a sweep picked the same free port:
                # "ZMQError: Address already in use"); no cell ran, so starting again is safe
                if attempt + 1 == KERNEL_START_TRIES or not any(m in str(e) for m in _KERNEL_START_FAILURES):
                    raise
                time.sleep(random.uniform(0.5, 2.0))
    finally:
        src.unlink(missing_ok=True)
    return dst


def book_parameters(chapters: list[str], smoke: bool = False, data_dir: str | None = None,
                    figures_dir: str | None = None,
                    settings: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Each chapter's parameters for a run of ``chapters``, all checked before any runs.

    Found data (:func:`found_data_parameters`), then the smoke sizes, then ``data_dir``/``figures_dir``, then
    ``settings`` (``--set``), each name for the chapters that declare it. A setting no chosen chapter declares is
    refused, listing every chosen chapter's parameters.
    """
    settings = dict(settings or {})
    declared = {name: declared_parameters(name) for name in chapters}
    unclaimed = [k for k in settings if not any(k in d for d in declared.values())]
    if unclaimed:
        listing = "; ".join(f"{name}: {', '.join(d)}" for name, d in declared.items())
        raise ValueError(f"no chosen chapter has parameter(s) {unclaimed}; their parameters are {listing}")
    out = {}
    for name in chapters:
        params: dict[str, Any] = {**found_data_parameters().get(name, {}), **(SMOKE_PARAMETERS[name] if smoke else {})}
        if data_dir is not None:
            params["data_dir"] = str(data_dir)
        if figures_dir is not None:
            params["figures_dir"] = str(figures_dir)
        params.update({k: v for k, v in settings.items() if k in declared[name]})
        out[name] = check_parameters(name, params)
    return out


def run_book(chapters: list[str] | None = None, smoke: bool = False, data_dir: str | None = None,
             figures_dir: str | None = None, out_dir: Path | None = None,
             progress: bool = True, settings: dict[str, Any] | None = None) -> list[Path]:
    """Run ``chapters`` (all by default) in order; return the executed notebooks' paths.

    ``settings``: parameters given by name (``--set``), each for the chapters that declare it
    (:func:`book_parameters`); every chapter's parameters are checked before the first one runs.
    """
    plan = book_parameters(list(chapters or CHAPTERS), smoke, data_dir, figures_dir, settings)
    out_dir = mark_output(claim_output(Path(out_dir or BUILD_DIR / "notebooks"), "executed chapters",
                                       own=("*.ipynb",)), "executed chapters")
    done = []
    for name, params in plan.items():
        print(f"== {name} {params if params else '(defaults)'}", flush=True)
        # the chapter's metrics also go beside its figures (vaelib.chapter.write_metrics reads this variable)
        before = os.environ.get(FIGURE_METRICS_ENV)
        os.environ[FIGURE_METRICS_ENV] = str(Path(params.get("figures_dir", "figures")) / "metrics" / f"{name}.json")
        try:
            done.append(run_chapter(name, params, out_dir=out_dir, progress=progress))
        finally:
            if before is None:
                del os.environ[FIGURE_METRICS_ENV]
            else:
                os.environ[FIGURE_METRICS_ENV] = before
    return done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vaelib.book", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("chapters", nargs="*", help=f"chapters to run (default: all of {CHAPTERS})")
    ap.add_argument("--smoke", action="store_true", help="small parameters, as in CI")
    ap.add_argument("--set", nargs="+", action="extend", default=[], metavar="NAME=VALUE",
                    help="chapter parameters (e.g. source=movies/ annotations=presses.dat steps=500), "
                         "each for the chosen chapters that declare it")
    ap.add_argument("--data-dir", help="data folder (default: each chapter's default, data/)")
    ap.add_argument("--figures-dir", help="figures folder (default: figures/)")
    ap.add_argument("--out", type=Path, help="folder for executed notebooks (default: build/notebooks)")
    args = ap.parse_args(argv)
    unknown = [c for c in args.chapters if c not in CHAPTERS]
    if unknown:
        ap.error(f"unknown chapter(s) {unknown}; choose from {CHAPTERS}")
    try:
        settings = dict(parse_assignment(s, many=False) for s in args.set)
        book_parameters(args.chapters or CHAPTERS, args.smoke, args.data_dir, args.figures_dir, settings)
    except (ValueError, TypeError, FileNotFoundError) as e:
        ap.error(str(e))
    paths = run_book(args.chapters or None, smoke=args.smoke, data_dir=args.data_dir,
                     figures_dir=args.figures_dir, out_dir=args.out, settings=settings)
    for p in paths:
        print(f"executed: {p.relative_to(PROJECT_ROOT) if p.is_relative_to(PROJECT_ROOT) else p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
