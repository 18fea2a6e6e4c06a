"""Deterministic demo corpus: raw image-URL/alt-text pairs that look like Chinese Common Crawl data
and exercise every filter.

Each row carries the ground truth of the step expected to drop it (`expected_step`, None when it
should survive), of the transform expected to rewrite it, and of its image case. The ground truth
is written to a separate labels file, never into the pipeline's input. Image URLs point at the demo
image server (`danqing.demo.server`) on 127.0.0.1, which renders the image case named in the path.
"""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl

from danqing.demo import vocab as V
from danqing.urls import registered_domain

CRAWLS_BY_BATCH = {
    "b1": ["CC-MAIN-2024-10", "CC-MAIN-2024-18"],
    "b2": ["CC-MAIN-2024-22", "CC-MAIN-2024-26"],
    "b3": ["CC-MAIN-2024-30", "CC-MAIN-2024-33"],
    "b4": ["CC-MAIN-2024-38", "CC-MAIN-2024-42"],
    "b5": ["CC-MAIN-2024-46", "CC-MAIN-2024-51"],
    "b6": ["CC-MAIN-2025-05", "CC-MAIN-2025-08"],
    "b7": ["CC-MAIN-2025-13", "CC-MAIN-2025-18"],
}

# topic -> (image hosts, page hosts)
HOSTS = {
    "ecommerce": (
        [
            "img.alicdn.com",
            "gw.alicdn.com",
            "img14.360buyimg.com",
            "image.suning.cn",
            "y.zdmimg.com",
        ],
        [
            "item.taobao.com",
            "detail.tmall.com",
            "item.jd.com",
            "product.suning.com",
            "www.smzdm.com",
        ],
    ),
    "news": (
        [
            "n.sinaimg.cn",
            "p3-sign.toutiaoimg.com",
            "inews.gtimg.com",
            "5b0988e595225.cdn.sohucs.com",
            "x0.ifengimg.com",
        ],
        ["news.sina.com.cn", "www.toutiao.com", "new.qq.com", "www.sohu.com", "news.ifeng.com"],
    ),
    "travel": (
        ["dimg04.tripcdn.com", "img1.qunarzz.com", "img.mafengwo.net", "p1.itc.cn"],
        ["you.ctrip.com", "travel.qunar.com", "www.mafengwo.cn", "www.sohu.com"],
    ),
    "food": (
        ["i2.chuimg.com", "s1.st.meishij.net", "pic.rmb.bdstatic.com", "p6-tt.byteimg.com"],
        ["www.xiachufang.com", "www.meishij.net", "baijiahao.baidu.com", "www.douyin.com"],
    ),
    "games": (
        ["game.gtimg.cn", "i0.hdslb.com", "ossweb-img.qq.com", "img.3dmgame.com"],
        ["pvp.qq.com", "www.bilibili.com", "ys.mihoyo.com", "www.3dmgame.com"],
    ),
    "tech": (
        [
            "img.ithome.com",
            "i.cdn-tech.example",
            "x0.ifengimg.com",
            "n.sinaimg.cn",
            "wx1.sinaimg.cn",
        ],
        ["www.ithome.com", "tech.sina.com.cn", "tech.ifeng.com", "www.zol.com.cn"],
    ),
    "traditional": (
        ["uc.udn.com.tw", "im2.book.com.tw", "static.hk01.com"],
        ["udn.com", "www.books.com.tw", "www.hk01.com"],
    ),
}
BLACKLISTED_HOSTS = [
    "img.tuku-caiji.example",
    "cdn.spam-pic.example",
    "via.placeholder.com",
    "dummyimage.com",
    "static.cnzz.com",
]

