"""The Download Success stage: fetch one shard's images with img2dataset, over real HTTP.

img2dataset (the tool the DanQing README downloads with) runs in-process through its Python API on
a temporary Parquet of the shard's (uid, url, alt_text). It writes WebDataset tars (image, caption,
and a JSON with the uid), one Parquet of statuses and one stats JSON per tar. A pair is kept when
its image was fetched and decoded; every other pair is dropped with a reason `download:<kind>`
derived from img2dataset's error message (`classify_error`).

Resumability and atomic publication: img2dataset works in `results/images/{batch}/.{shard}.partial`,
outside the job's declared output, because Snakemake deletes a job's existing outputs before it
reruns the job. Its "incremental" mode skips every tar whose stats JSON exists, and a tar's stats
JSON is written only after the tar is closed, so a job killed mid-shard and run again downloads only
the unfinished tars. When every tar is complete, the folder is renamed onto `results/images/{batch}/
{shard}` (one atomic rename), then the kept rows, drops and counts record are written (the counts
record last). A fingerprint of the shard's URLs and the settings that shape the output guards the
partial folder: if either changed, the partial work is discarded instead of mixed in.

Stored size: the DanQing README stores images with `--resize_mode keep_ratio --image_size 256
--resize_only_if_bigger --skip_reencode`, i.e. shortest edge at most 256. This workflow's later
stages measure blur, entropy and embeddings on the stored image, and a 256 px shortest edge turns an
extreme-aspect banner into thousands of pixels on its long side while shrinking normal photos below
what the blur measure was calibrated on. So the default here bounds the *longest* edge instead
(`keep_ratio_largest`, 1024 px, only if bigger, no re-encode when nothing changes); the original
width and height are recorded on every kept row for the geometry filter and the resolution figure.
img2dataset's own size and aspect filters are off by default: the image_geometry step owns them and
records its drops under its own name.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import io
import json
import logging
import math
import os
import re
import shutil
import signal
import sys
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import polars as pl

from danqing.filters import StepResult, verdicts
from danqing.io import write_parquet
from danqing.safe_http import ROBOTS_DISALLOWED

log = logging.getLogger("danqing.download")

STEP = "download_images"
# img2dataset names tars with this many digits (its `oom_shard_count` default).
TAR_DIGITS = 5
IMAGE_EXTENSIONS = ("jpg", "png", "webp")
MAX_VALUE_CHARS = 200

KEPT_COLUMNS = {
    "image_tar": pl.String,
    "image_member": pl.String,
    "original_width": pl.Int32,
    "original_height": pl.Int32,
    "width": pl.Int32,
    "height": pl.Int32,
    "image_sha256": pl.String,
    "image_format": pl.String,
}

# Settings that change what lands in the tars: a partial download made with other values is
# discarded rather than resumed.
OUTPUT_SETTINGS = (
    "image_size",
    "resize_mode",
    "resize_only_if_bigger",
    "skip_reencode",
    "encode_format",
    "encode_quality",
    "samples_per_tar",
    "min_image_size",
    "max_aspect_ratio",
    "user_agent_token",
    "disallowed_header_directives",
)

_HTTP_STATUS = re.compile(r"HTTP Error (\d{3})")


def classify_error(message: str | None) -> str:
    """The drop kind of an img2dataset error message (`download:<kind>` in the drop table)."""
    if not message:
        return "other"
    text = message.lower()
    if "refused address" in text:
        return "refused_address"
    if "refused redirect" in text or "unknown url type" in text:
        return "refused_scheme"
    if message.startswith(ROBOTS_DISALLOWED):
        return "robots_disallowed"
    if "response too large" in text:
        return "response_too_large"
    match = _HTTP_STATUS.search(message)
    if match:
        return f"http_{match.group(1)}"
    if "timed out" in text or "timeout" in text or "deadline" in text:
        return "timeout"
    if "x-robots-tag" in text:
        return "opted_out"
    if text.startswith("not an image"):
        return "not_image"
    if "image decoding error" in text or "cannot identify image" in text or "truncated" in text:
        return "decode_error"
    if "image too small" in text:
        return "too_small"
    if "aspect ratio too large" in text:
        return "aspect_ratio"
    if "image area too large" in text:
        return "too_large"
    if (
        "connection refused" in text
        or "connection reset" in text
        or "name or service not known" in text
        or "nodename nor servname" in text
        or "no address associated" in text
        or "remote end closed" in text
    ):
        return "connection_error"
    return "other"


# Magic numbers of the formats OpenCV decodes: a body that starts with none of them was not an
# image at all (an HTML error page served with status 200, say), not a damaged one.
_IMAGE_MAGIC = (
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"\x00\x00\x01\x00",
)


def looks_like_image(head: bytes) -> bool:
    if head.startswith(_IMAGE_MAGIC):
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    return head[4:8] == b"ftyp"  # AVIF / HEIF


# Pillow's decompression-bomb warning threshold; configurable as
# filters.download_images.max_image_pixels, read by the workers from the environment.
DEFAULT_MAX_PIXELS = 89_478_485
MAX_PIXELS_ENV = "DANQING_MAX_IMAGE_PIXELS"


def header_pixels(img_stream) -> int | None:
    """Width x height from the image's header alone (Pillow reads no pixel data), or None."""
    from PIL import Image

    img_stream.seek(0)
    try:
        with Image.open(img_stream) as image:
            width, height = image.size
    except Image.DecompressionBombError as bomb:  # Pillow's own refusal names the size
        found = re.search(r"\((\d+) pixels\)", str(bomb))
        return int(found.group(1)) if found else 2 * (Image.MAX_IMAGE_PIXELS or 0) + 1
    except Exception:  # not an image Pillow knows: the decoder says what it is
        return None
    finally:
        img_stream.seek(0)
    return width * height


