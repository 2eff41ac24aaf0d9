# Metric Learning for MIR: the two commands are `make course` and `make test`.
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

# The tested environment: requirements/lock.txt holds every package and version that CI tests,
# with their hashes (pip-compile, from pyproject.toml's ranges; `make upgrade` moves it forward).
# torch is installed first and apart, pinned: an unpinned torch lets pip pull a multi-GB CUDA
# build. Where the default index serves CUDA wheels, point pip at the CPU ones, e.g.
# make TORCH_PIP_FLAGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_VERSION ?= 2.13.0
TORCH_PIP_FLAGS ?=
PIP_VERSION := 26.3
LOCK := requirements/lock.txt
APART := requirements/apart.txt
TOOLS := .venv-tools
PIP_COMPILE := $(TOOLS)/bin/pip-compile --quiet --extra test --extra mirdata --generate-hashes --strip-extras \
	--unsafe-package torch --no-emit-index-url --no-emit-find-links --output-file $(LOCK)

# Dataset and training size for `make course`: smoke | workshop | full.
MLCOURSE_MODE ?= workshop

.PHONY: help install course exercises site test lab bench clean lock upgrade

help:
	@echo "make course   build the $(MLCOURSE_MODE) dataset, execute every notebook into build/notebooks/, print the headline results"
	@echo "make exercises  write the learner copies (each solution an empty answer cell) into build/exercises/"
	@echo "make site     build the course's website from the executed notebooks into build/site/ (after make course)"
	@echo "make test     build the smoke dataset, run tests/ and the notebooks (nbval) in smoke mode"
	@echo "make lab      open the notebooks in JupyterLab"
	@echo "make bench    run every benchmark in bench/, write bench/RESULTS.md (QUICK=1: quick versions; ONLY=losses,retrieval: some)"
	@echo "make install  create $(VENV)/ and install the course into it, at the versions of $(LOCK)"
	@echo "make upgrade  re-resolve $(LOCK) to the newest versions pyproject.toml allows (then: make test)"
	@echo "make lock     re-resolve $(LOCK) after a change to pyproject.toml, keeping the other versions"
	@echo "make clean    remove build/ (keeps the dataset cache)"

install: $(STAMP)

$(STAMP): pyproject.toml $(LOCK) $(APART)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install pip==$(PIP_VERSION)
	$(PIP) install $(TORCH_PIP_FLAGS) torch==$(TORCH_VERSION)
	$(PIP) install --require-hashes -r $(LOCK)
	# tinysoundfont's metadata asks for pyaudio, which the course never uses and which does not build.
	$(PIP) install --no-deps --require-hashes -r $(APART)
	$(PIP) install --no-deps -e .
	# Compile librosa's and umap-learn's numba functions once, into numba's disk cache: later
	# processes load them instead of compiling them again (10-30 s per notebook).
	$(PY) -m coursetools.warm
	touch $@

course: $(STAMP)
	$(PY) -m mlcourse.data build --size $(MLCOURSE_MODE)
	$(PY) -m coursetools.run --mode $(MLCOURSE_MODE)

exercises: $(STAMP)
	$(PY) -m coursetools.exercises

site: $(STAMP)
	$(PY) -m coursetools.site

# nbval exits 5 when it collects nothing; with no notebooks yet that is not a failure.
test: $(STAMP)
	$(PY) -m mlcourse.data build --size smoke
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	MLCOURSE_MODE=smoke $(PY) -m pytest --doctest-modules tests mlcourse coursetools
	@if compgen -G 'notebooks/*.ipynb' > /dev/null; then \
		echo "MLCOURSE_MODE=smoke $(PY) -m pytest --nbval-lax notebooks/"; \
		MLCOURSE_MODE=smoke $(PY) -m pytest --nbval-lax notebooks/ || [ $$? -eq 5 ]; \
	else \
		echo "No notebooks in notebooks/ yet: skipping nbval."; \
	fi

# pip-compile runs in an environment of its own, so that it never enters the tested one.
$(TOOLS)/bin/pip-compile:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install pip-tools==7.7.0

lock: $(TOOLS)/bin/pip-compile
	$(PIP_COMPILE) pyproject.toml

upgrade: $(TOOLS)/bin/pip-compile
	$(PIP_COMPILE) --upgrade pyproject.toml
	@echo "$(LOCK) now holds the newest versions pyproject.toml allows: run make test, and commit it if it passes"

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

# The peers the benchmarks compare against (faiss, pytorch-metric-learning): the `bench` extra.
# bench_lmnn.py creates metric-learn's side environment itself. QUICK=1 passes --quick to every
# bench; ONLY=losses,retrieval runs some of them (RESULTS.md still shows every bench's latest).
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PIP) install -e '.[bench]'
	touch $@

bench: $(BENCH_STAMP)
	$(PY) bench/run_all.py $(if $(QUICK),--quick) $(if $(ONLY),--only $(ONLY))

clean:
	rm -rf build/
