"""Shared fixtures: a throwaway copy of the workflow to run snakemake in, and small frames."""

from __future__ import annotations

import gzip
import json
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
           "--snakefile", str(workdir / "Snakefile"), *args]
    # Last: --configfile takes every word after it.
    if (workdir / "config" / "test.yaml").exists():
        cmd += ["--configfile", str(workdir / "config" / "test.yaml")]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


# The whole pipeline on a 700-row slice of the demo corpus (100 pairs a batch, one shard each),
# images over HTTP from the demo image server: one run shared by the tests of tests/test_workflow.py
# (pytest -n 2 --dist loadfile keeps them on one worker).
FULL_RUN_ROWS = 700
FULL_RUN_DOWNLOAD = {"processes": 1, "thread_count": 16, "timeout": 6}
FULL_RUN_SLOW_SECONDS = 15  # the demo's `timeout` case stalls past the download timeout


@pytest.fixture(scope="session")
def full_run(tmp_path_factory):
    from danqing.demo.server import serve
    from danqing.steps import step_names

    with serve(0, slow_seconds=FULL_RUN_SLOW_SECONDS) as server:
        workdir = make_workdir(tmp_path_factory.mktemp("full") / "wf", {
            "demo": {"rows": FULL_RUN_ROWS, "port": server.port},
            "partition": {"shard_size": 120},
            "steps": step_names(),
            "filters": {"download_images": FULL_RUN_DOWNLOAD},
        })
        run_snakemake(workdir, timeout=2400)
    return workdir


def write_unbatched_demo(workdir: Path, rows: int, port: int, path: str = "pairs.jsonl") -> None:
    """The demo corpus (images at 127.0.0.1:port) without its `batch` column, as `path` in
    `workdir`: the partition then spreads it over partition.num_batches, so a test can run every
    kind of job on a few shards instead of the demo's 7 batches. Labels land in workdir/demo."""
    from danqing.demo import corpus

    corpus.write(workdir / "demo", rows, 20260115, port)
    with (gzip.open(workdir / "demo" / "raw_pairs.jsonl.gz", "rb") as lines,
          open(workdir / path, "wb") as out):
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                out.write(line)  # the corpus's malformed lines stay malformed
                continue
            if isinstance(record, dict):
                record.pop("batch", None)
            out.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")


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
