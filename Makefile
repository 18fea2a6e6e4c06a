# Two commands on a fresh machine with only Python 3.11+:
#   make demo   creates .venv with the pinned dependencies and runs the workflow on the demo corpus
#   make test   creates .venv with the pinned dependencies and runs the tests: the suite, then the
#               workflow on a real single-node SLURM cluster (test-slurm; it skips without root)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all

.PHONY: install demo test test-suite test-fast lint format clean

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -r requirements.txt
	$(BIN)/pip install --no-deps -r requirements-nodeps.txt
	$(BIN)/pip install --no-deps -e .
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m danqing.demo.run --cores $(CORES)

# One after the other: run side by side on 2 cores they doubled each other's time (docs/cluster.md).
test: test-suite test-slurm

test-suite: $(STAMP) browser
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=20

lint: $(STAMP)
	$(BIN)/ruff check danqing scripts tests benchmarks
	$(BIN)/ruff format --check danqing scripts tests benchmarks
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/snakemake --lint

format: $(STAMP)
	$(BIN)/ruff check --fix danqing scripts tests benchmarks
	$(BIN)/ruff format danqing scripts tests benchmarks
	$(BIN)/snakefmt Snakefile rules

clean:
	rm -rf results .snakemake

# Headless Chromium for tests/test_report_html.py (the Snakemake report opened in a browser):
# Debian's `chromium` package, installed when missing (as root; the test skips without it).
.PHONY: browser
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } || \
		echo "chromium could not be installed: tests/test_report_html.py will skip"

# The workflow on a real single-node SLURM cluster (installs slurm-wlm and munge with apt-get, as
# root; starts and stops the daemons itself; skips with the reason without root or apt-get):
# tests/slurm, docs/cluster.md. About 6 minutes on 2 cores.
.PHONY: test-slurm
# The unit tests: no workflow run, no SLURM cluster.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not e2e and not slurm" -q

test-slurm: $(STAMP)
	DQ_SLURM_TESTS=1 $(BIN)/python -m pytest -m slurm tests/slurm -s -v
