# switchyard developer entry points. Everything installs into .venv from PyPI only.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: install test lint typecheck unit run bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,ml]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check src tests bench

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -q tests/unit

## The test command (README, CI): lint, strict type check, then every test.
test: lint typecheck
	$(BIN)/pytest -q -ra

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
