"""The partitioned dedup gives the single-job path's decisions, at any partition count."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from danqing import dedup as D
from danqing.dedup_partitioned import assign, dedup_partitioned, merge, train_centroids
from tests.conftest import same_decisions


def clustered(n_sets=60, per_set=4, singles=400, dim=32, spread=0.03, seed=5):
    """Near-duplicate sets (points around a centre) among unrelated vectors."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_sets, dim))
    sets = [c + spread * rng.standard_normal((per_set, dim)) for c in centres]
    # float16, as the embedding files store them (and both paths read them).
    x = np.concatenate([*sets, rng.standard_normal((singles, dim))]).astype(np.float16)
    uids = [f"u{k:05d}" for k in rng.permutation(len(x))]
    return uids, x


@pytest.mark.parametrize("partitions, groups", [(1, 1), (8, 3), (40, 7)])
def test_partitioned_sets_equal_the_single_job_sets(tmp_path, partitions, groups, monkeypatch):
    # The merge's centroid sums of 7 sets at a time: several blocks, each read from its spill.
    monkeypatch.setattr("danqing.dedup_partitioned.SET_BLOCK_BYTES", 7 * 32 * 8)
    uids, x = clustered()
    settings = D.DedupSettings(beta=0.02, recall_sample=200)
    single, _ = D.dedup(uids, x, settings, exact=True)
    split, stats = dedup_partitioned(uids, x, settings, partitions, groups, str(tmp_path))
    assert same_decisions(split, single)
    assert stats["removed"] > 0 and stats["recall"]["recall"] == 1.0
    if partitions > 1:
        assert stats["copies_per_vector"] > 1  # boundary points were copied


def test_every_pair_within_beta_shares_a_partition_with_its_other_end():
    uids, x = clustered(n_sets=300, per_set=2, singles=0, spread=0.2, dim=16, seed=9)
    x = D.normalise(x)
    centroids = train_centroids(x, 50)
    rows, parts, primary = assign(x, centroids, beta=0.05)
    homes = {}
    for r, p in zip(rows.tolist(), parts.tolist(), strict=True):
        homes.setdefault(r, set()).add(p)
    primary_of = {
        r: p
        for r, p, first in zip(rows.tolist(), parts.tolist(), primary.tolist(), strict=True)
        if first
    }
    sims = x @ x.T
    i, j = np.nonzero(np.triu(sims > 1 - 0.05, k=1))
    straddling = [(a, b) for a, b in zip(i, j, strict=True) if primary_of[a] != primary_of[b]]
    assert straddling, "the test needs pairs across partition boundaries"
    for a, b in zip(i.tolist(), j.tolist(), strict=True):
        assert primary_of[b] in homes[a] or primary_of[a] in homes[b]


def test_pairs_across_partition_boundaries_are_not_lost(tmp_path):
    uids, x = clustered(n_sets=300, per_set=2, singles=100, spread=0.2, dim=16, seed=9)
    settings = D.DedupSettings(beta=0.05, recall_sample=300)
    single, _ = D.dedup(uids, x, settings, exact=True)
    split, stats = dedup_partitioned(uids, x, settings, 50, 4, str(tmp_path))
    assert same_decisions(split, single) and stats["removed"] > 100


def test_the_merge_decides_every_row_but_holds_only_the_linked_ones(tmp_path, monkeypatch):
    uids, x = clustered(n_sets=10, per_set=3, singles=200, seed=4)
    settings = D.DedupSettings(beta=0.02, recall_sample=0)
    split, stats = dedup_partitioned(uids, x, settings, 4, 2, str(tmp_path))
    assert split["uid"].to_list() == uids  # every row, in the input order
    assert stats["linked"] == 30 and stats["sets"] == 10 and stats["input"] == 230
    assert split["cluster_id"].n_unique() == 10 + 200
    assignments = sorted(str(p) for p in tmp_path.glob("assign-*.npz"))
    pairs = sorted(str(p) for p in tmp_path.glob("pairs-*.parquet"))
    stale = tmp_path / "stale.parquet"
    pl.DataFrame({"uid_a": ["u00001"], "uid_b": ["zz-not-in-this-run"]}).write_parquet(stale)
    with pytest.raises(ValueError, match="in no assignment file"):
        merge(assignments, [*pairs, str(stale)], settings, str(tmp_path / "out.parquet"))
    with pytest.raises(ValueError, match="duplicate uids"):
        merge([*assignments, assignments[0]], pairs, settings, str(tmp_path / "out.parquet"))
    assert not (tmp_path / "out.parquet").exists()
    # Set members read a few at a time, and sets in blocks of three spilled beside the output,
    # give the same decisions, and the spill files go.
    monkeypatch.setattr("danqing.dedup_partitioned.MEMBER_CHUNK", 4)
    monkeypatch.setattr("danqing.dedup_partitioned.SET_BLOCK_BYTES", 3 * 32 * 8)
    merge(assignments, pairs, settings, str(tmp_path / "chunked" / "out.parquet"))
    assert same_decisions(pl.read_parquet(tmp_path / "chunked" / "out.parquet"), split)
    assert [p.name for p in (tmp_path / "chunked").iterdir()] == ["out.parquet"]


