"""Human event segmentation: reading button-press files, group boundary frequency, observer agreement.

Two formats are read:

* the Zacks lab format (tab-separated, header ``SubjNum Condition Movie MS``, one row per button
  press, ``MS`` in milliseconds from the movie's start), as in ``zachs2006_data021011.dat`` and in
  the simulated ``observers.dat`` the synthetic generator writes;
* a plain CSV of boundary times (columns ``movie``, ``time_s`` and optionally ``level``), as in the
  synthetic ground truth ``boundaries.csv``.

Both are checked once, on reading, each problem named with the file and the line: a time that is not a finite,
non-negative number, or (given the movies' lengths) one past its movie's end, is refused; rows repeated exactly
are dropped with a warning (a repeated boundary would count twice; a repeated press means nothing more);
level names are compared without regard to case (read as lower case).

Everything here works per movie on a grid of bins of any width. An observer counts once per bin
however many times they pressed in it, so the group frequency of a bin is the fraction of
observers who marked a boundary there.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from .stats import pearson

# Movie codes of the Zacks et al. (2006) data and the stems of the original movie files.
ZACKS_MOVIES: dict[str, str] = {"A": "a4.sax", "B": "b1.bed", "C": "c2.dishes"}
# Their approximate lengths in seconds (the data's README), for statistics when the videos are absent.
ZACKS_DURATIONS_S: dict[str, float] = {"A": 185.0, "B": 336.0, "C": 255.0}

PRESS_COLUMNS = ["SubjNum", "Condition", "Movie", "MS"]


def _not_utf8(path: Path, e: UnicodeDecodeError) -> ValueError:
    """A clear error for a segmentation file in another encoding: the file, the line, the byte, what to do."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
        pos, byte = e.start, e.object[e.start:e.start + 1]
    except UnicodeDecodeError as whole:
        pos, byte = whole.start, data[whole.start:whole.start + 1]
    line = data[:pos].count(b"\n") + 1
    return ValueError(f"{path}, line {line}: the file is not UTF-8 text (byte {byte!r} "
                      "cannot be decoded); save it as UTF-8 (e.g. `iconv -f latin1 -t utf-8 IN > OUT`) and read it "
                      "again")


def _checked(path: Path, df: pd.DataFrame, lines: np.ndarray, durations: dict[str, float] | None,
             what: str) -> pd.DataFrame:
    """``df`` (one row per line of ``path``, ``lines``: their line numbers) without rows repeated exactly (with a
    warning naming the lines), after refusing a time past its movie's end where ``durations`` (by video name)
    knows the movie's length. Marks the table with its file (``attrs["path"]``) for later messages."""
    if durations:
        for code in df["movie"].unique():
            videos = [(name, d) for name, d in durations.items() if stem_matches(code, name)]
            if len(videos) != 1 or not np.isfinite(videos[0][1]):
                continue
            name, duration = videos[0]
            late = (df["movie"] == code).to_numpy() & (df["time_s"].to_numpy() > duration + 1e-6)
            if late.any():
                i = int(np.flatnonzero(late)[0])
                raise ValueError(f"{path}, line {lines[i]}: {what} at {df['time_s'].iloc[i]:.3f} s is past the end of "
                                 f"movie {code!r} (video {name!r} is {duration:.3f} s long), as are {int(late.sum())} "
                                 f"of its {int((df['movie'] == code).sum())} {what} times: is it the file for "
                                 "these videos?")
    repeated = df.duplicated().to_numpy()
    if repeated.any():
        shown = ", ".join(str(n) for n in lines[repeated][:8]) + (" ..." if repeated.sum() > 8 else "")
        warnings.warn(f"{path}: {int(repeated.sum())} row(s) repeat an earlier row exactly (line(s) {shown}); "
                      f"each {what} is kept once", UserWarning, stacklevel=3)
        df = df[~repeated]
    df.attrs["path"] = str(path)
    return df


