"""Throughput of the download_images stage on the local demo image server.

Generates N photo URLs (2,000 by default) for the demo image server on 127.0.0.1 and measures, in
one process on this machine:

1. render: the first request of every URL (the server renders and caches each image);
2. ceiling: the server's raw serving rate, every URL fetched again with threaded urllib GETs
   (cached images, no decoding, no writing) -- the most any HTTP downloader could reach here;
3. stage: `danqing.download.download_shard` on the same URLs (img2dataset: fetch, decode, resize,
   hash, write WebDataset tars), wall time including img2dataset's process start-up, and its
   steady rate from the tars' own start and end times.

It prints images/s, images/s per core and the ratio stage/ceiling. The server, the client and the
stage share the machine's cores, as they would on a download node.

    python -m benchmarks.download                 # 2,000 images
    python -m benchmarks.download --quick         # 100 images, 1 process: a smoke test
    python -m benchmarks.download --images 5000 --processes 4 --threads 64
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

from danqing.config import load
from danqing.demo.server import serve
from danqing.download import download_shard

HOSTS = ("img.alicdn.com", "n.sinaimg.cn", "dimg04.tripcdn.com", "i2.chuimg.com")


def photo_urls(base: str, count: int) -> list[str]:
    return [f"{base}/{HOSTS[i % len(HOSTS)]}/photo/b{i:06d}.jpg" for i in range(count)]


def fetch_all(urls: list[str], threads: int) -> tuple[float, int]:
    """Seconds to GET every URL with `threads` client threads, and the bytes received."""

    def get(url: str) -> int:
        with urllib.request.urlopen(url, timeout=60) as response:
            return len(response.read())

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        received = sum(pool.map(get, urls))
    return time.perf_counter() - started, received


def steady_seconds(images_dir: Path) -> float:
    """From the first tar's start to the last tar's end, per img2dataset's stats files."""
    stats = [json.loads(p.read_text()) for p in images_dir.glob("*_stats.json")]
    return max(s["end_time"] for s in stats) - min(s["start_time"] for s in stats)


def run(
    count: int, processes: int, threads: int, client_threads: int, samples_per_tar: int
) -> dict:
    cfg = load()["filters"]["download_images"] | {
        "processes": processes,
        "thread_count": threads,
        "samples_per_tar": samples_per_tar,
    }
    cores = os.cpu_count() or 1
    with serve(0) as server, tempfile.TemporaryDirectory(prefix="dq-bench-download-") as tmp:
        urls = photo_urls(server.url, count)
        render_s, _ = fetch_all(urls, client_threads)
        ceiling_s, received = fetch_all(urls, client_threads)
        frame = pl.DataFrame(
            {
                "uid": [f"u{i:06d}" for i in range(count)],
                "url": urls,
                "alt_text": ["演示图片"] * count,
            }
        )
        images_dir = Path(tmp) / "images" / "b1" / "s00000"
        started = time.perf_counter()
        result = download_shard(
            frame,
            cfg,
            images_dir,
            processes=processes,
            network={"allowed_networks": ["127.0.0.1/32"]},
        )
        stage_s = time.perf_counter() - started
        steady_s = steady_seconds(images_dir)
    if result.kept.height != count:
        reasons = result.dropped["reason"].value_counts().to_dicts()
        raise RuntimeError(f"{result.dropped.height} of {count} downloads failed: {reasons}")
    return {
        "images": count,
        "cores": cores,
        "processes": processes,
        "threads": threads,
        "render_per_s": count / render_s,
        "ceiling_per_s": count / ceiling_s,
        "ceiling_mb_per_s": received / ceiling_s / 1e6,
        "stage_per_s": count / stage_s,
        "stage_steady_per_s": count / steady_s,
    }


def report(r: dict) -> str:
    lines = [
        f"download benchmark: {r['images']} photos, {r['cores']} cores, img2dataset "
        f"{r['processes']} processes x {r['threads']} threads",
        f"  server first request (render): {r['render_per_s']:8.1f} images/s",
        f"  ceiling (cached, urllib GETs): {r['ceiling_per_s']:8.1f} images/s "
        f"({r['ceiling_per_s'] / r['cores']:.1f}/core, {r['ceiling_mb_per_s']:.1f} MB/s)",
        f"  stage, wall incl. start-up:    {r['stage_per_s']:8.1f} images/s "
        f"({r['stage_per_s'] / r['processes']:.1f}/process core)",
        f"  stage, steady (tar times):     {r['stage_steady_per_s']:8.1f} images/s "
        f"({r['stage_steady_per_s'] / r['processes']:.1f}/process core)",
        f"  ratio stage/ceiling: {r['stage_per_s'] / r['ceiling_per_s']:.2f} wall, "
        f"{r['stage_steady_per_s'] / r['ceiling_per_s']:.2f} steady",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="100 images (smoke test)")
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        help="img2dataset processes (default: all cores; 1 with --quick)",
    )
    parser.add_argument("--threads", type=int, default=32, help="img2dataset threads per process")
    parser.add_argument("--client-threads", type=int, default=32)
    parser.add_argument(
        "--samples-per-tar",
        type=int,
        default=None,
        help="default: enough tars to keep every process busy",
    )
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON too")
    args = parser.parse_args(argv)
    count = 100 if args.quick else args.images
    # Every img2dataset process imports its libraries (seconds): --quick starts one.
    processes = args.processes or (1 if args.quick else os.cpu_count() or 1)
    per_tar = args.samples_per_tar or max(25, -(-count // (2 * processes)))
    result = run(count, processes, args.threads, args.client_threads, per_tar)
    print(report(result))
    if args.json:
        print(json.dumps(result))
    return 0


# img2dataset's worker processes are spawned and import the main module again.
if __name__ == "__main__":
    sys.exit(main())
