"""Throughput of the WARC pair extraction against reading the same WARC file without parsing.

Writes a Common-Crawl-shaped WARC file (gzip per record; request, response and metadata records
per page) of about `--mb` megabytes compressed, with Chinese pages in UTF-8, GBK and Big5 carrying
many <img> tags (alt texts, lazy-loaded images, empty alts, a site logo on every page), plus
redirects, 404s and image responses. Then, in one process (so rates are per core):

  - raw iteration: every record read and decompressed, nothing parsed (the ceiling);
  - extraction: `danqing.ingest.archive.extract_warc`, the code the per-WARC Snakemake job runs.

Prints records/s, pages/s and pairs/s per core and the ratio to raw iteration. The extracted pair
count is checked against the number of unique pairs the generator wrote.

    python -m benchmarks.warc_extraction --mb 100
    python -m benchmarks.warc_extraction --quick
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import tempfile
import time
from pathlib import Path

from danqing.ingest.archive import extract_warc
from danqing.ingest.charsets import decode_html
from danqing.ingest.html_images import page_images
from danqing.urls import registered_domain
from tests.support.warc_write import capture, http_response, warcinfo

CRAWL = "CC-MAIN-2024-10"
# Common characters, each written by every page charset used here.
_SIMPLIFIED = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也"
    "能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现"
    "实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表"
    "间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系"
    "军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资"
    "边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据"
    "处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收"
    "证改清美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名"
    "确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音"
    "众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克"
    "何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状"
    "育厂京识适属圆包火住调满县局照参红细引听该铁价严首底液官德随病苏失尔死讲配女黄推显谈罪"
    "神艺呢席含企望密批营项防举球英氧势告李台落木帮轮破亚师围注远字材排供河态封另施减树溶怎"
    "止案言士均武固叶鱼波视仅费紧爱左章早朝害续轻服试食充兵源判护司足某练差致板田降黑犯负击"
    "范继兴似余坚曲输修故城夫够送笔船占右财吃富春职觉汉画功巴跟虽杂飞检吸助升阳互初创抗考投"
    "坏策古径换未跑留钢曾端责站简述钱副尽帝射草冲承独令限阿宣环双请超微让控州良轴找否纪益依"
    "优顶础载倒房突坐粉敌略客袁冷胜绝析块剂测丝协诉念陈仍罗盐友洋错苦夜刑移频逐靠混母短皮终"
    "聚汽村云哪既距卫停烈央察烧迅境若印洲刻括激孔搞甚室待核校散侵吧甲游久菜味旧模湖货损预阻"
    "毫普稳乙妈植息扩银语挥酒守拿序纸医缺雨吗针刘啊急唱误训愿审附获茶鲜粮斤孩脱硫肥善龙演父"
    "渐血欢械掌歌沙刚攻谓盾讨晚粒乱燃矛乎杀药宁鲁贵钟煤读班伯香介迫句丰培握兰担弦蛋沉假穿执"
    "答乐谁顺烟缩征脸喜松脚困异免背星福买染井概慢怕磁倍祖皇促静补评翻肉践尼衣宽扬棉希伤操垂"
)
_TRADITIONAL = (
    "的一是在不了有和人這中大為上個國我以要他時來用們生到作地於出就分對成會可主發年動同工也能下"
    "過子說產種面而方後多定行學法所民得經十三之進著等部度家電力裡如水化高自二理起小物現實加量都"
    "兩體制機當使點從業本去把性好應開它合還因由其些然前外天政四日那社義事平形相全表間樣與關各重"
    "新線內數正心反你明看原又麼利比或但質氣第向道命此變條只沒結解問意建月公無系軍很情者最立代想"
    "已通並提直題黨程展五果料象員革位入常文總次品式活設及管特件長求老頭基資邊流路級少圖山統接知"
    "較將組見計別她手角期根論運農指幾九區強放決西被幹做必戰先回則任取據處隊南給色光門即保治北造"
)


def _charset_pools() -> dict[str, str]:
    pools = {}
    for charset, pool in (("utf-8", _SIMPLIFIED), ("gbk", _SIMPLIFIED), ("big5", _TRADITIONAL)):
        pools[charset] = "".join(ch for ch in pool if _encodes(ch, charset))
    return pools


def _encodes(ch: str, charset: str) -> bool:
    try:
        ch.encode(charset)
        return True
    except UnicodeEncodeError:
        return False


class PageMaker:
    """Deterministic Chinese news/shop pages; records the (url, alt) pairs each one holds."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.pools = _charset_pools()

    def words(self, charset: str, low: int, high: int) -> str:
        pool = self.pools[charset]
        n = self.rng.randint(low, high)
        chars = self.rng.choices(pool, k=n)
        # Word-like runs of 2-4 characters separated by spaces or punctuation now and then.
        out, i = [], 0
        while i < n:
            step = self.rng.randint(2, 4)
            out.append("".join(chars[i : i + step]))
            i += step
        return self.rng.choice(("", " ", "，")).join(out)

    def page(self, site: int, index: int, charset: str) -> tuple[str, str, set[tuple[str, str]]]:
        rng = self.rng
        host = f"www.site{site}.com.cn"
        page_url = f"http://{host}/news/{index}.html"
        pairs: set[tuple[str, str]] = set()
        title = self.words(charset, 6, 16)
        home, rights, icp = (
            ("首頁", "版權所有", "備") if charset == "big5" else ("首页", "版权所有", "备")
        )
        meta = (
            '<meta charset="{}">'
            if rng.random() < 0.7
            else '<meta http-equiv="Content-Type" content="text/html; charset={}">'
        ).format(charset)
        parts = [
            '<!DOCTYPE html><html lang="zh"><head>',
            meta,
            f"<title>{title}</title>",
            '<link rel="stylesheet" href="/static/css/main.css">',
            "<script>window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments)}"
            "gtag('js',new Date());var _hmt=_hmt||[];</script>",
            "<style>.item{float:left;width:25%}.item img{max-width:100%}.nav a{padding:0 8px}</style>",
            "</head><body>",
            f'<div class="header"><a href="/"><img src="/static/logo.png" alt="{host} {home}"></a></div>',
        ]
        pairs.add((f"http://{host}/static/logo.png", f"{host} {home}"))
        parts.append(
            '<div class="nav">'
            + "".join(
                f'<a href="/channel/{k}.html">{self.words(charset, 2, 4)}</a>' for k in range(12)
            )
            + "</div>"
        )
        for _ in range(rng.randint(15, 45)):
            alt = self.words(charset, 4, 24)
            kind = rng.random()
            image = f"https://img{rng.randint(1, 9)}.cdn{site % 50}.cn/{rng.getrandbits(48):x}.jpg"
            if kind < 0.15:
                tag = f'<img src="/uploads/{rng.getrandbits(40):x}.jpg" alt="">'
            elif kind < 0.35:
                tag = (
                    '<img src="data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAA'
                    f'EAAAIBRAA7" data-src="{image}" alt="{alt}" class="lazy">'
                )
                pairs.add((image, alt))
            elif kind < 0.45:
                path = f"/uploads/{rng.getrandbits(40):x}.png"
                tag = f'<img src="{path}" alt="{alt}" width="300" height="200">'
                pairs.add((f"http://{host}{path}", alt))
            else:
                tag = f'<img src="{image}" alt="{alt}" loading="lazy">'
                pairs.add((image, alt))
            parts.append(
                f'<div class="item"><a href="/news/{rng.randint(1, 99999)}.html">{tag}</a>'
                f"<p>{self.words(charset, 20, 120)}</p></div>"
            )
        parts.append(
            '<ul class="sidebar">'
            + "".join(
                f'<li><a href="/news/{rng.randint(1, 99999)}.html" title="{self.words(charset, 4, 10)}">'
                f"{self.words(charset, 6, 18)}</a><span>2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
                "</span></li>"
                for _ in range(rng.randint(40, 160))
            )
            + "</ul>"
        )
        # Inline configuration and tracking scripts, as most portal pages carry.
        parts.append(
            "<script>var __INITIAL_STATE__="
            + ",".join(
                f'{{"id":"{rng.getrandbits(64):x}","cdn":"https://img{rng.randint(1, 9)}.cdn.cn",'
                f'"t":{rng.randint(10**9, 2 * 10**9)},"tag":"<img src=\\"/x/{k}.jpg\\">"}}'
                for k in range(rng.randint(20, 120))
            )
            + ";</script>"
        )
        parts.append(
            '<div class="content">'
            + "".join(f"<p>{self.words(charset, 60, 300)}</p>" for _ in range(rng.randint(3, 12)))
            + "</div>"
        )
        parts.append(
            f'<div class="footer">Copyright &copy; 2024 {rights} '
            f'<a href="http://beian.miit.gov.cn/">京ICP{icp}{rng.randint(10**7, 10**8)}號</a>'
            "</div></body></html>"
        )
        return page_url, "".join(parts), pairs


