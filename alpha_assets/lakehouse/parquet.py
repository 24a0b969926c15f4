"""Atomic writes, schema-checked reads and content hashes for lakehouse files."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from alpha_assets.errors import DiskFullError, LakehouseReadError

# mkstemp creates 0600 files and the rename keeps that mode; written files get what open() would give them.
# Read once at import, while nothing else runs: os.umask can only be read by setting it.
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK
#: What the kernel answers when a write finds no room: no space on the device, or the user's quota exhausted.
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def write_bytes_atomic(data: bytes, path: Path, *, sync_directory: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part.

    The bytes go to a temporary file in the same directory, are flushed and fsynced, then renamed over
    ``path`` (``os.replace`` is atomic on POSIX within one file system); the directory is fsynced so the
    rename survives a power loss. ``sync_directory=False`` skips that last fsync for a file whose loss in a
    power cut the next run notices and rewrites (the file is still complete or absent, never partial).

    Raises
    ------
    DiskFullError
        When the file system has no space (or quota) left; ``path`` keeps its old content.
    """
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
        _fsync_directory(path.parent)


def _disk_full(err: OSError, path: Path) -> OSError:
    """``err`` as a :class:`DiskFullError` naming ``path`` when it says the disk is full, else ``err``."""
    return DiskFullError(str(path)) if err.errno in _DISK_FULL_ERRNOS else err


def write_table_atomic(table: pa.Table, path: Path, **options: Any) -> None:
    """Write ``table`` as parquet to ``path`` atomically (see :func:`write_bytes_atomic`).

    ``options`` go to ``pq.write_table`` (default ``compression="zstd"``); tables whose columns gain nothing from
    compression or dictionaries pass their own (see ``ohlcv.OHLCV_PARQUET_OPTIONS``).
    """
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **{"compression": "zstd", **options})
    write_bytes_atomic(sink.getvalue().to_pybytes(), path)


