# Two entry points (README Quick start): `make repro` runs the default pipeline, `make test` the tests.
# Each creates the virtual environment from requirements.txt on first use.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup repro test lint status report params docs mutation clean-venv gpu-check

# Installed with uv (the same pinned set as pip: requirements.lock constrains every package; several times
# faster than pip on the 2-core VM), falling back to pip where uv cannot be installed or reach the index. uv does not
# read pip's configuration: PIP_FIND_LINKS (where a local torch wheel lies) is passed on as UV_FIND_LINKS. No
# --compile-bytecode: compiling all 18,000 installed files took 41 s of a 54 s setup on the 2-core VM; Python compiles
# (and caches) only the modules a run imports, the first time it imports them. That cache must be allowed to be
# written: an environment with PYTHONDONTWRITEBYTECODE set (this VM's) would otherwise recompile every module in every
# stage and test process, so the recipes below run without it.
unexport PYTHONDONTWRITEBYTECODE
UV_VERSION := 0.13.9
$(BIN)/.installed: requirements.txt requirements-nodeps.txt requirements.lock pyproject.toml
	@mkdir -p $(VENV) && $(PYTHON) -c "import time; print(time.time())" > $(VENV)/.setup-start
	$(PYTHON) -m venv $(VENV)
	if $(BIN)/pip install --quiet uv==$(UV_VERSION); then \
	  if [ -n "$$PIP_FIND_LINKS" ] && [ -z "$$UV_FIND_LINKS" ]; then export UV_FIND_LINKS="$$PIP_FIND_LINKS"; fi; \
	  $(BIN)/uv pip install --python $(BIN)/python -r requirements.txt -c requirements.lock \
	  && $(BIN)/uv pip install --python $(BIN)/python --no-deps -r requirements-nodeps.txt -c requirements.lock; \
	else false; fi \
	|| { echo "uv install failed: installing with pip"; \
	     $(BIN)/pip install -r requirements.txt -c requirements.lock \
	     && $(BIN)/pip install --no-deps -r requirements-nodeps.txt -c requirements.lock; }
	@# how long this took, for the run-time report of the next `make repro` (scripts/repro.py reads it once)
	@$(BIN)/python -c "import sys, time; print(round(time.time() - float(open(sys.argv[1]).read()), 1))" \
	  $(VENV)/.setup-start > $(VENV)/.setup-seconds && rm -f $(VENV)/.setup-start || true  # a report, never a failure
	touch $@

setup: $(BIN)/.installed

repro: setup
	python scripts/repro.py --times-json reports/run_times.json
	python scripts/render_results.py
	@echo; cat metrics/leaderboard.md
	@echo; cat metrics/recommendation.md

# pytest-xdist: one worker per core, each test file on one worker (module fixtures are built once), heavy files
# first in the order tests/conftest.py sets (--no-loadscope-reorder keeps it).
TEST_WORKERS ?= auto
test: setup
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

lint: setup
	ruff check .

status: setup
	dvc status

# params.yaml composed from conf/ (DVC's Hydra composition, as `dvc exp run` does): `make params PROFILE=reference`.
PROFILE ?= default
params: setup
	python scripts/compose_params.py --profile $(PROFILE)

# Pull-request report (what the PR workflow posts): params/metrics diff vs $(BASE), leaderboard, changed plots.
BASE ?= main
report: setup
	python scripts/pr_report.py --base $(BASE) --out report.md

# Generated blocks of README.md and docs/ (results table, recommendation, significance) from metrics/.
docs: setup
	python scripts/render_results.py

# Mutation testing with mutmut (pinned in requirements-dev.txt, installed on first use): one mutmut run per module
# over the fast tests that import it, then killed / total per module. Default modules: `only_mutate` of [tool.mutmut]
# in pyproject.toml; one module: `make mutation MUTATE=src/textcls/eval/statistics.py`; MUTATION_TESTS=tests/test_x.py
# overrides the test files. Surviving mutants: `python scripts/mutation_report.py --survivors`.
MUTATE ?=
MUTATION_TESTS ?=
$(BIN)/.installed-dev: requirements-dev.txt | $(BIN)/.installed
	$(BIN)/pip install -r requirements-dev.txt
	touch $@

mutation: setup $(BIN)/.installed-dev
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 python scripts/mutation.py $(MUTATE) $(if $(MUTATION_TESTS),--tests $(MUTATION_TESTS))

# The one-command GPU check (docs/gpu.md): every GPU path on this machine's CUDA PyTorch stack, ~10 min, report in
# reports/gpu/. Runs with any python that has torch + transformers (not the venv: nothing here creates it);
# `make gpu-check PYTHON=python3 GPU_CHECK_ARGS="--steps 100"`. Without a GPU it exits at once: "no CUDA device".
GPU_CHECK_ARGS ?=
gpu-check:
	$(PYTHON) scripts/gpu_check.py $(GPU_CHECK_ARGS)

clean-venv:
	rm -rf $(VENV)
