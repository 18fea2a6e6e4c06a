"""Atomic file output and the per-step record formats every rule writes.

Every output is written to a temporary name in the destination folder and renamed into place, so
a killed job never leaves a file that looks complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

DROP_SCHEMA = {
    "uid": pl.String,
    "step": pl.String,
    "reason": pl.String,
    "value": pl.String,
}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600; an output is as readable as any file the user creates.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_parquet(df: pl.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        df.write_parquet(tmp, compression="zstd", statistics=True)


def write_npz(path: str | os.PathLike, **arrays) -> None:
    """An uncompressed .npz of named arrays, atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def npz_memmap(path: str | os.PathLike, name: str) -> np.ndarray:
    """Array `name` of an uncompressed .npz (write_npz's) mapped read-only from the file: rows
    are read when touched, so a job can walk a large array in chunks without loading it."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(f"{name}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"{path}: {name} is compressed and cannot be mapped")
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        local = handle.read(30)
        if local[:4] != b"PK\x03\x04":
            raise ValueError(f"{path}: no zip entry at {name}'s offset")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        handle.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(handle)
        read_header = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read_header(handle)
        offset = handle.tell()
    if dtype.hasobject:
        raise ValueError(f"{path}: {name} holds Python objects")
    if not shape or 0 in shape:
        return np.zeros(shape, dtype)
    return np.memmap(path, dtype, "r", offset, shape, "F" if fortran else "C")


def write_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array)


def write_json(obj: object, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n")


def write_text(text: str, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_json(path: str | os.PathLike) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def shard_uids(paths) -> set[str]:
    """The uids of the rows of some shards."""
    return {uid for path in paths for uid in pl.read_parquet(path, columns=["uid"])["uid"]}


def shard_row_count(paths) -> int:
    """The rows of some shards, from their Parquet footers."""
    return sum(pl.scan_parquet(path).select(pl.len()).collect().item() for path in paths)


def empty_drops() -> pl.DataFrame:
    return pl.DataFrame(schema=DROP_SCHEMA)


def counts_record(
    step: str,
    batch: str | None,
    shard: str | None,
    n_input: int,
    n_kept: int,
    n_dropped: int,
    n_transformed: int = 0,
    status: str = "ran",
    note: str = "",
    extra: dict | None = None,
) -> dict:
    """The small record each filter job writes; the filtration table is summed from these only."""
    if n_input != n_kept + n_dropped:
        raise AssertionError(
            f"{step} {batch}/{shard}: {n_input} input rows but {n_kept} kept + {n_dropped} dropped"
        )
    record = {
        "step": step,
        "batch": batch,
        "shard": shard,
        "input": n_input,
        "kept": n_kept,
        "dropped": n_dropped,
        "transformed": n_transformed,
        "status": status,
        "note": note,
    }
    if extra:
        record.update(extra)
    return record
