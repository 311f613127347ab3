"""The book as a website: the executed chapters and the README's tour, built into static HTML.

    python -m vaelib.website                 # after `python -m vaelib.book`: build/notebooks -> build/html
    python -m vaelib.website --executed DIR  # from notebooks executed elsewhere (e.g. the smoke run)

The site is built by Jupyter Book's Sphinx engine (``jupyter-book`` 1.x: MyST-NB and the
sphinx-book-theme), which works offline. Jupyter Book 2 (mystmd) downloads its HTML theme from
``api.mystmd.org`` on every fresh build, which a machine without internet cannot do.

Pages: a landing page (the README from its first line up to "Open it in JupyterLab": the chapters,
the figures, the two commands) and one page per executed chapter with its outputs. The landing page's
figures and their captions come from the run: its data as chapter 1 recorded them (``vaelib.provenance``)
and the figures in the figures folder; the README's numbers of the book's own benchmark stay only when the
run's data are the book's synthetic movies.
Widgets are stored in the executed notebooks with their state; on the site they render as the
ipywidgets HTML manager allows (controls appear; pictures that need the Python kernel to change
stay as they were), and each chapter also writes a still figure of every widget to ``figures/``.
The site reads offline: the widget manager, require.js and MathJax are taken from npm when the site
is built (cached in ``build/.cache/site-js``) and served from the site itself; where npm cannot be
reached the pages point at the usual CDNs instead, and say so when built.
The site is built under a temporary name and renamed into place, so a failed build never leaves a
half-built site where the last good one was.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import nbformat

from .book import CHAPTERS
from .parameters import declared_parameters
from .paths import BUILD_DIR, FIGURES_DIR, PROJECT_ROOT, atomic_dir, claim_output, mark_output, resolve
from .provenance import data_name, describe, presses_label, read_record

SITE_KIND = "site"

TITLE = "Learning compact representations of video"
TOUR_END = "## Open it in JupyterLab"  # the landing page is the README up to this heading
FIGURES_SECTION = "## What the book shows"  # the README's section of figures, replaced by the run's own


def chapter_parameters(executed: Path) -> dict:
    """The parameters an executed chapter ran with: its declared defaults, overridden by what papermill injected."""
    nb = nbformat.read(executed, as_version=4)
    return {**declared_parameters(executed.stem), **nb.metadata.get("papermill", {}).get("parameters", {})}


def run_facts(executed_dir: str | Path) -> dict:
    """What the landing page says of the run whose executed chapters are in ``executed_dir``: its data ``record``
    (``vaelib.provenance``, from chapter 1's data folder), the frame ``size`` and chapter 4's ``codecs``."""
    executed = resolve(executed_dir)
    facts: dict = {"record": None, "size": None, "codecs": None}
    first = executed / f"{CHAPTERS[0]}.ipynb"
    if first.exists():
        params = chapter_parameters(first)
        facts.update(record=read_record(params.get("run_dir") or params.get("data_dir", "data")),
                     size=params.get("size"))
    voxen = executed / "04_voxen.ipynb"
    if voxen.exists():
        params = chapter_parameters(voxen)
        out = resolve(params.get("run_dir") or resolve(params.get("data_dir", "data")) / "voxen")
        try:
            metrics = json.loads(resolve(params.get("metrics_path") or out / "metrics.json").read_text())
            facts["codecs"] = [c["codec"] for c in metrics["codec_fps"]]
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return facts


CODEC_NAMES = {"x264": "x264", "x265": "x265", "vp9": "VP9", "av1": "AV1", "mjpeg": "MJPEG"}


def figure_table(facts: dict, figures_dir: str | Path) -> str:
    """The run's figures (those in ``figures_dir``) as a two-column markdown table, captioned from ``facts``
    (:func:`run_facts`): the data, who pressed, the frame size, the codecs compared."""
    figures = resolve(figures_dir)
    record = facts.get("record")
    data = describe(record)
    size = f", {facts['size']} x {facts['size']}" if facts.get("size") else ""
    truth = "true boundaries and " if record is None or record.get("synthetic") or record.get("boundaries_csv") else ""
    ran = facts.get("codecs") or list(CODEC_NAMES)
    rivals = [CODEC_NAMES[c] for c in CODEC_NAMES if c in ran] + \
        [c for c in ran if c not in CODEC_NAMES and not c.startswith("voxen")]
    gifs = sorted(figures.glob("04_voxen_lambda*.gif"), key=lambda p: float(p.stem.removeprefix("04_voxen_lambda")))
    gif = gifs[len(gifs) // 2].name if gifs else ""
    cells = [("01_contact_sheet.png", f"Ch. 1: {data} as stored{size}"),
             ("01_boundaries.png", f"Ch. 1: {truth}{presses_label(record)}"),
             ("02_reconstructions.png", "Ch. 2: held-out frames and MMD-VAE reconstructions"),
             ("02_prior_samples.png", "Ch. 2: samples from the prior"),
             ("03_r_by_bin.png", f"Ch. 3: r of each signal with the {presses_label(record)}"
                                 f"{' and the truth' if truth else ''} by bin width: 95% intervals over events, "
                                 f"surrogate null"),
             ("03_trajectory.png", "Ch. 3: the latent trajectory by event"),
             (f"04_rd_{data_name(record)}.png", f"Ch. 4: rate-distortion of VoxEn against {', '.join(rivals)} on "
                                                f"held-out clips of {data}"),
             (gif, f"Ch. 4: ground truth, VoxEn reconstruction (lambda {gif[len('04_voxen_lambda'):-4]})")]
    cells = [(name, caption) for name, caption in cells if name and (figures / name).exists()]
    rows = ["| | |", "|---|---|"]
    for i in range(0, len(cells), 2):
        pair = cells[i:i + 2] + [("", "")] * (2 - len(cells[i:i + 2]))
        rows.append("| " + " | ".join(f"![{Path(n).stem}](figures/{n})" if n else "" for n, _ in pair) + " |")
        rows.append("| " + " | ".join(c for _, c in pair) + " |")
    return "\n".join(rows) if cells else ""


def landing_page(readme: Path = PROJECT_ROOT / "README.md", executed_dir: str | Path | None = None,
                 figures_dir: str | Path = FIGURES_DIR) -> str:
    """The README's tour as the site's first page, with its section of figures made from the run in
    ``executed_dir``: the figures in ``figures_dir`` captioned from the run's data (:func:`run_facts`). That
    section's prose (the book's own numbers) is kept only when the run's data are the book's synthetic movies."""
    text = readme.read_text(encoding="utf-8")
    if TOUR_END in text:
        text = text[: text.index(TOUR_END)]
    facts = run_facts(executed_dir) if executed_dir is not None else {"record": None}
    record = facts["record"]
    table = figure_table(facts, figures_dir)
    start = text.find(FIGURES_SECTION)
    if start < 0:
        start = end = len(text)
        prose = ""
    else:
        nxt = text.find("\n## ", start + len(FIGURES_SECTION))
        end = nxt + 1 if nxt >= 0 else len(text)
        body = text[start + len(FIGURES_SECTION):end].strip().split("\n\n")
        prose = "\n\n".join(b for b in body if not b.lstrip().startswith("|") and not b.rstrip().endswith(":"))
    ours = bool(record and record.get("synthetic"))
    section = (f"{FIGURES_SECTION}\n\nFigures of this run, on {describe(record)}:\n\n{table}\n\n"
               + (f"{prose}\n\n" if ours and prose else "")
               if table else "")
    return (text[:start] + section + text[end:]).rstrip() + "\n"


def chapter_notebooks(executed_dir: Path) -> list[Path]:
    """The executed chapters in ``executed_dir``, in reading order; a clear error if one is missing or failed."""
    paths = [executed_dir / f"{name}.ipynb" for name in CHAPTERS]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"no executed chapter(s) {missing} in {executed_dir}: run `python -m vaelib.book` "
                                f"(or `make book`) first, or pass --executed DIR")
    for p in paths:
        nb = nbformat.read(p, as_version=4)
        failed = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        if failed:
            raise ValueError(f"{p} holds an error ({failed[0].get('ename')}: {failed[0].get('evalue')}); "
                             f"run the chapter again before building the site")
    return paths


# npm packages served from the site itself, and the file of each that the pages load.
SITE_JS = {"requirejs@2.3.7": "require.js", "@jupyter-widgets/html-manager@1.0.6": "dist/embed-amd.js",
           "mathjax@3.2.2": "es5/tex-chtml.js"}


def vendor_js(static_dir: Path, cache: Path = BUILD_DIR / ".cache" / "site-js") -> dict[str, str] | None:
    """Unpack the npm packages of ``SITE_JS`` into ``static_dir``; return package -> path of its script there.

    Each package is fetched once with ``npm pack`` into ``cache``. None when npm is missing or fails.
    """
    npm = shutil.which("npm")
    if npm is None:
        return None
    cache.mkdir(parents=True, exist_ok=True)
    out = {}
    for spec, script in SITE_JS.items():
        name = spec.rsplit("@", 1)[0].lstrip("@").replace("/", "-")
        version = spec.rsplit("@", 1)[1]
        tgz = cache / f"{name}-{version}.tgz"
        if not tgz.exists():
            try:
                subprocess.run([npm, "pack", spec, "--pack-destination", str(cache)], capture_output=True,
                               check=True, timeout=300)
            except (subprocess.SubprocessError, OSError):
                return None
        dest = static_dir / name
        keep = f"package/{script.split('/')[0]}/" if "/" in script else f"package/{script}"
        with tarfile.open(tgz) as tar:  # only the script's folder, without source maps
            members = [m for m in tar.getmembers() if m.name.startswith(keep) and not m.name.endswith(".map")]
            tar.extractall(dest, members=members, filter="data")
        out[spec] = f"{name}/package/{script}"
    return out


def _config(title: str, js: dict[str, str] | None) -> str:
    local = ""
    if js:  # served from the site: no CDN needed
        req, widgets = js["requirejs@2.3.7"], js["@jupyter-widgets/html-manager@1.0.6"]
        local = f"""    html_static_path: ["_vendor"]
    mathjax_path: "{js["mathjax@3.2.2"]}"
    nb_ipywidgets_js:
      "{req}": {{}}
      "{widgets}": {{}}
