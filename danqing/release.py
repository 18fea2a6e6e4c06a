"""Release shards: the final kept pairs as a Hugging Face dataset folder.

Layout of `results/release/dataset/`:

    README.md                               dataset card (YAML header + counts + Table 6)
    manifest.json                           every data file with its rows, bytes and sha256
    data/train-00000-of-0000N.parquet       metadata and scores, one row per pair
    webdataset/train-00000-of-0000M.tar     {key}.jpg + {key}.txt + {key}.json per pair

It is built in two steps so that the image bytes are written in parallel, once:

1. `write_part`, one job per final shard: the shard's release rows (Parquet) and, when images
   were downloaded, its WebDataset tars, each tar at most `tar_samples` samples and about
   `tar_max_bytes` bytes, with a record of rows and sha256 per file.
2. `assemble`, one job: links (hard links; a copy where the file system has none) the part tars
   under their final names, rewrites the Parquet rows into files of `parquet_rows` rows with each
   row's final tar name, and writes the manifest. No image byte is read again.

A row of the Parquet files and its tar sample share `key`, a file-name-safe form of `uid`.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import tarfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import polars as pl

from danqing.io import read_json, write_json, write_parquet

log = logging.getLogger("danqing.release")

ImageReader = Callable[[pl.DataFrame], Iterator[tuple[str, bytes]]]

# Where the pipeline keeps an image: an internal location, not part of the release.
INTERNAL_COLUMNS = ("image_tar", "image_member", "words")
# Release columns in this order first; every other column (the filters' scores) follows in the
# order the steps added it, so a new filter's score is released without a change here.
LEADING_COLUMNS = (
    "uid",
    "key",
    "url",
    "alt_text",
    "alt_text_raw",
    "page_url",
    "domain",
    "crawl",
    "batch",
    "languages",
    "original_width",
    "original_height",
    "width",
    "height",
    "image_format",
    "image_sha256",
    "wds_shard",
)
TAR_MTIME = 0  # fixed tar metadata: a rerun writes byte-identical tars
_SAFE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


class ReleaseError(RuntimeError):
    pass


# Keys longer than this are shortened (tar itself takes long names, but WebDataset loaders,
# file systems of 255-byte names and people do not).
MAX_KEY_CHARS = 96
_KEY_DIGEST_HEX = 16


def sample_key(uid: str) -> str:
    """The WebDataset key of `uid`: the uid itself when it is made of [A-Za-z0-9_-] and at most
    MAX_KEY_CHARS long; else its first characters with every other character replaced by `_`,
    `~` and 16 hex digits of its sha256. A plain key never holds `~`, so the two forms never meet
    (`x/y` and `x_y_...` stay apart), and WebDataset's split at the first dot never cuts one."""
    if _SAFE_KEY.match(uid) and len(uid) <= MAX_KEY_CHARS:
        return uid
    digest = hashlib.sha256(uid.encode("utf-8", "surrogatepass")).hexdigest()[:_KEY_DIGEST_HEX]
    readable = re.sub(r"[^A-Za-z0-9_-]", "_", uid[: MAX_KEY_CHARS - _KEY_DIGEST_HEX - 1])
    return f"{readable}~{digest}"


