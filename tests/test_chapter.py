"""vaelib.chapter: the metrics JSON every chapter writes is strict JSON."""
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
