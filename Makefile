# Every target sets itself up: a fresh clone needs only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.docs-installed
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: test demo lint typecheck docs browser screenshot fuzz bench load diagrams clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,docs]'
	touch $(DOCS_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check kaphila_flow tests examples benchmarks docs/_hooks.py docs/make_diagrams.py
	$(BIN)/ruff format --check kaphila_flow tests examples benchmarks docs/_hooks.py docs/make_diagrams.py

typecheck: $(STAMP)
	$(BIN)/mypy kaphila_flow

# The documentation site (MkDocs, Material, mkdocstrings) into site/; strict: a broken
# link, a missing page or a docstring the reference cannot read fails the build.
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site


# The dev phone's browser tests drive the distribution's Chromium (Playwright's own
# browser download is not used); installed with apt when missing.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

browser: $(STAMP)
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

# docs/devphone.png: the dev phone on two live calls, in headless Chromium.
screenshot: browser
	$(BIN)/python -m tests.devphone_browser docs/devphone.png

test: lint typecheck docs browser
	$(BIN)/python -m pytest -q -n 2

demo: $(STAMP)
	$(BIN)/kaphila-flow demo

fuzz: $(STAMP)
	KAPHILA_FUZZ_EXAMPLES=20000 KAPHILA_FLOOD_EVENTS=1000000 $(BIN)/python -m pytest -q -m fuzz tests

# Benchmarks against baselines measured in the same run: table and plots in
# benchmarks/results/ (BENCH_ARGS=--quick for a shorter run).
bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# 300, 1,000 and 3,000 calls at once through the simulator, each callee its own keys;
# fails on any key lost or misattributed. Receiver latency under load, measured.
load: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.load $(LOAD_ARGS)

diagrams: $(STAMP)
	$(BIN)/python docs/make_diagrams.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .hypothesis site