def test_a_batch_without_any_near_duplicate_keeps_every_row(tmp_path):
    uids, x = clustered(n_sets=0, singles=300, seed=8)
    settings = D.DedupSettings(beta=0.001, recall_sample=50)
    split, stats = dedup_partitioned(uids, x, settings, 4, 2, str(tmp_path))
    assert stats["pairs"] == 0 and stats["linked"] == 0 and stats["removed"] == 0
    assert split["keep"].all() and split["cluster_id"].n_unique() == 300
    assert split["representative_uid"].to_list() == uids
    assignments = sorted(str(p) for p in tmp_path.glob("assign-*.npz"))
    merge(assignments, [], settings, str(tmp_path / "no_pair_files.parquet"))
    assert same_decisions(pl.read_parquet(tmp_path / "no_pair_files.parquet"), split)


def test_bounded_copies_keep_the_pair_recall_at_beta_0_1(tmp_path):
    """partition_copies: each vector in at most 3 of 20 partitions, on clustered 768-d vectors
    with near duplicates on both sides of beta (the exact search copies them to ~19): recall >=
    0.99 measured, and nearly the decisions of exact search in one job."""
    from benchmarks.dedup import clustered_embeddings

    x = clustered_embeddings(10_000, 768, seed=3).astype(np.float16)
    uids = [f"u{k:05d}" for k in range(len(x))]
    settings = D.DedupSettings(beta=0.1, recall_sample=2_000)
    exact, _ = D.dedup(uids, x, settings, exact=True)
    approx, stats = dedup_partitioned(uids, x, settings, 20, 2, str(tmp_path), max_copies=3)
    assert stats["copies_per_vector"] <= 3
    assert stats["recall"]["exact_pairs"] > 100 and stats["recall"]["recall"] >= 0.99
    assert (approx["keep"] == exact["keep"]).mean() >= 0.99


def test_each_shard_reads_its_own_part_of_the_decisions(tmp_path, monkeypatch):
    from danqing.decisions import read_part
    from danqing.filters.image import _read

    monkeypatch.setattr("danqing.decisions.ROW_GROUP_ROWS", 16)  # parts of several groups
    uids, x = clustered(n_sets=10, per_set=3, singles=200, seed=4)
    settings = D.DedupSettings(beta=0.02, recall_sample=0)
    dedup_partitioned(uids, x, settings, 4, 2, str(tmp_path))
    assignments = sorted(str(p) for p in tmp_path.glob("assign-*.npz"))
    pairs = sorted(str(p) for p in tmp_path.glob("pairs-*.parquet"))
    out = str(tmp_path / "decisions.parquet")
    extra = pl.DataFrame({"uid": ["zz-released"], "keep": [False]}).with_columns(
        cluster_id=-1, cluster_size=1, representative_uid=pl.lit("u00001"), distance_to_centroid=0.0
    )
    merge(assignments, pairs, settings, out, extra_rows=extra)
    whole = pl.read_parquet(out)
    for path in assignments:
        with np.load(path) as data:
            mine = pl.Series(data["uids"][data["rows"][data["primary"]]].astype(str))
        wanted = pl.concat([mine, pl.Series(["zz-released"])])
        part = read_part(out, wanted)
        assert part is not None and part.height == len(wanted) < whole.height
        assert part.sort("uid").equals(
            whole.filter(pl.col("uid").is_in(wanted.implode())).sort("uid")
        )
        assert (
            _read(out, "dedup decisions", ["uid"], uids=wanted).sort("uid").equals(part.sort("uid"))
        )
    # Rows of no single part (or a file without the index): the whole file is scanned.
    assert read_part(out, pl.Series(["u00001", "not-a-uid"])) is None
    assert _read(out, "dedup decisions", ["uid"], uids=pl.Series(["zz-released"])).height == 1
