"""The demo corpus is deterministic and every text filter finds what it was built to find."""

import gzip

import polars as pl
import pytest

from danqing import config
from danqing.demo import corpus
from danqing.filters import registry
from danqing.partition import partition
from danqing.steps import caption_steps


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    info = corpus.write(out, 5600, 20260115)
    return out, info


def test_demo_is_deterministic_and_large_enough(demo, tmp_path):
    out, info = demo
    assert info["pairs"] >= 5000
    again = corpus.write(tmp_path, 5600, 20260115)
    assert again == info
    assert (tmp_path / "raw_pairs.jsonl.gz").read_bytes() == (
        out / "raw_pairs.jsonl.gz"
    ).read_bytes()
    labels = pl.read_parquet(out / "labels.parquet")
    assert labels.filter(~pl.col("duplicate_copy"))["batch"].drop_nulls().n_unique() == 7
    # Every text category and every image case is present.
    assert set(corpus.TEXT_CATEGORIES) <= set(labels["category"])
    assert set(corpus.IMAGE_CASES) <= set(labels["image_case"])


def test_every_text_filter_has_high_precision_and_recall(demo, tmp_path):
    out, _ = demo
    cfg = config.load()
    part = tmp_path / "part"
    partition(
        str(out / "raw_pairs.jsonl.gz"),
        str(part),
        str(tmp_path / "d.parquet"),
        str(tmp_path / "c.json"),
        7,
        100_000,
    )
    frame = pl.concat([pl.read_parquet(p) for p in sorted(part.glob("*/*.parquet"))])
    drops = [pl.read_parquet(tmp_path / "d.parquet")]
    funcs = registry()
    steps = [s for s in cfg["steps"] if s in caption_steps()]
    transformed = {}
    for step in steps:
        result = funcs[step](frame, cfg["filters"][step])
        drops.append(result.dropped)
        if result.transformed:
            before = dict(zip(frame["uid"], frame["alt_text"], strict=True))
            transformed[step] = {
                u
                for u, t in zip(result.kept["uid"], result.kept["alt_text"], strict=True)
                if before[u] != t
            }
        frame = result.kept
    got = pl.concat(drops).filter(pl.col("reason") != "duplicate_uid").select("uid", got="step")
    labels = pl.read_parquet(out / "labels.parquet").filter(~pl.col("duplicate_copy"))
    # Image cases are not judged by a text-only run.
    labels = labels.with_columns(
        expected=pl.when(pl.col("expected_step").is_in(steps + ["partition"])).then(
            pl.col("expected_step")
        )
    )
    joined = labels.join(got, on="uid", how="left")
    for step in steps + ["partition"]:
        if step in ("font_conversion", "emoji_special_chars"):
            continue
        tp = joined.filter((pl.col("expected") == step) & (pl.col("got") == step)).height
        n_expected = joined.filter(pl.col("expected") == step).height
        n_got = joined.filter(pl.col("got") == step).height
        assert n_expected >= 20, step
        assert tp / n_got >= 0.9, f"{step}: precision {tp}/{n_got}"
        assert tp / n_expected >= 0.9, f"{step}: recall {tp}/{n_expected}"
    # The transforms rewrote the rows built for them.
    for step in ("font_conversion", "emoji_special_chars"):
        expected = set(labels.filter(pl.col("expected_transform") == step)["uid"])
        hit = expected & transformed[step]
        kept_expected = expected & set(frame["uid"])
        assert len(hit) >= 0.9 * len(kept_expected), step


def test_malformed_lines_are_really_malformed(demo):
    out, info = demo
    bad = 0
    with gzip.open(out / "raw_pairs.jsonl.gz") as handle:
        for line in handle:
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                bad += 1
    assert bad >= 1 and info["malformed"] >= 5