# Bytes an encoding may hold beyond raw 8-bit RGB (ICC profile, EXIF) before it counts as padded:
# a 480 x 360 JPEG with 52 MB of comments is re-encoded, not stored as it came.
ENCODING_SLACK_BYTES = 64 * 1024


def normalised_stream(img_stream, pixels: int | None):
    """`img_stream`, or an 8-bit PNG of its image where img2dataset would mishandle it.

    16-bit PNGs: img2dataset's alpha matting assumes 8 bits and saturates them to white, and
    JPEG has no 16-bit form, so they are scaled to 8 bits first. Encodings larger than the raw
    pixels plus ENCODING_SLACK_BYTES are padding (comments, trailing data): re-encoded, they are
    stored at the size of their image. The PNG is lossless; img2dataset then encodes it once in
    the configured format.
    """
    import cv2
    import numpy as np

    data = img_stream.getvalue()
    sixteen_bit = data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 24 and data[24] == 16
    padded = pixels is not None and len(data) > 3 * pixels + ENCODING_SLACK_BYTES
    if not (sixteen_bit or padded):
        return img_stream
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        return img_stream  # the decoder's error is reported as usual
    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    ok, encoded = cv2.imencode(".png", image)
    return io.BytesIO(encoded.tobytes()) if ok else img_stream


def _sniffing_resizer_class():
    """img2dataset's Resizer, telling "not an image" apart from "image decoding error".

    img2dataset reports both as "Image decoding error"; the bytes it could not decode are still at
    hand here, so the message says which it was. Defined lazily so that importing this module does
    not import img2dataset (several seconds).
    """
    from img2dataset.resizer import Resizer

    class SniffingResizer(Resizer):
        def __call__(self, img_stream, blurring_bbox_list=None):
            area = header_pixels(img_stream)
            if area is not None and area > int(os.environ.get(MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS)):
                # Refused from the header, before a decode could allocate it (a 20000 x 20000
                # PNG bomb is 1.6 MB on the wire and 1.6 GB decoded).
                return None, None, None, None, None, f"image area too large: {area} pixels"
            img_stream = normalised_stream(img_stream, area)
            result = super().__call__(img_stream, blurring_bbox_list)
            if result[-1] == "Image decoding error":
                img_stream.seek(0)
                if not looks_like_image(img_stream.read(32)):
                    # What the body held stays out of the drop table: it came from a stranger.
                    return (*result[:-1], "not an image: no image signature")
            return result

    SniffingResizer.__module__ = __name__
    SniffingResizer.__qualname__ = "SniffingResizer"
    return SniffingResizer


