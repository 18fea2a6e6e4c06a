"""Peak memory at the default shard size, and the cost of the paper's 1B-pair run (core-hours,
GPU-hours per stage at Table 6's row counts) from the rates measured in this run."""

from __future__ import annotations

import math

from benchmarks.harness import Report, linear

# Memory and projection.


def memory_table(res: dict, shard: int) -> list[dict]:
    from danqing.steps import caption_steps

    rows = []
    text_mem = res["text"]["memory"]
    (a, b) = text_mem[0], text_mem[-1]
    at, slope = linear(a["rows"], a["_peak_rss_mib"], b["rows"], b["_peak_rss_mib"], shard)
    rows.append(
        {
            "stage": f"text steps ({len(caption_steps())}, one process)",
            "measured": ", ".join(
                f"{m['_peak_rss_mib']:,.0f} MiB at {m['rows']:,} rows" for m in text_mem
            ),
            "at_shard_mib": at,
            "how": f"linear through the two sizes ({slope * 1024:.2f} KiB/row)",
        }
    )
    mm = res["image_metrics"]["memory"]
    t1, t2 = mm["tiny"][0], mm["tiny"][-1]
    _, slope = linear(t1["images"], t1["_peak_rss_mib"], t2["images"], t2["_peak_rss_mib"], 0)
    real = mm["real"]
    rows.append(
        {
            "stage": "image metrics (per worker process)",
            "measured": f"{real['_peak_rss_mib']:,.0f} MiB at {real['images']:,} images; "
            + ", ".join(
                f"{t['_peak_rss_mib']:,.0f} MiB at {t['images']:,} tiny" for t in mm["tiny"]
            ),
            "at_shard_mib": real["_peak_rss_mib"] + slope * (shard - real["images"]),
            "how": f"real-image peak + per-row growth from tiny-JPEG runs "
            f"({slope * 1024:.2f} KiB/row)",
        }
    )
    d = res["download"]
    rows.append(
        {
            "stage": "download (largest process)",
            "measured": f"{d['_peak_rss_mib']:,.0f} MiB at {d['images']:,} images",
            "at_shard_mib": None,
            "how": "not extrapolated (img2dataset streams tars)",
        }
    )
    e = res["embeddings"]
    dims = {"efficientnet-lite0": (1280, 1), "chinese-clip-ViT-L-14": (768, 2)}
    rows.append(
        {
            "stage": "embeddings (models in one process)",
            "measured": f"{e['_peak_rss_mib']:,.0f} MiB",
            "at_shard_mib": e["_peak_rss_mib"]
            + max(
                dim * towers * 2 * shard / 2**20
                for key, (dim, towers) in dims.items()
                if f"{key}/cpu" in e
            ),
            "how": "measured peak + the shard's float16 outputs (computed: rows x dim x 2 B"
            " per tower)",
        }
    )
    s = res["image_safety"]
    rows.append(
        {
            "stage": "image_safety (NSFW scores)",
            "measured": f"{s['_peak_rss_mib']:,.0f} MiB at {s['images']:,} images",
            "at_shard_mib": None,
            "how": "not extrapolated (batches streamed; per row only the uid and score are kept)",
        }
    )
    for dd in res["dedup"]["runs"]:
        rows.append(
            {
                "stage": f"dedup N={dd['n']:,} dim {dd['dim']}",
                "measured": f"{dd['_peak_rss_mib']:,.0f} MiB",
                "at_shard_mib": None,
                "how": "per batch / global, not per shard",
            }
        )
    for run in res["dag"]["runs"]:
        rows.append(
            {
                "stage": f"snakemake -n, {run['jobs']:,} jobs",
                "measured": f"{run['max_rss_mb']:,} MB",
                "at_shard_mib": None,
                "how": "",
            }
        )
    return rows


