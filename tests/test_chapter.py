"""vaelib.chapter: metrics JSON is strict JSON; vaelib.book.run_chapter starts a dead kernel again."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vaelib.chapter import write_metrics


def test_metrics_are_strict_json(tmp_path):
    metrics = {"r": np.float32(0.25), "n": np.int64(3), "rows": np.arange(3), "path": Path("a/b"),
               "missing": float("nan"), "nested": {"inf": np.inf, "list": [1.5, np.nan, "x", None, True]}}
    path = write_metrics(metrics, "", tmp_path)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    back = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert back == {"r": 0.25, "n": 3, "rows": [0, 1, 2], "path": "a/b", "missing": None,
                    "nested": {"inf": None, "list": [1.5, None, "x", None, True]}}


def test_metrics_refuse_what_json_cannot_hold(tmp_path):
    with pytest.raises(TypeError, match="not JSON-serializable"):
        write_metrics({"model": object()}, "", tmp_path)
    assert not (tmp_path / "metrics.json").exists()


DIED = "Kernel died before replying to kernel_info"


@pytest.mark.parametrize("errors, tries, raised", [
    ([DIED], 2, None),                                 # died once at start-up: started again, then runs
    ([DIED] * 3, 3, "Kernel died"),                    # keeps dying: raised after KERNEL_START_TRIES
    (["something else"], 1, "something else"),         # any other failure: raised at once
])
def test_a_kernel_that_dies_at_start_is_started_again(monkeypatch, tmp_path, errors, tries, raised):
    """Kernels launched at once (a parallel sweep) can pick the same free port and die before any cell runs:
    run_chapter starts the kernel again; a failure after start-up, or one that keeps happening, is raised."""
    import papermill as pm

    from vaelib import book

    assert book.KERNEL_START_TRIES == 3
    calls = []

    def execute(src, dst, **kw):
        calls.append(dst)
        if len(calls) <= len(errors):
            raise RuntimeError(errors[len(calls) - 1])
        Path(dst).write_text("{}")

    monkeypatch.setattr(book.time, "sleep", lambda s: None)
    monkeypatch.setattr(pm, "execute_notebook", execute)
    if raised is None:
        assert book.run_chapter("04_voxen", {}, out_dir=tmp_path, progress=False).exists()
    else:
        with pytest.raises(RuntimeError, match=raised):
            book.run_chapter("04_voxen", {}, out_dir=tmp_path, progress=False)
    assert len(calls) == tries
