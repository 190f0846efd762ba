# Every target creates its own virtual environment from the pinned pyproject.toml.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.PHONY: demo up test lint unit integration e2e bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

venv: $(STAMP)

demo: $(STAMP)  ## start the local stack, send a realistic batch of orders, keep running (ARGS=--exit to stop)
	$(BIN)/conveyor demo $(ARGS)

up: $(STAMP)  ## start the local stack and keep it running until Ctrl-C
	$(BIN)/conveyor up $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -n 2 --dist loadgroup $(ARGS)

unit: $(STAMP)
	$(BIN)/pytest tests/unit $(ARGS)

clean:
	rm -rf $(VENV) .conveyor .pytest_cache .mypy_cache .ruff_cache