def projection(res: dict) -> dict:
    """Core-hours (and GPU-hours) per stage at Table 6's input rows, from measured rates."""
    from danqing.steps import PAPER_COLLECTED, STEPS, embedding_steps, steps_reading

    # The image-metrics job decodes each image once for every step that reads its table.
    metric_steps = steps_reading("image_metrics")

    inputs, previous = {}, PAPER_COLLECTED
    for step in STEPS:
        inputs[step.name] = previous
        previous = step.paper_left
    rows: list[dict] = []

    def add(
        stage: str,
        step: str,
        rows_in: int,
        per_core: float | None,
        note: str = "",
        core_s: float | None = None,
        gpu_per_s: float | None = None,
    ) -> None:
        if core_s is None and per_core:
            core_s = rows_in / per_core
        rows.append(
            {
                "stage": stage,
                "step": step,
                "rows": rows_in,
                "per_core_per_s": per_core,
                "core_hours": None if core_s is None else core_s / 3600,
                "gpu_hours": None if not gpu_per_s else rows_in / gpu_per_s / 3600,
                "note": note,
            }
        )

    text = {x["stage"]: x for x in res["text"]["results"] if x["ceiling"] == ""}
    first_embedding_step = embedding_steps()[0]
    for step in STEPS:
        rows_in = inputs[step.name]
        producers = {rule for _, rule in step.upstream}
        if step.name in text:
            add(step.name, step.name, rows_in, text[step.name]["value"])
        elif step.own_rule:  # download_images, the one step with its own rule
            d = res["download"]
            add(
                step.name,
                step.name,
                rows_in,
                d["stage_steady_per_s"] / d["processes"],
                "img2dataset per process core, steady, local server (network-bound in reality)",
            )
        elif "image_metrics" in producers:
            if step.name == metric_steps[0]:
                add(
                    "image metrics (decode once)",
                    step.name,
                    rows_in,
                    res["image_metrics"]["stage_per_s"],
                    f"feeds {', '.join(metric_steps)}",
                )
            else:
                add(
                    step.name,
                    step.name,
                    rows_in,
                    None,
                    "threshold on the metrics table (not measured; no decoding)",
                )
        elif "nsfw_scores" in producers:
            add(
                f"{step.name} (open_nsfw scores)",
                step.name,
                rows_in,
                res["image_safety"]["images_per_s"],
                "decode + preprocessing + ONNX ResNet-50 on the CPU; onnxruntime-gpu not measured",
            )
        elif step.reads_embeddings and any(rule.endswith("_clusters") for rule in producers):
            if step.name == first_embedding_step:
                for label, cpu_per_s, note, gpu_per_s in embedding_rates(res["embeddings"]):
                    add(label, step.name, rows_in, cpu_per_s, note, gpu_per_s=gpu_per_s)
            batches = PAPER_BATCHES if step.scope == "batch" else 1
            add(
                f"{step.name} (FAISS IVF)",
                step.name,
                rows_in,
                None,
                *dedup_cost(res, rows_in, batches=batches),
            )
        else:  # decided from what an earlier job computed: not measured
            note = UNMEASURED.get(frozenset(producers), "decided from an earlier job's output")
            add(step.name, step.name, rows_in, None, f"{note} (not measured)")
    dag = res["dag"]["runs"][-1]
    per_shard = dag["per_shard_steps"]
    shards = math.ceil(PAPER_COLLECTED / res["meta"]["shard_size"])
    jobs = shards * per_shard + (dag["jobs"] - dag["shards"] * per_shard)
    add(
        "snakemake DAG build (snakemake -n)",
        "",
        jobs,
        None,
        f"{shards:,} shards x {per_shard} + {dag['jobs'] - dag['shards'] * per_shard} jobs at "
        f"{dag['ms_per_job']:.2f} ms/job ({dag['jobs']:,}-job run, linear)",
        core_s=jobs * dag["cpu_seconds"] / dag["jobs"],
    )
    configured = [r for r in rows if "Chinese-CLIP" not in r["stage"]]
    paper_model = [r for r in rows if "efficientnet" not in r["stage"]]
    total = {
        name: sum(r["core_hours"] or 0 for r in subset)
        if any(key in r["stage"] for r in subset)
        else None
        for name, subset, key in (
            ("efficientnet-lite0", configured, "efficientnet"),
            ("chinese-clip", paper_model, "Chinese-CLIP"),
        )
    }
    gpu_any = any(r["gpu_hours"] for r in rows)
    return {"rows": rows, "total_core_hours": total, "gpu_measured": gpu_any}


# What the steps that decide from an earlier job's output do per row, by that job's rule.
UNMEASURED = {
    frozenset({"exact_dedup_clusters"}): "grouping of the batch's image sha256s, no decoding",
    frozenset({"image_embeddings"}): "distances come with the embeddings",
}
# The paper's run: seven batches (its per-batch semantic dedup runs once per batch).
PAPER_BATCHES = 7


def embedding_rates(measured: dict) -> list[tuple[str, float, str, float | None]]:
    """(stage label, rows per core-second, note, rows per GPU-second or None) per measured
    embedding model: a row costs its image and, with a text tower, its caption."""
    out = []
    for key, label in (
        ("efficientnet-lite0", "embeddings, efficientnet-lite0"),
        ("chinese-clip-ViT-L-14", "embeddings, Chinese-CLIP ViT-L/14"),
    ):
        cpu = measured.get(f"{key}/cpu")
        if cpu is None:
            continue
        gpu = measured.get(f"{key}/cuda")
        note = "image + caption per row" if "texts_per_s" in cpu else "image only"
        out.append((label, _row_rate(cpu), note, None if gpu is None else _row_rate(gpu)))
    return out


