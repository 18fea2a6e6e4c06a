import polars as pl
import pytest

from danqing.io import counts_record
from danqing.report import table


def _records():
    return [
        counts_record("language_control", "b1", "s00000", 60, 50, 10),
        counts_record("language_control", "b2", "s00000", 40, 30, 10),
        counts_record("font_conversion", "b1", "s00000", 50, 50, 0, n_transformed=7),
        counts_record("font_conversion", "b2", "s00000", 30, 30, 0, n_transformed=1),
        counts_record("nouns", "b1", "s00000", 50, 45, 5),
        counts_record("nouns", "b2", "s00000", 30, 30, 0),
    ]


def test_table_rows_follow_table6_definitions():
    partition = {"input": 103, "kept": 100, "dropped": 3, "malformed": 3, "duplicate_uid": 0}
    t = table.build(partition, _records(), ["language_control", "font_conversion", "nouns"])
    rows = {r["step"]: r for r in t.iter_rows(named=True)}
    assert rows["collected"]["Left Data Num"] == 100
    lc = rows["language_control"]
    assert (lc["Left Data Num"], lc["Stage Filter %"], lc["Total Filter %"], lc["Left %"]) == (
        80,
        20.0,
        20.0,
        80.0,
    )
    assert rows["font_conversion"]["Stage Filter %"] == 0.0
    assert rows["font_conversion"]["Transformed"] == 8
    assert rows["nouns"]["Stage Filter %"] == pytest.approx(6.25)
    assert rows["final"]["Left Data Num"] == 75 and rows["final"]["Total Filter %"] == 25.0
    md = table.to_markdown(t)
    assert "| Text Refinement | Text Quality (Nouns) | 75 | 25.00% | 6.25% | 75.00% |" in md
    assert "3 malformed" in md
    tex = table.to_latex(t)
    assert r"\multirow{2}{*}" in tex and "75.00\\%" in tex
    cal = table.calibration(t)
    assert cal.filter(pl.col("steps") == "nouns")["paper stage filter %"].item() == 2.44


def test_the_collected_row_notes_what_ingestion_lost_per_crawl():
    from danqing.report.ingestion import summary

    jobs = [
        {
            "warc": "a",
            "crawl": "CC-MAIN-2024-10",
            "records": 9,
            "pairs": 20,
            "lost_records": 2,
            "archive_errors": ["bad gzip member"],
        },
        {"warc": "b", "crawl": "CC-MAIN-2024-10", "records": 5, "pairs": 10},
        {"index": "c", "crawl": "CC-MAIN-2024-18", "records": 7, "pairs": 70, "lost_records": 0},
    ]
    partition = {"input": 100, "kept": 100, "dropped": 0}
    t = table.build(partition, _records(), ["language_control"], summary(jobs))
    note = t.filter(pl.col("step") == "collected")["Note"].item()
    assert note == (
        "ingested CC-MAIN-2024-10: 2 file(s), 2 records lost, 1 archive errors; "
        "CC-MAIN-2024-18: 1 file(s), 0 records lost, 0 archive errors "
        "(results/report/ingestion.csv)"
    )
    assert "[1] Collected image URL and text pairs: ingested CC-MAIN-2024-10" in table.to_markdown(
        t
    )
    assert table.build(partition, _records(), ["language_control"])["Note"][0] == ""


def test_table_refuses_inconsistent_records():
    partition = {"input": 100, "kept": 100}
    records = _records()
    records[0] = counts_record("language_control", "b1", "s00000", 59, 49, 10)
    with pytest.raises(ValueError, match="previous step kept"):
        table.build(partition, records, ["language_control", "font_conversion", "nouns"])
    with pytest.raises(ValueError, match="no counts records"):
        table.build(partition, _records(), ["language_control", "text_entropy"])


def test_counts_record_enforces_input_equals_kept_plus_dropped():
    with pytest.raises(AssertionError, match="kept"):
        counts_record("nouns", "b1", "s00000", 10, 5, 4)


def test_not_run_steps_are_explained_in_the_table():
    partition = {"input": 10, "kept": 10}
    rec = counts_record(
        "language_control",
        "b1",
        "s0",
        10,
        10,
        0,
        status="not_run",
        note="no image-text model configured",
    )
    t = table.build(partition, [rec], ["language_control"])
    assert "no image-text model configured" in table.to_markdown(t)


def test_an_empty_input_gives_a_table_of_zeros():
    partition = {"input": 0, "kept": 0, "dropped": 0}
    result = table.build(partition, [], ["language_control", "text_safety"])
    assert result["Left Data Num"].to_list() == [0, 0, 0, 0]
    assert result.filter(pl.col("step") == "language_control")["Note"][0] == (
        "no rows reached this step"
    )
    with pytest.raises(ValueError, match="no counts records for step language_control"):
        table.build({**partition, "kept": 3, "input": 3}, [], ["language_control"])
