"""Advisory ``flock`` locks: one writer per symbol and dataset, readers that wait for a writer in progress.

In an object store, which has no ``flock``, a writer's lock is a lease object instead
(:func:`~alpha_assets.lakehouse.storage.object_lease`) and readers take none.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator

from alpha_assets.lakehouse.storage import DataPath, is_object_store, object_lease


@contextlib.contextmanager
def exclusive_lock(lock_path: DataPath) -> Iterator[None]:
    """Hold an exclusive advisory ``flock`` on the file ``lock_path`` (created empty when missing).

    Lakehouse locks come from :class:`~alpha_assets.lakehouse.paths.LakehousePaths` (``lakehouse/_locks/``), one
    per symbol and dataset, so writers of different symbols never wait for each other and no lock file sits in
    a directory that readers open. In an object store the lock is a lease object at ``lock_path``.
    """
    if is_object_store(lock_path):
        with object_lease(lock_path):
            yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def shared_lock(lock_path: DataPath) -> Iterator[None]:
    """Hold a shared ``flock`` on ``lock_path`` while reading files a writer replaces under :func:`exclusive_lock`.

    Readers share the lock with each other and wait for a writer in progress. The lock file is opened
    read-only and never created: without one, no writer has ever held the lock, so there is nothing to wait for.
    In an object store a reader takes no lock: each object it reads was put whole, in one request.
    """
    if is_object_store(lock_path):
        yield
        return
    try:
        handle = open(lock_path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        yield
        return
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def remove_sibling_lock(path: DataPath) -> None:
    """Remove ``<path>.lock``, where versions before ``lakehouse/_locks/`` kept the lock of ``path``.

    Called by a writer holding the new lock: inside a dataset directory that empty file broke every reader.
    No version kept locks in an object store, so there is nothing to remove there.
    """
    if is_object_store(path):
        return
    path.with_name(path.name + ".lock").unlink(missing_ok=True)
