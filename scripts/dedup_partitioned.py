"""Snakemake entry point of the partitioned semantic dedup's jobs (params.stage says which)."""

import numpy as np
import polars as pl

from danqing import dedup_partitioned as P
from danqing.dedup import DedupSettings, settings_dict
from danqing.embed import read_embeddings
from danqing.io import write_json, write_parquet
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
cfg, stage = snakemake.params.cfg, snakemake.params.stage


def kept(paths):
    return set(pl.concat([pl.read_parquet(p, columns=["uid"]) for p in paths])["uid"])


if stage == "centroids":
    x = P.sample_vectors(
        snakemake.input.embeddings, kept(snakemake.input.shards), cfg["train_sample"], seed=1234
    )
    np.save(snakemake.output.centroids, P.train_centroids(x, cfg["partitions"]))
elif stage == "assign":
    emb = read_embeddings(snakemake.input.embeddings)
    keep = kept([snakemake.input.shard])
    rows = [k for k, u in enumerate(emb.uids) if u in keep]
    if len(rows) != len(keep):
        raise KeyError(
            f"{snakemake.input.embeddings}: no embedding for {len(keep) - len(rows)} rows"
        )
    settings = DedupSettings.from_config(cfg, emb.model)
    P.write_assignment(
        snakemake.output.assignment,
        [emb.uids[k] for k in rows],
        emb.image[rows],
        np.load(snakemake.input.centroids),
        settings.beta,
    )
elif stage == "pairs":
    model = (
        read_embeddings(snakemake.input.embeddings[0]).model if snakemake.input.embeddings else None
    )
    settings = DedupSettings.from_config(cfg, model)
    write_parquet(
        P.partition_pairs(
            snakemake.input.assignments,
            int(snakemake.wildcards.group),
            cfg["partition_jobs"],
            settings.beta,
        ),
        snakemake.output.pairs,
    )
elif stage == "merge":
    model = (
        read_embeddings(snakemake.input.embeddings[0]).model if snakemake.input.embeddings else None
    )
    settings = DedupSettings.from_config(cfg, model)
    frame, stats = P.merge(snakemake.input.assignments, snakemake.input.pairs, settings)
    # One batch: every uid is its own batch's (the layout of danqing.images.shard_jobs.dedup_clusters).
    frame = frame.with_columns(pl.lit(snakemake.wildcards.batch).alias("owner_batch"))
    stats["repeated_uids"] = 0
    write_parquet(frame, snakemake.output.clusters)
    write_json(
        {
            "scope": "batch",
            **stats,
            "partitions": cfg["partitions"],
            "partition_jobs": cfg["partition_jobs"],
            "settings": settings_dict(settings),
        },
        snakemake.output.stats,
    )
else:
    raise ValueError(f"unknown stage {stage}")
