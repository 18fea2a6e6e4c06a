import json
import os

from snakemake.utils import validate

from danqing import config_checks
from danqing import steps as pipeline_steps
from danqing.dedup_index import ReleaseIndex

validate(config, "../config/schema.yaml")
# What the schema cannot say (NaN, inverted windows, missing files), before any job runs.
config_checks.check(config)

# Enabled steps in pipeline order, whatever order config lists them in.
STEPS = pipeline_steps.step_names(set(config["steps"]))
PARTITION_DIR = "results/partition"


wildcard_constraints:
    batch=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    shard=r"s\d{5}",


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


def filter_inputs(step):
    """The inputs of a generated filter rule: the shard, then each named input of its Step row,
    the output of that name of the rule it names (defined before rules/filters.smk)."""
    upstream = {
        name: getattr(getattr(rules, producer).output, name)
        for name, producer in step.upstream
    }
    return {"shard": step_input(step.name), **upstream}


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


def swept_step_files(wildcards):
    """Kept rows and drops of the enabled steps the threshold sweep reads."""
    from danqing.report.sweep import swept_steps

    return [
        f
        for step in swept_steps()
        if step in STEPS
        for kind in ("kept", "dropped")
        for f in step_files(step, kind)
    ]


# ---- Release and figures (rules/release.smk, rules/figures.smk): paths and input functions.

RELEASE_DIR = "results/release/dataset"
RELEASE_PARTS = "results/release/parts"
RELEASE_IMAGES = "download_images" in STEPS


def release_part_outputs():
    outputs = {
        "parquet": f"{RELEASE_PARTS}/{{batch}}/{{shard}}.parquet",
        "record": f"{RELEASE_PARTS}/{{batch}}/{{shard}}.json",
    }
    if RELEASE_IMAGES:
        outputs["wds"] = directory(f"{RELEASE_PARTS}/{{batch}}/{{shard}}.wds")
    return outputs


def release_dataset_outputs():
    # data/ and webdataset/ are written beside the manifest (each replaced atomically) and listed
    # in it with their sha256s; declared as directory() outputs they would get Snakemake's
    # .snakemake_timestamp marker, which is no part of a dataset.
    return {"manifest": f"{RELEASE_DIR}/manifest.json"}


def release_records(wildcards):
    return [f"{RELEASE_PARTS}/{b}/{s}.json" for b, s in all_shards()]


def release_targets():
    """The release folder (and its dedup index when written): the default target adds these."""
    targets = [f"{RELEASE_DIR}/manifest.json", f"{RELEASE_DIR}/README.md"]
    if DEDUP_INDEX["write"]:
        targets.append(f"{INDEX_DIR}/index.json")
    return targets


# The release's dedup index, and the earlier releases' (rules/dedup_index.smk).
DEDUP_INDEX = config["release"]["dedup_index"]
INDEX_DIR = "results/release/dedup_index"
INDEX_ASSIGN = "results/dedup/release_index/assign/{batch}/{shard}.npz"
EARLIER_INDEXES = [ReleaseIndex.open(folder) for folder in DEDUP_INDEX["against"]]


def index_assignments(wildcards):
    return [INDEX_ASSIGN.format(batch=b, shard=s) for b, s in all_shards()]


def earlier_index(wildcards):
    return EARLIER_INDEXES[int(wildcards.earlier)]


def earlier_index_folder(wildcards):
    return str(earlier_index(wildcards).folder)


def earlier_index_files(wildcards):
    return earlier_index(wildcards).files()


def released_assignments(wildcards):
    return [
        f"results/dedup/released/{wildcards.earlier}/assign/{b}/{s}.npz"
        for b, s in all_shards()
    ]


def released_search_files(ext):
    """An input function: every search job's released duplicates (ext "parquet") or measured
    recall ("json"), of every earlier index."""

    def files(wildcards):
        return [
            f"results/dedup/released/{k}/pairs/{group}.{ext}"
            for k, index in enumerate(EARLIER_INDEXES)
            for group in range(index.groups)
        ]

    return files


released_pair_files = released_search_files("parquet")
released_recall_files = released_search_files("json")


FIG_DIR = "results/figures"
FIGURES = config["figures"]
# Steps after which results/embeddings/{batch}/{shard}.npz exist (the embedding rule's output).
EMBEDDING_STEPS = pipeline_steps.embedding_steps()
HAVE_EMBEDDINGS = any(step in STEPS for step in EMBEDDING_STEPS)
STOP_LISTS = config["filters"]["stop_words"]["lists"]


