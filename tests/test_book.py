"""Every chapter runs headless through papermill with its smoke parameters, in order, as CI runs the book."""
from __future__ import annotations

import json
import re

import nbformat
import pytest

from vaelib.book import CHAPTERS
from vaelib.paths import PROJECT_ROOT


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


def test_set_on_the_command_line_is_checked_before_anything_runs(tmp_path, capsys):
    """`--set name=value` takes the sweep's values; a wrong name, type or value is refused naming the parameter."""
    from vaelib.book import book_parameters, found_data_parameters, main

    found = found_data_parameters().get("03_event_boundaries", {})   # the real presses where ../shared has them
    plan = book_parameters(["01_preprocess", "03_event_boundaries"],
                           settings={"annotations": "p.dat", "source": "movies", "n_boot": 50})
    assert plan["01_preprocess"] == {"annotations": "p.dat", "source": "movies"}     # each where it is declared
    assert plan["03_event_boundaries"] == {**found, "annotations": "p.dat", "n_boot": 50}
    cases = {("02_mmd_vae", "stepz=10"): r"no chosen chapter has parameter\(s\) \['stepz'\]; .*02_mmd_vae: .*steps",
             ("02_mmd_vae", "steps=ten"): "parameter steps must be an integer like its default 2000, not 'ten'",
             ("02_mmd_vae", "kernel_scales=[1.0"): r"parameter kernel_scales must be a list .* not '\[1.0'",
             ("02_mmd_vae", "mmd_weight=nan"): "parameter mmd_weight must be a number",    # nan is no literal
             ("02_mmd_vae", "lr=float('inf')"): "parameter lr must be a number",
             ("02_mmd_vae", "kernel_scales=['a']"): r"parameter kernel_scales = \['a'\]: expected a list of finite",
             ("03_event_boundaries", "bin_sizes=[0.5,'x']"): r"bin_sizes = \[0.5, 'x'\]: expected a list of finite",
             ("03_event_boundaries", "lag_range_s=[2.0]"): r"lag_range_s = \[2.0\]: expected a list of 2 finite",
             ("04_voxen", "strides=[2,2,2]"): r"strides = \[2, 2, 2\]: expected a list of lists, each of 3 whole",
             ("01_preprocess", "steps=5"): r"no chosen chapter has parameter\(s\) \['steps'\]",
             ("01_preprocess", "novalue"): "expected name=value"}
    for (chapter, setting), message in cases.items():
        with pytest.raises(SystemExit):
            main([chapter, "--set", setting, "--out", str(tmp_path)])
        err = capsys.readouterr().err
        assert re.search(message, err), (setting, err)
    assert not list(tmp_path.iterdir())                                             # nothing ran


def test_values_inside_parameters_are_checked_in_one_place():
    from vaelib.parameters import check_parameters

    bad = {("02_mmd_vae", "mmd_weight"): float("nan"), ("02_mmd_vae", "lr"): float("inf"),
           ("02_mmd_vae", "steps"): 0, ("03_event_boundaries", "lag_range_s"): [2.0, -1.0],
           ("04_voxen", "strides"): [[2, 2], [2, 2, 2]], ("04_voxen", "channels"): [8, 0],
           ("01_preprocess", "activity_seconds"): [3.0], ("01_preprocess", "crop"): "middle"}
    for (chapter, name), value in bad.items():
        with pytest.raises(ValueError, match=rf"{chapter}.py: parameter {name} = .*: expected .*\(default "):
            check_parameters(chapter, {name: value})
    assert check_parameters("04_voxen", {"strides": [[2, 2, 2], [2, 1, 1]], "lambdas": [1e-3]})
    assert check_parameters("03_event_boundaries", {"memory_s": None, "voxen_dims": None})   # None where offered


def test_a_plain_papermill_run_is_checked_by_the_chapter(tmp_path):
    """Each chapter checks its own parameters in its first code cell: papermill's `-p steps ten`, or a name the
    chapter does not declare (papermill only warns), stops the run there with the parameter named."""
    import papermill as pm

    from vaelib.book import notebook_to_ipynb
    from vaelib.parameters import check_chapter_parameters, declared_parameters

    for name in CHAPTERS:
        source = (PROJECT_ROOT / "notebooks" / f"{name}.py").read_text()
        assert f'check_chapter_parameters("{name}", globals())' in source
    namespace = {**declared_parameters("02_mmd_vae"), "In": [], "Out": {}, "_": None}
    check_chapter_parameters("02_mmd_vae", namespace)                         # the defaults pass
    check_chapter_parameters("02_mmd_vae", {**namespace, "model_cfg": 1, "split": "x"})  # a rerun in JupyterLab
    with pytest.raises(ValueError, match=r"no parameter\(s\) \['stepz'\]"):
        check_chapter_parameters("02_mmd_vae", {**namespace, "stepz": 10})
    with pytest.raises(TypeError, match="parameter kernel_scales must be a list"):
        check_chapter_parameters("02_mmd_vae", {**namespace, "kernel_scales": 0.5})
    src = notebook_to_ipynb("02_mmd_vae", tmp_path)
    with pytest.raises(pm.PapermillExecutionError, match="parameter steps must be an integer like its default"):
        pm.execute_notebook(str(src), str(tmp_path / "out.ipynb"), parameters={"steps": "ten"}, cwd=str(PROJECT_ROOT),
                            kernel_name="python3", progress_bar=False)
    nb = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    failed = [c for c in nb.cells if c.cell_type == "code" and any(o.output_type == "error" for o in c.outputs)]
    assert len(failed) == 1 and "check_chapter_parameters" in failed[0].source     # stopped before any work
