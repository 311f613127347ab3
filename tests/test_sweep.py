"""The papermill sweep: grid parsing, parallel runs into run folders, failures reported, one table."""
from __future__ import annotations

import csv
import json
import os
import re
import time
from pathlib import Path

import cv2
import pytest

from vaelib import parameters, sweep
from vaelib.paths import mark_output

FIXTURE = Path(__file__).parent / "fixtures" / "sweep_notebook.py"


def test_parse_values_and_grid():
    assert parameters.parse_value("4") == 4
    assert parameters.parse_value("1e-3") == pytest.approx(0.001)
    assert parameters.parse_value("True") is True
    assert parameters.parse_value("rbf") == "rbf"
    assert parameters.parse_value("data/frames") == "data/frames"
    assert parameters.parse_assignment("z_dim=4,8,16", many=True) == ("z_dim", [4, 8, 16])
    assert parameters.parse_assignment("data_dir=a,b", many=False) == ("data_dir", "a,b")
    with pytest.raises(ValueError, match="name=value"):
        parameters.parse_assignment("z_dim", many=True)
    with pytest.raises(ValueError, match="no values"):
        parameters.parse_assignment("z_dim=", many=True)
    runs = sweep.grid_runs({"z_dim": [4, 8], "kernel": ["rbf", "imq"]})
    assert runs == [{"z_dim": 4, "kernel": "rbf"}, {"z_dim": 4, "kernel": "imq"},
                    {"z_dim": 8, "kernel": "rbf"}, {"z_dim": 8, "kernel": "imq"}]
    assert sweep.run_name(3, {"z_dim": 16, "kernel": "imq"}) == "003-z_dim=16-kernel=imq"
    assert "/" not in sweep.run_name(0, {"data_dir": "a/b c"})


def test_bad_sweeps_fail_before_running(tmp_path):
    with pytest.raises(ValueError, match=r"no parameter\(s\) \['z_dimm'\]"):
        sweep.sweep(FIXTURE, {"z_dimm": [1, 2]}, out_dir=tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match="set by the sweep"):
        sweep.sweep(FIXTURE, {"scale": [1]}, {"metrics_path": "x.json"}, out_dir=tmp_path / "b", progress=False)
    with pytest.raises(ValueError, match="both in the grid and fixed"):
        sweep.sweep(FIXTURE, {"scale": [1]}, {"scale": 2}, out_dir=tmp_path / "c", progress=False)
    no_metrics = tmp_path / "no_metrics.py"
    no_metrics.write_text('# %% tags=["parameters"]\nscale = 1\n\n# %%\nprint(scale)\n')
    with pytest.raises(ValueError, match="declares no metrics_path"):
        sweep.sweep(no_metrics, {"scale": [1, 2]}, out_dir=tmp_path / "d", progress=False)
    untagged = tmp_path / "untagged.py"
    untagged.write_text('# %%\nscale = 1\nmetrics_path = ""\n')
    with pytest.raises(ValueError, match="no cell tagged 'parameters'"):
        sweep.sweep(untagged, {"scale": [1, 2]}, out_dir=tmp_path / "f", progress=False)
    with pytest.raises(FileNotFoundError, match="no chapter notebook"):
        sweep.sweep(tmp_path / "missing.py", {"scale": [1]}, out_dir=tmp_path / "e", progress=False)
    assert not (tmp_path / "a" / "results.csv").exists()


