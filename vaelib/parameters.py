"""A chapter's parameters: declared in its cell tagged ``parameters``, given on the command line, checked.

``declared_parameters`` reads a chapter's parameters cell with Python's own parser; ``parse_value`` and
``parse_assignment`` read ``name=value`` from a command line (``python -m vaelib.book --set``, ``python -m
vaelib.sweep``); ``check_parameters`` checks given values before a kernel starts: each name, its type (its
default's) and, inside, the element types and lengths of lists and finite numbers, with the rules of
``PARAMETER_RULES``. Each chapter runs the same check in its first code cell (``check_chapter_parameters``), so a
plain papermill run is checked too. Light on purpose: a chapter's kernel imports it first.
"""
from __future__ import annotations

import ast
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .paths import NOTEBOOKS_DIR


def parse_value(text: str) -> Any:
    """A parameter value from the command line: a Python literal if it is one, else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_assignment(text: str, many: bool) -> tuple[str, Any]:
    """Split ``name=value`` (``name=v1,v2,...`` when ``many``) into the name and its value(s)."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise ValueError(f"expected name=value{',value...' if many else ''}, got {text!r}")
    if many:
        values = [parse_value(v.strip()) for v in value.split(",") if v.strip()]
        if not values:
            raise ValueError(f"no values given for {name!r} in {text!r}")
        return name, values
    return name, parse_value(value.strip())


def notebook_source(name: str | Path) -> Path:
    """The notebook file for ``name``: a chapter name (``notebooks/<name>.py``) or a path to a ``.py``/``.ipynb``."""
    if str(name).endswith((".py", ".ipynb")):
        src = Path(name).expanduser().resolve()
    else:
        src = NOTEBOOKS_DIR / f"{name}.py"
    if not src.exists():
        raise FileNotFoundError(f"no chapter notebook {src}")
    return src


def _parameters_cell(notebook: str | Path) -> tuple[Path, str, ast.Module]:
    import jupytext

    src = notebook_source(notebook)
    cells = [c for c in jupytext.read(src).cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        raise ValueError(f"{src} has no cell tagged 'parameters'")
    try:
        return src, cells[0].source, ast.parse(cells[0].source)
    except SyntaxError as e:
        raise ValueError(f"the parameters cell of {src} is not valid Python: {e}") from None


def _assignments(tree: ast.Module) -> Iterator[tuple[str, ast.stmt]]:
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
            if isinstance(node, ast.AnnAssign) else []
        for t in targets:
            if isinstance(t, ast.Name):
                yield t.id, node


def declared_parameters(notebook: str | Path) -> dict[str, Any]:
    """Name -> default of each assignment in the notebook's cell tagged ``parameters`` (Python's own parser).

    A default that is not a plain literal (an expression) is given as ``None`` and accepts any value.
    """
    return _defaults(_parameters_cell(notebook)[2])


def _defaults(tree: ast.Module) -> dict[str, Any]:
    declared: dict[str, Any] = {}
    for name, node in _assignments(tree):
        if name not in declared:
            try:
                declared[name] = ast.literal_eval(node.value) if node.value is not None else None
            except ValueError:
                declared[name] = None
    return declared


def _type_name(value: Any) -> str:
    return {bool: "True or False", int: "an integer", float: "a number", str: "a string", list: "a list",
            tuple: "a list", dict: "a dict"}.get(type(value), type(value).__name__)


def _fits(value: Any, default: Any) -> bool:
    """Whether ``value`` has the kind of the parameter's ``default`` (an int is a fine float; a bool is no int)."""
    if default is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, (str, os.PathLike))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass(frozen=True)
class Expect:
    """What a parameter's value must be beyond its default's type: ``text`` says it, ``test`` checks it."""
    text: str
    test: Callable[[Any], bool]


def at_least(low: float, integer: bool = False) -> Expect:
    """A finite number (a whole number if ``integer``) >= ``low``."""
    kind = "a whole number" if integer else "a finite number"
    return Expect(f"{kind} >= {low:g}", lambda v: (_is_int(v) if integer else _is_number(v))
                  and math.isfinite(v) and v >= low)


def positive(integer: bool = False) -> Expect:
    """A finite number (a whole number if ``integer``) > 0."""
    if integer:
        return at_least(1, integer=True)
    return Expect("a finite number > 0", lambda v: _is_number(v) and math.isfinite(v) and v > 0)


