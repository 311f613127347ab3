"""Project set-up: environment.yml and pyproject.toml name the same dependencies; notebooks are paired."""
from __future__ import annotations

import re
import sys

import pytest
import tomllib
import yaml

from vaelib.book import CHAPTERS, SMOKE_PARAMETERS
from vaelib.paths import NOTEBOOKS_DIR, PROJECT_ROOT


def _norm(spec: str) -> str:
    return re.sub(r"\s+", "", spec).lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_norm(s) for s in project["dependencies"]}
    for extra in project.get("optional-dependencies", {}).values():
        wanted |= {_norm(s) for s in extra}
    env = yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {_norm(s) for s in pip if not s.startswith("-e")}
    assert listed == wanted, f"only in pyproject: {wanted - listed}; only in environment.yml: {listed - wanted}"
    assert "torch==2.13.0" in wanted          # a range would pull a multi-GB CUDA build


def test_every_chapter_is_a_paired_notebook_with_parameters():
    for name in CHAPTERS:
        src = (NOTEBOOKS_DIR / f"{name}.py").read_text()
        assert "format_name: percent" in src, name
        assert '# %% tags=["parameters"]' in src, name
        assert name in SMOKE_PARAMETERS


def _vaelib_imports() -> dict[str, set[str]]:
    """Every vaelib module -> the vaelib modules it imports (relative imports, anywhere in the file)."""
    import ast

    pkg = PROJECT_ROOT / "vaelib"
    graph = {}
    for path in pkg.glob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names |= {node.module} if node.module else {a.name for a in node.names}
        graph[path.stem] = names
    return graph


def test_vaelib_imports_point_one_way():
    """A module imports only modules listed after it in vaelib/__init__.py (those on its own line are one level):
    chapters -> analysis and widgets -> models and training -> data and config."""
    import vaelib

    graph = _vaelib_imports()
    modules = set(graph) - {"__init__"}
    levels: list[list[str]] = []
    for line in vaelib.__doc__.splitlines():
        if line.startswith("- ``"):
            levels.append([])
        if levels:
            levels[-1] += [m for m in re.findall(r"``(\w+)``", line) if m in modules and m not in sum(levels, [])]
    level = {m: i for i, names in enumerate(levels) for m in names}
    assert set(level) == modules, f"modules missing from vaelib/__init__.py's list: {sorted(modules - set(level))}"
    wrong = [f"{m} -> {n}" for m in modules for n in graph[m] if n in level and level[n] < level[m]]
    assert not wrong, f"imports against the layering: {wrong}"


def test_chapter_readers_import_no_trainer():
    """Chapter 3's reader (boundary_data) loads trained models through vaelib.zoo: neither it nor anything it
    imports, directly or not, is a training module (nor the ffmpeg codecs that the RD evaluation pulls in)."""
    from vaelib import train, zoo

    graph = _vaelib_imports()
    reached, todo = set(), ["boundary_data"]
    while todo:
        for n in graph.get(todo.pop(), ()):
            if n in graph and n not in reached:
                reached.add(n)
                todo.append(n)
    assert "zoo" in reached
    assert not reached & {"mmdvae_train", "voxen_train", "train", "classic"}, sorted(reached)
    assert zoo.CHECKPOINT == train.CHECKPOINT           # the zoo reads the run folders the trainer writes


def test_ci_fails_where_a_test_would_skip(monkeypatch):
    """``.ci/run`` sets CI=true, under which a test whose inputs are missing (the real presses) fails."""
    from conftest import skip_or_fail_under_ci

    assert re.search(r"^export CI=true$", (PROJECT_ROOT / ".ci" / "run").read_text(), re.M)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="under CI"):
        skip_or_fail_under_ci("input absent")
    for value in ("", "false", "0"):
        monkeypatch.setenv("CI", value)
        with pytest.raises(pytest.skip.Exception, match="input absent"):
            skip_or_fail_under_ci("input absent")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        skip_or_fail_under_ci("input absent")


def test_no_vaelib_module_is_named_like_a_standard_library_module():
    """A module named like the standard library's (``codecs``, ``site``) shadows it for any script run from
    vaelib's folder and confuses a reader; ``sys.stdlib_module_names`` lists them (Python >= 3.10)."""
    names = {p.stem for p in (PROJECT_ROOT / "vaelib").glob("*.py")} - {"__init__", "__main__"}
    assert not names & set(sys.stdlib_module_names), sorted(names & set(sys.stdlib_module_names))