def encode_json(document: Any) -> bytes:
    """Deterministic JSON: sorted keys, two-space indent, UTF-8, trailing newline."""
    return (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


def write_json_atomic(document: Any, path: Path) -> None:
    """Write ``document`` as deterministic JSON to ``path`` atomically."""
    write_bytes_atomic(encode_json(document), path)


def read_json(path: Path) -> Any:
    """Read a JSON file written by :func:`write_json_atomic`.

    Raises
    ------
    LakehouseReadError
        When the file is missing, unreadable or is not valid JSON.
    """
    return parse_json_bytes(read_file_bytes(path), path)


def parse_json_bytes(data: bytes, path: Path) -> Any:
    """Parse JSON ``data`` read from ``path`` (named in the error).

    Raises
    ------
    LakehouseReadError
        When ``data`` is not valid UTF-8 JSON (e.g. a truncated file).
    """
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise LakehouseReadError(str(path), f"not valid JSON ({err})") from err


def read_table_and_sha256(
    path: Path, schema: pa.Schema | None = None, *, columns: list[str] | None = None
) -> tuple[pa.Table, str]:
    """Read a parquet file once and return it with the sha256 of exactly the bytes that were parsed.

    Hashing and parsing the same bytes means the fingerprint a run records is the data it used, even if
    a writer replaces the file in between. ``columns`` parses only those columns (the hash still covers the
    whole file).

    Raises
    ------
    LakehouseReadError
        As :func:`read_table`.
    """
    data = read_file_bytes(path)
    return parse_parquet_bytes(data, path, schema, columns=columns), bytes_sha256(data)


def read_file_bytes(path: Path) -> bytes:
    """A file's bytes, or a :class:`LakehouseReadError` naming it (missing, a directory, unreadable)."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as err:
        raise LakehouseReadError(str(path), "file does not exist") from err
    except IsADirectoryError as err:
        raise LakehouseReadError(str(path), "is a directory, not a file") from err
    except OSError as err:
        raise LakehouseReadError(str(path), f"cannot be read ({err})") from err


def parse_parquet_bytes(
    data: bytes, path: Path, schema: pa.Schema | None = None, *, columns: list[str] | None = None
) -> pa.Table:
    """Parse parquet ``data`` read from ``path`` (named in errors), checked and cast as :func:`read_table` does."""
    return _parse_table(pa.BufferReader(data), str(path), schema, columns)


def read_table(path: Path, schema: pa.Schema | None = None) -> pa.Table:
    """Read a parquet file, checking it against ``schema`` when one is given.

    Columns are selected and cast to ``schema``'s types when the cast is safe (e.g. timestamp units), so
    files written by older versions with extra columns still read.

    Raises
    ------
    LakehouseReadError
        When the file is missing, is not parquet (truncated, corrupted), lacks a column of ``schema``, or
        has a column whose type cannot be cast safely.
    """
    return read_table_and_sha256(Path(path), schema)[0]


def _parse_table(
    source: pa.BufferReader, path: str, schema: pa.Schema | None, columns: list[str] | None = None
) -> pa.Table:
    try:
        # One small file per call: Arrow's thread pool and dataset layer cost more than they save.
        table = pq.ParquetFile(source).read(columns=columns, use_threads=False)
    except (pa.ArrowInvalid, OSError) as err:
        raise LakehouseReadError(path, f"not a readable parquet file ({err})") from err
    except KeyError as err:
        raise LakehouseReadError(path, f"missing column {err}") from err
    if schema is None:
        return table
    if table.schema.equals(schema):
        # Exactly the expected columns: the schema's own fields and metadata, without a cast per column.
        return pa.Table.from_arrays(table.columns, schema=schema)
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise LakehouseReadError(
            path, f"missing columns {missing}; expected {schema.names}, found {table.column_names}"
        )
    # Arrow would cast a naive or integer column to a UTC timestamp (and strings to floats) without a word.
    wrong = [
        f"{field.name} is {table.schema.field(field.name).type}, expected {field.type}"
        for field in schema
        if not _castable(table.schema.field(field.name).type, field.type)
    ]
    if wrong:
        raise LakehouseReadError(path, f"wrong column types ({'; '.join(wrong)})")
    try:
        return table.select(schema.names).cast(schema, safe=True)
    except (ValueError, pa.ArrowNotImplementedError, pa.ArrowTypeError) as err:
        # ArrowInvalid is a ValueError, and so is the error for a null in a non-nullable column.
        raise LakehouseReadError(path, f"wrong column types ({err})") from err


def _castable(source: pa.DataType, target: pa.DataType) -> bool:
    if pa.types.is_timestamp(target):
        return pa.types.is_timestamp(source) and (source.tz is None) == (target.tz is None)
    if pa.types.is_floating(target):
        return pa.types.is_floating(source) or pa.types.is_integer(source) or pa.types.is_null(source)
    return True


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of a file's bytes: its data version and its fingerprint in run artifacts."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bytes_sha256(data: bytes) -> str:
    """The sha256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive advisory ``flock`` on the file ``lock_path`` (created empty when missing).

    Lakehouse locks come from :class:`~alpha_assets.lakehouse.paths.LakehousePaths` (``lakehouse/_locks/``), one
    per symbol and dataset, so writers of different symbols never wait for each other and no lock file sits in
    a directory that readers open.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def shared_lock(lock_path: Path) -> Iterator[None]:
    """Hold a shared ``flock`` on ``lock_path`` while reading files a writer replaces under :func:`exclusive_lock`.

    Readers share the lock with each other and wait for a writer in progress. The lock file is opened
    read-only and never created: without one, no writer has ever held the lock, so there is nothing to wait for.
    """
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


def remove_sibling_lock(path: Path) -> None:
    """Remove ``<path>.lock``, where versions before ``lakehouse/_locks/`` kept the lock of ``path``.

    Called by a writer holding the new lock: inside a dataset directory that empty file broke every reader.
    """
    path.with_name(path.name + ".lock").unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