def between(low: float, high: float) -> Expect:
    """A finite number in the closed interval [low, high]."""
    return Expect(f"a number from {low:g} to {high:g}", lambda v: _is_number(v) and low <= v <= high)


def one_of(*choices: Any) -> Expect:
    """One of ``choices``."""
    return Expect(f"one of {list(choices)}", lambda v: v in choices)


def numbers(length: int | None = None, each: Expect | None = None, increasing: bool = False,
            integer: bool = False) -> Expect:
    """A non-empty list of finite numbers (whole numbers if ``integer``): exactly ``length`` of them if given,
    each passing ``each``, in increasing order if ``increasing``."""
    kind = "whole numbers" if integer else "finite numbers"
    text = (f"a list of {length} {kind}" if length else f"a non-empty list of {kind}") + \
        (f", each {each.text}" if each else "") + (", in increasing order" if increasing else "")

    def test(v: Any) -> bool:
        if not isinstance(v, (list, tuple)) or not v or (length is not None and len(v) != length):
            return False
        if not all((_is_int(x) if integer else _is_number(x)) and math.isfinite(x) for x in v):
            return False
        if each is not None and not all(each.test(x) for x in v):
            return False
        return not increasing or all(a < b for a, b in zip(v, v[1:]))
    return Expect(text, test)


def lists_of(item: Expect) -> Expect:
    """A non-empty list whose every item is ``item``."""
    return Expect(f"a non-empty list of items each {item.text}",
                  lambda v: isinstance(v, (list, tuple)) and bool(v) and all(item.test(x) for x in v))


# What each chapter's parameters must be beyond their defaults' types (checked by check_parameters, both for
# `python -m vaelib.book`/the sweep and, through check_chapter_parameters, inside a plain papermill run). Every
# number whose default is a float must be finite, and lists hold what their defaults hold, without a rule here.
PARAMETER_RULES: dict[str, dict[str, Expect]] = {
    "01_preprocess": {
        "synthetic_movies": positive(integer=True), "synthetic_seconds": positive(),
        "activity_seconds": numbers(2, each=positive()), "n_observers": at_least(0, integer=True),
        "size": at_least(4, integer=True), "crop": one_of("squash", "center"), "stride": positive(integer=True),
        "workers": positive(integer=True), "on_error": one_of("stop", "skip"), "threads": at_least(0, integer=True),
    },
    "02_mmd_vae": {
        "z_dim": positive(integer=True), "mmd_weight": at_least(0), "kernel_scales": numbers(each=positive()),
        "steps": positive(integer=True), "batch_size": positive(integer=True), "lr": positive(),
        "val_fraction": Expect("a number between 0 and 1 (both excluded)", lambda v: _is_number(v) and 0 < v < 1),
        "threads": at_least(0, integer=True),
    },
    "03_event_boundaries": {
        "bin_s": positive(), "bin_sizes": numbers(each=positive()), "tolerance_s": positive(),
        "n_null": positive(integer=True), "n_boot": positive(integer=True), "n_perm": positive(integer=True),
        "lag_range_s": numbers(2, increasing=True), "smooth_s": at_least(0), "pred_lags": positive(integer=True),
        "pred_lag_s": positive(), "pred_folds": at_least(2, integer=True), "event_rate_hz": positive(),
        "memory_s": positive(), "voxen_dims": positive(integer=True), "threads": at_least(0, integer=True),
    },
    "04_voxen": {
        "T": positive(integer=True), "channels": numbers(each=positive(integer=True), integer=True),
        "strides": lists_of(numbers(3, each=positive(integer=True), integer=True)),
        "lambdas": numbers(each=positive()), "steps": positive(integer=True), "batch_size": positive(integer=True),
        "photo_fraction": between(0, 1), "lr": positive(), "refine_steps": at_least(0, integer=True),
        "n_heldout": positive(integer=True), "n_eval_clips": positive(integer=True),
        "real_clips_per_video": positive(integer=True), "threads": at_least(0, integer=True),
        "real_size": at_least(0, integer=True), "real_refine_steps": at_least(0, integer=True),
    },
}


_ITEM_KINDS: tuple[tuple[str, Callable[[Any], bool]], ...] = (
    ("whole numbers", _is_int),
    ("finite numbers", lambda x: _is_number(x) and math.isfinite(x)),
    ("strings", lambda x: isinstance(x, (str, os.PathLike))))


