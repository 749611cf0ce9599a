# Every target sets itself up: a fresh clone needs only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo lint typecheck fuzz bench diagrams clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check kaphila_flow tests examples benchmarks docs/make_diagrams.py
	$(BIN)/ruff format --check kaphila_flow tests examples benchmarks docs/make_diagrams.py

typecheck: $(STAMP)
	$(BIN)/mypy kaphila_flow

test: lint typecheck
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/kaphila-flow demo

fuzz: $(STAMP)
	KAPHILA_FUZZ_EXAMPLES=20000 KAPHILA_FLOOD_EVENTS=1000000 $(BIN)/python -m pytest -q -m fuzz tests

bench: $(STAMP)
	$(BIN)/python -c "import matplotlib" 2>/dev/null || $(BIN)/python -m pip install --quiet matplotlib
	$(BIN)/python -m benchmarks

diagrams: $(STAMP)
	$(BIN)/python docs/make_diagrams.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .hypothesis
