# mecl: two commands for users (`make book`, `make test`); everything else is for developers.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
EXTRAS ?= cpu,book,test

.PHONY: help env test lint format book clean

help:
	@echo "make book   build the Jupyter Book into _build/html (creates $(VENV) if missing)"
	@echo "make test   lint + the test suite, offline (creates $(VENV) if missing)"
	@echo "make format apply ruff formatting and safe fixes"

# The environment is rebuilt when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

env: $(STAMP)

lint: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: env
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	MPLBACKEND=Agg $(PY) -m pytest

book: env
	$(VENV)/bin/jupyter-book build . --warningiserror --keep-going
	@echo "Open _build/html/index.html"

clean:
	rm -rf _build .pytest_cache .ruff_cache