def _row_rate(m: dict) -> float:
    return 1 / (1 / m["images_per_s"] + (1 / m["texts_per_s"] if "texts_per_s" in m else 0))


def dedup_cost(res: dict, rows_in: int, batches: int) -> tuple[str, float | None]:
    """(note, core-seconds) of IVF dedup over `rows_in` vectors in `batches` equal batches,
    from the two largest measured sizes: cost = c * N^e, e fitted to them."""
    runs = sorted(res["dedup"]["runs"], key=lambda d: d["n"])
    if len(runs) < 2:
        return "needs two dedup sizes", None
    a, b = runs[-2], runs[-1]
    e = math.log(b["ivf_cpu_s"] / a["ivf_cpu_s"]) / math.log(b["n"] / a["n"])
    per_batch = rows_in / batches
    core_s = batches * b["ivf_cpu_s"] * (per_batch / b["n"]) ** e
    return (
        f"{batches} x {per_batch:,.0f} vectors, cost ~ N^{e:.2f} fitted to N={a['n']:,} and "
        f"{b['n']:,} (dim {b['dim']})"
    ), core_s


def fmt(value: float | None, spec: str = ",.0f") -> str:
    return "n/a" if value is None else format(value, spec)


def projection_markdown(proj: dict, memory: list[dict], meta: dict) -> str:
    lines = [
        "# Projected cost of the paper's run",
        "",
        f"Measured {meta['when']} on {meta['cores']} cores ({meta['machine']}), "
        f"`{meta['command']}`. Input rows per stage: Table 6's Left Data Num of the previous "
        "step (`danqing.steps.STEPS`), 1,047,085,609 for the first. Rates: rows (or images) per "
        "second per core, measured in this run.",
        "",
        "| stage | step | input rows | per core /s | core-hours | GPU-hours | note |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in proj["rows"]:
        lines.append(
            f"| {r['stage']} | {r['step']} | {r['rows']:,} | "
            f"{fmt(r['per_core_per_s'], ',.1f')} | {fmt(r['core_hours'], ',.1f')} | "
            f"{fmt(r['gpu_hours'], ',.1f')} | {r['note']} |"
        )
    t = proj["total_core_hours"]
    lines += [
        "",
        f"Total core-hours (measured stages): {fmt(t['efficientnet-lite0'])} with the configured "
        f"efficientnet-lite0 embedder, {fmt(t['chinese-clip'])} with Chinese-CLIP ViT-L/14 on CPU "
        "(the paper's model).",
        "GPU-hours: "
        + (
            "see the table."
            if proj["gpu_measured"]
            else "not measured (no GPU here; `python -m benchmarks.run --gpu` on a GPU machine "
            "fills the column)."
        ),
        "",
        f"## Peak memory (default shard: {meta['shard_size']:,} rows)",
        "",
        "| stage | measured peak RSS | at the default shard | how |",
        "|---|---|---:|---|",
    ]
    for m in memory:
        at = "n/a" if m["at_shard_mib"] is None else f"{m['at_shard_mib'] / 1024:,.2f} GiB"
        lines.append(f"| {m['stage']} | {m['measured']} | {at} | {m['how']} |")
    return "\n".join(lines) + "\n"


def print_projection(proj: dict, say: Report) -> None:
    say("")
    say("Projection at the paper's row counts (Table 6), from the per-core rates above:")
    say(
        f"  {'stage':42s} {'input rows':>15s} {'per core/s':>11s} {'core-hours':>11s} "
        f"{'GPU-hours':>9s}"
    )
    for r in proj["rows"]:
        say(
            f"  {r['stage'][:42]:42s} {r['rows']:>15,} {fmt(r['per_core_per_s'], ',.1f'):>11s} "
            f"{fmt(r['core_hours'], ',.1f'):>11s} {fmt(r['gpu_hours'], ',.1f'):>9s}"
        )
    t = proj["total_core_hours"]
    say(
        f"  total core-hours: {fmt(t['efficientnet-lite0'])} (efficientnet-lite0 embedder), "
        f"{fmt(t['chinese-clip'])} (Chinese-CLIP ViT-L/14 on CPU); GPU-hours: "
        + ("measured" if proj["gpu_measured"] else "not measured (no GPU here)")
    )
