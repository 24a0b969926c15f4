"""Atomic file replacement and raw file reads: the one way any lakehouse or run-folder file is written."""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from alpha_assets.errors import DiskFullError, LakehouseReadError
from alpha_assets.lakehouse.storage import DataPath, as_data_path, is_object_store, put_object

# mkstemp creates 0600 files and the rename keeps that mode; written files get what open() would give them.
# Read once at import, while nothing else runs: os.umask can only be read by setting it.
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK
#: What the kernel answers when a write finds no room: no space on the device, or the user's quota exhausted.
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: Directories whose fsync :func:`directory_syncs_batched` owes at its end (None outside one).
_OWED_DIRECTORY_SYNCS: contextvars.ContextVar[set[Path] | None] = contextvars.ContextVar("owed_syncs", default=None)


def write_bytes_atomic(data: bytes, path: DataPath, *, sync_directory: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part.

    The bytes go to a temporary file in the same directory, are flushed and fsynced, then renamed over
    ``path`` (``os.replace`` is atomic on POSIX within one file system); the directory is fsynced so the
    rename survives a power loss. ``sync_directory=False`` skips that last fsync for a file whose loss in a
    power cut the next run notices and rewrites (the file is still complete or absent, never partial).
    Inside :func:`directory_syncs_batched` the directory is fsynced once when the batch ends.
    In an object store the bytes are one put of the object, which is atomic by itself.

    Raises
    ------
    DiskFullError
        When the file system has no space (or quota) left; ``path`` keeps its old content.
    """
    if is_object_store(path):
        put_object(path, data)
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise _disk_full(err, path) from err
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), _FILE_MODE)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        if isinstance(err, OSError):
            raise _disk_full(err, path) from err
        raise
    if sync_directory:
        owed = _OWED_DIRECTORY_SYNCS.get()
        if owed is None:
            _fsync_directory(path.parent)
        else:
            owed.add(path.parent)


@contextlib.contextmanager
def directory_syncs_batched() -> Iterator[None]:
    """Within the block, fsync each directory that :func:`write_bytes_atomic` renamed files into once, at its end.

    For a batch of files written one after the other into one directory (a run's symbol files): each file's
    bytes are still fsynced before its rename, so a file is always complete; what a power loss before the
    block ends can undo is the renames, leaving older complete files that the next run brings up to date.
    Whoever records the batch as done (e.g. a Dagster materialisation) does it after the block. The
    directories are synced even when the block raises, for the files renamed before the error.
    """
    if _OWED_DIRECTORY_SYNCS.get() is not None:  # an enclosing batch syncs them
        yield
        return
    owed: set[Path] = set()
    token = _OWED_DIRECTORY_SYNCS.set(owed)
    try:
        yield
    finally:
        _OWED_DIRECTORY_SYNCS.reset(token)
        for directory in sorted(owed):
            _fsync_directory(directory)


def _disk_full(err: OSError, path: Path) -> OSError:
    """``err`` as a :class:`DiskFullError` naming ``path`` when it says the disk is full, else ``err``."""
    return DiskFullError(str(path)) if err.errno in _DISK_FULL_ERRNOS else err


def read_file_bytes(path: DataPath) -> bytes:
    """A file's bytes, or a :class:`LakehouseReadError` naming it (missing, a directory, unreadable)."""
    path = as_data_path(path)
    try:
        if is_object_store(path):
            # One GET of the whole object. A file object (``read_bytes``) asks for its size, then reads ranges on
            # that ETag, and fails when a writer replaced the object in between.
            return path.fs.cat_file(path.path)
        return path.read_bytes()
    except FileNotFoundError as err:
        raise LakehouseReadError(str(path), "file does not exist") from err
    except IsADirectoryError as err:
        raise LakehouseReadError(str(path), "is a directory, not a file") from err
    except OSError as err:
        raise LakehouseReadError(str(path), f"cannot be read ({err})") from err


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