# category -> (expected_step, expected_transform, weight). Weights sum to ~1.
TEXT_CATEGORIES = {
    "clean": (None, None, 0.535),
    "non_zho_tag": ("language_control", None, 0.05),
    "unsafe_text": ("text_safety", None, 0.025),
    "blacklisted_domain": ("source_reliability", None, 0.025),
    "too_short": ("text_constraints", None, 0.03),
    "too_long": ("text_constraints", None, 0.02),
    "english_only": ("cn_detect", None, 0.015),
    "japanese_korean": ("cn_detect", None, 0.015),
    "traditional": (None, "font_conversion", 0.04),
    "interface_only": ("text_constraints", None, 0.015),
    "stop_words_only": ("stop_words", None, 0.01),
    "no_noun": ("nouns", None, 0.02),
    "unk_heavy": ("unk_tokens", None, 0.015),
    "low_entropy": ("text_entropy", None, 0.025),
    "emoji_noise": (None, "emoji_special_chars", 0.04),
    "ads_text": ("text_content_safety", None, 0.02),
}
# Image cases, assigned to rows whose text is clean. Case -> (expected_step, weight within clean).
IMAGE_CASES = {
    "photo": (None, 0.62),
    "redirect": (None, 0.02),
    "huge": (None, 0.01),
    "http_404": ("download_images", 0.03),
    "http_500": ("download_images", 0.015),
    "timeout": ("download_images", 0.01),
    "truncated": ("download_images", 0.015),
    "not_image": ("download_images", 0.015),
    "tiny": ("image_geometry", 0.03),
    "extreme_aspect": ("image_geometry", 0.03),
    "flat": ("low_textual_images", 0.025),
    "blurry": ("blurry_images", 0.04),
    "text_screenshot": ("image_entropy", 0.02),
    "posterized": ("image_entropy", 0.02),
    "exact_dup": ("exact_dedup", 0.03),
    "near_dup": ("semantic_dedup", 0.04),
    "cross_batch_dup": ("cross_batch_dedup", 0.03),
}
# The web copies the offline embedder's beta (0.02) links reliably: the same picture served at
# another size or JPEG quality. Slight crops and colour shifts (near_dup's other variants) are
# farther under EfficientNet-Lite0 (docs/calibration.md).
NEAR_DUP_VARIANTS = ["resize", "reencode"]
MALFORMED_KINDS = ["missing_url", "invalid_utf8", "wrong_type", "invalid_json", "invalid_url"]


@dataclass
class DemoRow:
    uid: str
    url: str
    alt_text: str
    page_url: str
    domain: str
    languages: str
    crawl: str
    batch: str
    category: str
    expected_step: str | None
    expected_transform: str | None
    image_case: str
    dup_of: str | None = None


def _pick(rng: random.Random, items: list[str]) -> str:
    return items[rng.randrange(len(items))]