def _orphan_free_logger_class():
    """img2dataset's stats-logger process, which dies with the job that started it.

    It polls for stats files until it is told to stop, so a job killed with SIGKILL used to leave
    it running (and holding multiprocessing's resource tracker) for many minutes.
    """
    from img2dataset.logger import LoggerProcess

    from danqing.processes import die_with_parent

    class OrphanFreeLoggerProcess(LoggerProcess):
        def run(self):
            die_with_parent()
            super().run()

    OrphanFreeLoggerProcess.__module__ = __name__
    OrphanFreeLoggerProcess.__qualname__ = "OrphanFreeLoggerProcess"
    return OrphanFreeLoggerProcess


_LAZY_CLASSES = {
    "SniffingResizer": _sniffing_resizer_class,
    "OrphanFreeLoggerProcess": _orphan_free_logger_class,
}


def __getattr__(name: str):
    # Spawned processes unpickle these classes by name: resolve them on first access.
    if name in _LAZY_CLASSES:
        cls = _LAZY_CLASSES[name]()
        globals()[name] = cls
        return cls
    raise AttributeError(name)


# img2dataset's own User-Agent (downloader.download_image), sent for robots.txt too.
_USER_AGENT = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:72.0) Gecko/20100101 Firefox/72.0"


def user_agent(token: str | None) -> str:
    if not token:
        return _USER_AGENT
    return f"{_USER_AGENT} (compatible; {token}; +https://github.com/rom1504/img2dataset)"


def worker_settings(cfg: dict, network: dict | None) -> dict:
    """What each img2dataset worker needs to guard its requests (picklable)."""
    return {
        "allowed_networks": list(network["allowed_networks"]) if network else [],
        "deadline": float(cfg["request_deadline"]),
        "max_bytes": int(cfg["max_response_bytes"]),
        "robots_txt": bool(cfg["robots_txt"]),
        "user_agent_token": cfg["user_agent_token"],
        "timeout": float(cfg["timeout"]),
    }


def _guard_worker(settings: dict) -> None:
    """Route this worker's image requests through the address policy, bounded, after robots.txt.

    img2dataset's `download_image` opens every URL with `urllib.request.urlopen`, which uses the
    installed opener; the robots.txt check wraps that function.
    """
    from danqing.safe_http import AddressPolicy, ResponseLimits, RobotsCache, guarded_opener

    downloader = importlib.import_module("img2dataset.downloader")
    opener = guarded_opener(
        AddressPolicy.from_networks(settings["allowed_networks"]),
        ResponseLimits(settings["deadline"], settings["max_bytes"]),
    )
    urllib.request.install_opener(opener)
    if not settings["robots_txt"]:
        return
    robots = RobotsCache(
        opener,
        user_agent(settings["user_agent_token"]),
        settings["user_agent_token"],
        settings["timeout"],
    )
    fetch = downloader.download_image

    def download_image(row, *args, **kwargs):
        key, url = row
        try:
            refusal = robots.refusal(url)
        except ValueError as err:  # a URL urllib cannot split
            return key, None, f"unknown url type: {err}"
        if refusal:
            return key, None, refusal
        return fetch(row, *args, **kwargs)

    downloader.download_image = download_image


# img2dataset restarts each worker process after this many tars (its maxtasksperchild), which
# bounds what a leak in a decoder can grow to.
TARS_PER_WORKER = 5


def guarded_distributor(
    processes_count, downloader, reader, _subjob_size, max_shard_retry, *, settings: dict
) -> None:
    """img2dataset's multiprocessing distributor, on pools whose dead worker fails the job.

    img2dataset's own uses `multiprocessing.Pool`, which waits forever for the tar of a worker
    the OOM killer took. Fresh workers every TARS_PER_WORKER tars each, as there (a pool per
    round: ProcessPoolExecutor's max_tasks_per_child hangs on Python 3.11, cpython#115634).
    Failed tars are retried `max_shard_retry` times, as there.
    """
    from danqing.processes import WorkerDied, executor

    rows = list(reader)
    for attempt in range(max_shard_retry + 1):
        failed = []
        per_round = TARS_PER_WORKER * processes_count
        for start in range(0, len(rows), per_round):
            batch = rows[start : start + per_round]
            with executor(
                min(processes_count, len(batch)), "spawn", _guard_worker, (settings,)
            ) as pool:
                try:
                    results = [
                        future.result()
                        for future in [pool.submit(downloader, row) for row in batch]
                    ]
                except BrokenProcessPool as err:
                    raise WorkerDied(
                        "an img2dataset worker process died while downloading (killed by a "
                        "signal or out of memory); completed tars are kept, run the job again "
                        "to resume"
                    ) from err
            failed += [row for ok, row in results if not ok]
        if not failed:
            return
        log.warning("%d tar(s) failed (attempt %d)", len(failed), attempt + 1)
        rows = failed


