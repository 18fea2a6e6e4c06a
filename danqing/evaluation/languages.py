"""CN-Detect's confusion between Chinese, Japanese, Korean and English on real text.

    python -m danqing.evaluation.languages [--per-language 400]

Chinese: the captions the pipeline must keep (DanQing's kept pairs, COCO-CN, the Wukong rows
labelled `keep`). Japanese, Korean, Simplified and Traditional Chinese and English: the
human translations in the gettext catalogs of the Debian packages installed here
(/usr/share/locale/{ja,ko,zh_CN,zh_TW}/LC_MESSAGES/*.mo, their English msgids): real text written
by translators, short like alt texts. Cantonese (yue) has no source here, so it is not measured.
"""

from __future__ import annotations

import argparse
import gettext
import glob
import random
import re
import sys

import polars as pl

LOCALES = {"ja": "ja", "ko": "ko", "zh_CN": "zh", "zh_TW": "zh"}
_FORMAT = re.compile(r"%[-+ #0-9.]*[a-zA-Z]|\{[^}]*\}|\\[nt]|[_&]")


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", _FORMAT.sub(" ", text)).strip()


def catalog_texts(per_language: int, seed: int = 1) -> list[tuple[str, str]]:
    """(language, text) from the installed gettext catalogs: messages of 6..80 characters."""
    rng = random.Random(seed)
    texts: dict[str, set[str]] = {"en": set()}
    for locale, language in LOCALES.items():
        found = texts.setdefault(language, set())
        for path in sorted(glob.glob(f"/usr/share/locale/{locale}/LC_MESSAGES/*.mo")):
            try:
                with open(path, "rb") as handle:
                    catalog = gettext.GNUTranslations(handle)._catalog  # noqa: SLF001
            except (OSError, gettext.error):
                continue
            for key, value in catalog.items():
                if not isinstance(key, str) or not key:
                    continue
                target, source = _clean(str(value)), _clean(key)
                if 6 <= len(target) <= 80 and target != source:
                    found.add(target)
                if 6 <= len(source) <= 80 and re.search("[a-zA-Z]{3}", source):
                    texts["en"].add(source)
    out = []
    for language, pool in sorted(texts.items()):
        items = sorted(pool)
        out += [(language, t) for t in rng.sample(items, min(per_language, len(items)))]
    return out


def caption_texts(per_language: int, seed: int = 1) -> list[tuple[str, str]]:
    """("zh", caption) for the real captions that must be kept."""
    from danqing.evaluation import real_sets

    frames = [real_sets.load(n) for n in ("danqing", "coco_cn", "wukong")]
    keep = pl.concat(frames).filter(pl.col("label") == "keep")["alt_text"].to_list()
    rng = random.Random(seed)
    return [("zh-caption", t) for t in rng.sample(keep, min(per_language, len(keep)))]


def confusion(items: list[tuple[str, str]], min_confidence: float) -> pl.DataFrame:
    """Per source language: rows, share kept as Chinese under the new reading and under lid.176
    P(zh) alone (the old reading), and the top lid.176 labels of the old reading's verdicts."""
    from danqing import safety
    from danqing.chinese_text import segment
    from danqing.filters.text import chinese_scores, lid176_path

    texts = [t for _, t in items]
    spaced = [" ".join(segment(t)) for t in texts]
    new = chinese_scores(texts, None, spaced)
    probs = safety.predict(safety.load_fasttext(str(lid176_path())), spaced, k=5)
    old = [p.get("__label__zh", 0.0) for p in probs]
    top = [max(p, key=p.get).removeprefix("__label__") if p else "" for p in probs]
    frame = pl.DataFrame(
        {"language": [lang for lang, _ in items], "new": new, "old": old, "top": top}
    )
    return (
        frame.group_by("language", maintain_order=True)
        .agg(
            pl.len().alias("rows"),
            (pl.col("new") >= min_confidence).mean().alias("kept_as_chinese"),
            (pl.col("old") >= min_confidence).mean().alias("kept_by_p_zh_alone"),
            pl.col("top").value_counts(sort=True).head(3).alias("lid176_top_labels"),
        )
        .sort("language")
    )


def main(argv: list[str] | None = None) -> int:
    from danqing import config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-language", type=int, default=400)
    args = parser.parse_args(argv)
    items = caption_texts(args.per_language) + catalog_texts(args.per_language)
    threshold = config.load()["filters"]["cn_detect"]["min_confidence"]
    pl.Config.set_fmt_str_lengths(80)
    pl.Config.set_tbl_width_chars(160)
    print(confusion(items, threshold))
    return 0


if __name__ == "__main__":
    sys.exit(main())
