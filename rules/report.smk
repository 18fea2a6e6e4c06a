rule filtration_table:
    input:
        partition="results/steps/partition/counts.json",
        counts=all_counts,
        ingestion=INGESTION_TABLE,
    output:
        csv="results/report/filtration_table.csv",
        md="results/report/filtration_table.md",
        tex="results/report/filtration_table.tex",
        calibration="results/report/calibration.csv",
    log:
        "results/logs/filtration_table.log",
    conda:
        "../envs/report.yaml"
    params:
        steps=STEPS,
    script:
        "../scripts/filtration_table.py"


rule drop_reasons:
    input:
        partition="results/steps/partition/drops.parquet",
        drops=all_drops,
    output:
        table="results/report/drop_reasons.parquet",
        summary="results/report/drop_reason_summary.csv",
    log:
        "results/logs/drop_reasons.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/drop_reasons.py"


# The share of each filter's input kept at a grid of thresholds, from the stored scores.
rule threshold_sweep:
    input:
        steps=swept_step_files,
    output:
        csv="results/report/threshold_sweep.csv",
        png=report(
            "results/report/threshold_sweep.png",
            caption="../report/threshold_sweep.rst",
            category="1. Filtration (Sec. 3.2)",
            labels={"table": "Threshold sweep"},
        ),
    log:
        "results/logs/threshold_sweep.log",
    conda:
        "../envs/report.yaml"
    params:
        filters=config["filters"],
    script:
        "../scripts/threshold_sweep.py"


# Every dedup decision job in one table: index searched, sets, removals, measured pair recall.
rule dedup_summary:
    input:
        stats=lambda wildcards: [path for _, _, path in dedup_runs()],
    output:
        csv="results/report/dedup_runs.csv",
        html=report(
            "results/report/dedup_runs.html",
            caption="../report/dedup_runs.rst",
            category="1. Filtration (Sec. 3.2)",
            labels={"table": "Dedup runs"},
        ),
    log:
        "results/logs/dedup_summary.log",
    conda:
        "../envs/report.yaml"
    params:
        scopes=lambda wildcards: [scope for scope, _, _ in dedup_runs()],
        batches=lambda wildcards: [batch for _, batch, _ in dedup_runs()],
    script:
        "../scripts/dedup_summary.py"
