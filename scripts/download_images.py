"""Snakemake entry point of rule download_images: download one shard's images with img2dataset."""

import polars as pl

from danqing.download import STEP, download_shard
from danqing.runner import setup_logging, write_step_outputs


def main(smk) -> None:
    setup_logging(smk.log[0])
    frame = pl.read_parquet(smk.input.shard)
    result = download_shard(
        frame,
        smk.params.cfg,
        smk.output.images,
        processes=smk.threads,
        console_log=smk.log.img2dataset,
        network=smk.params.network,
    )
    write_step_outputs(
        result,
        STEP,
        smk.wildcards.batch,
        smk.wildcards.shard,
        frame.height,
        smk.output.kept,
        smk.output.dropped,
        smk.output.counts,
    )


# img2dataset starts its workers with multiprocessing's "spawn", which runs this file again (as
# __mp_main__) in every worker: only the parent process may run the job.
if __name__ == "__main__":
    main(snakemake)
