"""Shared fixtures: a throwaway copy of the workflow to run snakemake in, and small frames."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW_PARTS = ("Snakefile", "rules", "scripts", "config", "envs", "profiles", "report")


def make_workdir(path: Path, overrides: dict | None = None) -> Path:
    """A snakemake working directory whose workflow files link to the repository's.

    `overrides` are merged into config/config.yaml and written as config/test.yaml.
    """
    path.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS:
        target = path / part
        if part == "config":
            target.mkdir(exist_ok=True)
            for item in (ROOT / "config").iterdir():
                link = target / item.name
                if not link.exists():
                    link.symlink_to(item)
        elif not target.exists() and (ROOT / part).exists():
            target.symlink_to(ROOT / part)
    if overrides:
        from danqing.config import deep_update

        base = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
        (path / "config" / "test.yaml").write_text(yaml.safe_dump(deep_update(base, overrides)))
    return path


def run_snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 900):
    """Run the workflow's snakemake in `workdir` (config/test.yaml if present)."""
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--directory", str(workdir),
           "--snakefile", str(workdir / "Snakefile")]
    if (workdir / "config" / "test.yaml").exists():
        cmd += ["--configfile", str(workdir / "config" / "test.yaml")]
    cmd += list(args)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


@pytest.fixture
def workdir(tmp_path):
    return make_workdir(tmp_path / "wf")


def pairs(texts: list[str], **columns) -> pl.DataFrame:
    """A shard-shaped frame of captions with sensible defaults for the other columns."""
    n = len(texts)
    data = {
        "uid": [f"u{i}" for i in range(n)],
        "url": [f"http://img.example.cn/{i}.jpg" for i in range(n)],
        "alt_text": texts,
        "page_url": ["https://www.example.cn/page.html"] * n,
        "domain": ["example.cn"] * n,
        "languages": ["zho"] * n,
    }
    data.update(columns)
    return pl.DataFrame(data, schema_overrides={"page_url": pl.String, "alt_text": pl.String})