def test_sweep_runs_grid_in_parallel_and_reports_failures(tmp_path, capsys):
    out = tmp_path / "sweep"
    stale = out / "002-scale=1-mode=silent" / "metrics.json"  # left by an earlier sweep into the same folder
    stale.parent.mkdir(parents=True)
    stale.write_text('{"score": 99}')
    mark_output(out, "sweep")                                  # that sweep marked its folder as ours
    rc = sweep.main([str(FIXTURE), "--grid", "scale=1,3", "mode=fine,boom,silent",
                     "--set", "offset=0.25", "--jobs", "2", "--out", str(out)])
    assert rc == 1  # some runs failed
    printed = capsys.readouterr().out
    assert "2 of 6 runs ok" in printed

    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [r["run"] for r in rows] == ["000-scale=1-mode=fine", "001-scale=1-mode=boom", "002-scale=1-mode=silent",
                                        "003-scale=3-mode=fine", "004-scale=3-mode=boom", "005-scale=3-mode=silent"]
    by = {(r["scale"], r["mode"]): r for r in rows}
    # metrics computed by the notebook from the parameters the sweep passed
    assert float(by["1", "fine"]["score"]) == pytest.approx(2.25)
    assert float(by["3", "fine"]["score"]) == pytest.approx(6.25)
    assert by["3", "fine"]["detail.squared"] == "9"
    assert by["3", "fine"]["metrics.scale"] == "3"  # a metric named like a parameter keeps its own column
    assert list(rows[0]).count("scale") == 1
    assert by["1", "fine"]["status"] == "ok" and by["1", "fine"]["error"] == ""

    for scale in ("1", "3"):
        boom = by[scale, "boom"]
        assert boom["status"] == "failed" and boom["score"] == ""
        assert f"RuntimeError: boom on purpose (scale={scale})" in boom["error"]
        nb = Path(boom["notebook"])
        assert nb.exists() and nb.parent == out / boom["run"]
        assert "boom on purpose" in nb.read_text()  # the executed notebook holds the traceback
        assert "boom on purpose" in (nb.parent / "error.txt").read_text()
        assert str(nb) in printed
        silent = by[scale, "silent"]
        assert silent["status"] == "failed" and "wrote no metrics" in silent["error"]

    run = out / "003-scale=3-mode=fine"
    params = json.loads((run / "parameters.json").read_text())
    assert params == {"offset": 0.25, "scale": 3, "mode": "fine", "metrics_path": str(run / "metrics.json"),
                      "figures_dir": str(run / "figures")}
    assert json.loads((run / "metrics.json").read_text())["score"] == pytest.approx(6.25)
    assert not list(run.glob("*.input.ipynb"))

    fig = cv2.imread(str(out / "results.png"))
    assert fig is not None and fig.shape[0] > 100 and fig.shape[1] > 100


def test_figure_draws_the_metrics_that_vary(tmp_path):
    def rec(value, status="ok", **metrics):
        return {"status": status, "parameters": {"scale": value}, "metrics": metrics}

    records = [rec(1, score=2.0, const=5, scale=1, label="a"), rec(2, score=4.0, const=5, scale=2, label="b"),
               rec(3, "failed")]
    assert sweep.varying_metrics(records, ["scale"]) == ["score"]
    assert sweep.plot_results(records, ["scale"], tmp_path / "a.png") == tmp_path / "a.png"
    assert cv2.imread(str(tmp_path / "a.png")) is not None
    flat = [rec(1, const=5), rec(2, const=5)]
    assert sweep.plot_results(flat, ["scale"], tmp_path / "b.png") is None
    assert sweep.plot_results(flat, ["scale"], tmp_path / "c.png", metrics=["const"]) == tmp_path / "c.png"


# A cheap 2-point grid per chapter, and a file each chapter writes into its run folder.
CHAPTER_GRIDS = {
    "01_preprocess": ({"size": [16, 24]}, "frames/manifest.json"),
    "02_mmd_vae": ({"z_dim": [2, 3]}, "embeddings.npy"),
    "03_event_boundaries": ({"smooth_s": [0.25, 0.5]}, "comparison.json"),
    "04_voxen": ({"seed": [0, 1]}, "rd_synthetic.json"),
}


def test_every_chapter_declares_the_shared_parameters():
    from vaelib.book import CHAPTERS

    assert set(CHAPTER_GRIDS) == set(CHAPTERS), "give every chapter a grid in CHAPTER_GRIDS"
    for chapter in CHAPTERS:
        declared = sweep.declared_parameters(chapter)
        assert {"run_dir", "metrics_path", "threads", "data_dir", "figures_dir"} <= set(declared), chapter


