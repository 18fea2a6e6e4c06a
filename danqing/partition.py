"""Input contract and partitioning of raw pairs into `{batch}/{shard}` Parquet shards.

Input rows come from Parquet or JSON Lines (optionally gzipped). Each row is validated; a
malformed row (no url, text that is not valid UTF-8, a field of the wrong type) is dropped with a
recorded reason instead of failing the run. Rows are assigned to a shard of their batch by a hash
of their uid, so rows with the same uid meet in one shard, where all but the first are dropped as
duplicates: that keeps memory bounded by the shard size however large the input is.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import re
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from danqing.io import DROP_SCHEMA, write_json, write_parquet
from danqing.rows import schema
from danqing.urls import host_of, registered_domain

SHARD_SCHEMA = schema(
    "uid",
    "url",
    "alt_text",
    "alt_text_raw",
    "page_url",
    "page_title",
    "domain",
    "languages",
    "crawl",
    "batch",
)
STRING_FIELDS = ("url", "alt_text", "page_url", "page_title", "domain", "crawl")
BATCH_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_SPACES = re.compile(r"\s+")
CHUNK_ROWS = 50_000
MAX_UID_LENGTH = 256


class Malformed(ValueError):
    """A row that breaks the input contract; its message is the recorded reason."""


@dataclass
class Row:
    uid: str
    url: str
    alt_text: str
    alt_text_raw: str
    page_url: str | None
    page_title: str | None
    domain: str
    languages: str
    crawl: str | None
    batch: str | None


def derive_uid(url: str, alt_text: str) -> str:
    return hashlib.sha1(f"{url}\t{alt_text}".encode()).hexdigest()[:20]


def _string(record: dict, key: str, required: bool = False) -> str | None:
    value = record.get(key)
    if value is None or value == "":
        if required:
            raise Malformed(f"missing_{key}")
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as err:
            raise Malformed(f"invalid_utf8:{key}") from err
    if not isinstance(value, str):
        raise Malformed(f"wrong_type:{key}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:  # lone surrogates from "\ud800"-style JSON escapes
        raise Malformed(f"invalid_utf8:{key}") from err
    return value


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from "\ud800"-style JSON escapes
        return False
    return True


def _uid(value: object) -> str | None:
    """The row's own uid as text, None when it has none. A float column of integral values (as
    pandas writes an integer column with nulls) is read as those integers."""
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Malformed("wrong_type:uid")
    if isinstance(value, str) and not _encodable(value):
        raise Malformed("invalid_utf8:uid")
    text = str(value)
    if len(text) > MAX_UID_LENGTH:
        raise Malformed("uid_too_long")
    return text


def _page_title(record: dict) -> str | None:
    title = _string(record, "page_title")
    return (_SPACES.sub(" ", title).strip() or None) if title else None


def normalise(record: dict) -> Row:
    """Validate one input record against the contract and return it normalised."""
    url = _string(record, "url", required=True).strip()
    host = host_of(url) if url[:8].lower().startswith(("http://", "https://")) else None
    if not host:
        raise Malformed("invalid_url")
    alt_raw = _string(record, "alt_text", required=True)
    alt = _SPACES.sub(" ", alt_raw).strip()
    if not alt:
        raise Malformed("missing_alt_text")
    uid = _uid(record.get("uid"))
    if uid is None:
        uid = derive_uid(url, alt)
    languages = record.get("languages")
    if isinstance(languages, list):
        if not all(isinstance(t, str) for t in languages):
            raise Malformed("wrong_type:languages")
        languages = ",".join(languages)
    elif languages is not None and not isinstance(languages, str):
        raise Malformed("wrong_type:languages")
    if languages is not None and not _encodable(languages):
        raise Malformed("invalid_utf8:languages")
    batch = record.get("batch")
    if batch is not None and batch != "":
        if isinstance(batch, bool) or not isinstance(batch, str | int):
            raise Malformed("wrong_type:batch")
        batch = str(batch)
        if not BATCH_RE.match(batch):
            raise Malformed("invalid_batch")
    else:
        batch = None
    # One meaning of `domain` whatever the input: the registered domain (img.alicdn.com and a
    # given "img.alicdn.com" both count as alicdn.com in Table 7), as WARC ingestion writes it.
    domain = registered_domain((_string(record, "domain") or host).lower())
    return Row(
        uid=str(uid),
        url=url,
        alt_text=alt,
        alt_text_raw=alt_raw,
        page_url=_string(record, "page_url"),
        page_title=_page_title(record),
        domain=domain,
        languages=languages or "",
        crawl=_string(record, "crawl"),
        batch=batch,
    )


def detect_format(path: str) -> str:
    name = path.lower()
    if name.endswith(".parquet") or name.endswith(".pq"):
        return "parquet"
    if name.endswith((".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".json.gz")):
        return "jsonl"
    raise ValueError(f"cannot tell the format of {path}; set input.format to parquet or jsonl")


def read_records(path: str, fmt: str = "auto") -> Iterator[tuple[int, dict | Malformed]]:
    """Yield (row number, record) for each input row; undecodable rows yield a Malformed."""
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "parquet":
        parquet = pq.ParquetFile(path)
        number = 0
        for record_batch in parquet.iter_batches(batch_size=CHUNK_ROWS):
            for record in record_batch.to_pylist():
                yield number, record
                number += 1
        return
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as raw:
        for number, line in enumerate(io.BufferedReader(raw)):
            if number == 0 and line.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark
                line = line[3:]
            if not line.strip():
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                yield number, Malformed("invalid_utf8")
                continue
            try:
                record = json.loads(text)
            except (ValueError, RecursionError):
                # JSONDecodeError, an integer of more than 4,300 digits, nesting past the
                # recursion limit: the line is not a record this contract can read.
                yield number, Malformed("invalid_json")
                continue
            if not isinstance(record, dict):
                yield number, Malformed("not_an_object")
                continue
            yield number, record


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def assign_batch(row: Row, num_batches: int) -> str:
    if row.batch is not None:
        return row.batch
    return f"b{_hash64(row.uid) % num_batches + 1}"


def shard_name(index: int) -> str:
    return f"s{index:05d}"


def partition(
    input_path: str,
    out_dir: str,
    drops_path: str,
    counts_path: str,
    num_batches: int,
    shard_size: int,
    fmt: str = "auto",
) -> dict:
    """Split `input_path` into `out_dir/{batch}/{shard}.parquet` plus `out_dir/manifest.json`.

    Two passes: the first validates rows and counts them per batch (to size each batch's
    shards), the second writes each valid row to shard hash(uid) mod n of its batch through
    per-shard spool files, then deduplicates uids shard by shard.
    """
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    spool = out / ".spool"
    spool.mkdir(parents=True)

    per_batch: Counter[str] = Counter()
    malformed: list[dict] = []
    total = 0
    for number, record in read_records(input_path, fmt):
        total += 1
        try:
            if isinstance(record, Malformed):
                raise record
            per_batch[assign_batch(normalise(record), num_batches)] += 1
        except Malformed as err:
            uid = record.get("uid") if isinstance(record, dict) else None
            readable = (
                isinstance(uid, int)
                and not isinstance(uid, bool)
                and uid.bit_length() < 64
                or isinstance(uid, str)
                and uid != ""
                and _encodable(uid)
                and len(uid) <= MAX_UID_LENGTH
            )
            malformed.append(
                {
                    "uid": str(uid) if readable else f"row:{number}",
                    "step": "partition",
                    "reason": str(err),
                    "value": f"row {number}",
                }
            )
    shards_of = {b: max(1, math.ceil(n / shard_size)) for b, n in per_batch.items()}

    writers: dict[tuple[str, int], pq.ParquetWriter] = {}
    buffers: dict[tuple[str, int], list[dict]] = defaultdict(list)
    arrow_schema = pl.DataFrame(schema=SHARD_SCHEMA).to_arrow().schema

    def flush(key: tuple[str, int]) -> None:
        rows = buffers.pop(key, [])
        if not rows:
            return
        if key not in writers:
            path = spool / f"{key[0]}__{key[1]}.parquet"
            writers[key] = pq.ParquetWriter(path, arrow_schema)
        writers[key].write_table(pa.Table.from_pylist(rows, schema=arrow_schema))

    for _, record in read_records(input_path, fmt):
        if isinstance(record, Malformed):
            continue
        try:
            row = normalise(record)
        except Malformed:
            continue
        batch = assign_batch(row, num_batches)
        key = (batch, _hash64(row.uid) % shards_of[batch])
        buffers[key].append(
            {
                "uid": row.uid,
                "url": row.url,
                "alt_text": row.alt_text,
                "alt_text_raw": row.alt_text_raw,
                "page_url": row.page_url,
                "page_title": row.page_title,
                "domain": row.domain,
                "languages": row.languages,
                "crawl": row.crawl,
                "batch": batch,
            }
        )
        if len(buffers[key]) >= 10_000:
            flush(key)
    for key in list(buffers):
        flush(key)
    for writer in writers.values():
        writer.close()

    duplicates: list[pl.DataFrame] = []
    manifest: dict[str, dict[str, int]] = {}
    for batch in sorted(shards_of):
        manifest[batch] = {}
        for index in range(shards_of[batch]):
            spooled = spool / f"{batch}__{index}.parquet"
            frame = (
                pl.read_parquet(spooled) if spooled.exists() else pl.DataFrame(schema=SHARD_SCHEMA)
            )
            frame = frame.with_row_index("_order")
            first = frame.unique(subset="uid", keep="first", maintain_order=True)
            dup = frame.join(first.select("_order"), on="_order", how="anti")
            if dup.height:
                duplicates.append(
                    dup.select(
                        "uid",
                        pl.lit("partition").alias("step"),
                        pl.lit("duplicate_uid").alias("reason"),
                        pl.col("url").alias("value"),
                    )
                )
            name = shard_name(index)
            write_parquet(first.drop("_order"), out / batch / f"{name}.parquet")
            manifest[batch][name] = first.height
    shutil.rmtree(spool)

    drops = pl.concat([pl.DataFrame(malformed, schema=DROP_SCHEMA), *duplicates], how="vertical")
    write_parquet(drops, drops_path)
    kept = sum(n for shards in manifest.values() for n in shards.values())
    counts = {
        "step": "partition",
        "input": total,
        "kept": kept,
        "dropped": drops.height,
        "malformed": len(malformed),
        "duplicate_uid": drops.height - len(malformed),
        "batches": len(manifest),
        "shards": sum(len(s) for s in manifest.values()),
    }
    if total != kept + drops.height:
        raise AssertionError(
            f"partition: {total} rows read but {kept} kept + {drops.height} dropped"
        )
    write_json(counts, counts_path)
    write_json({"shard_size": shard_size, "batches": manifest}, out / "manifest.json")
    return counts


def read_manifest(out_dir: str) -> dict[str, dict[str, int]]:
    return json.loads((Path(out_dir) / "manifest.json").read_text())["batches"]
