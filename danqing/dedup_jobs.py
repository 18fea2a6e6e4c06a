"""The jobs of the partitioned dedup rules (danqing/dedup_partitioned.py), per batch
(rules/visual_diversification.smk) and across batches (rules/cross_modal.smk), and the
cross-batch decisions both cross-batch paths write.

Across batches two things join the per-batch search. A pair crawled again in another batch keeps
its uid: the first batch's row stands for it (`owners`), its other rows are dropped as
duplicate_uid, so the assignment jobs leave out the rows that `repeats_job` found owned by an
earlier batch. And the images found in an earlier release (danqing/dedup_index.py) are decided as
released duplicates and take no part in the sets.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from danqing import dedup_partitioned as P
from danqing.dedup import DedupSettings, settings_dict
from danqing.dedup_index import read_released, released_decisions, released_recall_summary
from danqing.embed import embedding_model, read_shard_embeddings
from danqing.io import shard_row_count, write_json, write_npy, write_parquet

REPEATS_SCHEMA = {"uid": pl.String, "owner_batch": pl.String}
# Rows grouped in one pass of the repeats job. Measured on 8M distinct 20-character uids in 17
# shards: one pass peaks at 1,852 MiB (5.2 s), passes of 4M at 1,077 MiB (2.0 s), of 2M at
# 764 MiB (2.0 s): ~195 bytes a row. The seed keeps the split fixed.
REPEATS_PASS_ROWS = 4_000_000
REPEATS_HASH_SEED = 20240901


def shard_rows(shards: Sequence[str]) -> pl.DataFrame:
    """(uid, batch) of every row of the shards, in shard order."""
    if not shards:
        return pl.DataFrame(schema={"uid": pl.String, "batch": pl.String})
    return pl.concat([pl.read_parquet(path, columns=["uid", "batch"]) for path in shards])


def owners(rows: pl.DataFrame) -> pl.DataFrame:
    """The row standing for each uid: its first, in shard (so batch) order."""
    return rows.unique(subset="uid", keep="first", maintain_order=True)


def released_owners(released: Sequence[str], owner_rows: pl.DataFrame) -> pl.DataFrame:
    """The released duplicates (danqing.dedup_index.RELEASED_SCHEMA) among the owner rows."""
    return read_released(released).filter(pl.col("uid").is_in(owner_rows["uid"].implode()))


def cross_batch_decisions(
    frame: pl.DataFrame, owner_rows: pl.DataFrame, found: pl.DataFrame, against: Sequence[str]
) -> pl.DataFrame:
    """The sets' decisions, with the released duplicates' when earlier releases were searched,
    and each uid's owner batch."""
    if against:
        frame = pl.concat(
            [
                frame.with_columns(pl.lit(None, dtype=pl.String).alias("released_uid")),
                released_decisions(found),
            ]
        )
    return frame.join(
        owner_rows.rename({"batch": "owner_batch"}), on="uid", how="left", maintain_order="left"
    )


def released_stats(found: pl.DataFrame, against: Sequence[str], recall_files: Sequence[str]):
    """What the searches of earlier releases found, and their measured recall."""
    if not against:
        return {}
    return {
        "released_duplicates": found.height,
        "against": list(against),
        "released_recall": released_recall_summary(recall_files),
    }


def cross_batch_stats(
    stats: dict,
    rows: pl.DataFrame,
    owner_rows: pl.DataFrame,
    found,
    against,
    recall_files: Sequence[str] = (),
) -> dict:
    stats["repeated_uids"] = rows.height - owner_rows.height
    return {**stats, **released_stats(found, against, recall_files)}


