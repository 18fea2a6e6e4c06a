"""Worker processes that die with their job, and pools whose dead worker fails the job.

`multiprocessing.Pool` replaces a worker that was killed (by the OOM killer, say) and waits for
the lost task forever: the job hangs. `concurrent.futures.ProcessPoolExecutor` notices the death
and raises `BrokenProcessPool`, which `ordered_map` turns into an error that names the job's
work. Every worker asks the kernel to kill it when the process that started it dies, so that no
worker outlives a job killed with SIGKILL.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import itertools
import multiprocessing
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

_PR_SET_PDEATHSIG = 1


class WorkerDied(RuntimeError):
    pass


def die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent exits (elsewhere a no-op)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _start_worker(initializer: Callable[..., None] | None, args: tuple) -> None:
    die_with_parent()
    if initializer is not None:
        initializer(*args)


def executor(
    processes: int,
    context: str = "spawn",
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
) -> ProcessPoolExecutor:
    """A process pool whose workers die with this process."""
    return ProcessPoolExecutor(
        processes,
        mp_context=multiprocessing.get_context(context),
        initializer=_start_worker,
        initargs=(initializer, initargs),
    )


def _apply_chunk(function: Callable, chunk: list) -> list:
    return [function(item) for item in chunk]


def ordered_map(
    pool: ProcessPoolExecutor,
    function: Callable,
    items: Iterable,
    what: str,
    chunksize: int = 64,
    window: int | None = None,
) -> Iterator:
    """`function` over `items` in the pool, results in input order, at most `window` chunks
    in flight (memory stays bounded however long `items` is)."""
    window = window or 2 * max(1, pool._max_workers)
    pending: collections.deque = collections.deque()
    iterator = iter(items)
    chunks = iter(lambda: list(itertools.islice(iterator, chunksize)), [])
    try:
        for chunk in chunks:
            pending.append(pool.submit(_apply_chunk, function, chunk))
            while len(pending) >= window:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
    except BrokenProcessPool as err:
        raise WorkerDied(
            f"a worker process died while {what} (killed by a signal or out of memory); "
            "run the job again"
        ) from err
