"""Snakemake entry point of the dedup index's jobs (params.stage says which)."""

from danqing import dedup_index as I
from danqing.runner import setup_logging

setup_logging(snakemake.log[0])
stage, cfg = snakemake.params.stage, snakemake.params.cfg
inputs, outputs = snakemake.input, snakemake.output

if stage == "centroids":
    I.centroids_job(inputs.shards, inputs.embeddings, outputs.centroids, cfg)
elif stage == "assign":
    I.assign_job(inputs.shard, inputs.embeddings, inputs.centroids, outputs.assignment)
elif stage == "group":
    group = int(snakemake.wildcards.group)
    I.write_index_group(outputs.group, inputs.assignments, group, cfg["groups"])
elif stage == "manifest":
    I.manifest_job(inputs.centroids, inputs.groups, inputs.embeddings, outputs.manifest)
elif stage == "search_assign":
    I.search_assign_job(
        inputs.shard, inputs.embeddings, snakemake.params.index, cfg, outputs.assignment
    )
elif stage == "search":
    I.search_job(
        inputs.assignments,
        inputs.embeddings,
        snakemake.params.index,
        int(snakemake.wildcards.group),
        cfg,
        outputs.pairs,
        outputs.stats,
    )
else:
    raise ValueError(f"unknown stage {stage}")
