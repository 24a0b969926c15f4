"""Per-symbol work in forked worker processes, the cores this process may use, the objects collections walk.

Threads do not help here: a symbol's work is short Python and numpy steps between file system calls, and a
thread returning from a call waits for the GIL (bench/README.md, "No per-symbol audit copies"). Forked workers
inherit the caller's objects, so a source or a closure need not be pickled; only each worker's results travel
back.
"""

from __future__ import annotations

import contextvars
import gc
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import TypeVar

from alpha_assets.errors import AlphaAssetsError

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")

#: Blocks of :func:`objects_left_out_of_collections` open in this process, and whether the last to close unfreezes.
_blocks_lock = threading.Lock()
_open_blocks = 0
_unfreeze_when_closed = False
#: The chunk function of the workers of the pool being run: set in each worker when it starts (inherited
#: through the fork, never pickled).
_chunk_function: Callable[[Sequence], list] | None = None


class WorkerProcessDiedError(AlphaAssetsError):
    """A worker process ended without returning its results (killed, e.g. for memory)."""


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity on Linux, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def workers_for(n_items: int, *, min_items_each: int, per_core: int = 1) -> int:
    """Worker processes for ``n_items``: ``per_core`` per available core, each with ``min_items_each`` or more.

    At least 1 (a scope too small to share runs in the calling process).
    """
    return max(1, min(per_core * available_cores(), n_items // min_items_each))


def map_chunks_in_forked_processes(
    function: Callable[[Sequence[_Item]], list[_Result]], items: Sequence[_Item], *, processes: int
) -> list[_Result]:
    """``function(items)``, computed as ``function(chunk)`` for ``processes`` chunks of ``items`` in forked workers.

    ``function`` takes a sequence of items and returns one result per item, in order; the chunks interleave the
    items (every ``processes``-th), so slow and fast items spread evenly, and the results come back in the
    order of ``items``. With ``processes <= 1`` or fewer than two items, ``function(items)`` runs here.

    Each worker is a fork of this process: ``function`` may use any object of the caller (a source, a
    closure); what it changes in them stays in the worker. So it runs in an empty context: a context variable
    the caller set (e.g. :func:`~alpha_assets.lakehouse.atomic.directory_syncs_batched`'s directories owed an
    fsync) would collect the worker's additions where the caller never sees them. An error raised by
    ``function`` in a worker is raised here.

    Raises
    ------
    WorkerProcessDiedError
        When a worker ends without returning its results (killed); the other workers' results are lost too.
    """
    processes = min(processes, len(items))
    if processes <= 1:
        return function(items)
    chunks = [items[first::processes] for first in range(processes)]
    fork = multiprocessing.get_context("fork")
    # A collection in a worker would walk every object inherited from this process and write to each one's
    # header, so the kernel would copy every page they share (copy-on-write): the `gc.freeze` documentation
    # recommends freezing before a fork. 505 symbols took 0.2-0.3 s less (bench/README.md).
    with objects_left_out_of_collections():
        with ProcessPoolExecutor(processes, mp_context=fork, initializer=_start_worker, initargs=(function,)) as pool:
            try:
                results = list(pool.map(_run_chunk, chunks))
            except BrokenProcessPool as err:
                raise WorkerProcessDiedError(f"a worker process died before returning its results ({err})") from err
    ordered: list[_Result] = [None] * len(items)  # type: ignore[list-item]
    for first, chunk_results in enumerate(results):
        ordered[first::processes] = chunk_results
    return ordered


@contextmanager
def objects_left_out_of_collections() -> Iterator[None]:
    """Leave the objects that exist on entry out of the garbage collector's walks until the block ends.

    A collection of the oldest generation walks every object of the process; in a Dagster step that is some
    400,000 objects (modules, the code location, the instance), which outlive the step: 0.2-0.27 s per full
    collection, against 0.01-0.03 s for the objects made in the block (bench/README.md). Frozen objects
    (``gc.freeze``) are never collected, so a cycle that is garbage on entry is freed only after the block.
    Blocks nest (within a thread or across threads): the objects are collected again when the last open block
    ends. Objects that were frozen before the first block stay frozen after it.
    """
    global _open_blocks, _unfreeze_when_closed  # noqa: PLW0603 - the process's one garbage collector
    with _blocks_lock:
        if _open_blocks == 0:
            # Asked on the first block only: get_freeze_count walks every frozen object (~30 ms for 550,000).
            _unfreeze_when_closed = gc.get_freeze_count() == 0
        _open_blocks += 1
        gc.freeze()
    try:
        yield
    finally:
        with _blocks_lock:
            _open_blocks -= 1
            if _open_blocks == 0 and _unfreeze_when_closed:
                gc.unfreeze()


def _start_worker(function: Callable[[Sequence], list]) -> None:
    global _chunk_function  # noqa: PLW0603 - the worker's one job, set once when it starts
    _chunk_function = function


def _run_chunk(chunk: Sequence) -> list:
    assert _chunk_function is not None, "set by _start_worker"
    results = contextvars.Context().run(_chunk_function, chunk)
    if len(results) != len(chunk):
        raise ValueError(f"the chunk function returned {len(results)} results for {len(chunk)} items")
    return results
