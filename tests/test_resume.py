"""Kill-and-resume: SIGKILL snakemake at several points, rerun with --rerun-incomplete, and get the
same outputs as an uninterrupted run; a partial file is never taken as complete."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from danqing.demo.server import serve
from danqing.embed import read_embeddings
from tests.conftest import ROOT, make_workdir, run_snakemake, write_demo_pairs

# One worker runs the reference once for every kill point (pytest -n 2 --dist loadfile).
pytestmark = pytest.mark.e2e

# A text step, download, the image metric and embedding jobs, and both dedup levels: each kind of
# job a kill can interrupt. The demo rows lose their batch so that the partition makes 2 batches
# of one shard (fewer jobs than the demo's 7 batches, the same kinds).
STEPS = [
    "text_constraints",
    "download_images",
    "image_geometry",
    "semantic_dedup",
    "cross_batch_dedup",
]
TARGETS = ["results/report/filtration_table.csv", "results/report/drop_reasons.parquet"]
ROWS = 160


def overrides(port: int) -> dict:
    return {
        "input": {"path": "pairs.jsonl", "format": "jsonl"},
        "partition": {"num_batches": 2, "shard_size": 100},
        "steps": STEPS,
        # Small tars: a shard's download is several resumable parts.
        "filters": {
            "download_images": {
                "processes": 1,
                "thread_count": 8,
                "timeout": 6,
                "samples_per_tar": 10,
            }
        },
    }


def _counts_done(n):
    def reached(workdir: Path) -> bool:
        return len(glob.glob(str(workdir / "results/steps/*/*/*.counts.json"))) >= n

    reached.__name__ = f"after_{n}_step_jobs"
    return reached


def _mid_download(workdir: Path) -> bool:
    """A shard's download has finished some of its tars, not all."""
    return bool(glob.glob(str(workdir / "results/images/*/.*.partial/*.parquet")))


def _mid_embedding(workdir: Path) -> bool:
    return bool(glob.glob(str(workdir / "results/embeddings/*/*.npz")))


KILL_POINTS = [_counts_done(1), _mid_download, _mid_embedding]


def kill_when(workdir: Path, reached, timeout: float = 300) -> None:
    """Start snakemake in its own process group and SIGKILL the whole group once `reached`."""
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
        *TARGETS,
        "--configfile",
        str(workdir / "config" / "test.yaml"),
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    deadline = time.monotonic() + timeout
    try:
        while not reached(workdir):
            if proc.poll() is not None:
                raise AssertionError(f"snakemake ended before {reached.__name__}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{reached.__name__} not reached in {timeout}s")
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def outputs(workdir: Path) -> dict[str, pl.DataFrame]:
    """Every Parquet output, sorted by uid (job order may differ between runs), plus the table."""
    frames = {}
    for path in sorted(glob.glob(str(workdir / "results/**/*.parquet"), recursive=True)):
        rel = os.path.relpath(path, workdir)
        frame = pl.read_parquet(path)
        if "uid" in frame.columns:
            frame = frame.sort([c for c in ("uid", "step", "reason") if c in frame.columns])
        frames[rel] = frame
    for path in sorted(glob.glob(str(workdir / "results/embeddings/*/*.npz"))):
        emb = read_embeddings(path)
        order = np.argsort(emb.uids)
        frames[os.path.relpath(path, workdir)] = pl.DataFrame(
            {"uid": np.asarray(emb.uids)[order], "image": emb.image[order].astype(np.float32)}
        )
    frames["filtration_table.csv"] = pl.read_csv(workdir / "results/report/filtration_table.csv")
    return frames


@pytest.fixture(scope="module")
def server():
    with serve(0, slow_seconds=15) as srv:
        yield srv


def new_workdir(path: Path, port: int) -> Path:
    workdir = make_workdir(path, overrides(port))
    write_demo_pairs(workdir, ROWS, port)
    return workdir


@pytest.fixture(scope="module")
def reference(server, tmp_path_factory):
    workdir = new_workdir(tmp_path_factory.mktemp("ref") / "wf", server.port)
    run_snakemake(workdir, *TARGETS)
    return outputs(workdir)


@pytest.mark.parametrize("reached", KILL_POINTS, ids=lambda f: f.__name__)
def test_killed_run_resumes_to_identical_outputs(server, reference, tmp_path, reached):
    workdir = new_workdir(tmp_path / "wf", server.port)
    kill_when(workdir, reached)
    # Whatever the kill left behind, no temporary file sits where an output is expected.
    leftovers = [
        p for p in glob.glob(str(workdir / "results/**/*"), recursive=True) if p.endswith(".tmp")
    ]
    for path in leftovers:
        assert Path(path).name.startswith("."), path
    # What a user does after a crash: release the stale lock, then resume.
    run_snakemake(workdir, "--unlock")
    run_snakemake(workdir, "--rerun-incomplete", *TARGETS)
    resumed = outputs(workdir)
    assert resumed.keys() == reference.keys()
    for name, frame in reference.items():
        assert resumed[name].equals(frame), name