EMBEDDINGS = "results/embeddings/{batch}/{shard}.npz"


def wildcard_shards(wildcards):
    """The shards of the job's batch when it has a batch wildcard, else every shard."""
    batch = getattr(wildcards, "batch", None)
    if batch is None:
        return all_shards()
    return [(batch, s) for s in partition_manifest()[batch]]


# Partitioned semantic dedup (filters.semantic_dedup.partitions; rules/visual_diversification.smk).
DEDUP_PARTITIONS = config["filters"]["semantic_dedup"]["partitions"]
DEDUP_JOBS = config["filters"]["semantic_dedup"]["partition_jobs"]


def dedup_assignments(wildcards):
    return [
        f"results/dedup/semantic/{b}/assign/{s}.npz"
        for b, s in wildcard_shards(wildcards)
    ]


# The same across batches (filters.cross_batch_dedup.partitions; rules/cross_modal.smk).
CROSS_PARTITIONS = config["filters"]["cross_batch_dedup"]["partitions"]
CROSS_JOBS = config["filters"]["cross_batch_dedup"]["partition_jobs"]


def cross_batch_assignments(wildcards):
    return [f"results/dedup/cross_batch/assign/{b}/{s}.npz" for b, s in all_shards()]


def embedding_files(wildcards):
    return [EMBEDDINGS.format(batch=b, shard=s) for b, s in wildcard_shards(wildcards)]


def figure_report(path, figure, kind, caption, category):
    return report(
        path,
        caption=f"../report/{caption}.rst",
        category=category,
        subcategory=figure,
        labels={"figure": figure, "file": kind},
    )


def dedup_runs():
    """(scope, batch, stats JSON) of every dedup decision job of this run."""
    batches = sorted({b for b, _ in all_shards()})
    runs = []
    if "exact_dedup" in STEPS:
        runs += [("exact", b, f"results/dedup/exact/{b}.json") for b in batches]
    if "semantic_dedup" in STEPS:
        runs += [("batch", b, f"results/dedup/semantic/{b}.json") for b in batches]
    if "cross_batch_dedup" in STEPS:
        runs.append(("cross_batch", "", "results/dedup/cross_batch/stats.json"))
    return runs


def figure_targets():
    """The figures and tables this run's data allows: the default target adds these."""
    targets = [
        "results/report/filtration_table.html",
        f"{FIG_DIR}/fig2_data_characteristics.png",
        f"{FIG_DIR}/fig4a_semantic_density.png",
        f"{FIG_DIR}/fig11_wordcloud.png",
        f"{FIG_DIR}/table7_top_domains.html",
    ]
    if FIGURES["perplexity"]["model"]:
        targets.append(f"{FIG_DIR}/fig4b_perplexity.png")
    if any(s in STEPS for s in ("exact_dedup", "semantic_dedup", "cross_batch_dedup")):
        targets.append("results/report/dedup_runs.html")
    if HAVE_EMBEDDINGS:
        targets += [
            f"{FIG_DIR}/fig6_cluster_sizes.png",
            f"{FIG_DIR}/fig7_similarity.png",
        ]
    return targets


# ---- Image stages (rules/download.smk, rules/visual_diversification.smk, rules/cross_modal.smk).

IMAGE_STEPS = pipeline_steps.image_steps()
# The steps that decide on the per-image metrics of rule image_metrics.
METRIC_STEPS = pipeline_steps.steps_reading("image_metrics")

if any(s in STEPS for s in IMAGE_STEPS) and "download_images" not in STEPS:
    raise ValueError(
        "config steps: the image steps "
        f"{[s for s in IMAGE_STEPS if s in STEPS]} need the images of download_images; "
        "add download_images to steps or remove the image steps"
    )


def first_step_input(steps):
    """The rows entering the first enabled step of `steps`: a shard job measures them once for
    all of these steps (each later step sees a subset of them)."""
    enabled = [s for s in steps if s in STEPS] or list(steps)
    return step_input(enabled[0])


def step_input_files(step):
    """An input function: every shard entering `step`, of the job's batch when it has one."""

    def inputs(wildcards):
        pattern = step_input(step)
        return [pattern.format(batch=b, shard=s) for b, s in wildcard_shards(wildcards)]

    return inputs
