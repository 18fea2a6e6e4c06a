# Cross-modal cross-batch filtering (paper Sec. 3.2): the image-text alignment window (its filter
# rule is generated in rules/filters.smk), then near-duplicate removal across all batches.


if CROSS_PARTITIONS:

    # The partitioned search of rules/visual_diversification.smk over every batch's surviving
    # images (danqing/dedup_jobs.py): the uids that several batches hold are found first, so that
    # only their owner batch's row is searched; images an earlier release holds (the searches of
    # rules/dedup_index.smk) leave the search and are decided first. Same sets as one job.
    rule cross_batch_repeats:
        input:
            shards=step_input_files("cross_batch_dedup"),
        output:
            repeats="results/dedup/cross_batch/repeats.parquet",
        log:
            "results/logs/cross_batch_repeats.log",
        conda:
            "../envs/gpu.yaml"
        params:
            cfg=config["filters"]["cross_batch_dedup"],
            stage="repeats",
            scope="cross_batch",
        script:
            "../scripts/dedup_partitioned.py"

    rule cross_batch_centroids:
        input:
            shards=step_input_files("cross_batch_dedup"),
            embeddings=embedding_files,
        output:
            centroids="results/dedup/cross_batch/centroids.npy",
        log:
            "results/logs/cross_batch_centroids.log",
        benchmark:
            "results/benchmarks/cross_batch_centroids/all.tsv"
        conda:
            "../envs/gpu.yaml"
        params:
            cfg=config["filters"]["cross_batch_dedup"],
            stage="centroids",
            scope="cross_batch",
        script:
            "../scripts/dedup_partitioned.py"

    rule cross_batch_assign:
        input:
            shard=step_input("cross_batch_dedup"),
            embeddings=EMBEDDINGS,
            centroids=rules.cross_batch_centroids.output.centroids,
            repeats=rules.cross_batch_repeats.output.repeats,
            released=released_pair_files,
        output:
            assignment="results/dedup/cross_batch/assign/{batch}/{shard}.npz",
        log:
            "results/logs/cross_batch_assign/{batch}/{shard}.log",
        benchmark:
            "results/benchmarks/cross_batch_assign/{batch}/{shard}.tsv"
        conda:
            "../envs/gpu.yaml"
        params:
            cfg=config["filters"]["cross_batch_dedup"],
            stage="assign",
            scope="cross_batch",
        script:
            "../scripts/dedup_partitioned.py"

    rule cross_batch_partition_pairs:
        input:
            assignments=cross_batch_assignments,
            embeddings=embedding_files,
        output:
            pairs="results/dedup/cross_batch/pairs/{group}.parquet",
        log:
            "results/logs/cross_batch_partition_pairs/{group}.log",
        benchmark:
            "results/benchmarks/cross_batch_partition_pairs/{group}.tsv"
        wildcard_constraints:
            group=r"\d+",
        conda:
            "../envs/gpu.yaml"
        params:
            cfg=config["filters"]["cross_batch_dedup"],
            stage="pairs",
            scope="cross_batch",
        script:
            "../scripts/dedup_partitioned.py"

    rule cross_batch_dedup_clusters:
        input:
            assignments=cross_batch_assignments,
            pairs=expand(
                "results/dedup/cross_batch/pairs/{group}.parquet",
                group=range(CROSS_JOBS),
            ),
            embeddings=embedding_files,
            shards=step_input_files("cross_batch_dedup"),
            released=released_pair_files,
            released_recall=released_recall_files,
        output:
            clusters="results/dedup/cross_batch/clusters.parquet",
            stats="results/dedup/cross_batch/stats.json",
        log:
            "results/logs/cross_batch_dedup_clusters.log",
        benchmark:
            "results/benchmarks/cross_batch_dedup_clusters/all.tsv"
        conda:
            "../envs/gpu.yaml"
        params:
            cfg=config["filters"]["cross_batch_dedup"],
            stage="merge",
            scope="cross_batch",
            against=DEDUP_INDEX["against"],
        script:
            "../scripts/dedup_partitioned.py"

else:

    # Near-duplicate sets across every batch's surviving images in one job, found through a
    # FAISS index (IVF above exact_max vectors), never all pairs; the images an earlier release
    # holds (the searches of rules/dedup_index.smk) are decided first.
    rule cross_batch_dedup_clusters:
        input:
            shards=step_input_files("cross_batch_dedup"),
            embeddings=embedding_files,
            released=released_pair_files,
            released_recall=released_recall_files,
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
