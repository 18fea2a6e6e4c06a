# Common Crawl ingestion: image-URL/alt-text pairs with language tags from the WARC files of
# config `warc` (danqing/ingest/). Used as the partition input when WARC files are configured.
from danqing.ingest.cc_index import index_sources
from danqing.ingest.sources import batch_of_crawl, local_warc_input, warc_sources

WARC_SOURCES = warc_sources(config["warc"])
INDEX_SOURCES = index_sources(config["warc"], config["network"]["allowed_networks"])
WARC_CRAWL_BATCHES = batch_of_crawl(config["warc"]["batches"])


# One job per WARC file: stream it, extract every <img> with alt text, count what was skipped.
rule extract_warc_pairs:
    input:
        local_warc_input(WARC_SOURCES),
    output:
        pairs="results/ingest/warc/{warc}.parquet",
        counts="results/ingest/warc/{warc}.counts.json",
    log:
        "results/logs/extract_warc_pairs/{warc}.log",
    wildcard_constraints:
        warc=r"[A-Za-z0-9._-]+",
    conda:
        "../envs/text.yaml"
    params:
        location=lambda wildcards: WARC_SOURCES[wildcards.warc],
        crawl=config["warc"]["crawl"],
        batches=config["warc"]["batches"],
        prefilter_languages=config["warc"]["prefilter_languages"],
        allowed_networks=config["network"]["allowed_networks"],
    script:
        "../scripts/extract_warc_pairs.py"


# Index mode, one job per cc-index-table file: the captures it selects (zho HTML, status 200),
# fetched by byte range; resumable chunk by chunk from results/ingest/index/.{index}.partial.
rule extract_index_pairs:
    output:
        pairs="results/ingest/index/{index}.parquet",
        counts="results/ingest/index/{index}.counts.json",
    log:
        "results/logs/extract_index_pairs/{index}.log",
    wildcard_constraints:
        index=r"[A-Za-z0-9._-]+",
    conda:
        "../envs/text.yaml"
    params:
        location=lambda wildcards: INDEX_SOURCES[wildcards.index],
        partial=lambda wildcards: f"results/ingest/index/.{wildcards.index}.partial",
        index=config["warc"]["index"],
        base_url=config["warc"]["base_url"],
        crawl=config["warc"]["crawl"],
        batches=config["warc"]["batches"],
        allowed_networks=config["network"]["allowed_networks"],
    script:
        "../scripts/extract_index_pairs.py"


# All WARC files' and index files' pairs in list order (the partition input), counts summed.
rule collect_warc_pairs:
    input:
        pairs=expand("results/ingest/warc/{warc}.parquet", warc=WARC_SOURCES)
        + expand("results/ingest/index/{index}.parquet", index=INDEX_SOURCES),
        counts=expand("results/ingest/warc/{warc}.counts.json", warc=WARC_SOURCES)
        + expand("results/ingest/index/{index}.counts.json", index=INDEX_SOURCES),
    output:
        pairs="results/ingest/raw_pairs.parquet",
        counts="results/ingest/counts.json",
    log:
        "results/logs/collect_warc_pairs.log",
    conda:
        "../envs/text.yaml"
    script:
        "../scripts/collect_warc_pairs.py"


# The report's ingestion table: per WARC or index file, records read, bytes, pairs and losses.
rule ingestion_summary:
    input:
        counts=expand("results/ingest/warc/{warc}.counts.json", warc=WARC_SOURCES)
        + expand("results/ingest/index/{index}.counts.json", index=INDEX_SOURCES),
    output:
        csv="results/report/ingestion.csv",
        html=report(
            "results/report/ingestion.html",
            caption="../report/ingestion.rst",
            category="1. Filtration (Sec. 3.2)",
            labels={"table": "Ingestion"},
        ),
    log:
        "results/logs/ingestion_summary.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/ingestion_summary.py"


INGESTION_TARGETS = (
    ["results/report/ingestion.html"] if WARC_SOURCES or INDEX_SOURCES else []
)
# The ingestion table, when the input is a crawl: the filtration table's footnote reads it.
INGESTION_TABLE = (
    ["results/report/ingestion.csv"] if WARC_SOURCES or INDEX_SOURCES else []
)