def caption(rng: random.Random, topic: str) -> str:
    """One realistic alt text for `topic`."""
    p = lambda items: _pick(rng, items)  # noqa: E731
    if topic == "ecommerce":
        # Real shop titles are long keyword strings; short ones are rare.
        forms = [
            lambda: (
                f"{p(V.YEARS)}新款{p(V.EC_STYLES)}{p(V.EC_ITEMS)}{p(V.EC_PEOPLE)}{p(V.EC_SEASONS)}"
                f"{p(V.EC_COLOURS)} {p(V.EC_TAILS)}"
            ),
            lambda: (
                f"{p(V.EC_BRANDS)}{p(V.EC_ITEMS)}{p(V.EC_PEOPLE)}{p(V.EC_COLOURS)}{p(V.EC_STYLES)}款"
                f" {p(V.EC_SEASONS)}新品 {p(V.EC_TAILS)}"
            ),
            lambda: (
                f"{p(V.EC_BRANDS)}官方旗舰店 {p(V.EC_STYLES)}{p(V.EC_ITEMS)} {p(V.EC_PEOPLE)}"
                f"{p(V.EC_SEASONS)}新品 {p(V.EC_TAILS)}"
            ),
        ]
    elif topic == "news":
        forms = [
            lambda: f"{p(V.CITIES)}{p(V.NEWS_EVENTS)} {p(V.NEWS_TAILS)}",
            lambda: f"{p(V.CITIES)}：{p(V.NEWS_SUBJECTS)}{p(V.NEWS_ACTIONS)}，{p(V.NEWS_TAILS)}",
            lambda: f"{p(V.YEARS)}年{p(V.CITIES)}{p(V.NEWS_EVENTS)}，{p(V.NEWS_TAILS)}",
        ]
    elif topic == "travel":
        forms = [
            lambda: (
                f"{p(V.CITIES)}出发去{p(V.SIGHTS)}看{p(V.SIGHTS)}{p(V.TRAVEL_SCENES)}，{p(V.TRAVEL_TAILS)}"
            ),
            lambda: (
                f"{p(V.YEARS)}年{p(V.SIGHTS)}{p(V.TRAVEL_SCENES)} {p(V.TRAVEL_TAILS)}，"
                f"{p(V.TRAVEL_TAILS)}"
            ),
        ]
    elif topic == "food":
        forms = [
            lambda: f"{p(V.DISHES)}{p(V.FOOD_TAILS)}，{p(V.CITIES)}人最爱的家乡味道",
            lambda: f"{p(V.CITIES)}美食推荐：{p(V.DISHES)}{p(V.FOOD_TAILS)}，{p(V.DISHES)}也不错",
        ]
    elif topic == "games":
        forms = [
            lambda: f"《{p(V.GAMES)}》{p(V.GAME_THINGS)}，{p(V.GAME_TAILS)}",
            lambda: f"{p(V.YEARS)}年《{p(V.GAMES)}》{p(V.GAME_THINGS)} {p(V.GAME_TAILS)}",
        ]
    else:
        forms = [
            lambda: (
                f"{p(V.TECH_BRANDS)}发布新款{p(V.TECH_DEVICES)} {p(V.TECH_FEATURES)}，{p(V.TECH_TAILS)}"
            ),
            lambda: f"{p(V.TECH_BRANDS)}{p(V.TECH_DEVICES)}{p(V.TECH_FEATURES)}，{p(V.TECH_TAILS)}",
        ]
    return forms[rng.randrange(len(forms))]()


TOPICS = ["ecommerce", "news", "travel", "food", "games", "tech"]


def noisy_caption(rng: random.Random, category: str) -> str:
    p = lambda items: _pick(rng, items)  # noqa: E731
    topic = p(TOPICS)
    if category == "unsafe_text":
        return (
            f"{p(V.UNSAFE_SOURCE)} {caption(rng, topic)}"
            if rng.random() < 0.5
            else p(V.UNSAFE_SOURCE)
        )
    if category == "too_short":
        short = [t for t in V.EC_ITEMS + V.DISHES + V.SIGHTS if len(t) < 5]
        return p(short + [f"{p(V.CITIES)[:2]}美食", f"{p(V.CITIES)[:2]}夜景"])
    if category == "too_long":
        parts = [caption(rng, p(TOPICS)) for _ in range(10)]
        return "，".join(parts)
    if category == "english_only":
        return p(V.ENGLISH)
    if category == "japanese_korean":
        return p(V.JAPANESE + V.KOREAN)
    if category == "traditional":
        return p(V.TRADITIONAL)
    if category == "interface_only":
        return p(V.INTERFACE_ONLY)
    if category == "stop_words_only":
        return p(V.STOP_ONLY)
    if category == "no_noun":
        return p(V.NO_NOUN)
    if category == "unk_heavy":
        # A name or term in rare characters, as in a poem title or a shop name.
        rare = "".join(rng.choice(V.RARE_CHARS) for _ in range(rng.randint(6, 8)))
        return f"{caption(rng, topic)} {rare}"
    if category == "low_entropy":
        # Garbled characters among ids and sizes: nothing the reference corpus knows.
        return (
            f"{p(V.GARBLED)} {rng.randint(100, 9999)}x{rng.randint(100, 999)} "
            f"{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"
        )
    if category == "emoji_noise":
        base = caption(rng, topic)
        noise = V.EMOJI + V.SPECIAL
        pieces = [p(noise)]
        for ch in base:
            pieces.append(ch)
            if rng.random() < 0.08:
                pieces.append(p(noise))
        pieces.append(p(V.EMOJI) * rng.randint(1, 3))
        return "".join(pieces)
    if category == "ads_text":
        return f"{caption(rng, topic)} {p(V.ADS)}"
    raise ValueError(category)


