"""The partitioned cross-batch jobs give the one-job path's decisions, with uids that two batches
hold and images an earlier release holds."""

from __future__ import annotations

import numpy as np
import polars as pl

from danqing import dedup_jobs as J
from danqing.embed import Embeddings, write_embeddings
from danqing.images.shard_jobs import dedup_clusters
from danqing.io import write_parquet
from danqing.schema import schema_defaults
from tests.conftest import same_decisions
from tests.test_dedup_partitioned import clustered

# A schema-filled dedup section, as the workflow passes it.
CFG = {
    **schema_defaults("$defs", "dedup"),
    "beta": 0.02,
    "exact_max": 20000,
    "recall_sample": 100,
    "partitions": 6,
    "partition_jobs": 3,
    "train_sample": 1000,
    "partition_copies": None,
}


def two_batches(tmp_path):
    """Shards of two batches (two shards each) with their embeddings; ten uids of the first
    shard sit in the second batch too, that copy with an unrelated vector."""
    uids, x = clustered(n_sets=40, per_set=3, singles=200, seed=11)
    rng = np.random.default_rng(2)
    order = rng.permutation(len(uids))
    halves = np.array_split(order, 4)
    shards, embeddings = [], []
    for k, rows in enumerate(halves):
        batch = "b1" if k < 2 else "b2"
        shard_uids = [uids[r] for r in rows]
        vectors = x[rows]
        if k == 2:  # the repeated pairs, crawled again
            repeated = sorted(uids[r] for r in halves[0])[:10]
            shard_uids += repeated
            vectors = np.concatenate([vectors, rng.standard_normal((10, x.shape[1]))])
        shard = tmp_path / f"{batch}-{k}.parquet"
        write_parquet(pl.DataFrame({"uid": shard_uids, "batch": [batch] * len(shard_uids)}), shard)
        emb = tmp_path / f"{batch}-{k}.npz"
        write_embeddings(Embeddings(shard_uids, vectors.astype(np.float16), None, "m"), emb)
        shards.append(str(shard))
        embeddings.append(str(emb))
    return uids, shards, embeddings


def test_partitioned_cross_batch_jobs_equal_the_one_job_path(tmp_path):
    uids, shards, embeddings = two_batches(tmp_path)
    released = tmp_path / "released.parquet"
    write_parquet(
        pl.DataFrame(
            {"uid": sorted(uids)[50:55], "released_uid": ["r1"] * 5, "similarity": [0.99] * 5},
            schema={"uid": pl.String, "released_uid": pl.String, "similarity": pl.Float32},
        ),
        released,
    )
    against = ["earlier/index"]
    one = tmp_path / "one.parquet"
    one_stats = dedup_clusters(
        shards, embeddings, str(one), str(tmp_path / "one.json"), CFG, "cross_batch",
        [str(released)], against,
    )  # fmt: skip
    work = tmp_path / "split"
    repeats = str(work / "repeats.parquet")
    assert J.repeats_job(shards, repeats) == 10
    # Split by uid hash into passes of a few rows each: the same repeats and owners.
    in_passes = str(work / "repeats-in-passes.parquet")
    assert J.repeats_job(shards, in_passes, pass_rows=7) == 10
    assert pl.read_parquet(in_passes).equals(pl.read_parquet(repeats))
    centroids = str(work / "centroids.npy")
    J.centroids_job(shards, embeddings, CFG, centroids)
    assignments = []
    for k, (shard, emb) in enumerate(zip(shards, embeddings, strict=True)):
        path = str(work / f"assign-{k}.npz")
        batch = "b1" if k < 2 else "b2"
        J.assign_job(shard, emb, centroids, CFG, path, batch, repeats, [str(released)])
        assignments.append(path)
    pair_files = []
    for group in range(CFG["partition_jobs"]):
        path = str(work / f"pairs-{group}.parquet")
        J.pairs_job(assignments, embeddings, group, CFG, path)
        pair_files.append(path)
    split = work / "split.parquet"
    split_stats = J.merge_job(
        assignments, pair_files, embeddings, CFG, str(split), str(work / "split.json"),
        shards=shards, released=[str(released)], against=against,
    )  # fmt: skip
    one_frame, split_frame = pl.read_parquet(one).sort("uid"), pl.read_parquet(split).sort("uid")
    assert same_decisions(split_frame, one_frame)
    assert one_frame.filter(pl.col("released_uid").is_not_null()).height == 5
    assert one_stats["removed"] > 0 and one_stats["repeated_uids"] == 10
    for key in ("input", "kept", "removed", "sets", "repeated_uids", "released_duplicates"):
        assert split_stats[key] == one_stats[key], key