def image_extension(data: bytes) -> str:
    """The file extension WebDataset decoders expect, from the image's magic bytes."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:2] == b"BM":
        return "bmp"
    if data[4:12] in (b"ftypavif", b"ftypheic", b"ftypmif1"):
        return "avif" if data[8:12] == b"avif" else "heic"
    raise ReleaseError(f"unrecognised image data (first bytes {data[:12]!r})")


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def release_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """The shard's rows with the release columns: internal columns dropped, `key` added, columns
    that are null in every row (a scorer that was not configured) typed Float64, not Null."""
    out = frame.drop([c for c in INTERNAL_COLUMNS if c in frame.columns])
    out = out.with_columns(
        pl.Series("key", [sample_key(u) for u in out["uid"].to_list()], dtype=pl.String)
    )
    out = out.with_columns(
        [pl.col(c).cast(pl.Float64) for c, t in out.schema.items() if t == pl.Null]
    )
    ordered = [c for c in LEADING_COLUMNS if c in out.columns]
    return out.select(ordered + [c for c in out.columns if c not in ordered])


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def sample_json(row: dict) -> bytes:
    return json.dumps(
        {k: _json_value(v) for k, v in row.items()}, ensure_ascii=False, sort_keys=True
    ).encode("utf-8")


class _TarRoller:
    """Writes samples into tars of at most `max_samples` samples / about `max_bytes` bytes."""

    def __init__(self, folder: Path, prefix: str, max_samples: int, max_bytes: int):
        self.folder, self.prefix = folder, prefix
        self.max_samples, self.max_bytes = max_samples, max_bytes
        self.tars: list[dict] = []
        self._tar: tarfile.TarFile | None = None

    @property
    def current_name(self) -> str:
        return self.tars[-1]["name"]

    def _open(self) -> None:
        name = f"{self.prefix}-{len(self.tars):05d}.tar"
        # Kept open across add() calls and closed by _close(), hence no context manager.
        self._tar = tarfile.open(self.folder / name, "w", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        self.tars.append({"name": name, "rows": 0, "bytes": 0})

    def _close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None
            entry = self.tars[-1]
            path = self.folder / entry["name"]
            entry["bytes"] = path.stat().st_size
            entry["sha256"] = sha256_file(path)

    def add(self, key: str, members: list[tuple[str, bytes]]) -> str:
        # A member takes a 512-byte header plus its data padded to 512 bytes.
        size = sum(512 + -(-len(data) // 512) * 512 for _, data in members)
        if self._tar is None or (
            self.tars[-1]["rows"] >= self.max_samples
            or (self.tars[-1]["rows"] and self.tars[-1]["bytes"] + size > self.max_bytes)
        ):
            self._close()
            self._open()
        for ext, data in members:
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size, info.mtime, info.mode = len(data), TAR_MTIME, 0o444
            self._tar.addfile(info, io.BytesIO(data))
        self.tars[-1]["rows"] += 1
        self.tars[-1]["bytes"] += size
        return self.current_name

    def finish(self) -> list[dict]:
        self._close()
        return self.tars


def _default_reader() -> ImageReader:
    try:
        from danqing.images.store import read_images_in_order
    except ImportError as exc:
        raise ReleaseError(
            "the release of images needs danqing.images.store (the download stage)"
        ) from exc
    return read_images_in_order


def write_part(
    frame: pl.DataFrame,
    parquet_path: str | os.PathLike,
    record_path: str | os.PathLike,
    wds_dir: str | os.PathLike | None = None,
    *,
    prefix: str = "part",
    tar_samples: int = 10_000,
    tar_max_bytes: int = 1_000_000_000,
    read_images: ImageReader | None = None,
) -> dict:
    """Release one final shard: Parquet rows and (with `wds_dir`) WebDataset tars.

    Every row must come back from `read_images` with bytes whose sha256 equals its
    `image_sha256`: a missing or changed image is an error, never a silently shorter release.
    """
    rows = release_rows(frame)
    tars: list[dict] = []
    if wds_dir is not None:
        if "image_tar" not in frame.columns:
            raise ReleaseError("images were requested but the shard has no image_tar column")
        rows, tars = _write_tars(
            frame,
            rows,
            Path(wds_dir),
            prefix,
            tar_samples,
            tar_max_bytes,
            read_images or _default_reader(),
        )
    write_parquet(rows, parquet_path)
    record = {
        "rows": rows.height,
        "parquet": {
            "path": str(parquet_path),
            "rows": rows.height,
            "sha256": sha256_file(parquet_path),
        },
        "wds_dir": None if wds_dir is None else str(wds_dir),
        "tars": tars,
    }
    write_json(record, record_path)
    return record


def _write_tars(frame, rows, wds_dir, prefix, tar_samples, tar_max_bytes, read_images):
    by_uid = {r["uid"]: r for r in rows.iter_rows(named=True)}
    if len(by_uid) != rows.height:
        raise ReleaseError("duplicate uids in a final shard")
    if rows["key"].n_unique() != rows.height:
        raise ReleaseError("two uids of a final shard have one WebDataset key")
    # Members in key order, whatever order the downloads finished in: reruns give equal tars.
    # (release_rows keeps the frame's row order.)
    frame = frame.with_columns(rows["key"].alias("_key")).sort("_key").drop("_key")
    wds_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = wds_dir.with_name(f".{wds_dir.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    roller = _TarRoller(tmp, prefix, tar_samples, tar_max_bytes)
    order: list[str] = []
    shard_of: dict[str, str] = {}
    try:
        for uid, data in read_images(frame):
            row = by_uid.get(uid)
            if row is None:
                raise ReleaseError(f"the image reader returned uid {uid!r}, not in the shard")
            if uid in shard_of:
                raise ReleaseError(f"the image reader returned uid {uid!r} twice")
            digest = hashlib.sha256(data).hexdigest()
            if row.get("image_sha256") and row["image_sha256"] != digest:
                raise ReleaseError(
                    f"uid {uid}: image bytes have sha256 {digest}, the shard says "
                    f"{row['image_sha256']}"
                )
            name = roller.add(
                row["key"],
                [
                    (image_extension(data), data),
                    ("txt", (row["alt_text"] or "").encode("utf-8")),
                    ("json", sample_json({**row, "image_sha256": digest})),
                ],
            )
            shard_of[uid] = name
            order.append(uid)
        tars = roller.finish()
        missing = [u for u in by_uid if u not in shard_of]
        if missing:
            raise ReleaseError(
                f"{len(missing)} kept rows have no image in the store, e.g. {missing[:5]}"
            )
        if wds_dir.exists():
            shutil.rmtree(wds_dir)
        os.replace(tmp, wds_dir)
    finally:
        roller.finish()
        if tmp.exists():
            shutil.rmtree(tmp)
    position = {uid: i for i, uid in enumerate(order)}
    rows = (
        rows.with_columns(
            pl.Series("wds_shard", [shard_of[u] for u in rows["uid"].to_list()], dtype=pl.String),
            pl.Series("_order", [position[u] for u in rows["uid"].to_list()], dtype=pl.Int64),
        )
        .sort("_order")
        .drop("_order")
    )
    ordered = [c for c in LEADING_COLUMNS if c in rows.columns]
    return rows.select(ordered + [c for c in rows.columns if c not in ordered]), tars


def _unified_schema(paths: Iterable[str]) -> dict:
    """One schema for all parts: a column's first non-Null type wins (a part may lack one)."""
    schema: dict = {}
    for path in paths:
        for name, dtype in pl.read_parquet_schema(path).items():
            if name not in schema or schema[name] == pl.Null:
                schema[name] = dtype
    return {k: (pl.Float64 if v == pl.Null else v) for k, v in schema.items()}


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def assemble(
    records: list[dict],
    out_dir: str | os.PathLike,
    *,
    parquet_rows: int = 500_000,
    images: bool,
) -> dict:
    """Build `out_dir`/data (and /webdataset) from the parts' records and return the manifest.

    `records` come in release order (batch, shard); their paths are read as written by
    `write_part`.
    """
    out_dir = Path(out_dir)
    total_rows = sum(r["rows"] for r in records)
    part_paths = [r["parquet"]["path"] for r in records]
    schema = _unified_schema(part_paths)
    files: list[dict] = []

    tar_names: dict[int, dict[str, str]] = {i: {} for i in range(len(records))}
    if images:
        all_tars = [(i, t) for i, r in enumerate(records) for t in r["tars"]]
        wds_out = out_dir / "webdataset"
        tmp_wds = _fresh_dir(out_dir / ".webdataset.tmp")
        for j, (i, tar) in enumerate(all_tars):
            final = f"train-{j:05d}-of-{len(all_tars):05d}.tar"
            tar_names[i][tar["name"]] = f"webdataset/{final}"
            _link(Path(records[i]["wds_dir"]) / tar["name"], tmp_wds / final)
            files.append(
                {
                    "path": f"webdataset/{final}",
                    "kind": "webdataset",
                    "rows": tar["rows"],
                    "bytes": tar["bytes"],
                    "sha256": tar["sha256"],
                }
            )
        _replace_dir(tmp_wds, wds_out)

    n_files = max(1, math.ceil(total_rows / parquet_rows))
    tmp_data = _fresh_dir(out_dir / ".data.tmp")
    written = 0
    buffer: list[pl.DataFrame] = []
    buffered = 0

    def flush(frames: list[pl.DataFrame]) -> None:
        nonlocal written
        chunk = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame(schema=schema)
        chunk = chunk.select(
            [
                pl.col(c).cast(t) if c in chunk.columns else pl.lit(None, dtype=t).alias(c)
                for c, t in schema.items()
            ]
        )
        name = f"train-{written:05d}-of-{n_files:05d}.parquet"
        write_parquet(chunk, tmp_data / name)
        files.append(
            {
                "path": f"data/{name}",
                "kind": "parquet",
                "rows": chunk.height,
                "bytes": (tmp_data / name).stat().st_size,
                "sha256": sha256_file(tmp_data / name),
            }
        )
        written += 1

    for i, record in enumerate(records):
        part = pl.read_parquet(record["parquet"]["path"])
        if part.height != record["rows"]:
            raise ReleaseError(
                f"{record['parquet']['path']}: {part.height} rows, record says {record['rows']}"
            )
        if images:
            part = part.with_columns(
                pl.col("wds_shard").replace_strict(tar_names[i], return_dtype=pl.String)
            )
        while part.height:
            take = min(parquet_rows - buffered, part.height)
            buffer.append(part.head(take))
            buffered += take
            part = part.slice(take)
            if buffered == parquet_rows:
                flush(buffer)
                buffer, buffered = [], 0
    if buffered or written == 0:
        flush(buffer)
    if written != n_files:
        raise AssertionError(f"wrote {written} Parquet files, expected {n_files}")
    _replace_dir(tmp_data, out_dir / "data")

    files.sort(key=lambda f: (f["kind"] != "parquet", f["path"]))
    return {
        "format": "danqing-release/1",
        "rows": total_rows,
        "images": images,
        "samples": sum(f["rows"] for f in files if f["kind"] == "webdataset") if images else 0,
        "parquet_files": sum(f["kind"] == "parquet" for f in files),
        "webdataset_files": sum(f["kind"] == "webdataset" for f in files),
        # A list, not a mapping: write_json sorts mapping keys, and the column order matters.
        "columns": [{"name": c, "type": str(t)} for c, t in schema.items()],
        "files": files,
    }