def _weighted(rng: random.Random, table: dict) -> str:
    names = list(table)
    weights = [table[n][-1] for n in names]
    return rng.choices(names, weights=weights, k=1)[0]


def generate(rows: int, seed: int, port: int = 8765) -> list[DemoRow]:
    """`rows` raw pairs (before malformed lines are added), deterministic in `seed`."""
    rng = random.Random(seed)
    out: list[DemoRow] = []
    seen_captions: set[str] = set()
    photo_keys: dict[str, list[str]] = {b: [] for b in CRAWLS_BY_BATCH}
    batches = list(CRAWLS_BY_BATCH)
    image_id = 0
    for index in range(rows):
        batch = batches[index % len(batches)]
        crawl = rng.choice(CRAWLS_BY_BATCH[batch])
        category = _weighted(rng, TEXT_CATEGORIES)
        expected_step, expected_transform, _ = TEXT_CATEGORIES[category]
        topic = "traditional" if category == "traditional" else rng.choice(TOPICS)
        if category in ("clean", "non_zho_tag", "blacklisted_domain"):
            text = caption(rng, rng.choice(TOPICS))
            for _ in range(20):  # distinct captions, as deduplicated web alt text would be
                if text not in seen_captions:
                    break
                text = caption(rng, rng.choice(TOPICS))
        else:
            text = noisy_caption(rng, category)
        seen_captions.add(text)
        image_hosts, page_hosts = HOSTS[topic if topic in HOSTS else "news"]
        image_host = rng.choice(image_hosts)
        page_host = rng.choice(page_hosts)
        if category == "blacklisted_domain":
            image_host = rng.choice(BLACKLISTED_HOSTS)
        languages = "zho" if rng.random() < 0.85 else "zho,eng"
        if category == "non_zho_tag":
            languages = rng.choice(["eng", "jpn", "kor,eng", "", "rus", "eng,zho-hant"])

        image_case = "photo"
        dup_of = None
        if category == "clean":
            image_case = _weighted(rng, IMAGE_CASES)
            expected_step = IMAGE_CASES[image_case][0]
            if image_case in ("exact_dup", "near_dup") and not photo_keys[batch]:
                image_case, expected_step = "photo", None
            if image_case == "cross_batch_dup":
                others = [b for b in batches if b != batch and photo_keys[b]]
                if not others:
                    image_case, expected_step = "photo", None
        if image_case in ("exact_dup", "near_dup"):
            dup_of = rng.choice(photo_keys[batch])
            variant = rng.choice(NEAR_DUP_VARIANTS) if image_case == "near_dup" else "exact"
            path = f"{image_case}/{dup_of}-{variant}-{index}.jpg"
        elif image_case == "cross_batch_dup":
            other = rng.choice([b for b in batches if b != batch and photo_keys[b]])
            dup_of = rng.choice(photo_keys[other])
            path = f"{image_case}/{dup_of}-{index}.jpg"
        else:
            key = f"{image_id:06d}"
            image_id += 1
            if image_case == "photo" and expected_step is None:
                photo_keys[batch].append(key)
            path = f"{image_case}/{key}.jpg"
        url = f"http://127.0.0.1:{port}/{image_host}/{path}"
        page_url = f"https://{page_host}/{topic}/{rng.randrange(10**6, 10**7)}.html"
        domain = registered_domain(image_host)
        uid = f"dq{seed % 1000:03d}{index:07d}"
        out.append(
            DemoRow(
                uid,
                url,
                text,
                page_url,
                domain,
                languages,
                crawl,
                batch,
                category,
                expected_step,
                expected_transform,
                image_case,
                dup_of,
            )
        )
    return out


