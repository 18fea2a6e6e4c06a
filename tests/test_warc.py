"""Common Crawl ingestion: WARC files written here, pairs and counts checked exactly."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, datetime

import polars as pl
import pytest

from danqing import config
from danqing.ingest.archive import check_counts, extract_warc
from danqing.ingest.charsets import decode_html, python_codecs
from danqing.ingest.html_images import absolute_url, best_srcset_url, page_images, parse_srcset
from danqing.ingest.pairs import PAIR_SCHEMA
from danqing.ingest.reasons import SkipRecord
from danqing.ingest.sources import (
    batch_of_crawl,
    partition_input_path,
    warc_configured,
    warc_locations,
    warc_sources,
)
from danqing.urls import registered_domain
from tests.conftest import make_workdir, run_snakemake
from tests.support.warc_write import capture, http_response, warcinfo, write_warc

CRAWL = "CC-MAIN-2024-10"
DATE = datetime(2024, 2, 21, 10, 11, 12, tzinfo=UTC)
NEWS = "http://news.example.cn/2024/a/index.html"

NEWS_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>新闻</title></head><body>
<img src="/img/1.jpg" alt="  北京  天安门
广场 ">
<img src="pics/2.png" alt="猫 &amp; 狗 &lt;可爱&gt; &#x4E2D;&#25991; &quot;照片&quot;&nbsp;合集">
<img src="//img.alicdn.com/tfs/3.jpg" alt="淘宝商品图片">
<img src="data:image/png;base64,iVBORw0KGgo=" alt="内联图片">
<img src="/img/4.jpg" alt=""><img src="/img/5.jpg"><img src="/img/5b.jpg" alt=" &#9;  ">
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" data-src="/lazy/6.jpg" alt="懒加载图片">
<img src="/static/blank.gif" data-original="https://cdn.example.cn/7.jpg" alt="原图">
<img src="/static/placeholder.png" srcset="/8-small.jpg 320w, /8-large.jpg 1024w" alt="响应式图片">
<img data-srcset="/9.jpg 1x, /9@2x.jpg 2x" alt="高清">
<img src="/img/1.jpg" alt="北京 天安门 广场">
<img src="javascript:void(0)" alt="坏链接">
<IMG SRC="/img/10.jpg#frag" ALT="片段">
<img alt="没有地址">
</body></html>"""
GBK_PAGE = (
    '<html><head><meta charset="gbk"><base href="http://static.example.com.cn/assets/">'
    '</head><body><p>人名用字</p><img src="p/1.jpg" alt="堃喆镕 人名用字"></body></html>'
)
GB18030_PAGE = (
    '<html><body><img src="https://www.example.net.cn/a.jpg" alt="𠮷野家 牛丼 图片"></body></html>'
)
BIG5_PAGE = (
    '<html><head><meta http-equiv="Content-Type" content="text/html; charset=big5">'
    '</head><body><img src="https://pgw.udn.com.tw/gw/photo.php?u=1.jpg" '
    'alt="臺灣 風景 照片"></body></html>'
)
ENGLISH_PAGE = (
    '<html><body><p>Café</p><img src="images/cafe.jpg" alt="Café terrace at night">'
    '<img src="http://news.example.cn/img/1.jpg" alt="北京 天安门 广场"></body></html>'
)
JAPANESE_PAGE = (
    '<html><body><img src="https://img.example.jp/neko.png" alt="かわいい猫の写真"></body></html>'
)
CUT_PAGE = '<html><body><img src="/ok.jpg" alt="完整的图片"><p>文字<img src="/cut.jpg" alt="被截断'
GZIP_PAGE = '<html><body><img src="a.jpg" alt="压缩页面图片"></body></html>'


def page(html: str, charset: str = "utf-8", content_type: str | None = None, **kw) -> bytes:
    return http_response(
        html.encode(charset), content_type or f"text/html; charset={charset}", **kw
    )


