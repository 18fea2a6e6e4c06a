"""The dataset card (README.md with the Hugging Face YAML header) of a release folder."""

from __future__ import annotations

import yaml

from danqing.release import size_category

COLUMN_DOCS = {
    "uid": "Pair id assigned at ingestion (unique in the release).",
    "key": "WebDataset sample key: the uid, or (for a uid with other characters or over 96 long) a file-name-safe prefix, `~` and 16 hex digits of its sha256.",
    "url": "Image URL.",
    "alt_text": "Caption: the cleaned alt text (Simplified Chinese, emoji and noise removed).",
    "alt_text_raw": "The alt text as crawled.",
    "page_url": "URL of the page the image was found on.",
    "domain": "Registered domain of the image URL (e.g. alicdn.com).",
    "crawl": "Common Crawl crawl id.",
    "batch": "Curation batch (the paper processes its crawls as 7 batches).",
    "languages": "Common Crawl language tags of the page.",
    "original_width": "Image width in pixels as downloaded, before any resize.",
    "original_height": "Image height in pixels as downloaded, before any resize.",
    "width": "Width of the stored image.",
    "height": "Height of the stored image.",
    "image_format": "Format of the stored image.",
    "image_sha256": "sha256 of the stored image bytes (the .jpg member of the tar sample).",
    "wds_shard": "The WebDataset tar that holds this pair's image.",
    "word_count": "Caption length in the text constraint's unit (default: letters, digits and Han characters; 5..60).",
    "page_title": "Title of the page the image was found on (its `<title>`).",
    "img_width": "Width of the stored image as decoded by the image-metrics step.",
    "img_height": "Height of the stored image as decoded by the image-metrics step.",
    "img_error": "Why the stored image could not be decoded (null for every released row).",
    "dedup_cluster_size": "Images in this pair's near-duplicate set within its batch (1: no duplicate).",
    "cross_batch_cluster_size": "Images in this pair's near-duplicate set across all batches (1: no duplicate).",
    "chinese_score": "How surely the caption is Chinese: max of its Han share of letters and lid.176 P(Chinese variety) (CN-Detect).",
    "content_word_count": "Caption words that are not stop words.",
    "noun_count": "Nouns in the caption (jieba POS).",
    "unk_count": "[UNK] tokens under Chinese-CLIP's BERT tokenizer.",
    "text_entropy": "Information density of the caption (Sec. 3.2 entropy).",
    "text_safety_score": "Unsafe-text probability at source selection (null: no model configured).",
    "text_content_safety_score": "Unsafe-text probability at text refinement (null: no model).",
    "img_std": "Grayscale pixel standard deviation (low-textual image filter).",
    "img_blur": "Variance of the Laplacian (blur filter).",
    "img_entropy": "256-bin grayscale entropy of the image, in bits.",
    "img_entropy_rgb": "Entropy of the image's R, G and B histograms pooled, in bits (information density).",
    "nsfw_score": "NSFW classifier probability (image content safety).",
    "alignment_distance": "L2 distance of the normalised image and text embeddings.",
}

TEXT_ONLY_NOTE = (
    "This release was built from a text-only run (the `download_images` step was not enabled), "
    "so it holds the Parquet metadata only: there are no WebDataset tars and no image columns. "
    "The images can be fetched from `url`, for example with img2dataset."
)


def yaml_header(manifest: dict, cfg: dict) -> str:
    # One config: `datasets` infers one builder for a repository from its first config's files,
    # so a second config of tars would be read as Parquet. The card's text shows how to load the
    # tars (load_dataset("webdataset", data_files=...), or webdataset itself).
    configs = [
        {
            "config_name": "default",
            "data_files": [{"split": "train", "path": "data/train-*.parquet"}],
        }
    ]
    header = {
        "license": cfg["license"],
        "language": ["zh"],
        "pretty_name": cfg["pretty_name"],
        "size_categories": [size_category(manifest["rows"])],
        "task_categories": list(cfg["task_categories"]),
        "tags": list(cfg["tags"]),
        "configs": configs,
    }
    return "---\n" + yaml.safe_dump(header, allow_unicode=True, sort_keys=False) + "---\n"


