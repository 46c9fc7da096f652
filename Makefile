# The commands a developer and CI use. Each target creates .venv on first use and reinstalls only when
# pyproject.toml changed since the last install.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Packages to type-check; missing ones (e.g. bench/ before it exists) are left out.
TYPED := $(wildcard app connectors jobs emulator bench)

.PHONY: demo test lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/steward demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(TYPED)

bench: $(STAMP)
	@if [ -d bench ]; then $(BIN)/python -m bench; \
	else echo "No benchmarks exist yet: bench/ is missing, so there is nothing to run."; fi
