# mecl: two commands for users (`make book`, `make test`); everything else is for developers.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
EXTRAS ?= cpu,book,test
# make book: auto is the book profile when CIFAR-10 and the MobileNet weights are local, else smoke.
PROFILE ?= auto
DATA_DIR ?=
BOOK_OUT ?= _build

.PHONY: help env test lint format book reproduce bench bench-book clean

help:
	@echo "make book   execute the chapters and build the book into $(BOOK_OUT)/html (creates $(VENV))"
	@echo "            PROFILE=auto|smoke|book|paper (default auto), DATA_DIR=folder holding cifar-10-batches-py/"
	@echo "            VERBOSE=1 shows every kernel's and worker's own output (TensorFlow start-up notices too)"
	@echo "            RERUN=1 executes every chapter again, even those unchanged since the last build"
	@echo "make test   lint + the test suite, offline (creates $(VENV) if missing)"
	@echo "make format apply ruff formatting and safe fixes"
	@echo "make reproduce PROFILE=book   run a profile's whole experiment grid and print Table IV"
	@echo "make bench [DATA_DIR=...]     print the speed benchmarks (benchmarks/README.md), ~10 min"
	@echo "make bench-book DATA_DIR=...  the book profile's book cold, warm and with RERUN, per stage, 12-37 min"

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
	MPLBACKEND=Agg $(PY) -m pytest -n 2 --dist loadgroup --no-loadscope-reorder

# MathJax 3 from npm lets the equations render without a network; without npm the book uses the CDN.
MATHJAX := .cache/mathjax/node_modules/mathjax/es5/tex-mml-chtml.js
$(MATHJAX):
	-command -v npm >/dev/null && npm install --silent --no-save --prefix .cache/mathjax mathjax@3

book: env $(MATHJAX)
	$(PY) -m mecl_utils.book build --profile $(PROFILE) --out $(BOOK_OUT) $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(if $(VERBOSE),--verbose) $(if $(RERUN),--rerun)
	@echo "Open $(BOOK_OUT)/html/index.html"

reproduce: env
	$(if $(filter auto,$(PROFILE)),$(error make reproduce needs PROFILE=smoke, book or paper, e.g. make reproduce PROFILE=book))
	$(PY) -m mecl_utils run --profile $(PROFILE) $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(if $(VERBOSE),--verbose)

# Speed figures (not timed tests): see benchmarks/README.md. book_backbone.py needs CIFAR-10 (DATA_DIR).
bench: env
	$(PY) benchmarks/sampler_throughput.py
	$(PY) benchmarks/branch_training.py
	$(PY) benchmarks/worker_pool.py
	$(PY) benchmarks/scoring.py
	$(PY) benchmarks/book_build.py --profile smoke
	$(if $(DATA_DIR),$(PY) benchmarks/book_backbone.py --data-dir $(DATA_DIR),@echo "skipping book_backbone.py: pass DATA_DIR=folder holding cifar-10-batches-py/")

bench-book: env
	$(if $(DATA_DIR),,$(error make bench-book needs DATA_DIR=folder holding cifar-10-batches-py/))
	$(PY) benchmarks/book_build.py --profile book --data-dir $(DATA_DIR)

clean:
	rm -rf _build .pytest_cache .ruff_cache