def _inferred(default: Any) -> Expect | None:
    """What a value must hold inside, read off its default: a finite number for a float; for a list, items of
    its items' kind (whole numbers, numbers, strings, or lists of one length of those)."""
    if isinstance(default, float):
        return Expect("a finite number", lambda v: math.isfinite(v))
    if not isinstance(default, (list, tuple)) or not default:
        return None
    for kind, is_kind in _ITEM_KINDS:
        if all(is_kind(x) for x in default):
            return Expect(f"a list of {kind}", lambda v, is_kind=is_kind: all(is_kind(x) for x in v))
    if all(isinstance(x, (list, tuple)) and x for x in default):
        lengths = {len(x) for x in default}
        n = lengths.pop() if len(lengths) == 1 else None
        kind, is_kind = next(((k, f) for k, f in _ITEM_KINDS if all(f(y) for x in default for y in x)),
                             ("items", lambda y: True))
        return Expect(f"a list of lists, each of {n or 'any number of'} {kind}",
                      lambda v: all(isinstance(x, (list, tuple)) and (n is None or len(x) == n)
                                    and all(is_kind(y) for y in x) for x in v))
    return None


def _nullable(tree: ast.Module, source: str) -> set[str]:
    """Parameters whose comment offers None (``z_dim = 16  # None: the preset's own``): they also take None."""
    lines = source.splitlines()
    return {name for name, node in _assignments(tree) if "None" in lines[node.lineno - 1].partition("#")[2]}


def check_parameters(notebook: str | Path, parameters: dict[str, Any]) -> dict[str, Any]:
    """Refuse, before anything runs, a parameter the notebook does not declare, whose type is not its default's,
    or whose value breaks what it must hold inside (list items and lengths, finite numbers, ``PARAMETER_RULES``).

    Papermill itself would inject an unknown name silently (the run goes on with the default) and pass
    ``steps="ten"`` through to fail deep inside. Returns the parameters with paths as strings.
    """
    src, source, tree = _parameters_cell(notebook)  # read and parsed once
    declared = _defaults(tree)
    nullable = _nullable(tree, source)
    listing = ", ".join(f"{k}={v!r}" for k, v in declared.items())
    unknown = [k for k in parameters if k not in declared]
    if unknown:
        raise ValueError(f"{src.name} has no parameter(s) {unknown}; "
                         f"its parameters (with defaults) are: {listing}")
    rules = PARAMETER_RULES.get(src.stem, {})
    for k, v in parameters.items():
        if v is None and k in nullable:
            continue
        if not _fits(v, declared[k]):
            raise TypeError(f"{src.name}: parameter {k} must be {_type_name(declared[k])} "
                            f"like its default {declared[k]!r}, not {v!r} ({type(v).__name__}); "
                            f"its parameters (with defaults) are: {listing}")
        for expect in (_inferred(declared[k]), rules.get(k)):
            if expect is not None and not expect.test(v):
                raise ValueError(f"{src.name}: parameter {k} = {v!r}: expected {expect.text} "
                                 f"(default {declared[k]!r})")
    return {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in parameters.items()}


_KERNEL_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}   # what IPython puts in a kernel's namespace
_PLAIN = (bool, int, float, str, list, tuple, dict, type(None))


def _assigned_anywhere(notebook: str | Path) -> set[str]:
    """Every name a code cell of the notebook assigns (its own variables, beside its parameters)."""
    import jupytext

    names: set[str] = set()
    for cell in jupytext.read(notebook_source(notebook)).cells:
        if cell.cell_type != "code":
            continue
        try:
            code = [line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))]
            tree = ast.parse("\n".join(code))
        except SyntaxError:
            continue
        names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return names


def check_chapter_parameters(chapter: str, namespace: dict[str, Any]) -> None:
    """Check a running chapter's parameters in its own namespace (a chapter's first code cell calls this with
    ``globals()``), so a plain ``papermill -p ...`` run is refused like ``python -m vaelib.book``: an injected name
    the chapter does not declare (papermill only warns), a wrong type, a bad value inside (:func:`check_parameters`).
    """
    declared = declared_parameters(chapter)
    strangers = sorted(k for k, v in namespace.items()
                       if not k.startswith("_") and k not in declared and k not in _KERNEL_NAMES
                       and isinstance(v, _PLAIN))
    if strangers:   # a name the notebook itself assigns in a later cell is a rerun in JupyterLab, not a parameter
        strangers = sorted(set(strangers) - _assigned_anywhere(chapter))
    check_parameters(chapter, {**{k: namespace[k] for k in strangers},
                               **{k: namespace[k] for k in declared if k in namespace}})
