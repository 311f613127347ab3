"""Every chapter runs headless through papermill with its smoke parameters, in order, as CI runs the book."""
from __future__ import annotations

import json

import nbformat
import pytest

from vaelib.book import CHAPTERS


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_runs_headless(chapter, smoke_book):
    if chapter in smoke_book.errors:
        raise smoke_book.errors[chapter]
    nb = nbformat.read(smoke_book.notebooks[chapter], as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert smoke_book.new_figures[chapter], f"{chapter} wrote no figure to {smoke_book.figures}"


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_writes_its_metrics(chapter, smoke_book):
    """Each chapter writes its headline numbers as a JSON object to run_dir/metrics.json by default."""
    if chapter in smoke_book.errors:
        pytest.fail(f"{chapter} did not run: {smoke_book.errors[chapter]}")
    default_dirs = {"01_preprocess": "", "02_mmd_vae": "mmd_vae", "03_event_boundaries": "event_boundaries",
                    "04_voxen": "voxen"}
    path = smoke_book.data / default_dirs[chapter] / "metrics.json"
    metrics = json.loads(path.read_text())
    assert isinstance(metrics, dict) and metrics, f"{path} holds no metrics"
