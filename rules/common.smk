import json
import os

from snakemake.utils import min_version, validate

from danqing import steps as pipeline_steps

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "../config/schema.yaml")

# Enabled steps in pipeline order, whatever order config lists them in.
STEPS = pipeline_steps.step_names(set(config["steps"]))
PARTITION_DIR = "results/partition"


wildcard_constraints:
    batch=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    shard=r"s\d{5}",
    step=r"[a-z_]+",


def step_input(step):
    """The kept shard of the last enabled step before `step` (the partition if none)."""
    order = [s.name for s in pipeline_steps.STEPS]
    before = [s for s in order[: order.index(step)] if s in STEPS]
    if not before:
        return f"{PARTITION_DIR}/{{batch}}/{{shard}}.parquet"
    return f"results/steps/{before[-1]}/{{batch}}/{{shard}}.parquet"


def step_outputs(step):
    return {
        "kept": f"results/steps/{step}/{{batch}}/{{shard}}.parquet",
        "dropped": f"results/steps/{step}/{{batch}}/{{shard}}.drops.parquet",
        "counts": f"results/steps/{step}/{{batch}}/{{shard}}.counts.json",
    }


def step_log(step):
    return f"results/logs/{step}/{{batch}}/{{shard}}.log"


def partition_manifest():
    """{batch: {shard: rows}} once the partition checkpoint has run."""
    out_dir = checkpoints.partition_input.get().output.shards
    with open(os.path.join(out_dir, "manifest.json")) as handle:
        return json.load(handle)["batches"]


def all_shards():
    return [(b, s) for b, shards in partition_manifest().items() for s in shards]


def step_files(step, kind):
    """Every shard's `kind` output (kept, dropped, counts) of `step`."""
    pattern = step_outputs(step)[kind]
    return [pattern.format(batch=b, shard=s) for b, s in all_shards()]


def all_counts(wildcards):
    return [f for step in STEPS for f in step_files(step, "counts")]


def all_drops(wildcards):
    return [f for step in STEPS for f in step_files(step, "dropped")]


def final_shards(wildcards):
    return step_files(STEPS[-1], "kept")
