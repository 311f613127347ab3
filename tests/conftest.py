"""Shared fixtures: a small synthetic dataset and its frame store, made once per test session."""
from __future__ import annotations

import pytest

from vaelib.synthetic import make_synthetic_dataset
from vaelib.video import preprocess

SMALL = dict(n_movies=2, seconds=20.0, seed=7, n_observers=6, activity_seconds=(6.0, 9.0))


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory):
    """Two 20-s synthetic movies with several coarse events each."""
    return make_synthetic_dataset(tmp_path_factory.mktemp("synthetic"), progress=False, **SMALL)


@pytest.fixture(scope="session")
def small_frames(small_dataset, tmp_path_factory):
    """The small dataset preprocessed to 32x32 frames."""
    return preprocess(small_dataset.videos, tmp_path_factory.mktemp("frames") / "frames", size=32, progress=False)