def read_presses(path: str | os.PathLike, durations: dict[str, float] | None = None) -> pd.DataFrame:
    """Read a Zacks-format button-press file into a DataFrame.

    Returns columns ``subject`` (str), ``condition`` (str), ``movie`` (str) and ``time_s`` (float,
    ``MS / 1000``), sorted by movie, subject and time. Raises ``FileNotFoundError`` if the file is
    missing and ``ValueError`` naming the file (and the line where it helps) if it is empty, lacks
    a column, or holds a time that is not a finite non-negative number, or (``durations``: the videos'
    lengths by name, movie codes matched as :func:`stem_matches` does) a press past its movie's end.
    A row repeated exactly is dropped, with a warning naming its lines.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"button-press file not found: {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty (expected a header line {' '.join(PRESS_COLUMNS)})")
    try:
        raw = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, skip_blank_lines=True)
    except UnicodeDecodeError as e:
        raise _not_utf8(path, e) from e
    except pd.errors.ParserError as e:
        raise ValueError(f"{path}: not a tab-separated table ({e})") from e
    except pd.errors.EmptyDataError as e:
        raise ValueError(f"{path}: the file is empty") from e
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in PRESS_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {missing}; found {list(raw.columns)}. Expected a tab-separated "
            "header " + "<TAB>".join(PRESS_COLUMNS))
    if raw.empty:
        raise ValueError(f"{path}: the file has a header but no button presses")
    for col in ("SubjNum", "Condition", "Movie"):
        blank = raw[col].str.strip() == ""
        if blank.any():
            line = int(np.flatnonzero(blank.to_numpy())[0]) + 2  # +1 header, +1 one-based
            raise ValueError(f"{path}, line {line}: empty {col}")
    ms = pd.to_numeric(raw["MS"].str.strip(), errors="coerce")
    bad = ms.isna() | ~np.isfinite(ms)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{path}, line {i + 2}: MS is not a number of milliseconds (finite, non-negative): "
                         f"{raw['MS'].iloc[i]!r}")
    if (ms < 0).any():
        i = int(np.flatnonzero((ms < 0).to_numpy())[0])
        raise ValueError(f"{path}, line {i + 2}: negative time MS={raw['MS'].iloc[i]}")
    df = pd.DataFrame({
        "subject": raw["SubjNum"].str.strip().astype(str),
        "condition": raw["Condition"].str.strip().astype(str),
        "movie": raw["Movie"].str.strip().astype(str),
        "time_s": ms.astype(float) / 1000.0,
    })
    df = _checked(path, df, np.arange(len(df)) + 2, durations, "press")
    out = df.sort_values(["movie", "subject", "time_s"], kind="stable").reset_index(drop=True)
    out.attrs["path"] = str(path)
    return out


def read_boundary_csv(path: str | os.PathLike, durations: dict[str, float] | None = None) -> pd.DataFrame:
    """Read a CSV of boundary times: columns ``movie`` (str), ``time_s`` (float) and optionally ``level``
    (read as lower case).

    Sorted by movie (then level) and time. Raises ``FileNotFoundError`` / ``ValueError`` naming the
    file when it is missing, empty, lacks a column, or holds a time that is not a finite non-negative
    number, or (``durations``, as in :func:`read_presses`) a boundary past its movie's end. A row repeated
    exactly is dropped (it would count one boundary twice), with a warning naming its lines.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"boundary CSV not found: {path}")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except UnicodeDecodeError as e:
        raise _not_utf8(path, e) from e
    except pd.errors.EmptyDataError as e:
        raise ValueError(f"{path}: the file is empty (expected columns movie,time_s[,level])") from e
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in ("movie", "time_s") if c not in raw.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; found {list(raw.columns)}. Expected a CSV with the "
                         "columns movie,time_s and optionally level")
    t = pd.to_numeric(raw["time_s"].str.strip(), errors="coerce")
    bad = t.isna() | ~np.isfinite(t) | (t < 0)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{path}, line {i + 2}: time_s must be a finite non-negative number of seconds, got "
                         f"{raw['time_s'].iloc[i]!r}")
    df = pd.DataFrame({"movie": raw["movie"].str.strip().astype(str), "time_s": t.astype(float)})
    keys = ["movie"]
    if "level" in raw.columns:
        df.insert(1, "level", raw["level"].str.strip().str.lower().astype(str))
        keys.append("level")
    df = _checked(path, df, np.arange(len(df)) + 2, durations, "boundary")
    out = df.sort_values(keys + ["time_s"], kind="stable").reset_index(drop=True)
    out.attrs["path"] = str(path)
    return out


