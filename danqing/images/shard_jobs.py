"""The per-shard and per-batch work behind the image filters' named inputs.

Each function reads the rows that enter a step, computes what the step decides on (image metrics,
embeddings, NSFW scores, dedup decisions) and writes it atomically; the filter functions in
danqing/filters/image.py then only join by uid and apply thresholds. Images are read from the
download step's tars (danqing.images.store), each once per job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import polars as pl

from danqing.io import write_json, write_parquet

log = logging.getLogger("danqing")


def shard_image_metrics(shard: str, out: str, cfg: dict, threads: int) -> pl.DataFrame:
    """Decode each image of the shard once and measure std, Laplacian variance, entropy, size."""
    from danqing.images.metrics import MetricSettings, metrics_frame
    from danqing.images.store import read_images

    frame = pl.read_parquet(shard)
    settings = MetricSettings.from_config(cfg)
    processes = cfg["threads"] or threads
    started = time.perf_counter()
    table = metrics_frame(read_images(frame), settings, processes=processes)
    write_parquet(table, out)
    log.info(
        "image metrics of %d images in %.1fs (%d processes)",
        table.height,
        time.perf_counter() - started,
        processes,
    )
    return table


def shard_embeddings(
    shard: str, embeddings_out: str, distances_out: str, cfg: dict, threads: int
) -> None:
    """Image (and, for image-text models, caption) embeddings of the shard's rows, float16, plus
    their image-text distances (null for an image-only model), on `threads` CPU threads."""
    from danqing.embed import alignment_frame, embed_items, load_embedder, write_embeddings
    from danqing.images.store import read_images

    frame = pl.read_parquet(shard)
    embedder = load_embedder(cfg, threads=threads)
    captions = dict(zip(frame["uid"].to_list(), frame["alt_text"].to_list(), strict=True))
    started = time.perf_counter()
    emb = embed_items(embedder, read_images(frame), captions=captions)
    # The embeddings last: downstream jobs wait on them, and a job killed between the two writes
    # must leave the embeddings missing (so that it runs again), never the distances. (Snakemake
    # does not check the incomplete markers of jobs it adds after the partition checkpoint.)
    write_parquet(alignment_frame(emb), distances_out)
    write_embeddings(emb, embeddings_out)
    log.info(
        "%s embeddings of %d images%s in %.1fs",
        emb.model,
        len(emb.uids),
        " and captions" if emb.has_text else "",
        time.perf_counter() - started,
    )


def shard_nsfw_scores(shard: str, out: str, cfg: dict, threads: int) -> None:
    """P(nsfw) of every image of the shard under the configured ONNX classifier."""
    from danqing.images.nsfw import score_images
    from danqing.images.store import read_images

    frame = pl.read_parquet(shard)
    started = time.perf_counter()
    scores = score_images(
        read_images(frame),
        model=cfg["model"],
        batch_size=int(cfg["batch_size"]),
        threads=threads,
    )
    write_parquet(scores, out)
    log.info("NSFW scores of %d images in %.1fs", scores.height, time.perf_counter() - started)


def exact_clusters(shards: Sequence[str], out: str, stats_out: str) -> dict:
    """Sets of rows whose stored images are byte-identical (image_sha256), over `shards` in
    order: the first row of each set is kept. Written in the dedup decisions' layout."""
    frames = [pl.read_parquet(path, columns=["uid", "image_sha256"]) for path in shards]
    rows = (
        pl.concat(frames)
        if frames
        else pl.DataFrame(schema={"uid": pl.String, "image_sha256": pl.String})
    )
    if rows["image_sha256"].null_count():
        raise ValueError(
            "exact_dedup needs image_sha256 on every row (kept rows of download_images)"
        )
    decisions = rows.with_columns(
        pl.col("uid").first().over("image_sha256").alias("representative_uid"),
        pl.len().over("image_sha256").cast(pl.Int64).alias("cluster_size"),
    ).with_columns((pl.col("uid") == pl.col("representative_uid")).alias("keep"))
    write_parquet(decisions.select("uid", "keep", "representative_uid", "cluster_size"), out)
    stats = {
        "input": rows.height,
        "sets": int(decisions.filter(pl.col("cluster_size") > 1)["image_sha256"].n_unique()),
        "removed": int((~decisions["keep"]).sum()),
    }
    stats["kept"] = stats["input"] - stats["removed"]
    write_json(stats, stats_out)
    log.info(
        "exact dedup: %d images, %d sets of identical bytes, %d removed",
        stats["input"],
        stats["sets"],
        stats["removed"],
    )
    return stats


def dedup_clusters(
    shards: Sequence[str],
    embeddings: Sequence[str],
    out: str,
    stats_out: str,
    cfg: dict,
    scope: str,
    released: Sequence[str] = (),
    against: Sequence[str] = (),
    released_recall: Sequence[str] = (),
) -> dict:
    """Near-duplicate sets among the rows of `shards` (their embeddings from `embeddings`), with
    the centroid-nearest member of each set kept; run statistics (index, IVF recall) as JSON.

    `released`: the search results of earlier releases' indexes (`against`,
    danqing.dedup_index): those rows are decided as released duplicates and take no part in
    the sets; `released_recall`: those searches' measured recall."""
    from danqing.dedup import DedupSettings, collect_embeddings, dedup, settings_dict
    from danqing.dedup_jobs import (
        cross_batch_decisions,
        cross_batch_stats,
        owners,
        released_owners,
        shard_rows,
    )

    rows = shard_rows(shards)
    owner_rows = owners(rows)
    found = released_owners(released, owner_rows)
    new = owner_rows.filter(~pl.col("uid").is_in(found["uid"].implode()))
    uids, vectors, model = collect_embeddings(embeddings, keep=new["uid"].to_list())
    settings = DedupSettings.from_config(cfg, model)
    frame, stats = dedup(uids, vectors, settings)
    frame = cross_batch_decisions(frame, owner_rows, found, against)
    stats = cross_batch_stats(stats, rows, owner_rows, found, against, released_recall)
    write_parquet(frame, out)
    stats = {"scope": scope, **stats, "settings": settings_dict(settings)}
    write_json(stats, stats_out)
    log.info(
        "%s dedup: %d images, %d near-duplicate sets, %d removed (%s index%s)",
        scope,
        stats["input"],
        stats["sets"],
        stats["removed"],
        stats.get("index"),
        f", pair recall {stats['recall']['recall']}" if "recall" in stats else "",
    )
    return stats
