import gzip
import json

import polars as pl
import pytest

from danqing import partition as P
from danqing.io import read_json
from danqing.urls import domain_of


def _record(i, **kw):
    rec = {
        "uid": f"u{i}",
        "url": f"https://img.alicdn.com/{i}.jpg",
        "alt_text": f"商品图片 {i}",
        "page_url": "https://item.taobao.com/1.html",
        "domain": "alicdn.com",
        "languages": "zho",
        "crawl": "CC-MAIN-2024-10",
        "batch": "b1",
    }
    rec.update(kw)
    return rec


def _write_jsonl(path, lines):
    with gzip.open(path, "wb") as handle:
        for line in lines:
            handle.write(
                (line if isinstance(line, bytes) else json.dumps(line, ensure_ascii=False).encode())
                + b"\n"
            )


def _run(tmp_path, src, shard_size=3, num_batches=7, fmt="auto"):
    out = tmp_path / "part"
    counts = P.partition(
        str(src),
        str(out),
        str(tmp_path / "drops.parquet"),
        str(tmp_path / "counts.json"),
        num_batches,
        shard_size,
        fmt,
    )
    manifest = P.read_manifest(str(out))
    frames = {
        (b, s): pl.read_parquet(out / b / f"{s}.parquet")
        for b, shards in manifest.items()
        for s in shards
    }
    return counts, manifest, frames, pl.read_parquet(tmp_path / "drops.parquet")


def test_normalise_checks_the_contract():
    row = P.normalise(_record(1, alt_text="  两件套\n 连衣裙  ", languages=["zho", "eng"]))
    assert row.alt_text == "两件套 连衣裙" and row.alt_text_raw == "  两件套\n 连衣裙  "
    assert row.languages == "zho,eng"
    assert P.normalise(_record(2, uid=42)).uid == "42"
    derived = P.normalise(_record(3, uid=None))
    assert derived.uid == P.derive_uid("https://img.alicdn.com/3.jpg", "商品图片 3")
    # `domain` means the registered domain whatever the input gives, as WARC ingestion writes it.
    assert P.normalise(_record(4, domain=None)).domain == "alicdn.com"
    assert P.normalise(_record(4, domain="IMG.Alicdn.com")).domain == "alicdn.com"
    assert P.normalise(_record(4, domain=None)).domain == domain_of("https://img.alicdn.com/4.jpg")
    tw = _record(5, url="https://pgw.udn.com.tw/a.jpg", domain=None)
    assert P.normalise(tw).domain == "udn.com.tw"
    cases = {
        "missing_url": {"url": None},
        "invalid_url": {"url": "javascript:void(0)"},
        "missing_alt_text": {"alt_text": "   "},
        "wrong_type:alt_text": {"alt_text": 123},
        "wrong_type:languages": {"languages": {"a": 1}},
        "wrong_type:uid": {"uid": [1]},
        "invalid_batch": {"batch": "../etc"},
        "invalid_utf8:alt_text": {"alt_text": "\ud800abc"},
    }
    for reason, change in cases.items():
        with pytest.raises(P.Malformed, match=reason.replace("(", r"\(")):
            P.normalise(_record(0, **change))
    # The host is read as the rest of the workflow reads it (danqing.urls.host_of).
    for url in ("http://[::1/a.jpg", "http:///a.jpg", "ftp://x.cn/a.jpg"):
        with pytest.raises(P.Malformed, match="invalid_url"):
            P.normalise(_record(0, url=url))
    assert P.normalise(_record(0, url="HTTP://User@IMG.x.cn:8080/a.jpg", domain=None)).domain == (
        "x.cn"
    )


