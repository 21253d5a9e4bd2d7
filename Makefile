# Threadline developer commands. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: install demo test lint bench soak clean

$(STAMP): pyproject.toml sdk/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e ./sdk -e '.[test]'  # threadline-sdk from this checkout, never PyPI
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/threadline demo

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The bench extra (pandas, pyinstrument) only here: `make test` and CI never need it.
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install -e ./sdk -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(if $(SCALE),--scale $(SCALE),)

soak: $(STAMP)
	$(BIN)/python -m tests.reliability.soak $(if $(MINUTES),--minutes $(MINUTES),)

clean:
	rm -rf $(VENV) .threadline .pytest_cache
