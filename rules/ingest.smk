rule demo_corpus:
    output:
        pairs="results/demo/raw_pairs.jsonl.gz",
        labels="results/demo/labels.parquet",
    params:
        rows=config.get("demo", {}).get("rows", 5600),
        seed=config.get("demo", {}).get("seed", 20260115),
        port=config.get("demo", {}).get("port", 8765),
    log:
        "results/logs/demo_corpus.log",
    conda:
        "../envs/text.yaml"
    script:
        "../scripts/demo_corpus.py"


checkpoint partition_input:
    input:
        config["input"]["path"],
    output:
        shards=directory(PARTITION_DIR),
        drops="results/steps/partition/drops.parquet",
        counts="results/steps/partition/counts.json",
    params:
        fmt=config["input"].get("format", "auto"),
        num_batches=config["partition"]["num_batches"],
        shard_size=config["partition"]["shard_size"],
    log:
        "results/logs/partition_input.log",
    conda:
        "../envs/text.yaml"
    script:
        "../scripts/partition_input.py"