def main_records() -> list[bytes]:
    records = [warcinfo(CRAWL)]
    records += capture(NEWS, page(NEWS_PAGE), languages="zho,eng")
    # Charset only in <meta>; languages only in the metadata record, as in Common Crawl WARCs.
    records += capture(
        "http://www.example.com.cn/gbk.html", page(GBK_PAGE, "gbk", "text/html"), cld2=["zho"]
    )
    # GB18030-only characters on a page whose server says GB2312.
    records += capture(
        "http://www.example.net.cn/gb.html",
        page(GB18030_PAGE, "gb18030", "text/html; charset=GB2312"),
        languages="zho",
    )
    records += capture(
        "http://www.udn.com.tw/news/1.html", page(BIG5_PAGE, "big5", "text/html"), languages="zho"
    )
    # UTF-8 with no charset declared anywhere; its second image repeats one of the news page.
    records += capture(
        "http://en.example.org/gallery/index.html",
        page(ENGLISH_PAGE, content_type="text/html"),
        cld2=["eng"],
    )
    records += capture("https://www.example.jp/", page(JAPANESE_PAGE), languages="jpn")
    # Cut by the crawler's payload limit in the middle of an <img> tag.
    records += capture(
        "http://news.example.cn/cut.html", page(CUT_PAGE), languages="zho", truncated="length"
    )
    records += capture(
        "http://gz.example.cn/",
        http_response(
            gzip.compress(GZIP_PAGE.encode(), mtime=0), headers={"Content-Encoding": "gzip"}
        ),
        languages="zho",
    )
    records += capture(
        "http://news.example.cn/photo.jpg",
        http_response(b"\xff\xd8\xff\xe0" + bytes(200), "image/jpeg"),
        languages="",
    )
    records += capture(
        "http://news.example.cn/missing.html",
        page("<html><img src='x.jpg' alt='找不到'></html>", status="404 Not Found"),
        languages="zho",
    )
    records += capture(
        "http://junk.example.com/u.html",
        http_response(
            b"<html><body>" + bytes(range(0x80, 0x100)) * 8 + b"<img src='x.jpg' alt='x'>",
            "text/html; charset=x-unknown",
        ),
        languages="",
    )
    records += capture(
        "http://bin.example.com/b.html",
        http_response(b"\x00\x01\x02\x03<\x00\x00\x00\x05" * 200, "text/html"),
        languages="",
    )
    records += capture(
        "http://bad.example.com/", b"this is not an HTTP response\r\n\r\n<img>", languages=""
    )
    return records


def cut_member() -> bytes:
    """The first 70% of one gzip member: a WARC copied while it was being written."""
    body = page(
        "<html><body>"
        + "".join(f'<img src="/t/{i}.jpg" alt="尾部图片{i}">' for i in range(200))
        + "</body></html>"
    )
    member = gzip.compress(
        b"".join(capture("http://tail.example.cn/", body, languages="zho")[1:2]), mtime=0
    )
    return member[: int(len(member) * 0.7)]


@pytest.fixture(scope="module")
def main_warc(tmp_path_factory):
    return str(
        write_warc(
            tmp_path_factory.mktemp("warc") / "main.warc.gz", main_records(), tail=cut_member()
        )
    )


def uid(url: str, alt: str, crawl: str = CRAWL) -> str:
    return hashlib.sha1(f"{crawl}\t{url}\t{alt}".encode()).hexdigest()[:20]


def row(url, alt, page_url, domain, languages):
    return {
        "uid": uid(url, alt),
        "url": url,
        "alt_text": alt,
        "page_url": page_url,
        "page_title": "新闻" if page_url == NEWS else None,  # the only page with a <title>
        "domain": domain,
        "languages": languages,
        "crawl": CRAWL,
        "batch": None,
        "record_date": DATE,
    }


