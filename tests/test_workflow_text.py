"""End to end: snakemake on a slice of the demo corpus through the text stages."""

import glob
import gzip

import polars as pl
import pytest

from danqing.steps import STEPS
from tests.conftest import make_workdir, run_snakemake

TEXT_STEPS = [s.name for s in STEPS if s.stage in ("Data Source Selection", "Text Refinement")
              and s.name != "download_images"]

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    workdir = make_workdir(
        tmp_path_factory.mktemp("e2e") / "wf",
        {"demo": {"rows": 700}, "partition": {"shard_size": 120}, "steps": TEXT_STEPS},
    )
    run_snakemake(workdir)
    return workdir


def test_table_matches_the_shard_outputs(text_run):
    table = pl.read_csv(text_run / "results/report/filtration_table.csv")
    left = dict(zip(table["step"], table["Left Data Num"], strict=True))
    partition_rows = sum(pl.read_parquet(p).height
                         for p in glob.glob(str(text_run / "results/partition/*/*.parquet")))
    assert left["collected"] == partition_rows
    for step in TEXT_STEPS:
        files = glob.glob(str(text_run / f"results/steps/{step}/*/*[0-9].parquet"))
        assert len(files) >= 7, step
        assert left[step] == sum(pl.read_parquet(f).height for f in files), step
    assert left["final"] == left[TEXT_STEPS[-1]]
    md = (text_run / "results/report/filtration_table.md").read_text()
    assert "Linguistic Structure (CN-Detect)" in md and "Final image-text pairs" in md
    assert (text_run / "results/report/filtration_table.tex").read_text().startswith(r"\begin{tabular}")


def test_every_input_row_is_kept_or_has_a_drop_reason(text_run):
    with gzip.open(text_run / "results/demo/raw_pairs.jsonl.gz") as handle:
        n_input = sum(1 for line in handle if line.strip())
    drops = pl.read_parquet(text_run / "results/report/drop_reasons.parquet")
    final = pl.concat([pl.read_parquet(f) for f in
                       glob.glob(str(text_run / f"results/steps/{TEXT_STEPS[-1]}/*/*[0-9].parquet"))])
    assert n_input == final.height + drops.height
    assert drops["reason"].null_count() == 0 and drops["step"].null_count() == 0
    # A uid is dropped at most once (duplicate-uid copies aside) and never also kept.
    real = drops.filter(pl.col("reason") != "duplicate_uid")
    assert real["uid"].n_unique() == real.height
    assert not set(real["uid"]) & set(final["uid"])
    summary = pl.read_csv(text_run / "results/report/drop_reason_summary.csv")
    assert summary["rows"].sum() == drops.height


def test_a_rerun_has_nothing_to_do(text_run):
    proc = run_snakemake(text_run, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr
