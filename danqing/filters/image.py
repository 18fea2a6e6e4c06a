"""Visual diversification and cross-modal filters (paper Sec. 3.2): one pure function per step.

The expensive work happens once per shard (or batch) in its own job and arrives here as a named
input: the image metrics table (`metrics=`, from danqing.images.metrics), the dedup decisions
(`clusters=`, from danqing.dedup), the NSFW scores (`scores=`, from danqing.images.nsfw) and the
image-text distances (`distances=`, from danqing.embed.alignment_frame). Each function only joins
those by uid and applies the configured thresholds, so a threshold change reruns in seconds.

A uid of the shard missing from a named input is an error (the upstream job is incomplete), never
a silent keep or drop. An empty shard needs no inputs.
"""

from __future__ import annotations

import polars as pl

from danqing.decisions import read_part
from danqing.filters import StepResult, verdicts
from danqing.images.metrics import METRIC_COLUMNS, METRICS_SCHEMA, aspect_ratio
from danqing.io import empty_drops


def _read(path, what: str, required: list[str], uids: pl.Series | None = None) -> pl.DataFrame:
    """The table at `path`; with `uids`, only its rows of those uids. A batch's (or every
    batch's) dedup decisions are read that way, streamed, so that a shard's job holds its own
    rows, not the 45M of a batch at the paper's scale (~85 bytes a row in memory)."""
    if path is None:
        raise ValueError(f"the {what} input is missing (named rule input)")
    scan = pl.scan_parquet(path)
    absent = [c for c in required if c not in scan.collect_schema().names()]
    if absent:
        raise ValueError(f"{path}: {what} has no column(s) {absent}")
    if uids is None:
        return scan.collect()
    part = read_part(path, uids)
    if part is not None:
        return part
    return scan.filter(pl.col("uid").is_in(uids.implode())).collect(engine="streaming")


def _join_by_uid(df: pl.DataFrame, table: pl.DataFrame, what: str, path) -> pl.DataFrame:
    """`df` with `table`'s columns, in df's order; every uid of df must be in the table."""
    if table["uid"].is_duplicated().any():
        raise ValueError(f"{path}: duplicate uids in the {what}")
    joined = df.join(table, on="uid", how="left", maintain_order="left", coalesce=True)
    found = df.select(pl.col("uid").is_in(table["uid"].implode())).to_series()
    if not found.all():
        missing = df.filter(~found)["uid"].to_list()
        raise ValueError(
            f"{path}: the {what} has no row for {len(missing)} uids of this shard, "
            f"e.g. {missing[:3]} (was it computed on this step's input?)"
        )
    return joined


def _with_metrics(df: pl.DataFrame, metrics, step: str) -> pl.DataFrame:
    """The shard with the image metric columns: carried from image_geometry, or joined."""
    if all(c in df.columns for c in METRIC_COLUMNS):
        return df
    if metrics is None:
        raise ValueError(
            f"{step} needs the image metric columns ({METRIC_COLUMNS}): run "
            "image_geometry before it, or give the rule a `metrics` input"
        )
    table = _read(metrics, "image metrics", list(METRICS_SCHEMA))
    table = table.select(list(METRICS_SCHEMA)).cast(METRICS_SCHEMA)
    return _join_by_uid(
        df.drop([c for c in METRIC_COLUMNS if c in df.columns]), table, "image metrics", metrics
    )


def _empty(df: pl.DataFrame, step: str) -> StepResult:
    return verdicts(df, step, [])


def image_geometry(df: pl.DataFrame, cfg: dict, metrics=None) -> StepResult:
    """Aspect ratio within 1:max..max:1 and shorter edge > min_edge, from the ORIGINAL size.

    Joins the shard's metrics table (kept rows carry img_std, img_blur, img_entropy ... for the
    next steps and the report) and drops images that could not be decoded. The original size is
    img2dataset's `original_width`/`original_height`; where a row has none, the decoded size.
    """
    if df.height == 0:
        return _empty(df, "image_geometry")
    for column in ("original_width", "original_height"):
        if column not in df.columns:
            raise ValueError(f"image_geometry needs the {column} column of the download step")
    frame = _with_metrics(df, metrics, "image_geometry")
    min_edge, max_ratio = cfg["min_edge"], cfg["max_aspect_ratio"]
    reasons, values = [], []
    for error, ow, oh, dw, dh in zip(
        frame["img_error"].to_list(),
        frame["original_width"].to_list(),
        frame["original_height"].to_list(),
        frame["img_width"].to_list(),
        frame["img_height"].to_list(),
        strict=True,
    ):
        if error is not None:
            reasons.append("undecodable_image")
            values.append(error)
            continue
        width, height = (ow, oh) if ow is not None and oh is not None else (dw, dh)
        ratio = aspect_ratio(width, height)
        if min(width, height) <= min_edge:
            reasons.append("min_edge")
            values.append(min(width, height))
        elif ratio > max_ratio:
            reasons.append("aspect_ratio")
            values.append(ratio)
        else:
            reasons.append(None)
            values.append(None)
    return verdicts(frame, "image_geometry", reasons, values)


def _threshold_step(
    df: pl.DataFrame, step: str, column: str, minimum: float, reason: str, metrics
) -> StepResult:
    if df.height == 0:
        return _empty(df, step)
    frame = _with_metrics(df, metrics, step)
    values = frame[column].to_list()
    if any(v is None for v in values):
        raise ValueError(
            f"{step}: {column} is null for some rows (undecodable images must be "
            "dropped by image_geometry first)"
        )
    reasons = [None if v >= minimum else reason for v in values]
    return verdicts(frame, step, reasons, values)


def low_textual_images(df: pl.DataFrame, cfg: dict, metrics=None) -> StepResult:
    """Grayscale pixel standard deviation below `min_std` (2): no visual content."""
    return _threshold_step(
        df, "low_textual_images", "img_std", cfg["min_std"], "low_pixel_std", metrics
    )


def blurry_images(df: pl.DataFrame, cfg: dict, metrics=None) -> StepResult:
    """Laplacian variance below `min_laplacian_var` (1000; measure in danqing.images.metrics)."""
    return _threshold_step(
        df, "blurry_images", "img_blur", cfg["min_laplacian_var"], "blurry", metrics
    )


ENTROPY_COLUMNS = {"rgb": "img_entropy_rgb", "gray": "img_entropy"}


def image_entropy(df: pl.DataFrame, cfg: dict, metrics=None) -> StepResult:
    """Image entropy below `min_entropy` (3 bits): little information. `measure`: `rgb` (the
    channel histograms pooled, the default; danqing.images.metrics.colour_entropy) or `gray`."""
    return _threshold_step(
        df,
        "image_entropy",
        ENTROPY_COLUMNS[cfg["measure"]],
        cfg["min_entropy"],
        "low_entropy",
        metrics,
    )


def _apply_dedup(
    df: pl.DataFrame, step: str, clusters, prefix: str, reason: str = "duplicate"
) -> StepResult:
    if df.height == 0:
        return _empty(df, step)
    table = _read(
        clusters,
        "dedup decisions",
        ["uid", "keep", "representative_uid", "cluster_size"],
        uids=df["uid"],
    )
    for optional in ("owner_batch", "released_uid"):
        # Per-batch decisions have no owner batch (uids are unique in a batch); only the
        # cross-batch decisions searched earlier releases.
        if optional not in table.columns:
            table = table.with_columns(pl.lit(None, dtype=pl.String).alias(optional))
    table = table.select(
        "uid",
        "keep",
        "representative_uid",
        "owner_batch",
        "released_uid",
        pl.col("cluster_size").alias(f"{prefix}_cluster_size"),
    )
    frame = _join_by_uid(df, table, "dedup decisions", clusters)
    batches = frame["batch"].to_list() if "batch" in frame.columns else [None] * frame.height
    reasons, values = [], []
    for keep, representative, owner, released, batch in zip(
        frame["keep"].to_list(),
        frame["representative_uid"].to_list(),
        frame["owner_batch"].to_list(),
        frame["released_uid"].to_list(),
        batches,
        strict=True,
    ):
        if owner is not None and batch is not None and batch != owner:
            # The same uid in an earlier batch: this row is a second copy of that pair.
            reasons.append("duplicate_uid")
            values.append(owner)
        elif released is not None:
            # Within beta of an image an earlier release already holds.
            reasons.append("released_duplicate")
            values.append(released)
        else:
            reasons.append(None if keep else reason)
            values.append(representative)
    frame = frame.drop("keep", "representative_uid", "owner_batch", "released_uid")
    return verdicts(frame, step, reasons, values)


def exact_dedup(df: pl.DataFrame, cfg: dict, clusters=None) -> StepResult:
    """Drops all but one row of each set of identical stored images (same sha256) of the batch
    (decided by danqing.images.shard_jobs.exact_clusters); value = the kept row's uid."""
    return _apply_dedup(df, "exact_dedup", clusters, "exact", reason="identical_image")


def semantic_dedup(df: pl.DataFrame, cfg: dict, clusters=None) -> StepResult:
    """Drops all but the centroid-nearest image of each near-duplicate set of the batch
    (decided by danqing.dedup over the batch's embeddings); value = the kept image's uid."""
    return _apply_dedup(df, "semantic_dedup", clusters, "dedup")


def cross_batch_dedup(df: pl.DataFrame, cfg: dict, clusters=None) -> StepResult:
    """The same over all batches' surviving images; an image within beta of one an earlier
    release holds (release.dedup_index.against) is dropped as released_duplicate, value = the
    released uid."""
    return _apply_dedup(df, "cross_batch_dedup", clusters, "cross_batch")


def image_safety(df: pl.DataFrame, cfg: dict, scores=None) -> StepResult:
    """NSFW score (P(nsfw) of the configured classifier) at or above `threshold` is dropped."""
    if df.height == 0:
        return _empty(df, "image_safety")
    table = _read(scores, "NSFW scores", ["uid", "nsfw_score"])
    columns = ["uid", "nsfw_score"] + (["nsfw_error"] if "nsfw_error" in table.columns else [])
    frame = _join_by_uid(df, table.select(columns), "NSFW scores", scores)
    threshold = cfg["threshold"]
    errors = (
        frame["nsfw_error"].to_list() if "nsfw_error" in frame.columns else [None] * frame.height
    )
    reasons, values = [], []
    for score, error in zip(frame["nsfw_score"].to_list(), errors, strict=True):
        if score is None:
            reasons.append("nsfw_unscored")
            values.append(error)
        else:
            reasons.append("nsfw" if score >= threshold else None)
            values.append(score)
    frame = frame.drop("nsfw_error") if "nsfw_error" in frame.columns else frame
    return verdicts(frame, "image_safety", reasons, values)


def cross_modal_alignment(df: pl.DataFrame, cfg: dict, distances=None) -> StepResult:
    """Keeps pairs whose image-text L2 distance (unit embeddings) lies in [min, max] distance.

    With an image-only embedder the distances table has no values: the step keeps every row and
    reports status "not_run" with the reason, instead of pretending to filter.
    """
    step = "cross_modal_alignment"
    if df.height == 0:
        return _empty(df, step)
    table = _read(distances, "image-text distances", ["uid", "distance"])
    if table["distance"].null_count() == table.height:
        model = table["model"][0] if "model" in table.columns and table.height else "unknown"
        return StepResult(
            kept=df,
            dropped=empty_drops(),
            status="not_run",
            note=(
                f"not run: the embedding model ({model}) has no text tower, so image-text "
                "distances cannot be computed; configure embedding.model: chinese-clip with "
                "a checkpoint to run this step"
            ),
        ).check(df.height)
    frame = _join_by_uid(
        df,
        table.select("uid", pl.col("distance").alias("alignment_distance")),
        "image-text distances",
        distances,
    )
    low, high = cfg["min_distance"], cfg["max_distance"]
    reasons = []
    for d in frame["alignment_distance"].to_list():
        if d is None:
            raise ValueError(f"{distances}: a null distance among computed ones")
        reasons.append(
            "below_alignment_window" if d < low else "above_alignment_window" if d > high else None
        )
    return verdicts(frame, step, reasons, frame["alignment_distance"].to_list())
