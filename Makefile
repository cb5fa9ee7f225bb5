# The two commands of the README: `make run` and `make test`. Both create the virtualenv when it
# is missing and (re)install the project only when pyproject.toml changed since the last install.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || echo python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ricochet-installed

.PHONY: run test lint typecheck pytest bench bench-sisimai venv clean

# Migrations first, so that a new checkout or a new release serves on an up-to-date schema.
run: $(STAMP)
	$(BIN)/python app.py db upgrade
	$(BIN)/python app.py serve

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/parse_corpus.py

bench-sisimai: $(STAMP)
	$(BIN)/python benchmarks/parse_corpus.py --sisimai

venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

clean:
	rm -rf .mypy_cache .ruff_cache .pytest_cache .hypothesis build *.egg-info