def _fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _replace_dir(tmp: Path, final: Path) -> None:
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


def write_manifest(manifest: dict, path: str | os.PathLike) -> None:
    write_json(manifest, path)


def verify(release_dir: str | os.PathLike) -> dict:
    """Check a release folder against its manifest; returns {kind: rows}. Raises on a mismatch."""
    release_dir = Path(release_dir)
    manifest = read_json(release_dir / "manifest.json")
    seen: dict[str, int] = {}
    for entry in manifest["files"]:
        path = release_dir / entry["path"]
        if sha256_file(path) != entry["sha256"]:
            raise ReleaseError(f"{entry['path']}: sha256 differs from the manifest")
        seen[entry["kind"]] = seen.get(entry["kind"], 0) + entry["rows"]
    return seen


def size_category(n: int) -> str:
    """The Hugging Face `size_categories` bucket of n rows."""
    if n < 1_000:
        return "n<1K"
    bounds = [
        (10**4, "1K<n<10K"),
        (10**5, "10K<n<100K"),
        (10**6, "100K<n<1M"),
        (10**7, "1M<n<10M"),
        (10**8, "10M<n<100M"),
        (10**9, "100M<n<1B"),
        (10**10, "1B<n<10B"),
    ]
    for bound, label in bounds:
        if n < bound:
            return label
    return "n>1T" if n >= 10**12 else "10B<n<100B" if n < 10**11 else "100B<n<1T"


__all__ = ["sample_key", "write_part", "assemble", "verify", "size_category", "ReleaseError"]