def test_partition_jsonl_drops_malformed_and_duplicates(tmp_path):
    lines = [_record(i, batch="b1" if i % 2 else "b2") for i in range(10)]
    lines.insert(3, b'{"uid": "bad1", "url": "https://x.cn/1.jpg", "alt_text": "\xc1\xac\xd2\xc2"}')
    lines.insert(5, b'{"uid": "bad2", "url": ')  # truncated JSON
    lines.append(_record(1, batch="b1"))  # same uid as an earlier row: a duplicate
    lines.append(_record(99, url=None))
    lines.append(b"[1, 2]")
    src = tmp_path / "in.jsonl.gz"
    _write_jsonl(src, lines)
    counts, manifest, frames, drops = _run(tmp_path, src)
    assert counts["input"] == 15 and counts["kept"] == 10
    assert counts["malformed"] == 4 and counts["duplicate_uid"] == 1
    assert counts["input"] == counts["kept"] + counts["dropped"]
    reasons = dict(zip(drops["uid"], drops["reason"], strict=True))
    assert reasons["row:3"] == "invalid_utf8"
    assert reasons["row:5"] == "invalid_json"
    assert reasons["u99"] == "missing_url"
    assert reasons["row:14"] == "not_an_object"
    assert reasons["u1"] == "duplicate_uid"
    assert set(manifest) == {"b1", "b2"}
    # 5 rows per batch at 3 rows per shard: 2 shards each, every row in exactly one shard.
    assert all(len(s) == 2 for s in manifest.values())
    uids = pl.concat(frames.values())["uid"].to_list()
    assert sorted(uids) == sorted(f"u{i}" for i in range(10))
    for (batch, _), frame in frames.items():
        assert set(frame["batch"]) <= {batch}
    assert read_json(tmp_path / "counts.json")["kept"] == 10


def test_partition_parquet_assigns_missing_batches_and_keeps_first(tmp_path):
    rows = [_record(i, batch=None) for i in range(40)]
    rows.append(_record(5, batch=None, alt_text="second copy"))
    src = tmp_path / "in.parquet"
    pl.DataFrame(rows).write_parquet(src)
    counts, manifest, frames, drops = _run(tmp_path, src, shard_size=100, num_batches=3)
    assert set(manifest) <= {"b1", "b2", "b3"} and len(manifest) >= 2
    assert counts["kept"] == 40 and counts["duplicate_uid"] == 1
    kept = pl.concat(frames.values())
    assert kept.filter(pl.col("uid") == "u5")["alt_text"].item() == "商品图片 5"


def test_partition_is_deterministic_and_handles_empty_input(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(_record(i)) for i in range(7)) + "\n")
    first = _run(tmp_path / "a", src, shard_size=2)
    second = _run(tmp_path / "b", src, shard_size=2)
    assert first[1] == second[1]
    for key in first[2]:
        assert first[2][key].equals(second[2][key])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    counts, manifest, frames, drops = _run(tmp_path / "c", empty)
    assert counts["input"] == 0 and manifest == {} and drops.height == 0


def test_partition_rejects_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="input.format"):
        P.detect_format("pairs.csv")


def test_no_input_line_can_stop_the_partition(tmp_path):
    """Hostile lines become recorded reasons; the rows around them are kept."""
    src = tmp_path / "hostile.jsonl.gz"
    deep = b'{"uid": "deep", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    _write_jsonl(
        src,
        [
            b"\xef\xbb\xbf" + json.dumps(_record(0), ensure_ascii=False).encode(),  # BOM, first row
            b'{"uid": "\\ud800", "url": "https://a.cn/1.jpg", "alt_text": "lone surrogate uid"}',
            b'{"uid": "u2", "url": "https://a.cn/2.jpg", "alt_text": "x", "languages": "zh\\udfff"}',
            b'{"uid": ' + b"9" * 5000 + b', "url": "https://a.cn/3.jpg", "alt_text": "huge int"}',
            deep,
            json.dumps(_record(5, uid="u" * 5000)).encode(),
            json.dumps(_record(6)).encode(),
        ],
    )
    counts, _, frames, drops = _run(tmp_path, src)
    kept = sorted(u for f in frames.values() for u in f["uid"].to_list())
    assert kept == ["u0", "u6"]
    assert sorted(drops["reason"].to_list()) == sorted(
        [
            "invalid_utf8:uid",
            "invalid_utf8:languages",
            "invalid_json",
            "invalid_json",
            "uid_too_long",
        ]
    )
    assert drops["uid"].str.len_chars().max() <= 256
    assert counts["input"] == 7 == len(kept) + drops.height


def test_a_float_uid_column_of_integers_is_read_as_integers(tmp_path):
    src = tmp_path / "floats.parquet"
    pl.DataFrame(
        {
            "uid": [1.0, None, 3.0],
            "url": [f"https://a.cn/{i}.jpg" for i in range(3)],
            "alt_text": ["一", "二", "三"],
            "batch": ["b1"] * 3,
        }
    ).write_parquet(src)
    _, _, frames, drops = _run(tmp_path, src)
    uids = sorted(u for f in frames.values() for u in f["uid"].to_list())
    assert drops.height == 0 and uids[:2] == ["1", "3"] and len(uids) == 3
