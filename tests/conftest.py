"""Shared fixtures: a small synthetic dataset and its frame store, made once per test session."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from vaelib.paths import ZACKS_DAT
from vaelib.preprocess import preprocess
from vaelib.synthetic import make_synthetic_dataset


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu(n)`` run where torch sees at least n CUDA devices; elsewhere they are deselected
    (not skipped: on a CPU machine there is nothing they could check), and the count is reported."""
    have = torch.cuda.device_count()
    keep, drop = [], []
    for item in items:
        mark = item.get_closest_marker("gpu")
        (drop if mark is not None and have < (mark.args[0] if mark.args else 1) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# The test files that read the smoke book (the ``smoke_book`` fixture): under pytest-xdist they run on one worker.
SMOKE_BOOK_FILES = {f"tests/{p.name}" for p in Path(__file__).parent.glob("test_*.py") if "smoke_book" in p.read_text()}


def pytest_xdist_make_scheduler(config, log):
    """Under pytest-xdist (``make test`` runs ``pytest -n 2``): every test file is one unit of work, as with
    ``--dist loadfile``, sharing its module fixtures on one worker, and the files that read the smoke book are one
    unit together, so the book (a minute) runs once. (xdist's ``loadgroup`` marks do not reach pytest 9's node ids.)"""
    from xdist.scheduler import LoadScopeScheduling

    class FileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = nodeid.split("::", 1)[0]
            return "smoke_book" if file in SMOKE_BOOK_FILES else file

    return FileScheduling(config, log)


def skip_or_fail_under_ci(reason: str) -> None:
    """Skip, saying why, where something a test needs is absent; under CI (``CI`` set, as ``.ci/run`` does) fail:
    there everything is provided, and a test that quietly skips would check nothing."""
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"{reason} (under CI every test must run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def real_presses():
    """The path of the real Zacks et al. (2006) button presses, at ``../shared/data/zacks2006/`` beside the
    repository; skipped where absent, failing under CI."""
    if not ZACKS_DAT.exists():
        skip_or_fail_under_ci(f"real Zacks file absent: {ZACKS_DAT}")
    return ZACKS_DAT


SMALL = dict(n_movies=2, seconds=20.0, seed=7, n_observers=6, activity_seconds=(6.0, 9.0))


class FakeFrameSet:
    """What the clip samplers read of a FrameSet (frames, movies, movie_rows): movies m0, m1, ... of 16x16
    frames of the given lengths; each movie's frames hold its number, or random values (seeded) if ``random``."""

    def __init__(self, lengths, random=False):
        if random:
            self.frames = (np.random.default_rng(0).random((sum(lengths), 16, 16, 3)) * 255).astype(np.uint8)
        else:
            self.frames = np.concatenate([np.full((n, 16, 16, 3), i, np.uint8) for i, n in enumerate(lengths)])
        self._rows, start = {}, 0
        for i, n in enumerate(lengths):
            self._rows[f"m{i}"] = slice(start, start + n)
            start += n
        self.movies = list(self._rows)

    def movie_rows(self, movie):
        return self._rows[movie]


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory):
    """Two 20-s synthetic movies with several coarse events each."""
    return make_synthetic_dataset(tmp_path_factory.mktemp("synthetic"), progress=False, **SMALL)


@pytest.fixture(scope="session")
def small_frames(small_dataset, tmp_path_factory):
    """The small dataset preprocessed to 32x32 frames."""
    return preprocess(small_dataset.videos, tmp_path_factory.mktemp("frames") / "frames", size=32, progress=False)


class SmokeBook:
    """The whole book run once with its smoke parameters: data, figures and executed notebooks in one folder."""

    def __init__(self, root):
        self.root = root
        self.data, self.figures, self.executed = root / "data", root / "figures", root / "executed"
        self.errors: dict[str, BaseException] = {}
        self.notebooks: dict = {}
        self.new_figures: dict[str, set] = {}
        # each chapter's own metrics.json as its run left it (later tests, the browser's, run chapters again there)
        self.metrics: dict[str, dict[str, str]] = {}

    def run(self):
        from vaelib.book import CHAPTERS, run_book

        for chapter in CHAPTERS:
            before = set(self.figures.glob("*")) if self.figures.exists() else set()
            try:
                [self.notebooks[chapter]] = run_book([chapter], smoke=True, data_dir=self.data,
                                                     figures_dir=self.figures, out_dir=self.executed, progress=False)
            except Exception as e:  # noqa: BLE001 - reported by the test of that chapter
                self.errors[chapter] = e
            self.new_figures[chapter] = {p for p in self.figures.glob("*")  # files: not the metrics/ folder
                                         if p.is_file() and p.stat().st_size > 0} - before
            found = [self.data / "metrics.json", *self.data.glob("*/metrics.json")]
            self.metrics[chapter] = {("" if p.parent == self.data else p.parent.name): p.read_text()
                                     for p in found if p.exists()}
        return self


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory) -> SmokeBook:
    """Every chapter, in order, through papermill with its smoke parameters (once per test session)."""
    return SmokeBook(tmp_path_factory.mktemp("book")).run()
