# Common Crawl ingestion: image-URL/alt-text pairs with language tags from the WARC files of
# config `warc` (danqing/warc.py). Used as the partition input when WARC files are configured.
from danqing.warc import batch_of_crawl, local_warc_input, warc_sources

WARC_SOURCES = warc_sources(config.get("warc"))
WARC_CRAWL_BATCHES = batch_of_crawl(config.get("warc", {}).get("batches"))


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
        crawl=config.get("warc", {}).get("crawl"),
        batches=config.get("warc", {}).get("batches") or {},
        prefilter_languages=config.get("warc", {}).get("prefilter_languages"),
        allowed_networks=config["network"]["allowed_networks"],
    script:
        "../scripts/extract_warc_pairs.py"


# All WARC files' pairs in list order (the partition input) and their summed counts.
rule collect_warc_pairs:
    input:
        pairs=expand("results/ingest/warc/{warc}.parquet", warc=WARC_SOURCES),
        counts=expand("results/ingest/warc/{warc}.counts.json", warc=WARC_SOURCES),
    output:
        pairs="results/ingest/raw_pairs.parquet",
        counts="results/ingest/counts.json",
    log:
        "results/logs/collect_warc_pairs.log",
    conda:
        "../envs/text.yaml"
    script:
        "../scripts/collect_warc_pairs.py"
