rule filtration_table:
    input:
        partition="results/steps/partition/counts.json",
        counts=all_counts,
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
