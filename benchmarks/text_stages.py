"""Throughput of the text steps against the single-core ceilings they are bounded by.

Runs every text step's filter function (the code the Snakemake jobs run) over N generated demo
captions in one process, and measures in the same run jieba segmentation alone, fastText language-ID
prediction alone and OpenCC conversion alone on the same captions. Prints rows/s per core and ratios.

    python -m benchmarks.text_stages --rows 50000
"""

from __future__ import annotations

import argparse
import random
import time

import polars as pl

from danqing import config
from danqing.chinese_text import jieba_frequencies, segment
from danqing.demo import corpus
from danqing.filters import registry
from danqing.filters.text import _opencc, lid176_path
from danqing.safety import load_fasttext, predict
from danqing.steps import caption_steps

# The caption steps as the workflow declares them (danqing.steps), in pipeline order.
TEXT_STEPS = caption_steps()
CHAIN_STAGE = f"text (all {len(TEXT_STEPS)} steps)"


def make_frame(rows: int, seed: int = 7) -> pl.DataFrame:
    demo = corpus.generate(rows, seed)
    rng = random.Random(seed)
    rng.shuffle(demo)
    return pl.DataFrame(
        {
            "uid": [r.uid for r in demo],
            "url": [r.url for r in demo],
            "alt_text": [r.alt_text for r in demo],
            "alt_text_raw": [r.alt_text for r in demo],
            "page_url": [r.page_url for r in demo],
            "domain": [r.domain for r in demo],
            "languages": ["zho"] * len(demo),
            "crawl": [r.crawl for r in demo],
            "batch": [r.batch for r in demo],
        }
    )


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(rows: int = 50_000, quick: bool = False, chunk: int = 5_000, passes: int = 3) -> list[dict]:
    rows, passes = (3_000, 1) if quick else (rows, passes)
    cfg = config.load()
    frame = make_frame(rows)
    # Warm up everything loaded once per job (dictionaries, models) so that rates are per row.
    segment("预热"), jieba_frequencies(), load_fasttext(str(lid176_path())), _opencc("t2s")
    funcs = registry()
    warm = frame.head(50)
    for step in TEXT_STEPS:
        warm = funcs[step](warm, cfg["filters"][step]).kept if warm.height else warm

    model = load_fasttext(str(lid176_path()))
    cc = _opencc("t2s")
    # The rows go through in chunks, `passes` times, and each chunk is timed through the ceilings
    # and through the chain one right after the other (in alternating order): on a shared machine
    # the speed of one core drifts by up to 50% within seconds (the same 5,000 segmentations took
    # 0.67 to 1.23 s in a row), and whole passes one after the other compared that drift as much
    # as the code (ratios of 0.65 to 0.95 on the same code).
    seg_s = ft_s = cc_s = 0.0
    distinct = 0
    step_s: dict[str, tuple[int, float]] = {step: (0, 0.0) for step in TEXT_STEPS}
    for number, start in enumerate(list(range(0, rows, chunk)) * passes):
        part = frame.slice(start, chunk)
        texts = part["alt_text"].to_list()
        distinct += len(set(texts))
        if number % 2:
            steps = _chain_seconds(part, funcs, cfg)
            ceilings = _ceiling_seconds(texts, model, cc)
        else:
            ceilings = _ceiling_seconds(texts, model, cc)
            steps = _chain_seconds(part, funcs, cfg)
        seg_s, ft_s, cc_s = (a + b for a, b in zip((seg_s, ft_s, cc_s), ceilings, strict=True))
        for step, (n, seconds) in steps.items():
            step_s[step] = (step_s[step][0] + n, step_s[step][1] + seconds)
    total_s = sum(s for _, s in step_s.values())
    processed = rows * passes

    out = [
        {
            "stage": CHAIN_STAGE,
            "metric": "input rows/s per core",
            "value": processed / total_s,
            "ceiling": "jieba segmentation",
            "ceiling_value": processed / seg_s,
            "ratio": seg_s / total_s,
        },
        {
            "stage": "cn_detect",
            "metric": "rows/s per core",
            "value": step_s["cn_detect"][0] / step_s["cn_detect"][1],
            "ceiling": "fastText predict alone",
            "ceiling_value": processed / ft_s,
            "ratio": (step_s["cn_detect"][1] / step_s["cn_detect"][0]) ** -1 / (processed / ft_s),
        },
        {
            "stage": "font_conversion",
            "metric": "rows/s per core",
            "value": step_s["font_conversion"][0] / step_s["font_conversion"][1],
            "ceiling": "OpenCC alone",
            "ceiling_value": processed / cc_s,
            "ratio": (step_s["font_conversion"][0] / step_s["font_conversion"][1])
            / (processed / cc_s),
        },
    ]
    # text_constraints segments each distinct caption of a job once; the ceiling every caption.
    out.append(
        {
            "stage": "distinct captions",
            "metric": f"share of each {chunk:,}-row chunk",
            "value": distinct / processed,
            "ceiling": "",
            "ceiling_value": None,
            "ratio": None,
        }
    )
    for step, (n, s) in step_s.items():
        out.append(
            {
                "stage": step,
                "metric": "rows/s per core",
                "value": n / s,
                "ceiling": "",
                "ceiling_value": None,
                "ratio": None,
            }
        )
    return out


def _ceiling_seconds(texts: list[str], model, cc) -> tuple[float, float, float]:
    """Seconds of jieba segmentation, fastText prediction (on the segmented words) and OpenCC
    conversion of `texts`, each alone."""
    start = time.perf_counter()
    segmented = [segment(t) for t in texts]
    seg_s = time.perf_counter() - start
    words = [" ".join(s) for s in segmented]
    return (
        seg_s,
        _timed(lambda: predict(model, words, k=5)),
        _timed(lambda: [cc.convert(t) for t in texts]),
    )


def _chain_seconds(frame: pl.DataFrame, funcs: dict, cfg: dict) -> dict[str, tuple[int, float]]:
    """(input rows, seconds) of each text step, run in order on what the previous one kept."""
    out = {}
    for step in TEXT_STEPS:
        start = time.perf_counter()
        kept = funcs[step](frame, cfg["filters"][step]).kept
        out[step] = (frame.height, time.perf_counter() - start)
        frame = kept
    return out


def print_rows(rows: list[dict]) -> None:
    for r in rows:
        ceiling = (
            f"  vs {r['ceiling']} {r['ceiling_value']:,.0f}  ratio {r['ratio']:.2f}"
            if r["ratio"] is not None
            else ""
        )
        value = f"{r['value']:>10.2f}" if r["value"] < 1 else f"{r['value']:>10,.0f}"
        print(f"{r['stage']:24s} {value} {r['metric']}{ceiling}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print_rows(run(args.rows, args.quick))