def repeats_job(shards: Sequence[str], out: str, pass_rows: int | None = None) -> int:
    """The uids that more than one row holds, with their owner batch (the batch of the first
    shard, in `shards` order, that holds it).

    Polars' streaming group-by holds every distinct uid it has seen; over the rows of every batch
    (154M at the paper's scale) that alone is gigabytes. So the uids are split by hash into
    passes of at most `pass_rows` rows (default REPEATS_PASS_ROWS), each grouped on its own: a
    repeated uid's rows all fall in one pass. Memory ~ pass_rows, I/O ~ passes x the uid column."""
    if not shards:
        write_parquet(pl.DataFrame(schema=REPEATS_SCHEMA), out)
        return 0
    rows = shard_row_count(shards)
    passes = max(1, -(-rows // (pass_rows or REPEATS_PASS_ROWS)))
    frames = pl.concat(
        [
            pl.scan_parquet(path).select("uid", "batch", pl.lit(k).alias("file"))
            for k, path in enumerate(shards)
        ]
    )
    found = [
        frames.filter(pl.col("uid").hash(REPEATS_HASH_SEED) % passes == k)
        .group_by("uid")
        .agg(pl.col("batch").sort_by("file").first().alias("owner_batch"), pl.len())
        .filter(pl.col("len") > 1)
        .select("uid", "owner_batch")
        .collect(engine="streaming")
        for k in range(passes)
    ]
    repeats = pl.concat(found).cast(REPEATS_SCHEMA).sort("uid")
    write_parquet(repeats, out)
    return repeats.height


def centroids_job(shards: Sequence[str], embeddings: Sequence[str], cfg: dict, out: str) -> None:
    """The partition centroids, trained on a sample of the rows' vectors."""
    x = P.sample_vectors(shards, embeddings, cfg["train_sample"], seed=cfg["seed"])
    centroids = P.train_centroids(x, cfg["partitions"], cfg["seed"])
    write_npy(out, centroids)


def assign_job(
    shard: str,
    embeddings: str,
    centroids: str,
    cfg: dict,
    out: str,
    batch: str | None = None,
    repeats: str | None = None,
    released: Sequence[str] = (),
) -> dict:
    """One shard's vectors in the partitions (boundary copies included); across batches
    without the rows an earlier batch owns (`repeats`) or an earlier release holds."""
    exclude: set[str] = set(read_released(released)["uid"])
    if repeats is not None:
        owned = pl.read_parquet(repeats).filter(pl.col("owner_batch") != batch)
        exclude |= set(owned["uid"])
    emb = read_shard_embeddings(shard, embeddings, exclude)
    settings = DedupSettings.from_config(cfg, emb.model)
    return P.write_assignment(
        out, emb.uids, emb.image, np.load(centroids), settings.beta, cfg["partition_copies"]
    )


def pairs_job(
    assignments: Sequence[str], embeddings: Sequence[str], group: int, cfg: dict, out: str
) -> None:
    """The pairs within beta in the group's partitions."""
    settings = DedupSettings.from_config(cfg, embedding_model(embeddings))
    pairs = P.partition_pairs(assignments, group, cfg["partition_jobs"], settings.beta)
    write_parquet(pairs, out)


def first_owners(uids: pl.Series, shards: Sequence[str]) -> pl.DataFrame:
    """(uid, batch) of the first row (in shard order) holding each of `uids`, streamed over the
    shards: memory ~ the uids asked for, not the rows."""
    if not shards or not len(uids):
        return pl.DataFrame(schema={"uid": pl.String, "batch": pl.String})
    frames = [
        pl.scan_parquet(path).select("uid", "batch", pl.lit(k).alias("file"))
        for k, path in enumerate(shards)
    ]
    return (
        pl.concat(frames)
        .filter(pl.col("uid").is_in(uids.implode()))
        .group_by("uid")
        .agg(pl.col("batch").sort_by("file").first())
        .collect(engine="streaming")
    )


def merge_job(
    assignments: Sequence[str],
    pair_files: Sequence[str],
    embeddings: Sequence[str],
    cfg: dict,
    clusters_out: str,
    stats_out: str,
    batch: str | None = None,
    shards: Sequence[str] = (),
    released: Sequence[str] = (),
    against: Sequence[str] = (),
    released_recall: Sequence[str] = (),
) -> dict:
    """The sets from every partition's pairs: one batch's (`batch`), or across batches (the
    `shards` entering the step, in the assignment files' order). Memory ~ the linked uids and
    the released duplicates, never every row: each assignment file's rows are owned by its
    batch (the assignment jobs left out the rows an earlier batch owns)."""
    settings = DedupSettings.from_config(cfg, embedding_model(embeddings))
    if batch is not None:
        stats = P.merge(
            assignments, pair_files, settings, clusters_out, owners=[batch] * len(assignments)
        )
        stats["repeated_uids"] = 0
        scope = "batch"
    else:
        if len(shards) != len(assignments):
            raise ValueError(f"{len(shards)} shards for {len(assignments)} assignment files")
        batches = [pl.read_parquet(path, columns=["batch"], n_rows=1) for path in shards]
        owner_of = [b["batch"][0] if b.height else None for b in batches]
        extra = None
        found = read_released(released)
        if against:
            holders = first_owners(found["uid"], shards).rename({"batch": "owner_batch"})
            found = found.join(holders.select("uid"), on="uid", how="semi")
            extra = released_decisions(found).join(holders, on="uid", how="left")
        stats = P.merge(
            assignments, pair_files, settings, clusters_out, owners=owner_of, extra_rows=extra
        )
        distinct = stats["input"] + (found.height if against else 0)
        stats["repeated_uids"] = shard_row_count(shards) - distinct
        stats.update(released_stats(found, against, released_recall))
        scope = "cross_batch"
    stats = {
        "scope": scope,
        **stats,
        "partitions": cfg["partitions"],
        "partition_jobs": cfg["partition_jobs"],
        "partition_copies": cfg["partition_copies"],
        "settings": settings_dict(settings),
    }
    write_json(stats, stats_out)
    return stats