def img2dataset_kwargs(cfg: dict, processes: int) -> dict:
    """img2dataset.download arguments from the `filters.download_images` config section."""
    max_aspect = cfg["max_aspect_ratio"]
    return {
        "input_format": "parquet",
        "url_col": "url",
        "caption_col": "alt_text",
        "save_additional_columns": ["uid"],
        "output_format": "webdataset",
        "processes_count": max(1, int(processes)),
        "thread_count": int(cfg["thread_count"]),
        "number_sample_per_shard": int(cfg["samples_per_tar"]),
        "timeout": cfg["timeout"],
        "retries": int(cfg["retries"]),
        "user_agent_token": cfg["user_agent_token"],
        "disallowed_header_directives": list(cfg["disallowed_header_directives"]),
        "image_size": int(cfg["image_size"]),
        "resize_mode": cfg["resize_mode"],
        "resize_only_if_bigger": bool(cfg["resize_only_if_bigger"]),
        "skip_reencode": bool(cfg["skip_reencode"]),
        "encode_format": cfg["encode_format"],
        "encode_quality": int(cfg["encode_quality"]),
        "min_image_size": int(cfg["min_image_size"]),
        "max_aspect_ratio": float(max_aspect) if max_aspect else float("inf"),
        # Bounded from the header by SniffingResizer (max_image_pixels) before any decode.
        "max_image_area": float("inf"),
        "extract_exif": bool(cfg["extract_exif"]),
        "compute_hash": "sha256",
        "incremental_mode": "incremental",
        "distributor": "multiprocessing",
        "enable_wandb": False,
    }


def _fingerprint(frame: pl.DataFrame, cfg: dict) -> str:
    digest = hashlib.sha256()
    for uid, url in zip(frame["uid"].to_list(), frame["url"].to_list(), strict=True):
        digest.update(f"{uid}\t{url}\n".encode())
    digest.update(json.dumps({k: cfg[k] for k in OUTPUT_SETTINGS}, sort_keys=True).encode())
    return digest.hexdigest()


def partial_dir(images_dir: str | os.PathLike) -> Path:
    """Where a shard's download is in progress: next to the declared output, not inside it."""
    images_dir = Path(images_dir)
    return images_dir.parent / f".{images_dir.name}.partial"


@contextlib.contextmanager
def _output_to(path: str | os.PathLike | None) -> Iterator[None]:
    """Send this process's and its children's stdout/stderr (file descriptors 1 and 2) to `path`.

    img2dataset prints progress from worker processes, which Python-level redirection misses.
    """
    if path is None:
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, target):
            os.close(fd)


def run_img2dataset(
    url_list: Path,
    output_folder: Path,
    cfg: dict,
    processes: int,
    console_log: str | os.PathLike | None = None,
    network: dict | None = None,
) -> None:
    """One img2dataset.download call, in incremental mode, with its SIGINT handler undone.

    img2dataset installs a SIGINT handler that exits with status 0; an interrupted download must
    not look like a finished one, so it becomes a KeyboardInterrupt here.
    """
    # Both libraries phone home on import or start unless told not to; the workflow is offline.
    os.environ[MAX_PIXELS_ENV] = str(int(cfg["max_image_pixels"]))
    # OpenCV's own limit as a second guard (its default is 2^30 pixels).
    os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(int(cfg["max_image_pixels"]))
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    os.environ.setdefault("WANDB_MODE", "disabled")
    os.environ.setdefault("WANDB_SILENT", "true")
    # `img2dataset.main` the attribute is the CLI function; the module is in sys.modules.
    img2dataset_main = importlib.import_module("img2dataset.main")

    kwargs = img2dataset_kwargs(cfg, processes)
    previous_handler = signal.getsignal(signal.SIGINT)
    replaced = {
        "Resizer": __getattr__("SniffingResizer"),
        "LoggerProcess": __getattr__("OrphanFreeLoggerProcess"),
        "multiprocessing_distributor": functools.partial(
            guarded_distributor, settings=worker_settings(cfg, network)
        ),
    }
    originals = {name: getattr(img2dataset_main, name) for name in replaced}
    for name, value in replaced.items():
        setattr(img2dataset_main, name, value)
    try:
        with _output_to(console_log):
            img2dataset_main.download(
                url_list=str(url_list), output_folder=str(output_folder), **kwargs
            )
    except SystemExit as exc:
        raise KeyboardInterrupt("img2dataset was interrupted") from exc
    finally:
        for name, value in originals.items():
            setattr(img2dataset_main, name, value)
        signal.signal(signal.SIGINT, previous_handler)


