# One entry point for the book. `make book` runs every chapter; `make test` runs the test suite.
# Both create the virtual environment and install everything on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup book html test lint chromium lab bench clean-data

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,site]"
	# JupyterLab in this environment opens the paired .py notebooks as notebooks (jupytext's viewer)
	mkdir -p $(VENV)/share/jupyter/lab/settings
	printf '%s\n' '{"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"python": "Jupytext Notebook"}}}' \
		> $(VENV)/share/jupyter/lab/settings/overrides.json
	touch $(STAMP)

setup: $(STAMP)

## Run the whole book headless on the built-in synthetic data; figures go to figures/.
book: setup
	$(PY) -m vaelib.book

## The executed chapters (from `make book`, in build/notebooks) as a static website in build/html.
html: setup
	$(PY) -m vaelib.website

## Lint (ruff), then unit tests, papermill smoke runs of every chapter, the browser test; on two workers
## (pytest-xdist; tests/conftest.py keeps each file, and the files reading the smoke book, on one worker).
test: setup chromium lint
	$(PY) -m pytest -n 2

lint: setup
	$(VENV)/bin/ruff check .

## Debian's chromium for the browser test (playwright's own browser download is not used).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the browser test"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "apt-get is not available: cannot install chromium, the browser test will be skipped (under CI=true it fails)"; fi

## JupyterLab, in which the paired .py notebooks open as notebooks.
lab: setup
	cd notebooks && ../$(VENV)/bin/jupyter lab

## Benchmarks: each prints its figures and writes JSON to benchmarks/results/.
bench: setup
	for b in benchmarks/[!_]*.py; do [ $$b = benchmarks/report.py ] || $(PY) $$b || exit 1; done
	$(PY) benchmarks/report.py  # the results page from the fresh JSON, last

clean-data:
	rm -rf data build