EXPECTED_ROWS = [
    row("http://news.example.cn/img/1.jpg", "北京 天安门 广场", NEWS, "example.cn", "zho,eng"),
    row(
        "http://news.example.cn/2024/a/pics/2.png",
        '猫 & 狗 <可爱> 中文 "照片" 合集',
        NEWS,
        "example.cn",
        "zho,eng",
    ),
    row("http://img.alicdn.com/tfs/3.jpg", "淘宝商品图片", NEWS, "alicdn.com", "zho,eng"),
    row("http://news.example.cn/lazy/6.jpg", "懒加载图片", NEWS, "example.cn", "zho,eng"),
    row("https://cdn.example.cn/7.jpg", "原图", NEWS, "example.cn", "zho,eng"),
    row("http://news.example.cn/8-large.jpg", "响应式图片", NEWS, "example.cn", "zho,eng"),
    row("http://news.example.cn/9@2x.jpg", "高清", NEWS, "example.cn", "zho,eng"),
    row("http://news.example.cn/img/10.jpg", "片段", NEWS, "example.cn", "zho,eng"),
    row(
        "http://static.example.com.cn/assets/p/1.jpg",
        "堃喆镕 人名用字",
        "http://www.example.com.cn/gbk.html",
        "example.com.cn",
        "zho",
    ),
    row(
        "https://www.example.net.cn/a.jpg",
        "𠮷野家 牛丼 图片",
        "http://www.example.net.cn/gb.html",
        "example.net.cn",
        "zho",
    ),
    row(
        "https://pgw.udn.com.tw/gw/photo.php?u=1.jpg",
        "臺灣 風景 照片",
        "http://www.udn.com.tw/news/1.html",
        "udn.com.tw",
        "zho",
    ),
    row(
        "http://en.example.org/gallery/images/cafe.jpg",
        "Café terrace at night",
        "http://en.example.org/gallery/index.html",
        "example.org",
        "eng",
    ),
    row(
        "https://img.example.jp/neko.png",
        "かわいい猫の写真",
        "https://www.example.jp/",
        "example.jp",
        "jpn",
    ),
    row(
        "http://news.example.cn/ok.jpg",
        "完整的图片",
        "http://news.example.cn/cut.html",
        "example.cn",
        "zho",
    ),
    row("http://gz.example.cn/a.jpg", "压缩页面图片", "http://gz.example.cn/", "example.cn", "zho"),
]

EXPECTED_COUNTS = {
    "warc": None,  # filled in by the test
    "crawl": CRAWL,
    "batch": None,
    # 1 warcinfo + 13 pages x (request, response) + 2 metadata + the cut tail
    "records": 30,
    "response_records": 14,
    "html_records": 10,
    "parsed_records": 8,
    "truncated_payloads": 1,
    "skipped_records": {
        "truncated_record": 1,
        "invalid_page_url": 0,
        "bad_http": 1,
        "http_status": 1,
        "not_html": 1,
        "language_prefilter": 0,
        "content_encoding": 0,
        "empty_payload": 0,
        "undecodable": 1,
        "broken_html": 1,
    },
    # news page 15, one each on the GBK, GB18030, Big5, Japanese, cut and gzip pages, 2 English
    "images": 23,
    "pairs": 15,
    "dropped_pairs": {
        "empty_alt": 3,
        "no_src": 1,
        "data_uri": 1,
        "invalid_url": 1,
        "language_prefilter": 0,
        "duplicate_in_warc": 2,
    },
    "pairs_zho": 13,
    "encodings": {"ascii": 1, "cp950": 1, "gb18030": 2, "utf-8": 5},
    "archive_errors": [],
    "lost_bytes": 0,
    "resyncs": 0,
}


def test_pairs_of_a_warc_file_are_extracted_exactly(main_warc):
    frame, counts = extract_warc(main_warc)
    assert frame.schema == pl.Schema(PAIR_SCHEMA)
    assert frame.to_dicts() == EXPECTED_ROWS
    assert counts == {**EXPECTED_COUNTS, "warc": main_warc}


def test_counts_survive_a_json_round_trip_and_add_up(main_warc, tmp_path):
    _, counts = extract_warc(main_warc)
    check_counts(counts)
    assert json.loads(json.dumps(counts)) == counts


def test_corrupt_gzip_member_keeps_the_records_before_it(tmp_path):
    records = [warcinfo(CRAWL), *capture(NEWS, page(NEWS_PAGE), languages="zho")]
    path = write_warc(
        tmp_path / "corrupt.warc.gz",
        records,
        tail=b"\x1f\x8b\x08\x00" + b"\x00" * 6 + b"not deflate data" * 4,
    )
    frame, counts = extract_warc(str(path))
    assert frame.height == 8
    assert counts["response_records"] == 1 and counts["records"] == 3
    assert len(counts["archive_errors"]) == 1
    # A file that is no WARC at all is a configuration error, not an empty WARC.
    not_warc = tmp_path / "pairs.warc.gz"
    not_warc.write_bytes(gzip.compress(b"uid,url,alt_text\n"))
    with pytest.raises(ValueError, match="not a readable WARC file"):
        extract_warc(str(not_warc))


