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

    config/config.yaml, the demo's config/demo.yaml (the tests' servers are on 127.0.0.1) and
    `overrides`, merged in that order, are written as config/test.yaml.
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
    from danqing.config import deep_update

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config = deep_update(config, yaml.safe_load((ROOT / "config" / "demo.yaml").read_text()))
    (path / "config" / "test.yaml").write_text(yaml.safe_dump(deep_update(config, overrides or {})))
    return path


def run_snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 900):
    """Run the workflow's snakemake in `workdir` (config/test.yaml if present)."""
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--cores",
        "2",
        "--directory",
        str(workdir),
        "--snakefile",
        str(workdir / "Snakefile"),
        *args,
    ]
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


# The whole pipeline on a 700-row slice of the demo corpus, images over HTTP from the demo image
# server: one run shared by the tests of tests/test_workflow.py (pytest -n 2 --dist loadfile keeps
# them on one worker). The demo's 7 batches are merged into 2 (one shard each): exact and near
# duplicates stay in their batch, and a cross-batch duplicate whose original is in the other merged
# batch is still one; 2 shards instead of 7 make a third of the jobs.
FULL_RUN_ROWS = 700
FULL_RUN_BATCHES = {
    "b1": "b1",
    "b2": "b1",
    "b3": "b1",
    "b4": "b2",
    "b5": "b2",
    "b6": "b2",
    "b7": "b2",
}
FULL_RUN_DOWNLOAD = {"processes": 1, "thread_count": 16, "timeout": 6}
FULL_RUN_SLOW_SECONDS = 15  # the demo's `timeout` case stalls past the download timeout


@pytest.fixture(scope="session")
def full_run(tmp_path_factory):
    from danqing.demo.server import serve
    from danqing.steps import step_names

    with serve(0, slow_seconds=FULL_RUN_SLOW_SECONDS) as server:
        workdir = make_workdir(
            tmp_path_factory.mktemp("full") / "wf",
            {
                "input": {"path": "pairs.jsonl", "format": "jsonl"},
                "demo": {"port": server.port},
                "partition": {"shard_size": 1000},
                "steps": step_names(),
                "filters": {"download_images": FULL_RUN_DOWNLOAD},
                # Several partitions and groups even at this size.
                "release": {
                    "dedup_index": {"write": True, "vectors_per_partition": 40, "groups": 2}
                },
            },
        )
        write_demo_pairs(workdir, FULL_RUN_ROWS, server.port, batches=FULL_RUN_BATCHES)
        run_snakemake(workdir, timeout=2400)
    return workdir


def write_demo_pairs(
    workdir: Path,
    rows: int,
    port: int,
    path: str = "pairs.jsonl",
    batches: dict[str, str] | None = None,
) -> None:
    """The demo corpus (images at 127.0.0.1:port) as `path` in `workdir`, without its `batch`
    column (the partition then spreads it over partition.num_batches), or with its 7 batches
    merged as `batches` maps them: a test runs every kind of job on a few shards instead of 7.
    Labels land in workdir/demo."""
    from danqing.demo import corpus

    corpus.write(workdir / "demo", rows, 20260115, port)
    with (
        gzip.open(workdir / "demo" / "raw_pairs.jsonl.gz", "rb") as lines,
        open(workdir / path, "wb") as out,
    ):
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                out.write(line)  # the corpus's malformed lines stay malformed
                continue
            if isinstance(record, dict):
                batch = record.pop("batch", None)
                if batches is not None and batch in batches:
                    record["batch"] = batches[batch]
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


def same_decisions(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    """Two frames of dedup decisions agree row for row and form the same sets: a cluster id is
    only a label (each path numbers its sets its own way)."""

    def canonical(frame: pl.DataFrame) -> pl.DataFrame:
        key = frame.group_by("cluster_id").agg(pl.col("uid").min().alias("set_of"))
        return frame.join(key, on="cluster_id").drop("cluster_id").sort("uid")

    return canonical(a).equals(canonical(b))
