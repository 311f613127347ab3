"""vaelib.chapter: how many threads a chapter uses (``threads = 0``), and the copy of its metrics beside the figures."""
from __future__ import annotations

import json
import os

import pytest
import torch

from vaelib import chapter


@pytest.mark.parametrize("cores, busy, threads", [
    (2, 0.0, 2),     # idle: every core
    (2, 0.4, 2),     # a little background work: still every core
    (2, 1.0, 1),     # one other job: the core it leaves
    (2, 2.0, 1),     # two other jobs on two cores: one thread, never none
    (2, 7.5, 1),     # overloaded
    (16, 6.0, 10),
    (16, 5.6, 10),
    (1, 0.0, 1),
])
def test_threads_follow_the_idle_cores(cores, busy, threads):
    assert chapter.auto_threads(cores, busy) == threads


def test_omp_num_threads_limits_the_cores(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert chapter.usable_cores() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert chapter.usable_cores() >= 1


def test_busy_cores_is_a_plausible_count():
    busy = chapter.busy_cores(0.05)
    assert 0.0 <= busy <= (os.cpu_count() or 1) + 1e-9


def test_threads_zero_takes_the_idle_cores(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cores = chapter.usable_cores()
    try:
        monkeypatch.setattr(chapter, "busy_cores", lambda: 0.0)
        assert chapter.use_threads(0) == cores
        monkeypatch.setattr(chapter, "busy_cores", lambda: float(cores))
        assert chapter.use_threads(0) == 1
        assert chapter.use_threads(3) == 3  # a number given is used as it is
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads"):
        chapter.use_threads(-1)


def test_the_book_gets_a_copy_of_the_metrics_beside_the_figures(tmp_path, monkeypatch):
    copy = tmp_path / "figures" / "metrics" / "02_mmd_vae.json"
    monkeypatch.delenv(chapter.FIGURE_METRICS_ENV, raising=False)
    chapter.write_metrics({"a": 1.5}, "", tmp_path / "run")
    assert not copy.exists()  # outside the book: only the chapter's own file
    monkeypatch.setenv(chapter.FIGURE_METRICS_ENV, str(copy))
    path = chapter.write_metrics({"a": 2.5}, "", tmp_path / "run")
    assert json.loads(path.read_text()) == json.loads(copy.read_text()) == {"a": 2.5}


def test_the_book_and_the_chapters_name_one_variable():
    from vaelib import book

    assert book.FIGURE_METRICS_ENV == chapter.FIGURE_METRICS_ENV


@pytest.mark.slow
@pytest.mark.parametrize("chapter", ["01_preprocess", "02_mmd_vae", "03_event_boundaries", "04_voxen"])
def test_the_book_writes_each_chapters_metrics_beside_its_figures(chapter, smoke_book):
    """A run of the book leaves figures/metrics/<chapter>.json, the same numbers as the chapter's own file."""
    if chapter in smoke_book.errors:
        pytest.fail(f"{chapter} did not run: {smoke_book.errors[chapter]}")
    own = {"01_preprocess": "", "02_mmd_vae": "mmd_vae", "03_event_boundaries": "event_boundaries",
           "04_voxen": "voxen"}[chapter]
    beside = smoke_book.figures / "metrics" / f"{chapter}.json"
    assert json.loads(beside.read_text()) == json.loads(smoke_book.metrics[chapter][own])