def test_prefilter_batches_and_crawl_fallback(main_warc, tmp_path):
    frame, counts = extract_warc(
        main_warc, batches={"b3": [CRAWL], "b4": ["CC-MAIN-2025-05"]}, prefilter_languages=["zho"]
    )
    assert frame["url"].to_list() == [r["url"] for r in EXPECTED_ROWS if "zho" in r["languages"]]
    assert set(frame["batch"]) == {"b3"}
    # The English page's tags come from its metadata record, after parsing: its two pairs are
    # dropped by the prefilter before duplicates are looked for. Pages whose own header misses
    # zho (Japanese, and the two junk pages tagged "") are skipped without being parsed.
    assert counts["dropped_pairs"]["language_prefilter"] == 2
    assert counts["dropped_pairs"]["duplicate_in_warc"] == 1
    assert counts["skipped_records"]["language_prefilter"] == 3
    assert counts["skipped_records"]["undecodable"] == counts["skipped_records"]["broken_html"] == 0
    assert counts["pairs"] == counts["pairs_zho"] == 13
    # No crawl id in the path nor a warcinfo record: the configured fallback.
    bare = write_warc(tmp_path / "bare.warc.gz", capture(NEWS, page(NEWS_PAGE), languages="zho"))
    frame, counts = extract_warc(
        str(bare), crawl="CC-MAIN-2025-05", batches={"b4": ["CC-MAIN-2025-05"]}
    )
    assert counts["crawl"] == "CC-MAIN-2025-05" and set(frame["batch"]) == {"b4"}
    assert frame["uid"][0] == uid(
        "http://news.example.cn/img/1.jpg", "北京 天安门 广场", "CC-MAIN-2025-05"
    )
    # A crawl id in the path wins over the fallback.
    named = bare.rename(tmp_path / f"crawl-data-{CRAWL}-x.warc.gz")
    assert extract_warc(str(named), crawl="CC-MAIN-2025-05")[1]["crawl"] == CRAWL


@pytest.mark.parametrize(
    "text, charset, http_charset",
    [
        ("简体中文：网页图片说明", "gbk", "gbk"),
        ("简体中文：网页图片说明", "gb2312", "gb2312"),
        ("𠮷野家 牛丼 ₿", "gb18030", "gb2312"),
        ("繁體中文：網頁圖片說明", "big5", "big5"),
        ("繁體中文：網頁圖片說明", "big5", None),  # detected
        ("简体中文：网页图片说明" * 5, "gb18030", None),  # detected
        ("混合 UTF-8 页面", "utf-8", "gbk"),  # mislabelled UTF-8
    ],
)
def test_charsets_decode_to_the_right_unicode(text, charset, http_charset):
    html = f"<html><body><p>{text}</p></body></html>"
    decoded, _ = decode_html(html.encode(charset), http_charset)
    assert decoded == html


def test_charset_order_is_the_browsers():
    """A CJK <meta> beats a single-byte HTTP default; Big5 is cp950 (then HKSCS); GBK's lone
    0x80 is the euro sign."""
    head = '<html><head><meta charset="{}"></head><body><p>{}</p></body></html>'
    page = head.format("gbk", "北京：今日天气晴")
    for server_default in ("ISO-8859-1", "windows-1252", "latin1"):
        assert decode_html(page.encode("gbk"), server_default) == (page, "gb18030")
    # A single-byte page that says so in both places stays single-byte.
    latin = head.format("iso-8859-1", "Café crème")
    assert decode_html(latin.encode("latin-1"), "ISO-8859-1") == (latin, "cp1252")
    big5 = head.format("big5", "活動時間‧週一～週五 售價￥100")
    assert decode_html(big5.encode("cp950"), "big5") == (big5, "cp950")
    hkscs = head.format("big5", "香港字：𨋢（升降機）")
    assert decode_html(hkscs.encode("big5hkscs"), "big5") == (hkscs, "big5hkscs")
    euro = head.format("gbk", "售价 100 ").encode("gbk").replace(b"100 ", b"100 \x80")
    assert decode_html(euro, "gbk")[0] == head.format("gbk", "售价 100 €")
    assert python_codecs("big5") == ("cp950", "big5hkscs")


