"""Parquet tables: atomic writes and schema-checked reads (with the hash of exactly the bytes parsed)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from alpha_assets.errors import LakehouseReadError
from alpha_assets.lakehouse.atomic import read_file_bytes, write_bytes_atomic
from alpha_assets.lakehouse.hashing import bytes_sha256
from alpha_assets.lakehouse.storage import DataPath, as_data_path, is_object_store


def write_table_atomic(table: pa.Table, path: DataPath, **options: Any) -> None:
    """Write ``table`` as parquet to ``path`` atomically (see :func:`write_bytes_atomic`).

    ``options`` go to ``pq.write_table`` (default ``compression="zstd"``); tables whose columns gain nothing from
    compression or dictionaries pass their own (see ``ohlcv.OHLCV_PARQUET_OPTIONS``).
    """
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **{"compression": "zstd", **options})
    write_bytes_atomic(sink.getvalue().to_pybytes(), path)


def read_table_and_sha256(
    path: DataPath, schema: pa.Schema | None = None, *, columns: list[str] | None = None
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


def parquet_source(path: DataPath) -> str | pa.BufferReader:
    """What pyarrow opens for ``path`` (e.g. ``pq.ParquetFile``): the local path, or the object's bytes.

    pyarrow takes no :class:`upath.UPath`; an object is read in one request. Raises ``FileNotFoundError`` (an
    ``OSError``) when the object does not exist, like pyarrow does for a local path.
    """
    return pa.BufferReader(path.read_bytes()) if is_object_store(path) else str(path)


def parse_parquet_bytes(
    data: bytes, path: DataPath, schema: pa.Schema | None = None, *, columns: list[str] | None = None
) -> pa.Table:
    """Parse parquet ``data`` read from ``path`` (named in errors), checked and cast as :func:`read_table` does."""
    return _parse_table(pa.BufferReader(data), str(path), schema, columns)


def read_table(path: DataPath, schema: pa.Schema | None = None) -> pa.Table:
    """Read a parquet file, checking it against ``schema`` when one is given.

    Columns are selected and cast to ``schema``'s types when the cast is safe (e.g. timestamp units), so
    files written by older versions with extra columns still read.

    Raises
    ------
    LakehouseReadError
        When the file is missing, is not parquet (truncated, corrupted), lacks a column of ``schema``, or
        has a column whose type cannot be cast safely.
    """
    return read_table_and_sha256(as_data_path(path), schema)[0]


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
