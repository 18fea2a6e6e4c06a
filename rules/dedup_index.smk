# The release's dedup index (release.dedup_index.write; danqing/dedup_index.py): the released
# images' embeddings partitioned by k-means centroids, for a later run to deduplicate against;
# and the search of this run's images in earlier releases' indexes (release.dedup_index.against),
# whose results the cross-batch dedup decides first (rules/cross_modal.smk).


rule dedup_index_centroids:
    input:
        shards=final_shards,
        embeddings=embedding_files,
    output:
        centroids=f"{INDEX_DIR}/centroids.npy",
    log:
        "results/logs/dedup_index_centroids.log",
    conda:
        "../envs/gpu.yaml"
    params:
        cfg=DEDUP_INDEX,
        stage="centroids",
    script:
        "../scripts/dedup_index.py"


# Each released vector's partition (its nearest centroid), one job per final shard.
rule dedup_index_assign:
    input:
        shard=f"results/steps/{STEPS[-1]}/{{batch}}/{{shard}}.parquet",
        embeddings=EMBEDDINGS,
        centroids=rules.dedup_index_centroids.output.centroids,
    output:
        assignment=INDEX_ASSIGN,
    log:
        "results/logs/dedup_index_assign/{batch}/{shard}.log",
    conda:
        "../envs/gpu.yaml"
    params:
        cfg=DEDUP_INDEX,
        stage="assign",
    script:
        "../scripts/dedup_index.py"


# The released vectors of the partitions p with p mod groups == group, one file per group.
rule dedup_index_group:
    input:
        assignments=index_assignments,
    output:
        group=f"{INDEX_DIR}/group-{{group}}.npz",
    log:
        "results/logs/dedup_index_group/{group}.log",
    wildcard_constraints:
        group=r"\d+",
    conda:
        "../envs/gpu.yaml"
    params:
        cfg=DEDUP_INDEX,
        stage="group",
    script:
        "../scripts/dedup_index.py"


rule dedup_index:
    input:
        centroids=rules.dedup_index_centroids.output.centroids,
        groups=expand(
            f"{INDEX_DIR}/group-{{group}}.npz", group=range(DEDUP_INDEX["groups"])
        ),
        embeddings=embedding_files,
    output:
        manifest=f"{INDEX_DIR}/index.json",
    log:
        "results/logs/dedup_index.log",
    conda:
        "../envs/gpu.yaml"
    params:
        cfg=DEDUP_INDEX,
        stage="manifest",
    script:
        "../scripts/dedup_index.py"


# This run's images entering the cross-batch dedup, assigned to an earlier index's partitions
# (with the boundary copies that make the search exact), one job per shard and index.
rule released_assign:
    input:
        shard=step_input("cross_batch_dedup"),
        embeddings=EMBEDDINGS,
        index=earlier_index_files,
    output:
        assignment="results/dedup/released/{earlier}/assign/{batch}/{shard}.npz",
    log:
        "results/logs/released_assign/{earlier}/{batch}/{shard}.log",
    wildcard_constraints:
        earlier=r"\d+",
    conda:
        "../envs/gpu.yaml"
    params:
        cfg=config["filters"]["cross_batch_dedup"],
        index=earlier_index_folder,
        stage="search_assign",
    script:
        "../scripts/dedup_index.py"


# The released duplicates among this run's images, in one group of an earlier index.
rule released_pairs:
    input:
        assignments=released_assignments,
        embeddings=embedding_files,
        index=earlier_index_files,
    output:
        pairs="results/dedup/released/{earlier}/pairs/{group}.parquet",
        stats="results/dedup/released/{earlier}/pairs/{group}.json",
    log:
        "results/logs/released_pairs/{earlier}/{group}.log",
    benchmark:
        "results/benchmarks/released_pairs/{earlier}/{group}.tsv"
    wildcard_constraints:
        earlier=r"\d+",
        group=r"\d+",
    conda:
        "../envs/gpu.yaml"
    params:
        cfg=config["filters"]["cross_batch_dedup"],
        index=earlier_index_folder,
        stage="search",
    script:
        "../scripts/dedup_index.py"