def test_undecodable_payload_is_refused():
    with pytest.raises(SkipRecord, match="undecodable"):
        decode_html(bytes(range(0x80, 0x100)) * 4, "utf-8")


def test_urls_are_resolved_and_normalised_as_browsers_do():
    base = "https://news.example.cn/a//b/page.html"
    same = {
        absolute_url(u, base)[0]
        for u in (
            "HTTP://Img.Example.CN:80/图片/猫 1.jpg",
            "http://img.example.cn/%E5%9B%BE%E7%89%87/%E7%8C%AB%201.jpg",
            "http://img.example.cn/x/../图片/猫 1.jpg#top",
        )
    }
    assert same == {"http://img.example.cn/%E5%9B%BE%E7%89%87/%E7%8C%AB%201.jpg"}
    # `//` in the base path is kept (urljoin collapses it), a backslash is a slash
    assert absolute_url("c.jpg", base)[0] == "https://news.example.cn/a//b/c.jpg"
    assert absolute_url("img\\d.jpg", base)[0] == "https://news.example.cn/a//b/img/d.jpg"
    assert absolute_url("http://例子.中国/e.jpg", base)[0] == "http://xn--fsqu00a.xn--fiqs8s/e.jpg"
    assert absolute_url("https://a.cn:8443/f.jpg", base)[0] == "https://a.cn:8443/f.jpg"
    assert absolute_url("javascript:void(0)", base) == (None, "invalid_url")
    assert absolute_url("http://a b.cn/x.jpg", base) == (None, "invalid_url")


def test_url_resolution_and_srcset():
    base = "https://example.cn/a/b.html"
    assert absolute_url(" ../c.jpg\n", base) == ("https://example.cn/c.jpg", None)
    assert absolute_url("//cdn.example.cn/x.png#y", base) == (
        "https://cdn.example.cn/x.png",
        None,
    )
    assert absolute_url("DATA:image/png;base64,AA==", base) == (None, "data_uri")
    assert absolute_url("mailto:a@b.cn", base) == (None, "invalid_url")
    assert absolute_url("http://[bad/x.jpg", base) == (None, "invalid_url")
    assert absolute_url("   ", base) == (None, "no_src")
    assert parse_srcset("data:image/gif;base64,R0l,GOD 1x, /a.jpg 2x,/b.jpg") == [
        ("data:image/gif;base64,R0l,GOD", "1x"),
        ("/a.jpg", "2x"),
        ("/b.jpg", ""),
    ]
    assert best_srcset_url("/s.jpg 480w, /l.jpg 1200w, /m.jpg 800w") == "/l.jpg"
    assert registered_domain("img.alicdn.com") == "alicdn.com"
    assert registered_domain("udn.com.tw") == "udn.com.tw"
    assert registered_domain("127.0.0.1") == "127.0.0.1"
    # The Public Suffix List's default rule `*`: an unlisted top-level label is a public suffix.
    assert registered_domain("cdn.spam-pic.example") == "spam-pic.example"
    assert registered_domain("localhost") == "localhost"
    assert registered_domain("2001:db8::1") == "2001:db8::1"


def test_warc_list_from_paths_and_a_paths_file(tmp_path):
    listing = tmp_path / "warc.paths.gz"
    with gzip.open(listing, "wt") as handle:
        handle.write(
            f"crawl-data/{CRAWL}/segments/1/warc/CC-MAIN-1-00000.warc.gz\n\n"
            f"crawl-data/{CRAWL}/segments/2/warc/CC-MAIN-1-00001.warc.gz\n"
        )
    cfg = config.section(
        "warc",
        {
            "paths": ["/data/x/a.warc.gz", "/data/y/a.warc.gz"],
            "paths_file": str(listing),
            "base_url": "https://data.commoncrawl.org",
            "max_files": 3,
        },
    )
    assert warc_sources(cfg) == {
        "a-" + hashlib.sha1(b"/data/x/a.warc.gz").hexdigest()[:8]: "/data/x/a.warc.gz",
        "a-" + hashlib.sha1(b"/data/y/a.warc.gz").hexdigest()[:8]: "/data/y/a.warc.gz",
        "CC-MAIN-1-00000": f"https://data.commoncrawl.org/crawl-data/{CRAWL}/segments/1/warc/"
        "CC-MAIN-1-00000.warc.gz",
    }
    with pytest.raises(ValueError, match="listed twice"):
        warc_locations(config.section("warc", {"paths": ["a.warc.gz", "a.warc.gz"]}))
    assert warc_configured(cfg)


