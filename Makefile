# `make demo` and `make test` set up .venv on first use (CPU torch pinned to the local wheel).
VENV ?= .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $@

.PHONY: setup demo test bench
setup: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/genesis-dist demo

test: $(VENV)/.installed
	$(PY) -m pytest -q tests

bench: $(VENV)/.installed
	for b in benchmarks/bench_*.py; do $(PY) $$b --quick || exit 1; done