def tar_names(n_rows: int, samples_per_tar: int) -> list[str]:
    """The stems of the tars img2dataset writes for `n_rows` input rows."""
    return [f"{i:0{TAR_DIGITS}d}" for i in range(math.ceil(n_rows / samples_per_tar))]


def missing_tars(folder: Path, stems: list[str]) -> list[str]:
    """Tars that img2dataset has not finished (its stats JSON is written last)."""
    return [
        s
        for s in stems
        if not all(
            (folder / f"{s}{suffix}").is_file() for suffix in (".tar", ".parquet", "_stats.json")
        )
    ]


def hash_members(tar_path: Path) -> dict[str, tuple[str, str, str]]:
    """sample key -> (member name, sha256 of the stored bytes, format), reading the tar once."""
    out: dict[str, tuple[str, str, str]] = {}
    with tarfile.open(tar_path, mode="r|") as archive:
        for member in archive:
            stem, _, ext = member.name.rpartition(".")
            if not member.isfile() or ext not in IMAGE_EXTENSIONS:
                continue
            data = archive.extractfile(member).read()
            out[stem] = (member.name, hashlib.sha256(data).hexdigest(), ext)
    return out


def read_statuses(folder: Path, stems: list[str], published: Path) -> pl.DataFrame:
    """img2dataset's status rows of all tars, with the stored image's location and hash."""
    frames = []
    for stem in stems:
        status = pl.read_parquet(folder / f"{stem}.parquet").select(
            "uid",
            "key",
            "status",
            "error_message",
            "width",
            "height",
            "original_width",
            "original_height",
        )
        members = hash_members(folder / f"{stem}.tar")
        keys = status["key"].to_list()
        found = [members.get(k) for k in keys]
        frames.append(
            status.with_columns(
                pl.lit(str(published / f"{stem}.tar")).alias("image_tar"),
                pl.Series("image_member", [f[0] if f else None for f in found], dtype=pl.String),
                pl.Series("image_sha256", [f[1] if f else None for f in found], dtype=pl.String),
                pl.Series("image_format", [f[2] if f else None for f in found], dtype=pl.String),
            )
        )
    if not frames:
        return pl.DataFrame(
            schema={
                "uid": pl.String,
                "key": pl.String,
                "status": pl.String,
                "error_message": pl.String,
            }
            | KEPT_COLUMNS
        )
    statuses = pl.concat(frames, how="vertical_relaxed")
    broken = statuses.filter((pl.col("status") == "success") & pl.col("image_member").is_null())
    if broken.height:
        raise RuntimeError(
            f"{broken.height} images that img2dataset reports as downloaded are missing from "
            f"their tars in {folder} (first: {broken['key'][0]}); delete that folder and rerun"
        )
    return statuses


