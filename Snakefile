# DanQing curation workflow: raw Common Crawl image-URL/alt-text pairs -> curated Chinese
# image-text pairs, with the paper's filtration table built from the workflow's own counts.


from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/ingest.smk"
include: "rules/ingest_warc.smk"
include: "rules/download.smk"
include: "rules/visual_diversification.smk"
include: "rules/cross_modal.smk"
include: "rules/filters.smk"
include: "rules/report.smk"
include: "rules/release.smk"
include: "rules/dedup_index.smk"
include: "rules/figures.smk"


# Workflow description of the Snakemake report (snakemake --report results/report.html).
report: "report/workflow.rst"


# The default target (Snakemake takes it from the main Snakefile only).
rule all:
    input:
        final_shards,
        "results/report/filtration_table.csv",
        "results/report/drop_reasons.parquet",
        "results/report/threshold_sweep.csv",
        release_targets(),
        figure_targets(),
        INGESTION_TARGETS,
