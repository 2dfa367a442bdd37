# The two commands of the README, plus what they are made of.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo up test lint bench reliability

$(BIN)/driftline: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/driftline

demo: install
	$(BIN)/driftline demo

up: install
	$(BIN)/driftline up

lint: install
	$(BIN)/ruff check driftline/*.py agent collector detectors tests bench
	$(BIN)/ruff format --check driftline/*.py agent collector detectors tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# Every benchmark under bench/, one table (over 85 minutes; `make bench QUICK=1` checks the scripts).
bench: install
	$(BIN)/python -m bench.run $(if $(QUICK),--quick)

# The fault scenarios at full scale, one table (about 20 minutes).
reliability: install
	$(BIN)/python -m tests.faults
