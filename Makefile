# Two commands on a fresh machine with only Python 3.11+:
#   make demo   creates .venv with the pinned dependencies and runs the workflow on the demo corpus
#   make test   creates .venv with the pinned dependencies and runs the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all

.PHONY: install demo test lint format clean

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -r requirements.txt
	$(BIN)/pip install --no-deps -r requirements-nodeps.txt
	$(BIN)/pip install --no-deps -e .
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m danqing.demo.run --cores $(CORES)

# The unit and end-to-end tests on 2 workers and, at the same time, the whole workflow on a real
# single-node SLURM cluster (tests/slurm; as root it installs slurm-wlm and munge with apt-get,
# elsewhere it skips with the reason). The SLURM run spends most of its ~7 minutes waiting on the
# queue and on status checks, so it runs beside the other tests rather than after them; its
# output follows theirs.
SLURM_LOG := .pytest-slurm.log
test: $(STAMP) browser
	@DQ_SLURM_TESTS=1 $(BIN)/python -m pytest -m slurm tests/slurm -s -v -p no:cacheprovider \
		--basetemp=$${TMPDIR:-/tmp}/danqing-slurm-test >$(SLURM_LOG) 2>&1 & slurm=$$!; \
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=20; tests=$$?; \
	wait $$slurm; slurm_status=$$?; \
	echo "==================== SLURM cluster test (tests/slurm) ===================="; \
	cat $(SLURM_LOG); \
	test $$tests -eq 0 && test $$slurm_status -eq 0

lint: $(STAMP)
	$(BIN)/ruff check danqing scripts tests
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/snakemake --lint

format: $(STAMP)
	$(BIN)/ruff check --fix danqing scripts tests
	$(BIN)/ruff format danqing scripts tests
	$(BIN)/snakefmt Snakefile rules

clean:
	rm -rf results .snakemake $(SLURM_LOG)

# Headless Chromium for tests/test_report_html.py (the Snakemake report opened in a browser):
# Debian's `chromium` package, installed when missing (as root; the test skips without it).
.PHONY: browser
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } || \
		echo "chromium could not be installed: tests/test_report_html.py will skip"

# The SLURM cluster test alone (part of `make test` too): tests/slurm, docs/cluster.md.
.PHONY: test-slurm
test-slurm: $(STAMP)
	DQ_SLURM_TESTS=1 $(BIN)/python -m pytest -m slurm tests/slurm -s -v