def malformed_lines(rng: random.Random, count: int, port: int) -> list[tuple[bytes, str]]:
    """JSONL lines that break the input contract, with the uid the partition step records."""
    lines = []
    for i in range(count):
        kind = MALFORMED_KINDS[i % len(MALFORMED_KINDS)]
        uid = f"bad{i:05d}"
        record = {
            "uid": uid,
            "url": f"http://127.0.0.1:{port}/img.alicdn.com/photo/bad{i}.jpg",
            "alt_text": "2025新款夏季连衣裙女士宽松显瘦",
            "page_url": "https://item.taobao.com/x.html",
            "domain": "alicdn.com",
            "languages": "zho",
            "crawl": "CC-MAIN-2025-05",
            "batch": "b6",
        }
        if kind == "missing_url":
            record.pop("url")
            lines.append((json.dumps(record, ensure_ascii=False).encode(), uid))
        elif kind == "wrong_type":
            record["alt_text"] = rng.randrange(10**6)
            lines.append((json.dumps(record, ensure_ascii=False).encode(), uid))
        elif kind == "invalid_url":
            record["url"] = "javascript:void(0)"
            lines.append((json.dumps(record, ensure_ascii=False).encode(), uid))
        elif kind == "invalid_utf8":
            raw = json.dumps(record, ensure_ascii=False).encode()
            # A GBK-encoded caption inside an otherwise UTF-8 file: a classic crawl artefact.
            lines.append((raw.replace("连衣裙".encode(), "连衣裙".encode("gbk")), None))
        else:
            lines.append((json.dumps(record, ensure_ascii=False).encode()[:-7], None))
    return lines


def write(
    out_dir: str | Path,
    rows: int,
    seed: int,
    port: int = 8765,
    duplicates: int = 20,
    malformed: int = 25,
) -> dict:
    """Write `raw_pairs.jsonl.gz` (the pipeline input) and `labels.parquet` (ground truth)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed + 1)
    demo = generate(rows, seed, port)
    input_fields = ["uid", "url", "alt_text", "page_url", "domain", "languages", "crawl", "batch"]
    labels = [asdict(r) | {"line": None, "duplicate_copy": False} for r in demo]
    lines: list[bytes] = []
    for r in demo:
        lines.append(
            json.dumps({k: getattr(r, k) for k in input_fields}, ensure_ascii=False).encode()
        )
    # Exact repeats of earlier rows (same uid): the partition step keeps the first.
    for r in rng.sample(demo, duplicates):
        lines.append(
            json.dumps({k: getattr(r, k) for k in input_fields}, ensure_ascii=False).encode()
        )
        labels.append(
            asdict(r)
            | {
                "expected_step": "partition",
                "category": "duplicate_uid",
                "line": len(lines) - 1,
                "duplicate_copy": True,
            }
        )
    for raw, uid in malformed_lines(rng, malformed, port):
        insert_at = rng.randrange(len(lines))
        lines.insert(insert_at, raw)
        for lab in labels:
            if lab["line"] is not None and lab["line"] >= insert_at:
                lab["line"] += 1
        labels.append(
            {
                "uid": uid,
                "category": "malformed",
                "expected_step": "partition",
                "expected_transform": None,
                "image_case": "photo",
                "dup_of": None,
                "batch": None,
                "line": insert_at,
                "duplicate_copy": False,
            }
        )
    # Rows whose uid is unknown to the pipeline get the uid the partition step gives them.
    for lab in labels:
        if lab["uid"] is None:
            lab["uid"] = f"row:{lab['line']}"
    # mtime=0: the same seed gives the same bytes.
    with (
        open(out / "raw_pairs.jsonl.gz", "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as handle,
    ):
        handle.write(b"\n".join(lines) + b"\n")
    frame = pl.DataFrame(
        [
            {
                k: lab.get(k)
                for k in (
                    "uid",
                    "category",
                    "expected_step",
                    "expected_transform",
                    "image_case",
                    "dup_of",
                    "batch",
                    "duplicate_copy",
                )
            }
            for lab in labels
        ],
        schema={
            "uid": pl.String,
            "category": pl.String,
            "expected_step": pl.String,
            "expected_transform": pl.String,
            "image_case": pl.String,
            "dup_of": pl.String,
            "batch": pl.String,
            "duplicate_copy": pl.Boolean,
        },
    )
    frame.write_parquet(out / "labels.parquet")
    return {
        "rows": len(lines),
        "pairs": len(demo),
        "duplicates": duplicates,
        "malformed": malformed,
    }
