from danqing.ingest.sources import partition_input_format, partition_input_path


rule demo_corpus:
    output:
        pairs="results/demo/raw_pairs.jsonl.gz",
        labels="results/demo/labels.parquet",
    log:
        "results/logs/demo_corpus.log",
    conda:
        "../envs/text.yaml"
    params:
        rows=config["demo"]["rows"],
        seed=config["demo"]["seed"],
        port=config["demo"]["port"],
    script:
        "../scripts/demo_corpus.py"


checkpoint partition_input:
    input:
        # input.path, or the pairs of the configured WARC files (rules/ingest_warc.smk)
        partition_input_path(config["warc"], config["input"]),
    output:
        shards=directory(PARTITION_DIR),
        drops="results/steps/partition/drops.parquet",
        counts="results/steps/partition/counts.json",
    log:
        "results/logs/partition_input.log",
    conda:
        "../envs/text.yaml"
    params:
        fmt=partition_input_format(config["warc"], config["input"]),
        num_batches=config["partition"]["num_batches"],
        shard_size=config["partition"]["shard_size"],
    script:
        "../scripts/partition_input.py"
