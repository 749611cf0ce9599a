# Every target sets itself up: a fresh clone needs only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo lint typecheck browser screenshot fuzz bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check kaphila_flow tests examples benchmarks
	$(BIN)/ruff format --check kaphila_flow tests examples benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy kaphila_flow

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

test: lint typecheck browser
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/kaphila-flow demo

fuzz: $(STAMP)
	KAPHILA_FUZZ_EXAMPLES=20000 KAPHILA_FLOOD_EVENTS=1000000 $(BIN)/python -m pytest -q -m fuzz tests

bench: $(STAMP)
	$(BIN)/python -c "import matplotlib" 2>/dev/null || $(BIN)/python -m pip install --quiet matplotlib
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .hypothesis
