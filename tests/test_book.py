"""Every chapter runs headless through papermill with its smoke parameters, in order, as CI runs the book."""
from __future__ import annotations

import nbformat
import pytest

from vaelib.book import CHAPTERS, run_book


@pytest.fixture(scope="module")
def book_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("book")
    return root / "data", root / "figures", root / "executed"


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_runs_headless(chapter, book_dirs):
    data, figures, executed = book_dirs
    before = set(figures.glob("*")) if figures.exists() else set()
    [path] = run_book([chapter], smoke=True, data_dir=data, figures_dir=figures, out_dir=executed, progress=False)
    nb = nbformat.read(path, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    new = {p for p in figures.glob("*") if p.stat().st_size > 0} - before
    assert new, f"{chapter} wrote no figure to {figures}"