def make_warc(path: str | Path, target_bytes: int, seed: int = 20240221) -> dict:
    """Write the WARC; return what went in (pages, records, the unique (url, alt) pairs)."""
    maker = PageMaker(seed)
    rng = maker.rng
    expected: set[tuple[str, str]] = set()
    stats = {"records": 0, "html_pages": 0, "responses": 0}
    with open(path, "wb") as handle:

        def write(records: list[bytes]) -> None:
            for record in records:
                handle.write(gzip.compress(record, compresslevel=6, mtime=0))
            stats["records"] += len(records)

        write([warcinfo(CRAWL)])
        index = 0
        while handle.tell() < target_bytes:
            index += 1
            site = rng.randint(1, 400)
            roll = rng.random()
            stats["responses"] += 1
            if roll < 0.04:
                url = f"http://www.site{site}.com.cn/old/{index}"
                body = http_response(
                    b"",
                    "text/html",
                    status="301 Moved Permanently",
                    headers={"Location": f"/news/{index}.html"},
                )
                write(capture(url, body, cld2=[]))
                continue
            if roll < 0.06:
                url = f"http://www.site{site}.com.cn/img/{index}.jpg"
                write(capture(url, http_response(rng.randbytes(20_000), "image/jpeg"), cld2=[]))
                continue
            charset = rng.choices(("utf-8", "gbk", "big5"), weights=(80, 15, 5))[0]
            page_url, html, pairs = maker.page(site, index, charset)
            header_charset = f"; charset={charset}" if rng.random() < 0.6 else ""
            body = http_response(html.encode(charset), f"text/html{header_charset}")
            write(capture(page_url, body, cld2=["zho"]))
            expected |= pairs
            stats["html_pages"] += 1
        stats["bytes"] = handle.tell()
    stats["pairs"] = len(expected)
    return stats


