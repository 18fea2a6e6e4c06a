"""Reading downloaded images back out of the WebDataset tars of the download_images step.

Every kept row of download_images carries `image_tar` (the tar's path, relative to the workflow's
working directory) and `image_member` (the image's member name in it). `read_images` yields the
bytes of a frame's images opening each tar once and reading it front to back;
`read_images_in_order` yields them in the frame's order (the release, in key order).
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Iterator

import polars as pl


class MissingImageError(FileNotFoundError):
    pass


def read_images(
    frame: pl.DataFrame, root: str | os.PathLike | None = None, verify: bool = False
) -> Iterator[tuple[str, bytes]]:
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
    if rows.select(
        pl.col("image_tar").is_null().any() | pl.col("image_member").is_null().any()
    ).item():
        raise ValueError("read_images got rows without an image (image_tar/image_member null)")
    for (tar_path,), group in rows.group_by("image_tar", maintain_order=True):
        path = os.path.join(root, tar_path) if root is not None else tar_path
        wanted: dict[str, list[tuple[str, str | None]]] = {}
        for row in group.iter_rows(named=True):
            wanted.setdefault(row["image_member"], []).append((row["uid"], row.get("image_sha256")))
        yield from _read_tar(path, wanted)


def read_images_in_order(
    frame: pl.DataFrame, root: str | os.PathLike | None = None, verify: bool = False
) -> Iterator[tuple[str, bytes]]:
    """Yield (uid, image bytes) in the frame's row order, whatever order the tars hold them in.

    Each tar's headers are scanned once for the offsets of the wanted members (a few numbers per
    image in memory, never the images); then every image is one seek and one read.
    """
    columns = ["uid", "image_tar", "image_member"] + (["image_sha256"] if verify else [])
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"read_images needs columns {missing} (kept rows of download_images)")
    rows = frame.select(columns)
    offsets: dict[str, dict[str, tuple[int, int]]] = {}
    for (tar_path,), group in rows.group_by("image_tar", maintain_order=True):
        if tar_path is None:
            raise ValueError("read_images got rows without an image (image_tar null)")
        wanted = set(group["image_member"].to_list())
        found: dict[str, tuple[int, int]] = {}
        path = os.path.join(root, tar_path) if root is not None else tar_path
        with tarfile.open(path, mode="r:") as archive:
            for member in archive:
                if member.name in wanted and member.isfile():
                    found[member.name] = (member.offset_data, member.size)
        absent = sorted(wanted - set(found), key=str)
        if absent:
            raise MissingImageError(
                f"{path} lacks {len(absent)} of the {len(wanted)} images "
                f"asked for (e.g. {absent[0]})"
            )
        offsets[tar_path] = found
    handles: dict[str, io.BufferedReader] = {}
    try:
        for row in rows.iter_rows(named=True):
            tar_path = row["image_tar"]
            if tar_path not in handles:
                path = os.path.join(root, tar_path) if root is not None else tar_path
                handles[tar_path] = open(path, "rb")  # noqa: SIM115 (closed below)
            offset, size = offsets[tar_path][row["image_member"]]
            handle = handles[tar_path]
            handle.seek(offset)
            data = handle.read(size)
            sha = row.get("image_sha256")
            if sha is not None and hashlib.sha256(data).hexdigest() != sha:
                raise ValueError(
                    f"{tar_path}:{row['image_member']} (uid {row['uid']}) does not match its sha256"
                )
            yield row["uid"], data
    finally:
        for handle in handles.values():
            handle.close()


def _read_tar(
    path: str, wanted: dict[str, list[tuple[str, str | None]]]
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
