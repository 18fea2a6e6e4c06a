# Fetch each shard's images with img2dataset over HTTP; keep the pairs whose image was stored.
# The image folder appears only when the whole shard is done; a killed job resumes tar by tar
# from results/images/{batch}/.{shard}.partial (see danqing/download.py).
rule download_images:
    input:
        shard=step_input("download_images"),
    output:
        **step_outputs("download_images"),
        images=directory("results/images/{batch}/{shard}"),
    log:
        step_log("download_images"),
        img2dataset="results/logs/download_images/{batch}/{shard}.img2dataset.log",
    benchmark:
        "results/benchmarks/download_images/{batch}/{shard}.tsv"
    conda:
        "../envs/image.yaml"
    threads: config["filters"]["download_images"]["processes"]
    resources:
        # Each img2dataset worker process holds its libraries (~0.5 GB) and 2 x thread_count
        # images in flight.
        mem_mb=lambda wildcards, threads: 1500 + 1000 * threads,
    params:
        cfg=config["filters"]["download_images"],
        network=config["network"],
    script:
        "../scripts/download_images.py"