def test_the_partition_reads_the_crawl_when_any_warc_or_index_source_is_configured():
    assert not warc_configured(config.section("warc"))
    only_crawls = config.section("warc", {"index": {"crawls": [CRAWL]}})
    assert warc_configured(only_crawls)
    assert partition_input_path(only_crawls, {"path": "pairs.parquet"}) != "pairs.parquet"
    assert partition_input_path(config.section("warc"), {"path": "pairs.parquet"}) == (
        "pairs.parquet"
    )


def test_a_crawl_id_in_two_batches_is_an_error():
    with pytest.raises(ValueError, match="b1 and b2"):
        batch_of_crawl({"b1": [CRAWL], "b2": [CRAWL]})


@pytest.mark.e2e
def test_workflow_partitions_the_unique_pairs_of_two_warc_files(tmp_path, main_warc):
    # The second file repeats two pairs of the first (same crawl) from other pages, and adds one.
    second = write_warc(
        tmp_path / "second.warc.gz",
        [
            warcinfo(CRAWL),
            *capture(
                "http://mirror.example.cn/p.html",
                page(
                    '<img src="http://news.example.cn/img/1.jpg" alt="北京 天安门 广场">'
                    '<img src="https://cdn.example.cn/7.jpg" alt="原图">'
                    '<img src="/new.jpg" alt="新的图片 说明 文字">'
                ),
                languages="zho",
            ),
        ],
    )
    workdir = make_workdir(
        tmp_path / "wf",
        {
            "warc": {"paths": [main_warc, str(second)], "batches": {"b1": [CRAWL]}},
            "steps": ["language_control", "text_constraints"],
        },
    )
    run_snakemake(workdir)
    collected = pl.read_parquet(workdir / "results/ingest/raw_pairs.parquet")
    assert collected.height == 15 + 3
    assert collected["url"].to_list()[:15] == [r["url"] for r in EXPECTED_ROWS]
    counts = json.loads((workdir / "results/ingest/counts.json").read_text())
    assert (counts["warc_files"], counts["pairs"], counts["images"]) == (2, 18, 26)
    assert counts["skipped_records"]["undecodable"] == 1
    partition = json.loads((workdir / "results/steps/partition/counts.json").read_text())
    assert (partition["input"], partition["kept"], partition["duplicate_uid"]) == (18, 16, 2)
    shards = pl.concat(
        [pl.read_parquet(p) for p in (workdir / "results/partition/b1").glob("*.parquet")]
    )
    # The first page seen keeps each pair.
    kept = dict(zip(shards["url"], shards["page_url"], strict=True))
    assert kept["http://news.example.cn/img/1.jpg"] == NEWS
    assert kept["https://cdn.example.cn/7.jpg"] == NEWS
    assert kept["http://mirror.example.cn/new.jpg"] == "http://mirror.example.cn/p.html"
    assert set(shards["batch"]) == {"b1"}
    assert (workdir / "results/report/filtration_table.csv").exists()
    rerun = run_snakemake(workdir, "-n")
    assert "Nothing to be done" in rerun.stdout + rerun.stderr


def test_benchmark_quick_mode_extracts_every_generated_pair():
    from benchmarks.warc_extraction import run

    rows = run(quick=True)  # raises unless the extracted pairs are exactly the generated ones
    rates = {r["metric"]: r for r in rows if r["stage"] == "extraction"}
    assert rates["pairs/s per core"]["value"] > 0
    assert 0 < rates["records/s per core"]["ratio"] < 1


