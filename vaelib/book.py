"""Run the book's chapters headless, in order, through papermill.

``python -m vaelib.book`` runs every chapter with its full-size defaults on the built-in synthetic
data; ``--smoke`` runs the same code path with the small parameters the tests use. Executed
notebooks go to ``build/notebooks/`` (git ignores it); figures go to ``figures/``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .paths import BUILD_DIR, NOTEBOOKS_DIR, PROJECT_ROOT, ZACKS_DAT

# The chapters, in reading order: every numbered notebook in notebooks/ (01_preprocess, 02_mmd_vae, ...).
CHAPTERS = sorted(p.stem for p in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.py"))

# Small parameters for CI: the same code path as a full run, minutes instead of hours.
# Each chapter owns its own entry; `data_dir` and `figures_dir` are added by run_book.
SMOKE_PARAMETERS: dict[str, dict[str, Any]] = {
    "01_preprocess": {"synthetic_movies": 2, "synthetic_seconds": 20, "activity_seconds": [6.0, 9.0],
                      "n_observers": 8},
    "02_mmd_vae": {"steps": 60, "batch_size": 16, "z_dim": 4, "threads": 1},
    "03_event_boundaries": {"n_shifts": 200, "bin_sizes": [0.2, 1.0, 4.0]},
    "04_voxen": {"T": 8, "channels": [8, 16, 4], "strides": [[2, 2, 2], [2, 2, 2], [2, 1, 1]],
                 "lambdas": [0.003, 0.03], "steps": 15, "batch_size": 2, "threads": 1, "n_eval_clips": 2,
                 "real_videos": ["carphone_pristine"],
                 "codec_settings": {"x264": [26, 38, 51], "x265": [26, 38, 51], "mjpeg": [4, 31]}},
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


def run_chapter(name: str | Path, parameters: dict[str, Any] | None = None,
                out_dir: Path | None = None, progress: bool = True) -> Path:
    """Execute one chapter (a name or a notebook path) through papermill; return the executed notebook's path.

    The notebook runs with the project root as its working directory. A failing cell raises
    ``papermill.PapermillExecutionError``; the executed notebook with the error is kept for reading.
    """
    import papermill as pm

    out_dir = Path(out_dir or BUILD_DIR / "notebooks")
    src = notebook_to_ipynb(name, out_dir)
    dst = out_dir / f"{notebook_source(name).stem}.ipynb"
    try:
        pm.execute_notebook(
            str(src), str(dst), parameters=parameters or {}, cwd=str(PROJECT_ROOT),
            kernel_name="python3", progress_bar=progress, log_output=False,
        )
    finally:
        src.unlink(missing_ok=True)
    return dst


def run_book(chapters: list[str] | None = None, smoke: bool = False, data_dir: str | None = None,
             figures_dir: str | None = None, out_dir: Path | None = None,
             progress: bool = True) -> list[Path]:
    """Run ``chapters`` (all by default) in order; return the executed notebooks' paths."""
    done = []
    for name in chapters or CHAPTERS:
        params: dict[str, Any] = {**found_data_parameters().get(name, {}), **(SMOKE_PARAMETERS[name] if smoke else {})}
        if data_dir is not None:
            params["data_dir"] = str(data_dir)
        if figures_dir is not None:
            params["figures_dir"] = str(figures_dir)
        print(f"== {name} {params if params else '(defaults)'}", flush=True)
        done.append(run_chapter(name, params, out_dir=out_dir, progress=progress))
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
