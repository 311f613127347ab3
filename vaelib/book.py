"""Run the book's chapters headless, in order, through papermill.

``python -m vaelib.book`` runs every chapter with its full-size defaults on the built-in synthetic
data; ``--smoke`` runs the same code path with the small parameters the tests use. Executed
notebooks go to ``build/notebooks/`` (git ignores it); figures go to ``figures/``.
"""
from __future__ import annotations

import argparse
import ast
import os
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def notebook_source(name: str | Path) -> Path:
    """The notebook file for ``name``: a chapter name (``notebooks/<name>.py``) or a path to a ``.py``/``.ipynb``."""
    if str(name).endswith((".py", ".ipynb")):
        src = Path(name).expanduser().resolve()
    else:
        src = NOTEBOOKS_DIR / f"{name}.py"
    if not src.exists():
        raise FileNotFoundError(f"no chapter notebook {src}")
    return src


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


def _parameters_cell(notebook: str | Path) -> tuple[Path, str, ast.Module]:
    import jupytext

    src = notebook_source(notebook)
    cells = [c for c in jupytext.read(src).cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        raise ValueError(f"{src} has no cell tagged 'parameters'")
    try:
        return src, cells[0].source, ast.parse(cells[0].source)
    except SyntaxError as e:
        raise ValueError(f"the parameters cell of {src} is not valid Python: {e}") from None


def _assignments(tree: ast.Module) -> Iterator[tuple[str, ast.stmt]]:
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
            if isinstance(node, ast.AnnAssign) else []
        for t in targets:
            if isinstance(t, ast.Name):
                yield t.id, node


def declared_parameters(notebook: str | Path) -> dict[str, Any]:
    """Name -> default of each assignment in the notebook's cell tagged ``parameters`` (Python's own parser).

    A default that is not a plain literal (an expression) is given as ``None`` and accepts any value.
    """
    return _defaults(_parameters_cell(notebook)[2])


def _defaults(tree: ast.Module) -> dict[str, Any]:
    declared: dict[str, Any] = {}
    for name, node in _assignments(tree):
        if name not in declared:
            try:
                declared[name] = ast.literal_eval(node.value) if node.value is not None else None
            except ValueError:
                declared[name] = None
    return declared


def _type_name(value: Any) -> str:
    return {bool: "True or False", int: "an integer", float: "a number", str: "a string", list: "a list",
            tuple: "a list", dict: "a dict"}.get(type(value), type(value).__name__)


def _fits(value: Any, default: Any) -> bool:
    """Whether ``value`` has the kind of the parameter's ``default`` (an int is a fine float; a bool is no int)."""
    if default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, (str, os.PathLike))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def check_parameters(notebook: str | Path, parameters: dict[str, Any]) -> dict[str, Any]:
    """Refuse, before anything runs, a parameter the notebook does not declare or whose type is not its default's.

    Papermill itself would inject an unknown name silently (the run goes on with the default) and pass
    ``steps="ten"`` through to fail deep inside. Returns the parameters with paths as strings.
    """
    src, source, tree = _parameters_cell(notebook)  # read and parsed once
    declared = _defaults(tree)
    lines = source.splitlines()
    # a parameter whose comment offers None (``z_dim = 16  # None: the preset's own``) also takes None
    nullable = {name for name, node in _assignments(tree) if "None" in lines[node.lineno - 1].partition("#")[2]}
    listing = ", ".join(f"{k}={v!r}" for k, v in declared.items())
    unknown = [k for k in parameters if k not in declared]
    if unknown:
        raise ValueError(f"{src.name} has no parameter(s) {unknown}; "
                         f"its parameters (with defaults) are: {listing}")
    for k, v in parameters.items():
        if not _fits(v, declared[k]) and not (v is None and k in nullable):
            raise TypeError(f"{src.name}: parameter {k} must be {_type_name(declared[k])} "
                            f"like its default {declared[k]!r}, not {v!r} ({type(v).__name__})")
    return {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in parameters.items()}


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


def run_book(chapters: list[str] | None = None, smoke: bool = False, data_dir: str | None = None,
             figures_dir: str | None = None, out_dir: Path | None = None,
             progress: bool = True) -> list[Path]:
    """Run ``chapters`` (all by default) in order; return the executed notebooks' paths."""
    done = []
    out_dir = mark_output(claim_output(Path(out_dir or BUILD_DIR / "notebooks"), "executed chapters",
                                       own=("*.ipynb",)), "executed chapters")
    for name in chapters or CHAPTERS:
        params: dict[str, Any] = {**found_data_parameters().get(name, {}), **(SMOKE_PARAMETERS[name] if smoke else {})}
        if data_dir is not None:
            params["data_dir"] = str(data_dir)
        if figures_dir is not None:
            params["figures_dir"] = str(figures_dir)
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
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("chapters", nargs="*", help=f"chapters to run (default: all of {CHAPTERS})")
    ap.add_argument("--smoke", action="store_true", help="small parameters, as in CI")
    ap.add_argument("--data-dir", help="data folder (default: each chapter's default, data/)")
    ap.add_argument("--figures-dir", help="figures folder (default: figures/)")
    ap.add_argument("--out", type=Path, help="folder for executed notebooks (default: build/notebooks)")
    args = ap.parse_args(argv)
    unknown = [c for c in args.chapters if c not in CHAPTERS]
    if unknown:
        ap.error(f"unknown chapter(s) {unknown}; choose from {CHAPTERS}")
    paths = run_book(args.chapters or None, smoke=args.smoke, data_dir=args.data_dir,
                     figures_dir=args.figures_dir, out_dir=args.out)
    for p in paths:
        print(f"executed: {p.relative_to(PROJECT_ROOT) if p.is_relative_to(PROJECT_ROOT) else p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
