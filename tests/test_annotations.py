"""Readers of segmentation files, group frequency and observer agreement, on the real Zacks file and on bad input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vaelib import annotations as an
from vaelib.paths import ZACKS_DAT

needs_zacks = pytest.mark.usefixtures("real_presses")  # skipped where absent, failing under CI (conftest.py)


@pytest.fixture(scope="module")
def zacks() -> pd.DataFrame:
    return an.read_presses(ZACKS_DAT)


@needs_zacks
def test_real_file_shape(zacks):
    assert list(zacks.columns) == ["subject", "condition", "movie", "time_s"]
    assert zacks["subject"].nunique() == 48
    assert sorted(zacks["movie"].unique()) == ["A", "B", "C"]
    assert set(zacks["condition"].unique()) == {"warned", "unwarned"}
    assert zacks["time_s"].dtype == float
    # each observer is in one condition, and segmented every movie
    assert zacks.groupby("subject")["condition"].nunique().max() == 1
    assert (zacks.groupby("subject")["movie"].nunique() == 3).all()
    # sorted by movie, subject, time; times plausible (within each movie's approximate length)
    assert zacks.equals(zacks.sort_values(["movie", "subject", "time_s"]).reset_index(drop=True))
    assert (zacks["time_s"] > 0).all()
    for movie, t in zacks.groupby("movie")["time_s"].max().items():
        assert an.ZACKS_DURATIONS_S[movie] - 30 < t <= an.ZACKS_DURATIONS_S[movie]


@needs_zacks
def test_real_file_agreement_is_plausible(zacks):
    agree = pd.concat([an.observer_agreement(zacks, m, an.ZACKS_DURATIONS_S[m], bin_s=1.0) for m in "ABC"])
    assert len(agree) == 3 * 48
    assert agree["r"].notna().all()
    assert 0.1 < agree["r"].mean() < 0.6        # observers agree, far from perfectly
    assert (agree["r"] > 0).mean() > 0.9
    summary = an.segmentation_summary(zacks, an.ZACKS_DURATIONS_S)
    assert len(summary) == 6 and (summary["observers"] == 24).all()
    assert ((summary["per_minute"] > 1) & (summary["per_minute"] < 20)).all()


def _presses(rows):
    return pd.DataFrame(rows, columns=["subject", "condition", "movie", "time_s"])


def test_group_frequency_counts_each_observer_once_per_bin():
    p = _presses([("s1", "w", "M", 0.1), ("s1", "w", "M", 0.2), ("s1", "w", "M", 0.3),
                  ("s2", "w", "M", 0.5), ("s2", "w", "M", 2.5), ("s3", "w", "M", 3.0)])
    f = an.group_frequency(p, "M", duration_s=3.0, bin_s=1.0)
    np.testing.assert_allclose(f, [2 / 3, 0, 2 / 3])   # a press exactly at the end goes in the last bin
    f2 = an.group_frequency(p, "M", duration_s=3.0, bin_s=0.25)
    assert len(f2) == 12 and f2[0] == pytest.approx(1 / 3) and f2[1] == pytest.approx(1 / 3)


def test_agreement_perfect_and_opposite():
    rows = [(s, "w", "M", t) for s in ("a", "b", "c") for t in (1.5, 5.5, 8.5)]
    rows += [("d", "w", "M", t) for t in (3.5, 6.5)]
    agree = an.observer_agreement(_presses(rows), "M", 10.0).set_index("subject")["r"]
    assert agree["a"] > 0.7 and agree["d"] < 0


def test_bad_movie_inputs():
    p = _presses([("s1", "w", "M", 5.0), ("s2", "w", "M", 12.0)])
    with pytest.raises(ValueError, match="absent"):
        an.group_frequency(p, "Q", 20.0)
    with pytest.raises(ValueError, match="past the movie's end"):
        an.group_frequency(p, "M", 10.0)
    with pytest.raises(ValueError, match="duration"):
        an.group_frequency(p, "M", 0.0)


def _write(tmp_path: Path, text: str, name="x.dat") -> Path:
    f = tmp_path / name
    f.write_text(text)
    return f


@pytest.mark.parametrize("text, match", [
    ("", "empty"),
    ("SubjNum\tCondition\tMovie\n", "missing column"),
    ("SubjNum\tCondition\tMovie\tMS\n", "no button presses"),
    ("SubjNum\tCondition\tMovie\tMS\ne1\twarned\tA\t100\ne1\twarned\tA\tabc\n", "line 3.*not a number"),
    ("SubjNum\tCondition\tMovie\tMS\ne1\twarned\tA\t-5\n", "line 2.*negative"),
    ("SubjNum,Condition,Movie,MS\ne1,warned,A,100\n", "missing column"),
])
def test_read_presses_bad_files(tmp_path, text, match):
    f = _write(tmp_path, text)
    with pytest.raises(ValueError, match=match) as e:
        an.read_presses(f)
    assert "x.dat" in str(e.value)


def test_read_presses_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.dat"):
        an.read_presses(tmp_path / "nope.dat")


def test_read_presses_sorts_and_converts(tmp_path):
    f = _write(tmp_path, "SubjNum\tCondition\tMovie\tMS\n"
                         "e2\tw\tB\t3000\ne1\tw\tB\t2000\ne1\tw\tA\t1500\ne1\tw\tB\t500\n")
    p = an.read_presses(f)
    assert p[["movie", "subject"]].values.tolist() == [["A", "e1"], ["B", "e1"], ["B", "e1"], ["B", "e2"]]
    assert p["time_s"].tolist() == [1.5, 0.5, 2.0, 3.0]


def test_read_boundary_csv(tmp_path):
    f = _write(tmp_path, "movie,level,time_s\nsynth01,fine,4.5\nsynth01,coarse,9.0\nsynth01,fine,2.0\n", "b.csv")
    b = an.read_boundary_csv(f)
    assert list(b.columns) == ["movie", "level", "time_s"]
    assert b["time_s"].tolist() == [9.0, 2.0, 4.5]
    g = _write(tmp_path, "movie,time_s\nm,1.0\n", "c.csv")
    assert list(an.read_boundary_csv(g).columns) == ["movie", "time_s"]
    with pytest.raises(ValueError, match="bad.csv.*missing column"):
        an.read_boundary_csv(_write(tmp_path, "movie,t\nm,1\n", "bad.csv"))
    with pytest.raises(ValueError, match="line 3"):
        an.read_boundary_csv(_write(tmp_path, "movie,time_s\nm,1\nm,-2\n", "neg.csv"))
    with pytest.raises(FileNotFoundError):
        an.read_boundary_csv(tmp_path / "none.csv")


def test_movie_matching():
    assert an.stem_matches("A", "a4.sax") and an.stem_matches("B", "b1.bed_small")
    assert an.stem_matches("synth01", "synth01") and not an.stem_matches("A", "b1.bed")
    assert an.match_movies(["A", "B", "C"], ["a4.sax", "c2.dishes"]) == {"A": "a4.sax", "C": "c2.dishes"}
    assert an.movie_code("b1.bed", ["A", "B", "C"]) == "B"
    assert an.movie_code("synth02", ["synth01", "synth02"]) == "synth02"
    with pytest.raises(ValueError, match="absent from the annotations"):
        an.movie_code("synth03", ["synth01", "synth02"])
    with pytest.raises(ValueError, match="several"):
        an.match_movies(["A"], ["a4.sax", "a4.sax_copy"])


def test_for_movies_relabels_and_requires_every_movie():
    p = _presses([("s", "w", "A", 1.0), ("s", "w", "B", 2.0), ("s", "w", "C", 3.0)])
    out = an.for_movies(p, ["a4.sax", "c2.dishes"])
    assert out["movie"].tolist() == ["a4.sax", "c2.dishes"] and out["time_s"].tolist() == [1.0, 3.0]
    with pytest.raises(ValueError, match=r"\['synth01'\] absent from the annotations"):
        an.for_movies(p, ["a4.sax", "synth01"])


# --- checked once, on reading: each problem with its file and line ------------------------------------------------


def test_repeated_rows_are_dropped_with_a_warning(tmp_path):
    """A repeated boundary row doubled the events (a perfect detector scored F1 0.67): kept once, and said."""
    f = _write(tmp_path, "movie,level,time_s\nm,coarse,4.0\nm,coarse,9.0\nm,coarse,4.0\nm,fine,4.0\n", "dup.csv")
    with pytest.warns(UserWarning, match=r"dup.csv: 1 row\(s\) repeat an earlier row exactly \(line\(s\) 4\); each "
                                         r"boundary is kept once"):
        b = an.read_boundary_csv(f)
    assert b[b.level == "coarse"].time_s.tolist() == [4.0, 9.0] and len(b) == 3
    p = _write(tmp_path, "SubjNum\tCondition\tMovie\tMS\ne1\tw\tA\t100\ne1\tw\tA\t100\ne2\tw\tA\t100\n", "p.dat")
    with pytest.warns(UserWarning, match=r"p.dat: 1 row\(s\) repeat.*line\(s\) 3"):
        assert len(an.read_presses(p)) == 2


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "", "1e400"])
def test_a_time_that_is_not_finite_is_refused(tmp_path, value):
    """An infinite boundary failed later as `IndexError: index -9223372036854775808 is out of bounds`."""
    f = _write(tmp_path, f"movie,time_s\nm,1.0\nm,{value}\n", "inf.csv")
    with pytest.raises(ValueError, match=r"inf.csv, line 3: time_s must be a finite non-negative number"):
        an.read_boundary_csv(f)
    p = _write(tmp_path, f"SubjNum\tCondition\tMovie\tMS\ne1\tw\tA\t100\ne1\tw\tA\t{value}\n", "inf.dat")
    with pytest.raises(ValueError, match=r"inf.dat, line 3: MS is not a number"):
        an.read_presses(p)


def test_a_time_past_the_movies_end_is_refused_where_its_length_is_known(tmp_path):
    """A boundary at 9,999 s in a 20-s movie was moved into the last bin (F1 1.0 -> 0.8)."""
    f = _write(tmp_path, "movie,time_s\nsynth01,4.0\nsynth01,9999\nsynth02,3.0\n", "late.csv")
    durations = {"synth01": 20.0, "synth02": 20.0}
    with pytest.raises(ValueError, match=r"late.csv, line 3: boundary at 9999.000 s is past the end of movie "
                                         r"'synth01' \(video 'synth01' is 20.000 s long\)"):
        an.read_boundary_csv(f, durations)
    assert len(an.read_boundary_csv(f)) == 3                     # the lengths unknown: nothing to compare with
    p = _write(tmp_path, "SubjNum\tCondition\tMovie\tMS\ne1\tw\tA\t100\ne1\tw\tA\t200500\n", "late.dat")
    with pytest.raises(ValueError, match=r"late.dat, line 3: press at 200.500 s is past the end of movie 'A' \(video "
                                         r"'a4.sax_small' is 185.000 s long\)"):
        an.read_presses(p, {"a4.sax_small": 185.0})
    assert len(an.read_presses(p, {"b1.bed": 10.0})) == 2        # no video of movie A here: not this check's to say


def test_levels_match_without_regard_to_case_and_a_missing_one_is_named(tmp_path):
    """`COARSE`/`fine` with truth_level='coarse' said "movie(s) [...] absent from the annotations (they cover [])"."""
    f = _write(tmp_path, "movie,level,time_s\nm,COARSE,4.0\nm,fine,2.0\nm,Fine,3.0\n", "lv.csv")
    b = an.read_boundary_csv(f)
    assert an.at_level(b, "coarse").time_s.tolist() == [4.0]
    assert an.at_level(b, "FINE").time_s.tolist() == [2.0, 3.0]
    assert len(an.at_level(b, "")) == 3
    with pytest.raises(ValueError, match=r"lv.csv: no boundaries at level 'medium' \(truth_level='medium'\); its "
                                         r"levels are \['coarse', 'fine'\]"):
        an.at_level(b, "medium")


def test_movie_codes_that_match_no_video_name_the_file_the_codes_and_the_videos(tmp_path):
    p = _write(tmp_path, "SubjNum\tCondition\tMovie\tMS\ne1\tw\tX\t100\ne1\tw\tY\t200\n", "codes.dat")
    with pytest.raises(ValueError, match=r"codes.dat: none of its movie codes matches a video; movie\(s\) "
                                         r"\['synth01', 'synth02'\] absent from the annotations \(they cover "
                                         r"\['X', 'Y'\]; the videos are \['synth01', 'synth02'\]\)"):
        an.for_movies(an.read_presses(p), ["synth01", "synth02"])


def test_a_boundary_csv_without_its_columns_says_what_it_needs(tmp_path):
    f = _write(tmp_path, "film,seconds\nm,1.0\n", "cols.csv")
    with pytest.raises(ValueError, match=r"cols.csv: missing column\(s\) \['movie', 'time_s'\]; found \['film', "
                                         r"'seconds'\]. Expected a CSV with the columns movie,time_s and optionally "
                                         r"level"):
        an.read_boundary_csv(f)
