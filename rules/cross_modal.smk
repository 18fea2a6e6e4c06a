# Cross-modal cross-batch filtering (paper Sec. 3.2): the image-text alignment window (its filter
# rule is generated in rules/filters.smk), then near-duplicate removal across all batches.


# Near-duplicate sets across every batch's surviving images, found through a FAISS index (IVF
# above exact_max vectors), never all pairs; the images an earlier release holds (the searches of
# rules/dedup_index.smk) are decided first.
rule cross_batch_dedup_clusters:
    input:
        shards=step_input_files("cross_batch_dedup"),
        embeddings=embedding_files,
        released=released_pair_files,
    output:
        clusters="results/dedup/cross_batch/clusters.parquet",
        stats="results/dedup/cross_batch/stats.json",
    log:
        "results/logs/cross_batch_dedup_clusters.log",
    benchmark:
        "results/benchmarks/cross_batch_dedup_clusters/all.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: 8
    resources:
        mem_mb=64000,
    params:
        cfg=config["filters"]["cross_batch_dedup"],
        scope="cross_batch",
        against=DEDUP_INDEX["against"],
    script:
        "../scripts/dedup_clusters.py"
