"""A run in which nothing survives completes: an empty release, a table and a card saying so."""

from __future__ import annotations

import json

import polars as pl
import pytest

from tests.conftest import ROOT, make_workdir, run_snakemake


@pytest.mark.e2e
def test_a_run_that_keeps_nothing_releases_an_empty_dataset(tmp_path):
    workdir = make_workdir(
        tmp_path / "wf",
        {
            "input": {"path": "pairs.jsonl", "format": "jsonl"},
            "steps": ["language_control", "text_constraints"],
        },
    )
    if not (workdir / "report").exists():
        (workdir / "report").symlink_to(ROOT / "report")
    rows = [
        {
            "uid": f"u{i}",
            "url": f"https://img.example.com/{i}.jpg",
            "alt_text": "An English caption",
            "page_url": "https://example.com/",
            "languages": "eng",
            "batch": "b1",
        }
        for i in range(20)
    ]
    (workdir / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run_snakemake(workdir, timeout=600)
    table = pl.read_csv(workdir / "results/report/filtration_table.csv")
    left = dict(zip(table["step"], table["Left Data Num"], strict=True))
    assert left == {"collected": 20, "language_control": 0, "text_constraints": 0, "final": 0}
    dataset = workdir / "results/release/dataset"
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert manifest["rows"] == 0
    assert "0 Chinese image-text pairs (0.00% of 20" in (dataset / "README.md").read_text()
    assert sum(pl.read_parquet(p).height for p in (dataset / "data").glob("*.parquet")) == 0
    # Nothing of the workflow's own inside the release.
    assert not list(dataset.rglob(".snakemake*"))
