"""The one base class of every config in the book: a dataclass that round-trips to JSON.

Model, loss, training, VoxEn and synthetic-data configs all subclass :class:`JSONConfig`, so each
is written and read the same way (``to_json(path)`` / ``from_json(path or text)``), unknown
fields are refused with the list of known ones, and JSON lists become tuples where a field is
declared as a tuple.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, TypeVar

from .paths import write_json

C = TypeVar("C", bound="JSONConfig")


class JSONConfig:
    """Mixin for config dataclasses: ``to_dict``/``from_dict`` and ``to_json``/``from_json`` round-trip."""

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))  # tuples become lists, as in JSON

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}: {cls.__name__} has no field of that name; "
                             f"known fields: {sorted(names)}")
        types = {f.name: str(f.type) for f in dataclasses.fields(cls)}
        data = {k: tuple(v) if isinstance(v, list) and types[k].startswith("tuple") else v for k, v in data.items()}
        return cls(**data)

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The config as JSON text; also written (atomically) to ``path`` if given."""
        if path is not None:
            write_json(path, self.to_dict())
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls: type[C], source: str | os.PathLike) -> C:
        """Read a config from JSON text or from a ``.json`` file."""
        if isinstance(source, os.PathLike) or (isinstance(source, str) and not source.lstrip().startswith("{")):
            path = Path(source)
            if not path.exists():
                raise FileNotFoundError(f"no {cls.__name__} file {path}")
            try:
                return cls.from_dict(json.loads(path.read_text()))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path} is not valid JSON: {e}") from e
        return cls.from_dict(json.loads(source))