def _bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n}"


def render(manifest: dict, filtration_md: str, collected: int | None, cfg: dict) -> str:
    """The card's Markdown. `collected` is Table 6's first row (pairs before any filter)."""
    rows = manifest["rows"]
    parquet = [f for f in manifest["files"] if f["kind"] == "parquet"]
    tars = [f for f in manifest["files"] if f["kind"] == "webdataset"]
    kept = (
        f" ({100.0 * rows / collected:.2f}% of {collected:,} collected pairs)" if collected else ""
    )
    lines = [
        yaml_header(manifest, cfg),
        f"# {cfg['pretty_name']}",
        "",
        f"{rows:,} Chinese image-text pairs{kept}, curated from Common Crawl image-URL/alt-text "
        "pairs by the DanQing curation workflow (data source selection, text refinement, visual "
        "diversification and cross-modal filtering as in the DanQing paper, Sec. 3.2). Every "
        "number in this card was computed by the workflow from its own outputs.",
        "",
        "## Files",
        "",
        f"- `data/`: {len(parquet)} Parquet file(s), {rows:,} rows, "
        f"{_bytes(sum(f['bytes'] for f in parquet))}: one row per pair with its metadata and "
        "every score the filters computed.",
    ]
    if manifest["images"]:
        lines.append(
            f"- `webdataset/`: {len(tars)} WebDataset tar(s), {manifest['samples']:,} samples, "
            f"{_bytes(sum(f['bytes'] for f in tars))}: per sample `KEY.jpg` (or the image's own "
            "format), `KEY.txt` (the caption) and `KEY.json` (the Parquet row). `KEY` is the "
            "row's `key` column and the row's `wds_shard` names its tar."
        )
    lines += ["- `manifest.json`: every data file with its row count, size and sha256.", ""]
    if not manifest["images"]:
        lines += [f"**Text only.** {TEXT_ONLY_NOTE}", ""]
    lines += [
        "## Columns",
        "",
        "| column | type | description |",
        "|---|---|---|",
    ]
    for column in manifest["columns"]:
        doc = COLUMN_DOCS.get(
            column["name"], "Recorded by a filter step (see the workflow's docs for its meaning)."
        )
        lines.append(f"| `{column['name']}` | {column['type']} | {doc} |")
    lines += [
        "",
        "## How to load",
        "",
        "With 🤗 `datasets` (from this folder or its Hub repository):",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        'pairs = load_dataset("parquet", data_files="data/train-*.parquet", split="train")',
        'print(pairs[0]["alt_text"], pairs[0]["url"])',
        "```",
        "",
    ]
    if manifest["images"]:
        last = len(tars) - 1
        lines += [
            "Images with `webdataset`:",
            "",
            "```python",
            "import webdataset as wds",
            "",
            f'urls = "webdataset/train-{{00000..{last:05d}}}-of-{len(tars):05d}.tar"',
            'samples = wds.WebDataset(urls).decode("pil").to_tuple("__key__", "jpg;png;webp", "txt", "json")',
            "for key, image, caption, meta in samples:",
            "    ...",
            "```",
            "",
            'or with `datasets`: `load_dataset("webdataset", data_files="webdataset/*.tar", '
            'split="train")`.',
            "",
        ]
    lines += [
        "## How it was filtered",
        "",
        "Rows left after each step of the workflow (the paper's Table 6 layout):",
        "",
        filtration_md.rstrip(),
        "",
        "## Publishing",
        "",
        "The folder is laid out for a Hugging Face dataset repository:",
        "",
        "```python",
        "from huggingface_hub import HfApi",
        "",
        'HfApi().upload_large_folder(repo_id="ORG/NAME", repo_type="dataset", folder_path=".")',
        "```",
        "",
        "`manifest.json` lists the sha256 of every data file for checking a copy.",
        "",
        "## License",
        "",
        f"The metadata and captions are released under `{cfg['license']}`. The images "
        "remain the property of their owners and are referenced by URL; the WebDataset "
        "copies are for research use. Pairs whose owners opt out can be removed by uid.",
        "",
    ]
    return "\n".join(lines)
