"""The real evaluation sets: captions and alt texts from shared/data (never copied into the
repository) joined with the project's own labels (evaluation/labels/, docs/labelling.md).

Each set becomes a raw-pair frame in the workflow's input contract (uid, url, alt_text, page_url,
domain, languages, page_title) plus `label` and `noise` (rows without a label have `label` null) and
`pair_key`: whether the rows lack uids of their own, as crawled pairs do. `label_source` is
`sample` (the labelled samples, with noise labels) or `audit` (the drop audit: a label, no noise).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import polars as pl

from danqing.rows import schema
from danqing.urls import domain_of

ROOT = Path(__file__).resolve().parents[2]
LABELS = ROOT / "evaluation" / "labels"
# The image URL of sets that have none: the text filters never look at it, and the
# source-reliability URL patterns do not match it.
NO_URL = "https://img.example.cn/real/{uid}.jpg"

LABEL_CLASSES = (
    "keep",
    "empty",
    "file_name",
    "logo",
    "icon",
    "ui_button",
    "advertising",
    "unsafe",
    "not_chinese",
    "no_content",
    "code",
)
NOISE_KINDS = ("emoticon", "entity", "link_stub", "url", "mention", "hashtag", "repost", "phone")


def shared_data() -> Path:
    """shared/data beside the checkout (CI has it), or $DANQING_SHARED_DATA."""
    path = Path(os.environ.get("DANQING_SHARED_DATA", ROOT.parent / "shared" / "data"))
    if not (path / "real").is_dir():
        raise FileNotFoundError(
            f"real evaluation data not found at {path}/real: set DANQING_SHARED_DATA to the "
            "shared/data folder"
        )
    return path


@dataclass(frozen=True)
class RealSet:
    name: str
    description: str
    all_keep: bool  # every row is a caption to keep (no label file needed)


SETS = (
    RealSet("danqing", "DanQing's own kept pairs (paper examples)", True),
    RealSet("coco_cn", "COCO-CN human captions", True),
    RealSet("wukong", "Wukong alt texts", False),
    RealSet("weibo", "Weibo posts", False),
    RealSet("news", "every <img> of 35 news and forum pages", False),
)
BY_NAME = {s.name: s for s in SETS}


def _read_csv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _labels(file: str, id_column: str) -> dict[str, tuple[str, str]]:
    rows = _read_csv(LABELS / file)
    out = {}
    for row in rows:
        label = row["label"]
        if label not in LABEL_CLASSES:
            raise ValueError(f"{file}: unknown label {label!r} for {row[id_column]}")
        noise = row.get("noise") or ""
        unknown = [k for k in noise.split(";") if k and k not in NOISE_KINDS]
        if unknown:
            raise ValueError(f"{file}: unknown noise kinds {unknown} for {row[id_column]}")
        out[row[id_column]] = (label, noise)
    return out


def _audit_labels() -> dict[str, str]:
    """uid -> label of the drop audit: rows outside the labelled samples that a filter dropped,
    each read and labelled (docs/labelling.md); they count for precision only."""
    labels = {}
    for row in _read_csv(LABELS / "drop_audit.csv"):
        if row["label"] not in LABEL_CLASSES:
            raise ValueError(f"drop_audit.csv: unknown label {row['label']!r} for {row['uid']}")
        labels[row["uid"]] = row["label"]
    return labels


def _resolve(url: str | None, page_url: str | None) -> str:
    """The image URL as a crawler would see it: relative and scheme-relative URLs resolved
    against the page (or a placeholder page where the page URL is unknown)."""
    if not url:
        return ""
    if url.lower().startswith("data:"):
        return url
    return urljoin(page_url or "https://page.invalid/", url)


def load(name: str) -> pl.DataFrame:
    data = shared_data()
    real = data / "real"
    if name == "danqing":
        rows = _read_csv(real / "danqing_examples" / "captions.csv")
        items = [(f"danqing:{r['image']}", r["caption"], None, ("keep", "")) for r in rows]
    elif name == "coco_cn":
        rows = _read_csv(data / "coco_cn_captions_sample.csv")
        items = [(f"coco_cn:{r['id']}", r["alt_text"], None, ("keep", "")) for r in rows]
    elif name == "wukong":
        labels = _labels("wukong_captions.csv", "csv_row")
        rows = _read_csv(real / "wukong_captions.csv")
        items = [
            (f"wukong:{r['csv_row']}", r["caption"], None, labels.get(r["csv_row"])) for r in rows
        ]
    elif name == "weibo":
        labels = _labels("weibo_posts.csv", "row")
        rows = _read_csv(real / "weibo_posts.csv")
        items = [(f"weibo:{i}", r["text"], None, labels.get(str(i))) for i, r in enumerate(rows)]
    elif name == "news":
        labels = _labels("news_page_alts.csv", "row")
        frame = pl.read_parquet(real / "news_page_alts.parquet")
        items = []
        for i, r in enumerate(frame.iter_rows(named=True)):
            items.append(
                (
                    f"news:{i}",
                    r["alt_text"],
                    (r["url"], r["page_url"], r["page_title"]),
                    labels.get(str(i)),
                )
            )
    else:
        raise KeyError(f"unknown real set {name!r}; one of {sorted(BY_NAME)}")
    audit = _audit_labels()
    records = []
    for uid, text, where, label in items:
        source = "sample" if label else None
        if label is None and uid in audit:
            label, source = (audit[uid], None), "audit"
        url, page_url, title = where if where else (NO_URL.format(uid=uid), None, None)
        url = _resolve(url, page_url)
        records.append(
            {
                "uid": uid,
                "url": url,
                "alt_text": text,
                "page_url": page_url,
                "page_title": title,
                "domain": domain_of(url) or None,
                "languages": "zho",
                "label": label[0] if label else None,
                "noise": label[1] if label else None,
                "label_source": source,
                "pair_key": name == "news",
            }
        )
    return pl.DataFrame(
        records,
        schema={
            **schema("uid", "url", "alt_text", "page_url", "page_title", "domain", "languages"),
            "label": pl.String,
            "noise": pl.String,
            "label_source": pl.String,
            "pair_key": pl.Boolean,
        },
    )
