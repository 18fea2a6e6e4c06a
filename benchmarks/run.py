"""Every stage benchmark in one run: rates per core, their ceilings, peak memory, and the cost of the
paper's 1B-pair run.

    python -m benchmarks.run                      # full run (about 10-15 minutes on 2 cores)
    python -m benchmarks.run --quick              # smoke test (well under a minute)
    python -m benchmarks.run --out results/benchmarks --text-rows 50000 --dedup-sizes 100000 1000000

Each stage runs in its own child process (`--child STAGE`), which generates its inputs and measures
the stage and the ceiling it is bounded by on the same inputs, in the same process; the parent
reads the child's peak resident memory as the child measured it (VmHWM since its exec, or its
largest child's ru_maxrss; `os.wait4`'s ru_maxrss would include the parent's own high-water
mark). The stage benchmarks are the modules next to this one, imported, not copied:

    text            benchmarks.text_stages      12 text steps vs jieba / fastText / OpenCC alone
    image_metrics   benchmarks.image_metrics    decode + std/blur/entropy vs pure JPEG decode
    download        benchmarks.download         img2dataset vs the demo server's raw serving rate
    embeddings      danqing.embed               full embed_images vs the network's forward alone
    image_safety    danqing.images.nsfw         open_nsfw scoring vs the ONNX forward pass alone
    dedup           benchmarks.dedup            FAISS IVF vs exact search: speed-up, pair recall
    dag             benchmarks.dag_scale        snakemake -n for N per-shard jobs

Memory for a shard of the default size (config partition.shard_size) is extrapolated linearly
from two measured sizes where the stage holds per-row state (text, image metrics); see the
printed notes. The projection (core-hours, GPU-hours per stage at Table 6's row counts) uses only
rates measured in this run. Writes <out>/results.json, <out>/projection.md and <out>/logs/.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from benchmarks.children import CHILDREN
from benchmarks.harness import (
    ROOT,
    Later,
    Report,
    bench_dag,
    bench_dedup,
    bench_download,
    bench_embeddings,
    bench_image_metrics,
    bench_image_safety,
    bench_scaling,
    bench_text,
    download_params,
    peak_rss_mib,
    resolve,
    run_child,
    shard_size,
)
from benchmarks.projection import memory_table, print_projection, projection, projection_markdown

STAGES = (
    "text",
    "image_metrics",
    "embeddings",
    "image_safety",
    "dedup",
    "scaling",
    "dag",
    "download",
)

QUICK = {
    "text_rows": 1_000,
    "text_mem_rows": [1_000, 3_000],
    "images": 30,
    "mem_real_images": 30,
    "mem_tiny_images": [2_000, 6_000],
    "download_images": 30,
    "download_processes": 1,
    "embed_images": 4,
    "nsfw_images": 8,
    "clip_images": 0,
    "clip_texts": 0,
    "dedup_sizes": [5_000, 20_000],
    "dedup_dim": 64,
    "dedup_sample": 500,
    "dag_jobs": [],
    "dag_quick_shards": 2,
    "scaling_quick": True,
}
FULL = {
    "text_rows": 50_000,
    "text_mem_rows": [10_000, 40_000],
    "images": 400,
    "mem_real_images": 200,
    "mem_tiny_images": [10_000, 40_000],
    "download_images": 1_000,
    "download_processes": None,
    "embed_images": 128,
    "nsfw_images": 128,
    "clip_images": 8,
    "clip_texts": 64,
    "dedup_sizes": [100_000, 1_000_000],
    "dedup_dim": 768,
    "dedup_sample": 2_000,
    "dag_jobs": [1_000, 10_000],
    "scaling_quick": False,
    "dag_quick_shards": 0,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks")
    parser.add_argument(
        "--stages", nargs="+", choices=STAGES, default=list(STAGES), help=argparse.SUPPRESS
    )
    parser.add_argument("--text-rows", type=int)
    parser.add_argument("--images", type=int, help="image-metric benchmark JPEGs")
    parser.add_argument("--download-images", type=int)
    parser.add_argument("--embed-images", type=int)
    parser.add_argument("--nsfw-images", type=int)
    parser.add_argument("--clip-images", type=int, help="0 skips Chinese-CLIP ViT-L/14")
    parser.add_argument("--dedup-sizes", type=int, nargs="+")
    parser.add_argument("--dedup-dim", type=int)
    parser.add_argument("--dag-jobs", type=int, nargs="+", help="per-shard job counts")
    parser.add_argument(
        "--gpu",
        action="store_true",
        help="GPU rates against the GPU's dense ceiling (benchmarks/gpu.py); fills the projection's "
        "GPU-hours column when a CPU run's results.json is in --out",
    )
    parser.add_argument("--gpu-smoke", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = CHILDREN[args.child](json.loads(args.params))
        if isinstance(result, dict):
            result["_own_peak_rss_mib"] = peak_rss_mib()
        args.result.write_text(json.dumps(result, indent=1))
        return 0

    if args.gpu or args.gpu_smoke:
        return gpu_main(args.out, smoke=args.gpu_smoke)
    sizes = dict(QUICK if args.quick else FULL)
    for key in (
        "text_rows",
        "images",
        "download_images",
        "embed_images",
        "nsfw_images",
        "clip_images",
        "dedup_sizes",
        "dedup_dim",
        "dag_jobs",
    ):
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)
    out: Path = args.out
    logs = out / "logs"
    out.mkdir(parents=True, exist_ok=True)
    say = Report()
    global LATER
    LATER = Later(background=args.quick)
    meta = {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "cores": os.cpu_count(),
        "machine": machine(),
        "quick": args.quick,
        "sizes": sizes,
        "shard_size": shard_size(),
        "python": sys.version.split()[0],
        "command": "python -m benchmarks.run" + (" --quick" if args.quick else ""),
    }
    say(
        f"DanQing benchmarks ({'quick' if args.quick else 'full'}), {meta['cores']} cores, "
        f"{meta['machine']}; default shard size {meta['shard_size']:,} rows "
        "(config partition.shard_size)"
    )
    benches = {
        "text": bench_text,
        "image_metrics": bench_image_metrics,
        "download": bench_download,
        "embeddings": bench_embeddings,
        "image_safety": bench_image_safety,
        "dedup": bench_dedup,
        "scaling": bench_scaling,
        "dag": bench_dag,
    }
    results: dict = {"meta": meta}
    started = time.perf_counter()
    if args.quick and "download" in args.stages:
        results["_download"] = LATER(run_child, "download", download_params(sizes), logs)
    for stage in STAGES:
        if stage in args.stages:
            results[stage] = benches[stage](sizes, logs, say, results)
    results = resolve(results)
    if set(STAGES) <= set(results):
        memory = memory_table(results, meta["shard_size"])
        say("")
        say(
            f"Peak memory (each stage's child process, its own VmHWM); default shard "
            f"{meta['shard_size']:,} rows:"
        )
        for m in memory:
            at = (
                ""
                if m["at_shard_mib"] is None
                else f" -> {m['at_shard_mib'] / 1024:,.2f} GiB at {meta['shard_size']:,} rows"
            )
            say(f"  {m['stage']:36s} {m['measured']}{at}  [{m['how']}]")
        proj = projection(results)
        print_projection(proj, say)
        results["memory"] = memory
        results["projection"] = proj
        (out / "projection.md").write_text(projection_markdown(proj, memory, meta))
    results["meta"]["seconds"] = time.perf_counter() - started
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    (out / "summary.txt").write_text("\n".join(say.lines) + "\n")
    say(
        f"\nwrote {out / 'results.json'}, {out / 'projection.md'} in "
        f"{results['meta']['seconds']:.0f} s"
    )
    return 0


def gpu_main(out: Path, smoke: bool) -> int:
    """`--gpu`: benchmarks/gpu.py's measurements, written to gpu.json and printed; merged into
    an earlier full run's results.json (same --out) to give the projection its GPU-hours."""
    from benchmarks import gpu

    out.mkdir(parents=True, exist_ok=True)
    try:
        r = gpu.run(smoke)
    except SystemExit as stop:
        print(f"benchmarks.run --gpu: {stop}", file=sys.stderr)
        return 2
    say = Report()
    for line in gpu.lines(r):
        say(line)
    (out / "gpu.json").write_text(json.dumps(r, indent=1))
    earlier = out / "results.json"
    if earlier.is_file() and not smoke:
        results = json.loads(earlier.read_text())
        clip = r["clip"]
        if "skipped" not in clip:
            results["embeddings"]["chinese-clip-ViT-L-14/cuda"] = clip
        if "skipped" not in r["efficientnet-lite0"]:
            results["embeddings"]["efficientnet-lite0/cuda"] = r["efficientnet-lite0"]
        results["embeddings"]["gpu_name"] = r["device"]
        results["gpu"] = r
        proj = projection(results)
        results["projection"] = proj
        memory = results.get("memory") or []
        (out / "projection.md").write_text(projection_markdown(proj, memory, results["meta"]))
        earlier.write_text(json.dumps(results, indent=1, default=str))
        say(f"GPU-hours added to {out / 'projection.md'}")
    return 0


def machine() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


# img2dataset's worker processes are spawned and import the main module again.
if __name__ == "__main__":
    sys.exit(main())
