"""The threshold sweep reads the stored scores back exactly (danqing/report/sweep.py)."""

import polars as pl
import pytest

from danqing import config
from danqing.evaluation import real_sets
from danqing.filters import registry
from danqing.report import sweep

FILTERS = config.load()["filters"]


@pytest.fixture(scope="module")
def wukong():
    return real_sets.load("wukong").head(3000)


def test_sample_sweep_at_the_configured_threshold_is_the_filter_alone(wukong, tmp_path):
    frames = sweep.sample_frames(wukong, FILTERS)
    table = sweep.sweep_table(frames, FILTERS)
    at_config = table.filter(pl.col("configured"))
    for step in ("cn_detect", "unk_tokens", "text_entropy"):
        kept, dropped = frames[step]
        row = at_config.filter(pl.col("step") == step).row(0, named=True)
        assert row["rows"] == kept.height + dropped.height, step
        assert row["kept_share"] == pytest.approx(kept.height / row["rows"]), step
    # A laxer threshold never keeps less than a stricter one.
    for (_, parameter), part in table.group_by(["step", "parameter"]):
        ordered = part.sort("threshold")["kept_share"].to_list()
        strict_at_high = parameter.startswith("min") or parameter == "min_confidence"
        pairs = zip(ordered, ordered[1:], strict=False)
        assert all((a >= b) if strict_at_high else (a <= b) for a, b in pairs), parameter
    sweep.write_outputs(table, tmp_path / "s.csv", tmp_path / "s.png")
    assert pl.read_csv(tmp_path / "s.csv").height == table.height
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_frames_read_the_step_outputs(wukong, tmp_path):
    from danqing.io import write_parquet

    frame = registry()["text_constraints"](
        sweep.sample_frames(wukong.head(200), FILTERS)["text_constraints"][0].drop(
            "words", "word_count"
        ),
        FILTERS["text_constraints"],
    )
    result = registry()["unk_tokens"](frame.kept, FILTERS["unk_tokens"])
    write_parquet(result.kept, tmp_path / "steps/unk_tokens/b1/s00000.parquet")
    write_parquet(result.dropped, tmp_path / "steps/unk_tokens/b1/s00000.drops.parquet")
    table = sweep.sweep_table(sweep.run_frames(tmp_path), FILTERS)
    assert set(table["step"]) == {"unk_tokens"}
    assert table.filter(pl.col("configured"))["rows"][0] == frame.kept.height
