"""Index mode: a generated cc-index-table over a generated WARC, served with Range support."""

from __future__ import annotations

import gzip
import http.server
import re
import threading

import polars as pl
import pytest

from danqing import config
from danqing.ingest import cc_index
from danqing.ingest.archive import extract_warc
from danqing.ingest.payloads import cld2_languages
from danqing.retries import Retries
from tests.support.warc_write import write_warc
from tests.test_warc import CRAWL, main_records

LOOPBACK = ["127.0.0.1/32"]


class RangeServer:
    """Files by path, with Range requests, counting the bytes served; `cut_every` serves only
    the first half of every other range (a dropped transfer the reader must resume)."""

    def __init__(self, files: dict[str, bytes], cut_every: int = 0, cut_requests=()):
        self.files, self.served, self.ranges, self.cut_every = files, 0, 0, cut_every
        self.cut_requests = set(cut_requests)
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _body(self):
                data = owner.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return None, None
                found = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
                if not found:
                    found = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
                    if not found:
                        return 200, data
                    self.content_range = f"bytes {found.group(1)}-{len(data) - 1}/{len(data)}"
                    return 206, data[int(found.group(1)) :]
                start, end = int(found.group(1)), int(found.group(2))
                self.content_range = f"bytes {start}-{end}/{len(data)}"
                return 206, data[start : end + 1]

            def do_HEAD(self):  # noqa: N802
                status, body = self._body()
                if status:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(owner.files[self.path])))
                    self.end_headers()

            def do_GET(self):  # noqa: N802
                status, body = self._body()
                if status is None:
                    return
                owner.ranges += 1
                sent = body
                cut = owner.cut_every and owner.ranges % owner.cut_every == 0
                if (cut or owner.ranges in owner.cut_requests) and len(body) > 1:
                    sent = body[: len(body) // 2]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                if status == 206:
                    self.send_header("Content-Range", self.content_range)
                self.end_headers()
                self.wfile.write(sent)
                owner.served += len(sent)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def index_rows(path, filename: str) -> pl.DataFrame:
    """cc-index-table rows (its real column names and types) for every response of a WARC."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    data = open(path, "rb").read()  # noqa: SIM115
    rows, metadata = [], {}
    for record in ArchiveIterator(open(path, "rb"), parse_http=False):  # noqa: SIM115
        if record.record_type == WarcRecordType.metadata:
            languages = cld2_languages(record.reader.read())
            metadata[record.headers.get("WARC-Concurrent-To")] = languages
            continue
        if record.record_type != WarcRecordType.response:
            continue
        start = record.stream_pos
        length = len(gzip.compress(b""))  # placeholder, fixed below
        rows.append(
            {
                "url": record.headers.get("WARC-Target-URI"),
                "id": record.headers.get("WARC-Record-ID"),
                "languages": record.headers.get("WARC-Identified-Content-Language"),
                "warc_record_offset": start,
                "warc_record_length": length,
            }
        )
    offsets = sorted({r["warc_record_offset"] for r in rows})
    members = _member_offsets(data)
    for r in rows:
        end = next(m for m in members if m > r["warc_record_offset"])
        r["warc_record_length"] = end - r["warc_record_offset"]
        if r["languages"] is None:
            r["languages"] = metadata.get(r["id"], "")
    assert offsets
    return pl.DataFrame(
        {
            "url_surtkey": [r["url"] for r in rows],
            "url": [r["url"] for r in rows],
            "fetch_status": pl.Series([200] * len(rows), dtype=pl.Int16),
            "content_mime_detected": ["text/html"] * len(rows),
            "content_languages": [r["languages"] for r in rows],
            "warc_filename": [filename] * len(rows),
            "warc_record_offset": pl.Series(
                [r["warc_record_offset"] for r in rows], dtype=pl.Int32
            ),
            "warc_record_length": pl.Series(
                [r["warc_record_length"] for r in rows], dtype=pl.Int32
            ),
            "crawl": [CRAWL] * len(rows),
            "subset": ["warc"] * len(rows),
        }
    )


def _member_offsets(data: bytes) -> list[int]:
    """Start of every gzip member, and the end of the file."""
    import zlib

    offsets, position = [], 0
    while position < len(data):
        offsets.append(position)
        decompressor = zlib.decompressobj(31)
        try:
            decompressor.decompress(data[position:])
        except zlib.error:
            break
        position = len(data) - len(decompressor.unused_data)
    return [*offsets, len(data)]


@pytest.fixture(scope="module")
def crawl(tmp_path_factory):
    root = tmp_path_factory.mktemp("cc")
    filename = f"crawl-data/{CRAWL}/segments/1/warc/part-0.warc.gz"
    path = write_warc(root / "part-0.warc.gz", main_records())
    index = index_rows(path, filename)
    # Rows the selection must leave out: not 200, not HTML.
    extra = index.head(2).with_columns(
        pl.Series("fetch_status", [404, 200], dtype=pl.Int16),
        pl.Series("content_mime_detected", ["text/html", "image/jpeg"]),
    )
    pl.concat([index, extra]).write_parquet(root / "part-00000.parquet")
    return root, path, filename, index


def test_index_mode_extracts_the_zho_pairs_of_the_whole_file_reading_only_their_bytes(
    crawl, tmp_path
):
    root, path, filename, index = crawl
    data = path.read_bytes()
    server = RangeServer(
        {f"/{filename}": data, "/index.parquet": (root / "part-00000.parquet").read_bytes()}
    )
    try:
        pairs, counts = cc_index.extract_index(
            server.url + "index.parquet",
            tmp_path / "partial",
            base_url=server.url,
            allowed_networks=LOOPBACK,
            chunk_records=3,
            backoff=0.01,
        )
    finally:
        server.close()
    whole, _ = extract_warc(str(path), prefilter_languages=["zho"])
    zho_pages = set(index.filter(pl.col("content_languages").str.contains("zho"))["url"])
    expected = whole.filter(pl.col("page_url").is_in(list(zho_pages)))
    assert sorted(pairs.drop("languages").rows()) == sorted(expected.drop("languages").rows())
    assert pairs.height > 0 and counts["pairs"] == pairs.height
    selected = index.filter(pl.col("content_languages").str.contains("zho"))
    assert counts["selected_records"] == selected.height
    # Only the selected records' bytes were fetched from the WARC; the remote index was read by
    # range too (its footer and the needed column chunks).
    assert counts["bytes_read"] == selected["warc_record_length"].sum()
    assert counts["index_bytes_read"] > 0
    assert counts["records_per_s"] > 0 and counts["bytes_per_pair"] > 0


def test_a_cut_range_is_resumed_and_a_rerun_resumes_the_finished_chunks(crawl, tmp_path):
    root, path, filename, index = crawl
    files = {f"/{filename}": path.read_bytes()}
    local_index = str(root / "part-00000.parquet")
    server = RangeServer(files, cut_every=2)
    try:
        first, counts = cc_index.extract_index(
            local_index,
            tmp_path / "partial",
            base_url=server.url,
            allowed_networks=LOOPBACK,
            chunk_records=2,
            backoff=0.01,
        )
        assert server.ranges > counts["selected_records"]  # cut ranges were asked again
        served = server.ranges
        again, _ = cc_index.extract_index(
            local_index,
            tmp_path / "partial",
            base_url=server.url,
            allowed_networks=LOOPBACK,
            chunk_records=2,
            backoff=0.01,
        )
        assert server.ranges == served  # every chunk was complete: nothing fetched again
    finally:
        server.close()
    assert first.equals(again)


def test_index_mode_refuses_internal_addresses(crawl, tmp_path):
    root, path, filename, _ = crawl
    server = RangeServer({f"/{filename}": path.read_bytes()})
    try:
        with pytest.raises(OSError, match="refused address 127.0.0.1"):
            cc_index.extract_index(
                str(root / "part-00000.parquet"),
                tmp_path / "p",
                base_url=server.url,
                chunk_records=2,
                backoff=0.01,
            )
    finally:
        server.close()
    assert server.ranges == 0


def test_a_damaged_record_is_lost_alone_and_counted(crawl, tmp_path):
    root, path, filename, index = crawl
    selected = index.filter(pl.col("content_languages").str.contains("zho"))
    broken = selected.head(1).with_columns(pl.col("warc_record_offset") + 5)
    damaged_index = tmp_path / "damaged.parquet"
    pl.concat([selected.slice(1), broken]).write_parquet(damaged_index)
    server = RangeServer({f"/{filename}": path.read_bytes()})
    try:
        pairs, counts = cc_index.extract_index(
            str(damaged_index),
            tmp_path / "p",
            base_url=server.url,
            allowed_networks=LOOPBACK,
            chunk_records=50,
            backoff=0.01,
        )
    finally:
        server.close()
    assert counts["lost_records"] == 1 and counts["archive_errors"]
    whole, _ = extract_warc(str(path), prefilter_languages=["zho"])
    others = set(selected.slice(1)["url"])
    assert sorted(pairs.drop("languages").rows()) == sorted(
        whole.filter(pl.col("page_url").is_in(list(others))).drop("languages").rows()
    )


@pytest.mark.e2e
def test_the_workflow_ingests_through_the_index(crawl, tmp_path):
    import json

    from tests.conftest import make_workdir, run_snakemake

    root, path, filename, index = crawl
    server = RangeServer({f"/{filename}": path.read_bytes()})
    try:
        workdir = make_workdir(
            tmp_path / "wf",
            {
                "warc": {
                    "index": {"paths": [str(root / "part-00000.parquet")], "chunk_records": 3},
                    "base_url": server.url,
                    "batches": {"b1": [CRAWL]},
                },
                "steps": ["language_control", "text_constraints"],
            },
        )
        run_snakemake(workdir, timeout=600)
    finally:
        server.close()
    collected = pl.read_parquet(workdir / "results/ingest/raw_pairs.parquet")
    counts = json.loads((workdir / "results/ingest/counts.json").read_text())
    assert collected.height == counts["pairs"] > 0
    assert (
        counts["selected_records"]
        == index.filter(pl.col("content_languages").str.contains("zho")).height
    )
    assert set(collected["batch"]) == {"b1"}
    partition = json.loads((workdir / "results/steps/partition/counts.json").read_text())
    assert partition["input"] == collected.height
    ingestion = pl.read_csv(workdir / "results/report/ingestion.csv")
    total = ingestion.row(-1, named=True)
    assert total["pairs"] == collected.height and total["lost_records"] == 0
    assert (
        total["bytes_read"]
        == index.filter(pl.col("content_languages").str.contains("zho"))["warc_record_length"].sum()
    )
    assert (workdir / "results/report/ingestion.html").is_file()
    footnote = pl.read_csv(workdir / "results/report/filtration_table.csv")["Note"][0]
    assert footnote.startswith(f"ingested {CRAWL}: 1 file(s), 0 records lost, 0 archive errors")


def test_crawl_ids_select_their_warc_subset_index_files_from_the_published_listing(
    tmp_path, monkeypatch
):
    prefix = f"cc-index/table/cc-main/warc/crawl={CRAWL}"
    listing = "\n".join(
        [
            f"{prefix}/subset=warc/part-00000.c000.gz.parquet",
            f"{prefix}/subset=crawldiagnostics/part-00000.c000.gz.parquet",
            f"{prefix}/subset=robotstxt/part-00000.c000.gz.parquet",
            f"{prefix}/subset=warc/part-00001.c000.gz.parquet",
        ]
    )
    server = RangeServer(
        {f"/crawl-data/{CRAWL}/cc-index-table.paths.gz": gzip.compress(listing.encode())}
    )
    monkeypatch.chdir(tmp_path)
    cfg = config.section("warc", {"base_url": server.url, "index": {"crawls": [CRAWL]}})
    try:
        with pytest.raises(ValueError, match="cannot read the index listing"):
            cc_index.index_locations(cfg)  # 127.0.0.1 is refused unless allowed
        found = cc_index.index_locations(cfg, LOOPBACK)
        with pytest.raises(ValueError, match="CC-MAIN-2019-01 at .*404"):
            cc_index.index_locations(
                {**cfg, "index": {**cfg["index"], "crawls": ["CC-MAIN-2019-01"]}}, LOOPBACK
            )
    finally:
        server.close()
    assert found == [
        f"{server.url}{prefix}/subset=warc/part-00000.c000.gz.parquet",
        f"{server.url}{prefix}/subset=warc/part-00001.c000.gz.parquet",
    ]
    # Cached: the workflow's other processes read the same listing without the server.
    assert cc_index.index_locations(cfg, LOOPBACK) == found
    assert (tmp_path / f"results/cc_index/{CRAWL}.cc-index-table.paths.gz").is_file()


def test_a_sql_condition_narrows_the_selection_and_bad_sql_is_a_config_error(crawl):
    from danqing.config_checks import problems

    root, _, _, index = crawl
    location = str(root / "part-00000.parquet")
    everything, rows = cc_index.select_records(location, ["zho"], cc_index.HTML_MIME)
    chosen = sorted(everything["url"])[:2]
    condition = " OR ".join(f"url_surtkey = '{u}'" for u in chosen)  # a column not read otherwise
    narrowed, rows_again = cc_index.select_records(
        location, ["zho"], cc_index.HTML_MIME, where=condition
    )
    assert sorted(narrowed["url"]) == chosen and rows_again == rows
    assert narrowed.columns == list(cc_index.INDEX_COLUMNS)
    with pytest.raises(ValueError, match="no column"):
        cc_index.select_records(location, ["zho"], cc_index.HTML_MIME, where="url_host_tld = 'cn'")
    bad = {"warc": {"index": {"where": "fetch_status = = 200"}}}
    assert any("warc.index.where" in p for p in problems(config.load(overrides=bad)))


def test_retries_back_off_exponentially_and_stop_at_the_limit(monkeypatch):
    waits = []
    monkeypatch.setattr("danqing.retries.time.sleep", waits.append)
    retries = Retries(3, 0.5)
    while retries.left:
        retries.wait()
    assert waits == [0.5, 1.0, 2.0] and retries.used == 3
    with pytest.raises(RuntimeError, match="all 3 retries are used"):
        retries.wait()
