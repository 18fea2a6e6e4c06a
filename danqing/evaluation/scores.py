"""Precision and recall of the caption steps on the labelled real sets.

A drop is *justified* when the row's label is not `keep`. Length drops (`too_few_words`,
`too_many_words`) apply a mechanical rule, not a judgement, and repeated pairs (`duplicate_uid`)
are copies of a row judged once: both are reported on their own rather than counted against a
filter's precision. The page-furniture classes must be dropped before the
download, with a reason that names them (FURNITURE_REASONS).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

LENGTH_REASONS = ("too_few_words", "too_many_words")
# The same pair printed on several pages: the partition keeps the first copy.
REPEAT_REASONS = ("duplicate_uid",)
FURNITURE = ("empty", "file_name", "logo", "icon", "ui_button")
# The step:reason prefixes that say a row is page furniture (a data: URI, as QR codes are
# inlined, is not an http(s) image URL at all: the partition's invalid_url; a repeated pair was
# judged at its first copy). Any of them is the right reason for any furniture class: a file
# name on an icon's URL may go for either.
FURNITURE_REASONS = (
    "partition:",
    "text_constraints:file_name_alt",
    "text_constraints:interface_text",
    "text_constraints:site_name_alt",
    "source_reliability:non_content_image",
)
ADVERTISING = ("advertising", "unsafe")

# Noise that must not survive into a kept caption, found by patterns independent of the cleaner's.
RESIDUE = {
    "emoticon": re.compile(
        r"\[(?:哈哈|嘻嘻|偷笑|泪|流泪|怒|衰|心|赞|鼓掌|doge|二哈|允悲|笑cry|摊手|吃瓜|微笑|"
        r"可爱|可怜|挖鼻|挤眼|馋嘴|抓狂|哼|失望|悲伤|晕|汗|害羞|思考|疑问|呵呵|"
        r"胜利|强|爱心|good|ok|愉快|抱拳|难过|憨笑)\]",
        re.I,
    ),
    "entity": re.compile(
        r"&(?:nbsp|amp|lt|gt|quot|apos|ldquo|rdquo|hellip|mdash|middot|"
        r"#\d{2,5}|#x[0-9a-fA-F]{2,4});?|</?(?:br|p|a|span|div|img)\b[^>]*>"
    ),
    "link_stub": re.compile(r"网页链接|網頁鏈接|秒拍视频"),
    "url": re.compile(r"https?://|www\.[a-z0-9-]+\.", re.I),
}


def cleaning_agreement(raw: pl.DataFrame, emoticons: str) -> pl.DataFrame:
    """Per labelled noise kind: rows labelled with it, of them the rows the cleaner removed it
    from (recall), and rows it removed it from without the label (precision's complement)."""
    from danqing.webnoise import clean

    labelled = raw.filter((pl.col("label_source") == "sample") & pl.col("alt_text").is_not_null())
    found = [set(clean(t, emoticons)[1]) for t in labelled["alt_text"].to_list()]
    labels = [set(filter(None, (n or "").split(";"))) for n in labelled["noise"].to_list()]
    rows = []
    for kind in ("emoticon", "entity", "link_stub", "url", "mention", "hashtag", "repost", "phone"):
        have = sum(kind in lab for lab in labels)
        hit = sum(kind in lab and kind in f for lab, f in zip(labels, found, strict=True))
        extra = sum(kind in f and kind not in lab for lab, f in zip(labels, found, strict=True))
        rows.append({"kind": kind, "labelled": have, "removed": hit, "unlabelled_removals": extra})
    return pl.DataFrame(rows)


@dataclass
class SetSummary:
    name: str
    rows: int
    kept: int

    @property
    def kept_share(self) -> float:
        return self.kept / self.rows if self.rows else 0.0


def joined(raw: pl.DataFrame, outcomes: pl.DataFrame) -> pl.DataFrame:
    """Outcomes with the set's label, noise and original text."""
    return outcomes.join(raw.select("uid", "alt_text", "label", "noise"), on="uid", how="left")


def summary(name: str, table: pl.DataFrame) -> SetSummary:
    return SetSummary(name, table.height, table.filter(pl.col("step").is_null()).height)


def filter_precision(tables: list[pl.DataFrame]) -> pl.DataFrame:
    """Per step: labelled drops, justified drops, precision (length drops excluded)."""
    drops = pl.concat(tables).filter(
        pl.col("step").is_not_null()
        & pl.col("label").is_not_null()
        & ~pl.col("reason").is_in(LENGTH_REASONS + REPEAT_REASONS)
    )
    return (
        drops.group_by("step")
        .agg(pl.len().alias("labelled_drops"), (pl.col("label") != "keep").sum().alias("justified"))
        .with_columns((pl.col("justified") / pl.col("labelled_drops")).alias("precision"))
        .sort("step")
    )


def reason_key(table: pl.DataFrame) -> pl.Expr:
    return pl.concat_str(pl.col("step"), pl.lit(":"), pl.col("reason"))


def furniture_recall(table: pl.DataFrame) -> pl.DataFrame:
    """Per page-furniture class: rows, dropped, dropped with the right reason."""
    rows = []
    keyed = table.with_columns(reason_key(table).alias("key"))
    for label in FURNITURE:
        part = keyed.filter(pl.col("label") == label)
        keys = part["key"].to_list()
        right = sum(1 for k in keys if k and k.startswith(FURNITURE_REASONS))
        rows.append(
            {
                "label": label,
                "rows": part.height,
                "dropped": sum(k is not None for k in keys),
                "right_reason": right,
            }
        )
    return pl.DataFrame(rows)


def advertising_among_kept(table: pl.DataFrame) -> tuple[int, int]:
    """(advertising or unsafe rows kept, labelled rows kept)."""
    kept = table.filter(pl.col("step").is_null() & pl.col("label").is_not_null())
    return kept.filter(pl.col("label").is_in(ADVERTISING)).height, kept.height


def noise_residue(tables: list[pl.DataFrame]) -> dict[str, list[str]]:
    """Per noise kind, the uids of kept captions that still show it."""
    kept = pl.concat(tables).filter(pl.col("step").is_null())
    out: dict[str, list[str]] = {}
    for kind, pattern in RESIDUE.items():
        out[kind] = [
            u
            for u, t in zip(kept["uid"], kept["final_text"], strict=True)
            if t and pattern.search(t)
        ]
    return out
