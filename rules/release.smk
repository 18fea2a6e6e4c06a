# Release: the final pairs as a Hugging Face dataset folder (danqing/release.py), with a
# WebDataset copy of the images when the download step ran.


# One final shard's release rows and tars (image bytes are read and written once, here).
rule release_shard:
    input:
        shard=f"results/steps/{STEPS[-1]}/{{batch}}/{{shard}}.parquet",
    output:
        **release_part_outputs(),
    log:
        "results/logs/release_shard/{batch}/{shard}.log",
    benchmark:
        "results/benchmarks/release_shard/{batch}/{shard}.tsv"
    conda:
        "../envs/report.yaml"
    params:
        cfg=config["release"],
    script:
        "../scripts/release_shard.py"


# data/train-*.parquet, webdataset/train-*.tar (hard links to the parts) and manifest.json.
rule release_dataset:
    input:
        records=release_records,
    output:
        **release_dataset_outputs(),
    log:
        "results/logs/release_dataset.log",
    conda:
        "../envs/report.yaml"
    params:
        cfg=config["release"],
        images=RELEASE_IMAGES,
    script:
        "../scripts/release_dataset.py"


# The dataset card: Hugging Face YAML header, counts, Table 6, how to load.
rule dataset_card:
    input:
        manifest=f"{RELEASE_DIR}/manifest.json",
        table_md="results/report/filtration_table.md",
        table_csv="results/report/filtration_table.csv",
    output:
        card=f"{RELEASE_DIR}/README.md",
        files_html=report(
            "results/report/release_files.html",
            caption="../report/release_files.rst",
            category="7. Release",
            labels={"table": "Release files"},
        ),
    log:
        "results/logs/dataset_card.log",
    conda:
        "../envs/report.yaml"
    params:
        cfg=config["release"],
    script:
        "../scripts/release_card.py"
