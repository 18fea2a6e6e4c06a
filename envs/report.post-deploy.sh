#!/usr/bin/env bash
# Snakemake runs this in the freshly created danqing-report env (working directory: the
# workflow's). The workflow's own package; run snakemake from the repository root.
set -euo pipefail
grep -q 'name = "danqing-workflow"' pyproject.toml || {
  echo "run snakemake from the repository root: the danqing package is installed from ." >&2
  exit 1
}
pip install --no-deps -e .
