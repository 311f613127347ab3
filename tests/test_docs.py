"""The README and the results page quote no number that their committed source files do not give.

``docs/results.md`` and the README's results block are written by ``benchmarks/report.py`` from the JSON in
``benchmarks/results/`` and ``figures/metrics/``; here they are written again and compared byte for byte, and the
rest of the README is checked for result-like numbers and for claims about "every seed" outside that block.
"""
from __future__ import annotations

import importlib.util
import json
import re

import pytest

from vaelib.paths import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
PAGE = PROJECT_ROOT / "docs" / "results.md"


@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location("report", PROJECT_ROOT / "benchmarks" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated(report):
    return report.page()


def test_the_results_page_is_what_its_sources_give(generated):
    text, _ = generated
    assert PAGE.read_text() == text, "docs/results.md differs from its sources: run python benchmarks/report.py"


def test_the_readme_results_block_is_what_its_sources_give(report, generated):
    _, block = generated
    readme = README.read_text()
    assert readme.count(report.README_START) == 1 and readme.count(report.README_END) == 1
    assert block in readme, "README.md's results block differs from its sources: run python benchmarks/report.py"


def prose_outside_generated(text: str, start: str, end: str) -> str:
    """``text`` without its generated block and its fenced code."""
    text = re.sub(re.escape(start) + r".*?" + re.escape(end), "", text, flags=re.S)
    return re.sub(r"```.*?```", "", text, flags=re.S)


# What a quoted result looks like: a percentage, decibels, bits per pixel, a speed, a memory size, a ratio, a
# p-value or a correlation.
RESULT = re.compile("|".join([r"[-+]?\d[\d,.]*\s*(?:%|dB\b|bpp\b|frames/s|GiB\b|MiB\b)", r"\d[\d,.]*x\b",
                              r"\bp\s*[=<>]\s*0?\.\d", r"\br\s*=?\s*-?0\.\d"]))


def test_the_readme_quotes_results_only_through_the_generator(report):
    prose = prose_outside_generated(README.read_text(), report.README_START, report.README_END)
    found = [m.group(0) for m in RESULT.finditer(prose)]
    assert not found, f"README quotes results outside its generated block: {found}"
    assert not re.search(r"every (training )?seed", prose), "'every seed' claims belong to the generated block"


def test_the_hand_written_docs_quote_no_results():
    for page in sorted((PROJECT_ROOT / "docs").glob("*.md")):
        if page != PAGE:
            found = [m.group(0) for m in RESULT.finditer(prose_outside_generated(page.read_text(), "\0", "\0"))]
            assert not found, f"{page.name} quotes results (they belong on the results page): {found}"
            assert not re.search(r"\bissues? #?\d+", page.read_text(), re.I), f"{page.name} cites issues"


def test_the_result_pattern_sees_quoted_numbers():
    for quoted in ("BD-rate -57.6%", "at 26.4 dB", "0.57 bpp", "196 frames/s", "10.4 GiB", "1.8x", "p = 0.03",
                   "r 0.23"):
        assert RESULT.search(quoted), quoted
    for plain in ("64 x 64 frames", "Python >= 3.10", "torch==2.13.0", "chapter 3", "Zacks et al. 2006"):
        assert not RESULT.search(plain), plain


def test_every_seed_words_follow_the_files_own_verdicts(report):
    """Each pre-registered hypothesis is said to hold in every seed exactly when its file's verdict says so,
    and each exploratory claim exactly when the file's every-seed flag is set."""
    page = PAGE.read_text()
    for name in ("boundaries_prereg.json", "boundaries_prereg_voxen.json"):
        found = json.loads((PROJECT_ROOT / "benchmarks" / "results" / name).read_text())
        for h in found["preregistered"]["hypotheses"]:
            row = next(line for line in page.splitlines() if line.startswith(f"| {h['id']} |"))
            assert row.rstrip(" |").endswith(report.verdict_words(h["verdict"])), row
            assert ("**holds** in every training seed" in row) == (h["verdict"] == "holds"), row
    for name in ("boundaries.json", "boundaries_5x90.json"):
        claim = json.loads((PROJECT_ROOT / "benchmarks" / "results" / name).read_text())["claim"]
        section = page.split(f"`benchmarks/results/{name}`:", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
        for metric, words in report.METRIC.items():
            row = next(line for line in section.splitlines() if line.startswith(f"| {words} |"))
            holds = claim[metric]["latent_beats_pixel_every_seed"] or claim[metric]["pixel_beats_latent_every_seed"]
            assert ("in every seed" in row) == holds, row


def test_the_readme_is_a_front_door():
    lines = README.read_text().splitlines()
    assert len(lines) <= 150, f"README has {len(lines)} lines"
    first = "\n".join(lines[:40])
    assert "make book" in first and "make test" in first
    text = "\n".join(lines)
    assert "## Your own data" in text
    assert text.index("<!-- own-data recipe start -->") < text.index("<!-- own-data recipe end -->")
    for path in (README, PAGE):
        assert not re.search(r"\bissue #?\d+|\bissues? \d+", path.read_text(), re.I), f"{path.name} cites issues"