def verdicts_from_statuses(frame: pl.DataFrame, statuses: pl.DataFrame) -> StepResult:
    """Keep the rows img2dataset stored an image for; drop the others with the error's kind."""
    if statuses["uid"].n_unique() != statuses.height:
        raise RuntimeError("img2dataset reported one uid more than once")
    joined = frame.select("uid").join(statuses, on="uid", how="left", maintain_order="left")
    reasons, values = [], []
    for status, message in zip(
        joined["status"].to_list(), joined["error_message"].to_list(), strict=True
    ):
        if status == "success":
            reasons.append(None)
            values.append(None)
        elif status is None:
            reasons.append("download:other")
            values.append("img2dataset recorded no status for this pair")
        else:
            reasons.append(f"download:{classify_error(message)}")
            values.append((message or status)[:MAX_VALUE_CHARS])
    columns = {name: joined[name].cast(dtype).to_list() for name, dtype in KEPT_COLUMNS.items()}
    result = verdicts(frame, STEP, reasons, values, columns=columns)
    result.kept = result.kept.with_columns(
        [pl.col(name).cast(dtype) for name, dtype in KEPT_COLUMNS.items()]
    )
    return result


def download_shard(
    frame: pl.DataFrame,
    cfg: dict,
    images_dir: str | os.PathLike,
    processes: int = 1,
    console_log: str | os.PathLike | None = None,
    network: dict | None = None,
) -> StepResult:
    """Download the images of one shard's rows into `images_dir` and return the verdicts.

    `network` is the config's `network` section: its `allowed_networks` are the only non-public
    addresses a request may reach (danqing/safe_http.py).

    `images_dir` appears (atomically) only once every tar is complete; an interrupted call leaves
    its work in `partial_dir(images_dir)`, and the next call with the same rows resumes it.
    """
    if frame["uid"].n_unique() != frame.height:
        raise ValueError("download_images needs unique uids in a shard")
    images_dir = Path(images_dir)
    # A tar is img2dataset's unit of parallel work: a shard smaller than processes x
    # samples_per_tar is split so that every process gets a tar.
    per_tar = min(int(cfg["samples_per_tar"]), max(1, math.ceil(frame.height / max(1, processes))))
    cfg = {**cfg, "samples_per_tar": per_tar}
    work = partial_dir(images_dir)
    out = work / "img2dataset"
    fingerprint = _fingerprint(frame, cfg)
    stamp = work / "fingerprint.txt"
    if work.exists() and (not stamp.is_file() or stamp.read_text().strip() != fingerprint):
        log.info("discarding %s: made from other rows or settings", work)
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint + "\n")

    stems = tar_names(frame.height, per_tar)
    todo = missing_tars(out, stems)
    started = time.perf_counter()
    if todo:
        if len(todo) < len(stems):
            log.info(
                "resuming %s: %d of %d tars already complete",
                out,
                len(stems) - len(todo),
                len(stems),
            )
        url_list = work / "urls.parquet"
        write_parquet(frame.select("uid", "url", "alt_text"), url_list)
        run_img2dataset(url_list, out, cfg, processes, console_log, network)
        still_missing = missing_tars(out, stems)
        if still_missing:
            raise RuntimeError(
                f"img2dataset did not complete tar(s) {', '.join(still_missing)} in {out} "
                f"(its output: {console_log or 'above'}); run the job again to resume"
            )
    elapsed = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)  # an empty shard has no tars
    statuses = read_statuses(out, stems, images_dir)
    result = verdicts_from_statuses(frame, statuses)
    if (
        result.dropped.height
        and result.kept.height == 0
        and (result.dropped["reason"] == "download:connection_error").all()
    ):
        # Not one host reachable: this machine is offline (or the demo image server is not
        # running), which says nothing about the pairs. Fail rather than drop them all, and
        # discard the tars so that a rerun fetches again instead of resuming the failures.
        shutil.rmtree(work)
        raise ConnectionError(
            f"none of the {frame.height} image URLs could be connected to (first error: "
            f"{result.dropped['value'][0]}); check the network, or start the demo image server "
            "(python -m danqing.demo.server, or run the demo with `make demo`)"
        )
    # img2dataset's scratch folder survives a kill; it is no part of the published output.
    shutil.rmtree(out / "_tmp", ignore_errors=True)
    if images_dir.exists():
        shutil.rmtree(images_dir)
    images_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(out, images_dir)
    shutil.rmtree(work)
    result.extra = {"tars": len(stems)}
    log.info(
        "%s: %d pairs, %d images stored, %d failed, in %.1fs (%.1f pairs/s)",
        images_dir,
        frame.height,
        result.kept.height,
        result.dropped.height,
        elapsed,
        frame.height / elapsed if elapsed > 0 else float("nan"),
    )
    return result