def at_level(table: pd.DataFrame, level: str, parameter: str = "truth_level") -> pd.DataFrame:
    """The rows of a boundary table (:func:`read_boundary_csv`) at ``level`` (any case); the whole table when
    ``level`` is empty or it has no levels. A level it lacks is a ``ValueError`` naming the file, the
    ``parameter`` and the levels there are."""
    if not level or "level" not in table:
        return table
    levels = sorted(table["level"].unique())
    if level.strip().lower() not in levels:
        raise ValueError(f"{table.attrs.get('path', 'the boundary table')}: no boundaries at level {level!r} "
                         f"({parameter}={level!r}); its levels are {levels} (compared without regard to case). Give "
                         f"{parameter} one of them, or '' for all")
    out = table[table["level"] == level.strip().lower()]
    out.attrs["path"] = table.attrs.get("path")
    return out


def stem_matches(code: str, stem: str) -> bool:
    """Whether the video file stem ``stem`` belongs to the annotation movie code ``code``.

    An exact match counts (synthetic movies are named by their stem, e.g. ``synth01``), and so does
    a stem starting with the file name a Zacks code maps to (``A`` -> ``a4.sax`` matches ``a4.sax``
    and ``a4.sax_240p``), case-insensitively.
    """
    if stem == code:
        return True
    mapped = ZACKS_MOVIES.get(code)
    return mapped is not None and stem.lower().startswith(mapped.lower())


def match_movies(codes: Iterable[str], stems: Iterable[str]) -> dict[str, str]:
    """Map each annotation movie code to the one video stem it matches; codes with no video are left out.

    Raises ``ValueError`` if a code matches more than one stem.
    """
    stems = list(stems)
    out: dict[str, str] = {}
    for code in codes:
        hits = [s for s in stems if stem_matches(code, s)]
        if len(hits) > 1:
            raise ValueError(f"annotation movie {code!r} matches several videos {hits}; rename one")
        if hits:
            out[code] = hits[0]
    return out


def movie_code(stem: str, codes: Iterable[str]) -> str:
    """Return the annotation movie code that the video ``stem`` belongs to; ``ValueError`` if none does."""
    codes = list(codes)
    hits = [c for c in codes if stem_matches(c, stem)]
    if not hits:
        raise ValueError(f"movie {stem!r} is absent from the annotations (they cover {sorted(codes)})")
    if len(hits) > 1:
        exact = [c for c in hits if c == stem]
        if len(exact) == 1:
            return exact[0]
        raise ValueError(f"movie {stem!r} matches several annotation movies {hits}")
    return hits[0]


def for_movies(table: pd.DataFrame, movies: Iterable[str]) -> pd.DataFrame:
    """Rows of ``table`` (presses or boundaries) that belong to ``movies``, relabelled with those video names.

    Annotation codes are matched to video stems with :func:`stem_matches`; every movie must be
    covered, else ``ValueError`` names the movies absent from the annotations.
    """
    movies = list(movies)
    codes = match_movies(table["movie"].unique(), movies)
    absent = [m for m in movies if m not in codes.values()]
    if absent:
        where = f"{table.attrs['path']}: " if table.attrs.get("path") else ""
        if "level" in table and table["level"].nunique() == 1:
            where += f"at level {table['level'].iloc[0]!r}, "
        have = sorted(table["movie"].unique())
        none = "none of its movie codes matches a video; " if not codes else ""
        raise ValueError(f"{where}{none}movie(s) {absent} absent from the annotations (they cover {have}; the "
                         f"videos are {movies}). A code matches a video named by it, or for the Zacks codes "
                         f"{sorted(ZACKS_MOVIES)} one whose name starts with {sorted(ZACKS_MOVIES.values())}")
    return table[table["movie"].isin(codes)].assign(movie=lambda d: d["movie"].map(codes)).reset_index(drop=True)


def n_bins(duration_s: float, bin_s: float) -> int:
    """Number of bins of ``bin_s`` seconds that cover ``[0, duration_s]`` (the last may be partial)."""
    if bin_s <= 0:
        raise ValueError(f"bin width must be positive, got {bin_s}")
    if not duration_s > 0:
        raise ValueError(f"movie duration must be positive, got {duration_s}")
    return max(1, int(np.ceil(duration_s / bin_s - 1e-9)))