def raw_iteration(path: str) -> tuple[int, float]:
    """Records and seconds for reading every record's content without parsing it."""
    from fastwarc.warc import ArchiveIterator

    start = time.perf_counter()
    records = 0
    for record in ArchiveIterator(path, parse_http=False):
        record.reader.read()
        records += 1
    return records, time.perf_counter() - start


def warm_up() -> None:
    """Load what a job loads once (parser, charset detector, suffix list) before timing."""
    page_images('<img src="a.jpg" alt="预热">', "http://example.cn/")
    decode_html("预热页面".encode("gbk") * 20, None)
    registered_domain("img.example.com.cn")


def run(mb: float = 100, quick: bool = False, keep: str | None = None) -> list[dict]:
    mb = 3 if quick else mb
    with tempfile.TemporaryDirectory() as tmp:
        path = keep or os.path.join(tmp, "bench.warc.gz")
        started = time.perf_counter()
        made = make_warc(path, int(mb * 1_000_000))
        generate_s = time.perf_counter() - started
        raw_iteration(path)  # warm the page cache so both timings read from memory
        warm_up()
        records, raw_s = raw_iteration(path)
        started = time.perf_counter()
        frame, counts = extract_warc(path)
        extract_s = time.perf_counter() - started
    if records != made["records"] or counts["records"] != made["records"]:
        raise AssertionError(f"wrote {made['records']} records, read {records}/{counts['records']}")
    if counts["pairs"] != made["pairs"] or frame.height != made["pairs"]:
        raise AssertionError(f"wrote {made['pairs']} unique pairs, extracted {counts['pairs']}")
    size_mb = made["bytes"] / 1e6
    return [
        {
            "stage": "warc file",
            "metric": "MB gzip",
            "value": size_mb,
            "ceiling": "",
            "ceiling_value": None,
            "ratio": None,
            "note": f"{made['records']:,} records, {made['html_pages']:,} HTML pages, "
            f"{made['pairs']:,} unique pairs, generated in {generate_s:.1f} s",
        },
        {
            "stage": "extraction",
            "metric": "records/s per core",
            "value": records / extract_s,
            "ceiling": "raw iteration",
            "ceiling_value": records / raw_s,
            "ratio": raw_s / extract_s,
        },
        {
            "stage": "extraction",
            "metric": "pages/s per core",
            "value": counts["html_records"] / extract_s,
            "ceiling": "",
            "ceiling_value": None,
            "ratio": None,
        },
        {
            "stage": "extraction",
            "metric": "pairs/s per core",
            "value": counts["pairs"] / extract_s,
            "ceiling": "",
            "ceiling_value": None,
            "ratio": None,
        },
        {
            "stage": "extraction",
            "metric": "MB gzip/s per core",
            "value": size_mb / extract_s,
            "ceiling": "raw iteration",
            "ceiling_value": size_mb / raw_s,
            "ratio": raw_s / extract_s,
        },
    ]


def print_rows(rows: list[dict]) -> None:
    for r in rows:
        ceiling = (
            f"  vs {r['ceiling']} {r['ceiling_value']:,.1f}  ratio {r['ratio']:.3f}"
            if r["ratio"] is not None
            else ""
        )
        note = f"  ({r['note']})" if r.get("note") else ""
        print(f"{r['stage']:12s} {r['value']:>12,.1f} {r['metric']}{ceiling}{note}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=100, help="compressed size of the WARC file")
    parser.add_argument("--quick", action="store_true", help="a 3 MB file (for the test suite)")
    parser.add_argument("--keep", help="write the generated WARC here instead of a temp folder")
    args = parser.parse_args()
    print_rows(run(args.mb, args.quick, args.keep))
