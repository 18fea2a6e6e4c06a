"""The dedup decisions file of the partitioned merge: written a part (an assignment file's rows)
at a time, with a footer index of each part's row groups so that each shard's filter job reads
its own rows. Kept apart from the dedup code: the filter jobs read it without FAISS or torch."""

from __future__ import annotations

import json

import polars as pl

from danqing.io import atomic_path

# Row groups of at most this many rows, indexed per part under this footer key.
ROW_GROUP_ROWS = 1 << 20
PARTS_KEY = "danqing.decision_parts"


class DecisionsWriter:
    """A dedup decisions file of `schema` (danqing.dedup.CLUSTERS_SCHEMA and any extra columns),
    written a part at a time and renamed into place when complete.

    Each assignment file's part gets row groups of its own, and the footer indexes them by the
    part's smallest uid (PARTS_KEY): a shard's filter job then reads its part's row groups and
    the shared ones (`read_part`), not the uid column of every row of the batch."""

    def __init__(self, path: str, schema: dict):
        self.schema = schema
        self._atomic = atomic_path(path)
        self._writer = None
        self._groups = 0
        self._parts: dict[str, list[int]] = {}
        self._shared: list[int] = []

    def __enter__(self):
        import pyarrow.parquet as pq

        tmp = self._atomic.__enter__()
        arrow = pl.DataFrame(schema=self.schema).to_arrow().schema
        self._writer = pq.ParquetWriter(tmp, arrow, compression="zstd")
        return self

    def write(self, frame: pl.DataFrame, part: bool = True) -> None:
        """One part (the rows of one assignment file), or with part=False rows that any shard
        may need; an extra column the frame lacks is written as nulls."""
        if not frame.height:
            return
        absent = [pl.lit(None, pl.String).alias(c) for c in self.schema if c not in frame.columns]
        frame = frame.with_columns(absent).select(list(self.schema)).cast(self.schema)
        self._writer.write_table(frame.to_arrow(), row_group_size=ROW_GROUP_ROWS)
        first, self._groups = self._groups, self._groups + -(-frame.height // ROW_GROUP_ROWS)
        groups = list(range(first, self._groups))
        if part:
            self._parts[frame["uid"].min()] = groups
        else:
            self._shared += groups

    def __exit__(self, *exc):
        if exc[0] is None:
            index = {"parts": self._parts, "shared": self._shared}
            self._writer.add_key_value_metadata({PARTS_KEY: json.dumps(index)})
        self._writer.close()
        return self._atomic.__exit__(*exc)


def read_part(path: str, uids: pl.Series) -> pl.DataFrame | None:
    """The decisions of a shard's `uids`, read from the row groups of the part whose smallest
    uid is the shard's and the shared ones; None when the file has no part index, no part
    matches or a uid is not there (the caller then scans the whole file)."""
    import pyarrow.parquet as pq

    if not len(uids):
        return None
    handle = pq.ParquetFile(path)
    meta = (handle.metadata.metadata or {}).get(PARTS_KEY.encode())
    if meta is None:
        return None
    index = json.loads(meta)
    groups = index["parts"].get(uids.min())
    if groups is None:
        return None
    table = pl.from_arrow(handle.read_row_groups(groups + index["shared"]))
    found = table.filter(pl.col("uid").is_in(uids.implode()))
    return found if found.height == uids.n_unique() else None