def _movie_presses(presses: pd.DataFrame, movie: str, duration_s: float) -> pd.DataFrame:
    if not duration_s > 0:
        raise ValueError(f"movie {movie!r} is empty: its duration must be positive, got {duration_s}")
    sub = presses[presses["movie"] == movie]
    if sub.empty:
        have = sorted(presses["movie"].unique())
        raise ValueError(f"movie {movie!r} is absent from the annotations (they cover {have})")
    late = sub["time_s"] > duration_s + 1e-9
    if late.any():
        row = sub[late].iloc[0]
        raise ValueError(
            f"movie {movie!r}: {int(late.sum())} press(es) past the movie's end ({duration_s:.2f} s), "
            f"e.g. subject {row['subject']} at {row['time_s']:.2f} s")
    return sub


def press_matrix(presses: pd.DataFrame, movie: str, duration_s: float,
                 bin_s: float = 1.0) -> tuple[list[str], np.ndarray]:
    """Observers' binned presses for one movie: ``(subjects, M)``, ``M[i, b]`` True if observer i pressed in bin b.

    Observers are those with at least one press on this movie. Raises ``ValueError`` if the movie
    is absent from ``presses`` or a press lies past ``duration_s``.
    """
    sub = _movie_presses(presses, movie, duration_s)
    nb = n_bins(duration_s, bin_s)
    subjects = sorted(sub["subject"].unique())
    row = {s: i for i, s in enumerate(subjects)}
    m = np.zeros((len(subjects), nb), dtype=bool)
    b = np.minimum((sub["time_s"].to_numpy() / bin_s).astype(int), nb - 1)
    m[sub["subject"].map(row).to_numpy(), b] = True
    return subjects, m


def group_frequency(presses: pd.DataFrame, movie: str, duration_s: float,
                    bin_s: float = 1.0) -> np.ndarray:
    """Fraction of observers who pressed in each ``bin_s``-second bin of ``movie`` (each counted once per bin)."""
    _, m = press_matrix(presses, movie, duration_s, bin_s)
    return m.mean(axis=0)


def bin_centers(duration_s: float, bin_s: float) -> np.ndarray:
    """Centre times (s) of the bins :func:`group_frequency` uses."""
    return (np.arange(n_bins(duration_s, bin_s)) + 0.5) * bin_s


def observer_agreement(presses: pd.DataFrame, movie: str, duration_s: float,
                       bin_s: float = 1.0) -> pd.DataFrame:
    """Leave-one-out agreement of each observer with the group for one movie.

    For each observer, the point-biserial correlation between their binned presses (0/1) and the
    group frequency of all *other* observers. Returns columns ``subject``, ``condition``,
    ``movie``, ``n_presses``, ``r``.
    """
    subjects, m = press_matrix(presses, movie, duration_s, bin_s)
    n = len(subjects)
    if n < 2:
        raise ValueError(f"movie {movie!r}: observer agreement needs at least two observers, found {n}")
    total = m.sum(axis=0).astype(float)
    sub = presses[presses["movie"] == movie]
    cond = sub.groupby("subject")["condition"].first()
    count = sub.groupby("subject").size()
    rows = []
    for i, s in enumerate(subjects):
        others = (total - m[i]) / (n - 1)
        rows.append({"subject": s, "condition": cond[s], "movie": movie,
                     "n_presses": int(count[s]), "r": pearson(m[i].astype(float), others)})
    return pd.DataFrame(rows)


def segmentation_summary(presses: pd.DataFrame, durations: dict[str, float],
                         bin_s: float = 1.0) -> pd.DataFrame:
    """One row per movie and condition: observers, boundaries per observer, per minute, mean agreement.

    ``durations`` maps each movie to its length in seconds. Agreement is the leave-one-out
    point-biserial r at ``bin_s`` against all other observers of the movie (any condition).
    """
    rows = []
    for movie in sorted(presses["movie"].unique()):
        if movie not in durations:
            raise ValueError(f"no duration given for movie {movie!r}")
        dur = float(durations[movie])
        agree = observer_agreement(presses, movie, dur, bin_s)
        sub = presses[presses["movie"] == movie]
        for cond, g in sub.groupby("condition"):
            per_obs = g.groupby("subject").size()
            a = agree[agree["condition"] == cond]["r"]
            rows.append({
                "movie": movie, "condition": cond, "observers": int(per_obs.size),
                "boundaries_per_observer": float(per_obs.mean()),
                "boundaries_per_observer_sd": float(per_obs.std(ddof=1)) if per_obs.size > 1 else float("nan"),
                "per_minute": float(per_obs.mean() / (dur / 60.0)),
                "mean_agreement_r": float(a.mean()),
                "duration_s": dur,
            })
    return pd.DataFrame(rows)