"""
    return f"""title: "{title}"
author: vaelib
only_build_toc_files: true
execute:
  execute_notebooks: "off"
sphinx:
  config:
    html_show_copyright: false
    nb_merge_streams: true
    suppress_warnings: ["mystnb.unknown_mime_type", "myst.header"]
{local}parse:
  myst_enable_extensions: ["dollarmath", "amsmath"]
"""


def _toc(chapters: list[Path]) -> str:
    lines = ["format: jb-book", "root: index", "chapters:"]
    lines += [f"  - file: {p.stem}" for p in chapters]
    return "\n".join(lines) + "\n"


def build_site(executed_dir: str | Path = BUILD_DIR / "notebooks", out_dir: str | Path = BUILD_DIR / "html",
               figures_dir: str | Path = FIGURES_DIR, quiet: bool = True) -> Path:
    """Build the site from the executed chapters in ``executed_dir`` into ``out_dir``; return ``out_dir/index.html``.

    ``figures_dir`` is copied beside the pages so the landing page's figure links resolve.
    """
    executed_dir, out_dir, figures_dir = resolve(executed_dir), resolve(out_dir), resolve(figures_dir)
    claim_output(out_dir, SITE_KIND, own=("index.html", "*.html", "_*", ".*", "figures", "*.js", "*.inv"))
    chapters = chapter_notebooks(executed_dir)
    work = out_dir.parent / f".{out_dir.name}.source"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        js = vendor_js(work / "_vendor")  # not _static: Jupyter Book would load every script in it
        if js is None:
            print("npm could not fetch the widget manager and MathJax: the site loads them from CDNs (online only)")
        (work / "_config.yml").write_text(_config(TITLE, js))
        (work / "_toc.yml").write_text(_toc(chapters))
        (work / "index.md").write_text(landing_page(executed_dir=executed_dir, figures_dir=figures_dir))
        for p in chapters:
            shutil.copy2(p, work / p.name)
        if figures_dir.exists():
            shutil.copytree(figures_dir, work / "figures")
        cmd = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(work), "--builder", "html"]
        if quiet:
            cmd.append("--quiet")
        res = subprocess.run(cmd, capture_output=True, text=True)
        html = work / "_build" / "html"
        if res.returncode != 0 or not (html / "index.html").exists():
            tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-30:])
            raise RuntimeError(f"jupyter-book build of {work} failed (exit {res.returncode}):\n{tail}")
        with atomic_dir(out_dir) as tmp:
            shutil.copytree(html, tmp, dirs_exist_ok=True)
            mark_output(tmp, SITE_KIND)
            if figures_dir.exists():  # the README's links point at figures/...
                shutil.copytree(figures_dir, tmp / "figures", dirs_exist_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out_dir / "index.html"


def page_titles(out_dir: str | Path = BUILD_DIR / "html") -> dict[str, str]:
    """Each chapter page's file name -> its first heading, read from the built HTML (for checks)."""
    out = {}
    for name in CHAPTERS:
        page = resolve(out_dir) / f"{name}.html"
        m = re.search(r"<h1>(.*?)<a class=\"headerlink\"", page.read_text(encoding="utf-8"), re.S) \
            if page.exists() else None
        out[name] = re.sub(r"<[^>]+>", "", m.group(1)).strip() if m else ""
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--executed", type=Path, default=BUILD_DIR / "notebooks",
                    help="folder of executed chapters (default: build/notebooks, where `make book` puts them)")
    ap.add_argument("--out", type=Path, default=BUILD_DIR / "html", help="site folder (default: build/html)")
    ap.add_argument("--figures", type=Path, default=FIGURES_DIR, help="figures folder (default: figures/)")
    args = ap.parse_args(argv)
    index = build_site(args.executed, args.out, args.figures, quiet=False)
    print(f"site: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
