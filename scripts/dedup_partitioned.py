"""Snakemake entry point of the partitioned dedup's jobs, per batch or across batches
(params.stage says which job, params.scope which dedup)."""

from danqing import dedup_jobs as J
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
cfg, stage, scope = snakemake.params.cfg, snakemake.params.stage, snakemake.params.scope
inputs, outputs, wildcards = snakemake.input, snakemake.output, snakemake.wildcards
# Across batches: the rows an earlier batch owns or an earlier release holds leave the search.
across = scope == "cross_batch"

if stage == "repeats":
    J.repeats_job(inputs.shards, outputs.repeats)
elif stage == "centroids":
    J.centroids_job(inputs.shards, inputs.embeddings, cfg, outputs.centroids)
elif stage == "assign":
    J.assign_job(
        inputs.shard,
        inputs.embeddings,
        inputs.centroids,
        cfg,
        outputs.assignment,
        batch=wildcards.batch,
        repeats=inputs.repeats if across else None,
        released=inputs.released if across else (),
    )
elif stage == "pairs":
    J.pairs_job(inputs.assignments, inputs.embeddings, int(wildcards.group), cfg, outputs.pairs)
elif stage == "merge":
    J.merge_job(
        inputs.assignments,
        inputs.pairs,
        inputs.embeddings,
        cfg,
        outputs.clusters,
        outputs.stats,
        batch=None if across else wildcards.batch,
        shards=inputs.shards if across else (),
        released=inputs.released if across else (),
        against=snakemake.params.against if across else (),
        released_recall=inputs.released_recall if across else (),
    )
else:
    raise ValueError(f"unknown stage {stage}")
