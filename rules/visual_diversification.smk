# Visual diversification (paper Sec. 3.2): visual fidelity, image information density, perceptual
# and semantic redundancy, image content safety. The expensive work (decoding, embedding, FAISS,
# the NSFW network) runs once per shard or batch in its own job; each filter rule then joins its
# result by uid and applies the configured threshold (danqing/filters/image.py).


# Decode each downloaded image once and measure size, std, Laplacian variance and entropy for
# all four fidelity/density steps (metric values stay on the kept rows for the report).
rule image_metrics:
    input:
        shard=first_step_input(METRIC_STEPS),
    output:
        metrics="results/image_metrics/{batch}/{shard}.parquet",
    log:
        "results/logs/image_metrics/{batch}/{shard}.log",
    benchmark:
        "results/benchmarks/image_metrics/{batch}/{shard}.tsv"
    conda:
        "../envs/image.yaml"
    threads: 8
    resources:
        mem_mb=lambda wildcards, threads: 1000 + 300 * threads,
    params:
        cfg=config["filters"]["image_geometry"]["metrics"],
    script:
        "../scripts/image_metrics.py"


# Rows whose stored images are byte-identical within one batch (image_sha256): one is kept.
rule exact_dedup_clusters:
    input:
        shards=step_input_files("exact_dedup"),
    output:
        clusters="results/dedup/exact/{batch}.parquet",
        stats="results/dedup/exact/{batch}.json",
    log:
        "results/logs/exact_dedup_clusters/{batch}.log",
    conda:
        "../envs/image.yaml"
    script:
        "../scripts/exact_dedup_clusters.py"


# Image (and caption) embeddings of the rows entering the first embedding step, stored float16
# per shard, with image-text distances. The only rule that uses a GPU.
rule image_embeddings:
    input:
        shard=first_step_input(EMBEDDING_STEPS),
    output:
        embeddings=EMBEDDINGS,
        distances="results/embeddings/{batch}/{shard}.distances.parquet",
    log:
        "results/logs/image_embeddings/{batch}/{shard}.log",
    benchmark:
        "results/benchmarks/image_embeddings/{batch}/{shard}.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: 4
    resources:
        gpu=1,
        mem_mb=8000,
    params:
        cfg=config["embedding"],
    script:
        "../scripts/image_embeddings.py"


if DEDUP_PARTITIONS:

    # Partitioned near-duplicate search (danqing/dedup_partitioned.py): k-means centroids of a
    # sample, each shard's vectors assigned to partitions (boundary copies included), the
    # partitions searched by DEDUP_JOBS jobs, one union-find merge. Same sets as one job.
    rule dedup_centroids:
        input:
            shards=step_input_files("semantic_dedup"),
            embeddings=embedding_files,
        output:
            centroids="results/dedup/semantic/{batch}/centroids.npy",
        log:
            "results/logs/dedup_centroids/{batch}.log",
        benchmark:
            "results/benchmarks/dedup_centroids/{batch}.tsv"
        conda:
            "../envs/gpu.yaml"
        params:
            cfg=config["filters"]["semantic_dedup"],
            stage="centroids",
            scope="batch",
        script:
            "../scripts/dedup_partitioned.py"

    rule dedup_assign:
        input:
            shard=step_input("semantic_dedup"),
            embeddings=EMBEDDINGS,
            centroids=rules.dedup_centroids.output.centroids,
        output:
            assignment="results/dedup/semantic/{batch}/assign/{shard}.npz",
        log:
            "results/logs/dedup_assign/{batch}/{shard}.log",
        benchmark:
            "results/benchmarks/dedup_assign/{batch}/{shard}.tsv"
        conda:
            "../envs/gpu.yaml"
        params:
            cfg=config["filters"]["semantic_dedup"],
            stage="assign",
            scope="batch",
        script:
            "../scripts/dedup_partitioned.py"

    rule dedup_partition_pairs:
        input:
            assignments=dedup_assignments,
            embeddings=embedding_files,
        output:
            pairs="results/dedup/semantic/{batch}/pairs/{group}.parquet",
        log:
            "results/logs/dedup_partition_pairs/{batch}/{group}.log",
        benchmark:
            "results/benchmarks/dedup_partition_pairs/{batch}/{group}.tsv"
        wildcard_constraints:
            group=r"\d+",
        conda:
            "../envs/gpu.yaml"
        params:
            cfg=config["filters"]["semantic_dedup"],
            stage="pairs",
            scope="batch",
        script:
            "../scripts/dedup_partitioned.py"

    rule semantic_dedup_clusters:
        input:
            assignments=dedup_assignments,
            pairs=expand(
                "results/dedup/semantic/{{batch}}/pairs/{group}.parquet",
                group=range(DEDUP_JOBS),
            ),
            embeddings=embedding_files,
        output:
            clusters="results/dedup/semantic/{batch}.parquet",
            stats="results/dedup/semantic/{batch}.json",
        log:
            "results/logs/semantic_dedup_clusters/{batch}.log",
        benchmark:
            "results/benchmarks/semantic_dedup_clusters/{batch}.tsv"
        conda:
            "../envs/gpu.yaml"
        params:
            cfg=config["filters"]["semantic_dedup"],
            stage="merge",
            scope="batch",
        script:
            "../scripts/dedup_partitioned.py"

else:

    # Near-duplicate sets within one batch (FAISS, cosine distance < beta, union-find); the image
    # nearest each set's centroid is kept.
    rule semantic_dedup_clusters:
        input:
            shards=step_input_files("semantic_dedup"),
            embeddings=embedding_files,
        output:
            clusters="results/dedup/semantic/{batch}.parquet",
            stats="results/dedup/semantic/{batch}.json",
        log:
            "results/logs/semantic_dedup_clusters/{batch}.log",
        benchmark:
            "results/benchmarks/semantic_dedup_clusters/{batch}.tsv"
        conda:
            "../envs/gpu.yaml"
        threads: 8
        resources:
            mem_mb=16000,
        params:
            cfg=config["filters"]["semantic_dedup"],
            scope="batch",
        script:
            "../scripts/dedup_clusters.py"


# P(nsfw) of each image under the ONNX classifier (open_nsfw by default).
rule nsfw_scores:
    input:
        shard=step_input("image_safety"),
    output:
        scores="results/nsfw_scores/{batch}/{shard}.parquet",
    log:
        "results/logs/nsfw_scores/{batch}/{shard}.log",
    benchmark:
        "results/benchmarks/nsfw_scores/{batch}/{shard}.tsv"
    conda:
        "../envs/image.yaml"
    threads: 4
    resources:
        mem_mb=4000,
    params:
        cfg=config["filters"]["image_safety"],
    script:
        "../scripts/nsfw_scores.py"
