"""Scaling with cores: each CPU stage's steady-state rate on all cores against its rate on one.

A per-shard stage (the text steps, NSFW scores, embeddings, WARC extraction, image metrics in one
process) scales the way Snakemake runs it: one single-threaded job per core. Each worker process
prepares its inputs and warms up (imports, models, compiled kernels), waits at a barrier until
every worker is ready, then does the same timed work, so that start-up is measured apart and the
rate is the steady state. The rate alone (1 worker) and the combined rate of `cores` workers side
by side give the scaling; 1.7x on 2 cores is the target (issue 19).

Two stages scale inside one job and are measured there: the dedup pair search (`threads` 1 vs
all: FAISS's probe and one list per thread, same index and queries, alternated) and the
image-metric pool (benchmarks/image_metrics.py); and the download (img2dataset processes 1 vs
all, steady rate from the tars' times, from the demo server on the same cores).

    python -m benchmarks.scaling [--quick] [--stages text nsfw ...]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time

SECONDS = 6.0  # timed work per worker: long enough to average over the machine's drift


def _text(quick: bool):
    from benchmarks.text_stages import TEXT_STEPS, make_frame
    from danqing import config
    from danqing.filters import registry

    cfg, funcs = config.load(), registry()
    frame = make_frame(2_000 if quick else 12_000)

    def work() -> int:
        kept = frame
        for step in TEXT_STEPS:
            kept = funcs[step](kept, cfg["filters"][step]).kept
        return frame.height

    return work, "rows"


def _images(quick: bool) -> list[tuple[str, bytes]]:
    from benchmarks.image_metrics import benchmark_images

    return [(str(i), d) for i, d in enumerate(benchmark_images(32 if quick else 96))]


def _image_metrics(quick: bool):
    import cv2

    from danqing.images.metrics import image_metrics, warm_up

    cv2.setNumThreads(1)
    warm_up()
    items = _images(quick)
    return lambda: len([image_metrics(data) for _, data in items]), "images"


def _nsfw(quick: bool):
    from danqing.images import nsfw

    items = _images(quick)
    return lambda: nsfw.score_images(items, batch_size=32, threads=1).height, "images"


def _embeddings(quick: bool):
    from danqing import config
    from danqing.embed import load_embedder

    cfg = config.section("embedding", {"model": "efficientnet-lite0", "batch_size": 64})
    embedder = load_embedder(cfg, device="cpu", threads=1)
    images = [data for _, data in _images(quick)]
    return lambda: len(embedder.embed_images(images)), "images"


def _warc(quick: bool):
    import atexit
    import shutil
    import tempfile

    from benchmarks.warc_extraction import make_warc, warm_up
    from danqing.ingest.archive import extract_warc

    directory = tempfile.mkdtemp(prefix="dq-scaling-")
    atexit.register(shutil.rmtree, directory, True)  # the worker's own WARC, gone when it ends
    path = os.path.join(directory, "bench.warc.gz")
    make_warc(path, 1_000_000 if quick else 8_000_000, seed=os.getpid())
    warm_up()
    return lambda: extract_warc(path)[1]["records"], "records"


WORKLOADS = {
    "text": _text,
    "image_metrics": _image_metrics,
    "nsfw": _nsfw,
    "embeddings": _embeddings,
    "warc": _warc,
}


def _worker(stage: str, quick: bool, barrier, results) -> None:
    started = time.perf_counter()
    work, unit = WORKLOADS[stage](quick)
    work()  # warm-up pass: caches, allocator, lazily built tables
    ready_s = time.perf_counter() - started
    barrier.wait()
    units, start = 0, time.perf_counter()
    while time.perf_counter() - start < (1.0 if quick else SECONDS):
        units += work()
    results.put({"unit": unit, "rate": units / (time.perf_counter() - start), "ready_s": ready_s})


def side_by_side(stage: str, workers: int, quick: bool) -> dict:
    """Combined steady-state rate of `workers` processes doing the same work at the same time."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(workers), context.Queue()
    processes = [
        context.Process(target=_worker, args=(stage, quick, barrier, results))
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    out = [results.get(timeout=900) for _ in processes]
    for process in processes:
        process.join()
        if process.exitcode:
            raise RuntimeError(f"{stage} worker exited with {process.exitcode}")
    return {
        "unit": out[0]["unit"],
        "rate": sum(r["rate"] for r in out),
        "ready_s": max(r["ready_s"] for r in out),
    }


def dedup_threads(quick: bool) -> dict:
    """The IVF pair search on one index, on 1 thread and on all cores, alternated twice."""
    from benchmarks.dedup import clustered_embeddings
    from danqing.dedup import DedupSettings, ivf_join, train_lists

    n = 20_000 if quick else 200_000
    x = clustered_embeddings(n, 256)
    cores = os.cpu_count() or 1
    seconds = {1: 0.0, cores: 0.0}
    lists = train_lists(x, DedupSettings(beta=0.1, use_gpu="never", threads=cores))
    for _ in range(2):
        for threads in seconds:
            settings = DedupSettings(beta=0.1, use_gpu="never", threads=threads)
            start = time.perf_counter()
            ivf_join(x, lists, 0.9, settings)
            seconds[threads] += time.perf_counter() - start
    one, alls = 2 * n / seconds[1], 2 * n / seconds[cores]
    return {"unit": "vectors", "one": one, "all": alls, "scaling": alls / one}


def download_processes(quick: bool) -> dict:
    """img2dataset's steady rate (tar start to end) with 1 worker process and with one per core,
    from the demo image server on 127.0.0.1 (which shares the cores)."""
    import resource

    from benchmarks.download import run as download

    count = 200 if quick else 3_000
    cores = os.cpu_count() or 1
    rates, cpu = {}, {}
    for p in (1, cores):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        r = download(count, p, 32, 32, max(25, -(-count // (2 * p))))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        rates[p] = r["stage_steady_per_s"]
        used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        cpu[p] = 1e3 * used / count
    return {
        "unit": "images",
        "one": rates[1],
        "all": rates[cores],
        "scaling": rates[cores] / rates[1],
        "note": f"worker CPU {cpu[1]:.2f} ms/image on 1 process, {cpu[cores]:.2f} on {cores}; "
        "the server in this process takes the rest of the cores",
    }


IN_ONE_JOB = {"dedup": dedup_threads, "download": download_processes}


def run(quick: bool = False, stages: list[str] | None = None) -> dict:
    cores = os.cpu_count() or 1
    out: dict = {"cores": cores}
    # --quick leaves out the download: two img2dataset start-ups that measure nothing at its sizes
    default = [*WORKLOADS, *IN_ONE_JOB] if not quick else [*WORKLOADS, "dedup"]
    for stage in stages or default:
        if stage in IN_ONE_JOB:
            out[stage] = IN_ONE_JOB[stage](quick)
            continue
        one = side_by_side(stage, 1, quick)
        alls = side_by_side(stage, cores, quick)
        out[stage] = {
            "unit": one["unit"],
            "one": one["rate"],
            "all": alls["rate"],
            "scaling": alls["rate"] / one["rate"],
            "startup_s": one["ready_s"],
        }
    return out


def lines(result: dict, target: float) -> list[str]:
    cores = result["cores"]
    out = []
    for stage, r in result.items():
        if not isinstance(r, dict):  # the core count, the child's peak memory
            continue
        how = {
            "dedup": "threads in one job",
            "download": "img2dataset processes in one job",
        }.get(stage, "single-threaded jobs side by side")
        start = f", start-up {r['startup_s']:.1f} s" if "startup_s" in r else ""
        start += f"; {r['note']}" if "note" in r else ""
        verdict = "PASS" if r["scaling"] >= target else "FAIL"
        out.append(
            f"  {stage:14s} 1 core {r['one']:>10,.1f} {r['unit']}/s | {cores} cores "
            f"{r['all']:>10,.1f} | ratio {r['scaling']:.2f} (target >= {target:.1f}) {verdict} "
            f"[{how}{start}]"
        )
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--stages", nargs="+", choices=[*WORKLOADS, *IN_ONE_JOB])
    args = parser.parse_args()
    print("\n".join(lines(run(args.quick, args.stages), 1.7)))