@pytest.mark.slow
@pytest.mark.parametrize("chapter", sorted(CHAPTER_GRIDS))
def test_every_chapter_sweeps(chapter, smoke_book, tmp_path):
    """Each chapter runs a 2-point grid with its smoke parameters on the smoke book's data, each run in its folder."""
    from vaelib.book import SMOKE_PARAMETERS

    if chapter in smoke_book.errors:
        pytest.fail(f"{chapter} did not run in the smoke book: {smoke_book.errors[chapter]}")
    grid, product = CHAPTER_GRIDS[chapter]
    fixed = {k: v for k, v in SMOKE_PARAMETERS[chapter].items() if k not in grid}
    fixed["data_dir"] = str(smoke_book.data)
    records = sweep.sweep(chapter, grid, fixed, out_dir=tmp_path, jobs=2, progress=False)
    assert [r["status"] for r in records] == ["ok", "ok"], [r["error"] for r in records]
    for r in records:
        run = tmp_path / r["run"]
        assert (run / "metrics.json").exists() and r["metrics"], r
        assert (run / product).exists(), f"{chapter} wrote no {product} into its run_dir {run}"
        assert list((run / "figures").glob("*.png")), f"{chapter} wrote its figures outside the run folder"
        assert json.loads((run / "parameters.json").read_text())["threads"] == max(1, (os.cpu_count() or 1) // 2)
    assert (tmp_path / "results.csv").exists()


def test_shard_specs_are_checked():
    assert sweep.parse_shard("1/2") == (1, 2) and sweep.parse_shard("2/2") == (2, 2)
    for bad in ("3/2", "0/2", "1/0", "2", "a/b", "-1/2"):
        with pytest.raises(ValueError, match=rf"--shard {re.escape(bad)}: expected i/N with 1 <= i <= N"):
            sweep.parse_shard(bad)
    assert [sweep.shard_of(i, 2) for i in range(5)] == [1, 2, 1, 2, 1]
    with pytest.raises(SystemExit):
        sweep.main([str(FIXTURE), "--grid", "scale=1,2", "--shard", "3/2"])


def test_two_shards_then_collect_equal_one_local_run(tmp_path, capsys):
    """A sweep split over two shards (as two tasks of a job array), then collected, gives one local run's table;
    collecting before every shard is done names the shards and runs missing; a shard run again runs nothing."""
    grid = ["--grid", "scale=1,2,3", "--set", "offset=0.25"]
    assert sweep.main([str(FIXTURE), *grid, "--out", str(tmp_path / "local"), "--jobs", "2"]) == 0
    shards = tmp_path / "shards"
    assert sweep.main([str(FIXTURE), *grid, "--out", str(shards), "--shard", "1/2", "--jobs", "2"]) == 0
    assert "shard 1/2: 2 of 2 runs ok" in capsys.readouterr().out
    assert not (shards / "results.csv").exists()
    with pytest.raises(ValueError, match=r"shards not finished: \['2/2'\]; 1 of 3 runs missing \(001-scale=2\)"):
        sweep.collect(FIXTURE, {"scale": [1, 2, 3]}, {"offset": 0.25}, out_dir=shards)
    with pytest.raises(SystemExit):                      # the command line says the same, and exits
        sweep.main([str(FIXTURE), *grid, "--out", str(shards), "--collect"])
    assert "shards not finished: ['2/2']" in capsys.readouterr().err
    assert not (shards / "results.csv").exists()
    assert sweep.main([str(FIXTURE), *grid, "--out", str(shards), "--shard", "2/2"]) == 0
    done = shards / "000-scale=1" / "run.json"
    stamp = done.stat().st_mtime_ns
    t0 = time.perf_counter()
    assert sweep.main([str(FIXTURE), *grid, "--out", str(shards), "--shard", "1/2"]) == 0  # again: nothing to run
    assert "2 of 2 runs already finished" in capsys.readouterr().out
    assert done.stat().st_mtime_ns == stamp and time.perf_counter() - t0 < 5
    assert sweep.main([str(FIXTURE), *grid, "--out", str(shards), "--collect"]) == 0

    def table(folder):
        rows = list(csv.DictReader(open(folder / "results.csv")))
        assert all(Path(r.pop("notebook")).parent == folder / r["run"] for r in rows)
        return rows
    assert table(shards) == table(tmp_path / "local") and len(table(shards)) == 3
    assert (shards / "results.png").exists()
    # other parameters into the same folder are not taken for finished runs
    assert sweep.finished_run(shards / "000-scale=1", {"offset": 0.5}, sweep.notebook_hash(FIXTURE)) is None