class _WarcServer:
    """A local HTTP server for one WARC file; `cut` sends only the first part of it."""

    def __init__(self, data: bytes, cut: int | None = None):
        import http.server
        import threading

        self.hits = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                owner.hits += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[:cut] if cut else data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/crawl-data/{CRAWL}/x.warc.gz"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_a_warc_url_is_streamed_and_a_cut_transfer_fails(main_warc):
    data = open(main_warc, "rb").read()  # noqa: SIM115
    with _WarcServer(data) as server:
        frame, counts = extract_warc(server.url, allowed_networks=["127.0.0.1/32"])
    assert frame.to_dicts() == EXPECTED_ROWS
    assert counts["records"] == EXPECTED_COUNTS["records"]
    with (
        _WarcServer(data, cut=len(data) // 2) as server,
        pytest.raises(OSError, match="answered 200 to a Range request: it cannot be resumed"),
    ):
        extract_warc(server.url, allowed_networks=["127.0.0.1/32"])


def test_a_warc_url_on_a_loopback_address_is_refused_unless_allowed(main_warc):
    data = open(main_warc, "rb").read()  # noqa: SIM115
    with _WarcServer(data) as server, pytest.raises(OSError, match=r"refused address 127\.0\.0\.1"):
        extract_warc(server.url)
    assert server.hits == 0


def test_the_lazy_attribute_wins_over_whatever_src_holds_until_the_script_runs():
    page_url = "http://news.example.cn/a.html"
    html = (
        "<html><body>"
        '<img class="lazy" src="/static/grey.jpg" data-original="/real/1.jpg" alt="真实图片一">'
        '<img src="/static/grey.jpg" data-src="/real/2.jpg" alt="真实图片二">'
        '<img src="/thumb/3.jpg" data-src="/thumb/3.jpg" alt="同一张图">'
        '<img src="/photo/4.jpg" data-url="http://news.example.cn/story.html" alt="链接不是图">'
        '<img src="/img/loading.gif" data-url="/real/5.jpg" alt="只有 data-url">'
        "</body></html>"
    )
    got = [(url, alt) for url, alt, _ in page_images(html, page_url)]
    assert got == [
        ("http://news.example.cn/real/1.jpg", "真实图片一"),
        ("http://news.example.cn/real/2.jpg", "真实图片二"),
        ("http://news.example.cn/thumb/3.jpg", "同一张图"),
        ("http://news.example.cn/photo/4.jpg", "链接不是图"),
        ("http://news.example.cn/real/5.jpg", "只有 data-url"),
    ]


def test_a_corrupt_member_in_the_middle_loses_only_its_record(tmp_path):
    records = main_records()
    members = [gzip.compress(r, compresslevel=6, mtime=0) for r in records]
    damaged = 3
    bad = bytearray(members[damaged])
    for i in range(20, 40):
        bad[i] ^= 0xFF
    path = tmp_path / "damaged.warc.gz"
    path.write_bytes(b"".join(members[:damaged]) + bytes(bad) + b"".join(members[damaged + 1 :]))
    frame, counts = extract_warc(str(path))
    intact = write_warc(tmp_path / "intact.warc.gz", records[:damaged] + records[damaged + 1 :])
    expected, expected_counts = extract_warc(str(intact))
    assert frame.to_dicts() == expected.to_dicts() and frame.height > 0
    assert counts["records"] == expected_counts["records"] == len(records) - 1
    assert (counts["resyncs"], counts["lost_bytes"]) == (1, len(bad))
    assert len(counts["archive_errors"]) == 1 and "resumed at byte" in counts["archive_errors"][0]


def test_a_cut_warc_transfer_is_resumed_by_range(main_warc):
    from tests.test_cc_index import RangeServer

    data = open(main_warc, "rb").read()  # noqa: SIM115
    path = f"/crawl-data/{CRAWL}/x.warc.gz"
    server = RangeServer({path: data}, cut_requests={1})
    try:
        frame, counts = extract_warc(
            server.url.rstrip("/") + path, allowed_networks=["127.0.0.1/32"]
        )
    finally:
        server.close()
    assert server.ranges == 2  # the cut transfer, and its resumption from the byte it reached
    assert frame.to_dicts() == EXPECTED_ROWS
    assert counts["records"] == EXPECTED_COUNTS["records"]
