# Two entry points for a fresh machine: `make train` and `make test`. Both are idempotent.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Extra Hydra overrides for `make train`, e.g. make train ARGS="training.seed=1"
ARGS ?=
# Browser tests drive Debian's Chromium; Playwright must never download one.
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
# MkDocs prints a notice about its next major version on every build.
export NO_MKDOCS_2_WARNING := 1

.PHONY: install install-gpu install-test data train system-packages bytecode test test-fast lint docs docs-serve format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[cpu]"
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

# On a machine with an NVIDIA GPU: TensorFlow's CUDA build instead of the CPU one.
install-gpu: | $(BIN)/python
	$(BIN)/pip uninstall --quiet --yes tensorflow-cpu
	$(BIN)/pip install --quiet -e ".[gpu]"

install-test: $(VENV)/.installed-test

data: install
	$(BIN)/mnist-exp-data pull mnist

train: data
	$(BIN)/mnist-exp experiment=reference $(ARGS)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Debian packages the tests use: Chromium for the browser test, PostgreSQL for the
# tracking-server test, SLURM and munge for the cluster tests (no default cluster or
# daemon: each test starts and stops its own, on loopback).
MISSING := $(if $(wildcard $(CHROMIUM)),,chromium chromium-driver) \
           $(if $(wildcard /usr/lib/postgresql/*/bin/initdb),,postgresql) \
           $(if $(wildcard /usr/sbin/slurmctld),,slurm-wlm) \
           $(if $(wildcard /usr/sbin/munged),,munge)

system-packages:
ifneq ($(strip $(MISSING)),)
	$(SUDO) mkdir -p /etc/postgresql-common/createcluster.d
	echo "create_main_cluster = false" | $(SUDO) tee /etc/postgresql-common/createcluster.d/mnist-exp.conf >/dev/null
	$(SUDO) apt-get update -qq
	$(SUDO) apt-get install -y -qq $(MISSING)
endif

# The documentation site, built into site/; --strict turns a broken link or reference into an error.
docs: install-test
	$(BIN)/mkdocs build --strict --quiet

docs-serve: install-test
	$(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

# Tests run in one worker per CPU (pytest-xdist): many wait on processes, servers and signals.
# A test module that starts a cluster keeps its tests on one worker (xdist_group).
test: lint docs system-packages bytecode
	$(BIN)/pytest -n auto --dist loadgroup --durations=15

# The developers' tier: lint and the tests that train in this process only (no subprocess
# training, server, PostgreSQL, cluster or browser).
test-fast: lint bytecode
	$(BIN)/pytest -n auto -m "not slow and not integration and not cluster"

# An editable install leaves the project's modules uncompiled, and with PYTHONDONTWRITEBYTECODE
# set every Python process the tests start would compile them again: compile them once.
bytecode: install-test
	$(BIN)/python -m compileall -q mnist_exp hydra_plugins

format: install-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf outputs multirun site .pytest_cache .ruff_cache
