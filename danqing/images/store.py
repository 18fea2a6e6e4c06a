"""Reading downloaded images back out of the WebDataset tars of the download_images step.

Every kept row of download_images carries `image_tar` (the tar's path, relative to the workflow's
working directory) and `image_member` (the image's member name in it). `read_images` yields the
bytes of a frame's images opening each tar once and reading it front to back.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Iterator

import polars as pl


class MissingImageError(FileNotFoundError):
    pass


def read_images(frame: pl.DataFrame, root: str | os.PathLike | None = None,
                verify: bool = False) -> Iterator[tuple[str, bytes]]:
    """Yield (uid, image bytes) for every row of `frame` (columns uid, image_tar, image_member).

    Rows are grouped by tar (tars in order of first appearance) and, within a tar, yielded in the
    order the members are stored, which is one sequential pass over each file; join on uid when
    the frame's order matters. `root` prefixes relative tar paths. With `verify`, each image's
    sha256 is checked against the row's `image_sha256`.
    """
    columns = ["uid", "image_tar", "image_member"] + (["image_sha256"] if verify else [])
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"read_images needs columns {missing} (kept rows of download_images)")
    rows = frame.select(columns)
    if rows.select(pl.col("image_tar").is_null().any() | pl.col("image_member").is_null().any()
                   ).item():
        raise ValueError("read_images got rows without an image (image_tar/image_member null)")
    for (tar_path,), group in rows.group_by("image_tar", maintain_order=True):
        path = os.path.join(root, tar_path) if root is not None else tar_path
        wanted: dict[str, list[tuple[str, str | None]]] = {}
        for row in group.iter_rows(named=True):
            wanted.setdefault(row["image_member"], []).append(
                (row["uid"], row.get("image_sha256")))
        yield from _read_tar(path, wanted)


def _read_tar(path: str, wanted: dict[str, list[tuple[str, str | None]]]
              ) -> Iterator[tuple[str, bytes]]:
    found: set[str] = set()
    # Random-access mode scans the headers only (seeking past data it does not need), so a few
    # images from a large tar cost a few reads, and all of them one sequential pass.
    with tarfile.open(path, mode="r:") as archive:
        for member in archive:
            targets = wanted.get(member.name)
            if not targets:
                continue
            data = archive.extractfile(member).read()
            found.add(member.name)
            for uid, sha in targets:
                if sha is not None and hashlib.sha256(data).hexdigest() != sha:
                    raise ValueError(f"{path}:{member.name} (uid {uid}) does not match its sha256")
                yield uid, data
            if len(found) == len(wanted):
                return
    absent = sorted(set(wanted) - found)
    raise MissingImageError(
        f"{path} lacks {len(absent)} of the {len(wanted)} images asked for "
        f"(e.g. {absent[0]}, uid {wanted[absent[0]][0][0]})"
    )
