# Cross-modal cross-batch filtering (paper Sec. 3.2): the image-text alignment window, then
# near-duplicate removal across all batches.


# Keep pairs whose image-text L2 distance lies in [1.06, 1.24]; with an image-only embedder the
# step keeps every row and its table row says it was not run, and why.
rule cross_modal_alignment:
    input:
        shard=step_input("cross_modal_alignment"),
        distances=rules.image_embeddings.output.distances,
    output:
        **step_outputs("cross_modal_alignment"),
    log:
        step_log("cross_modal_alignment"),
    conda:
        "../envs/image.yaml"
    params:
        step="cross_modal_alignment",
        cfg=config["filters"]["cross_modal_alignment"],
    script:
        "../scripts/filter_shard.py"


# Near-duplicate sets across every batch's surviving images, found through a FAISS index (IVF
# above exact_max vectors), never all pairs.
rule cross_batch_dedup_clusters:
    input:
        shards=step_input_files("cross_batch_dedup"),
        embeddings=embedding_files,
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
    script:
        "../scripts/dedup_clusters.py"


# Drop all but the kept representative of each cross-batch near-duplicate set.
rule cross_batch_dedup:
    input:
        shard=step_input("cross_batch_dedup"),
        clusters=rules.cross_batch_dedup_clusters.output.clusters,
    output:
        **step_outputs("cross_batch_dedup"),
    log:
        step_log("cross_batch_dedup"),
    conda:
        "../envs/image.yaml"
    params:
        step="cross_batch_dedup",
        cfg=config["filters"]["cross_batch_dedup"],
    script:
        "../scripts/filter_shard.py"
