"""Metadata helpers shared by both cycles' assets: paths, hashes, tables a person can read in the UI."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from dagster import DataVersion, MetadataValue, TableColumn, TableColumnConstraints, TableSchema

from alpha_assets.lakehouse.hashing import bytes_sha256, file_sha256
from alpha_assets.lakehouse.parquet import parquet_source
from alpha_assets.lakehouse.schemas import column_descriptions


def file_metadata(path: Path) -> dict[str, Any]:
    """The path of a written file and its content hash."""
    return {"path": MetadataValue.path(str(path)), "sha256": file_sha256(path)}


def data_version_of(paths: Sequence[Path]) -> DataVersion:
    """A data version from the content of every file an asset wrote (order-independent)."""
    digests = sorted(file_sha256(p) for p in paths if p.exists())
    return DataVersion(bytes_sha256("\n".join(digests).encode())[:24])


def column_schema(schema: pa.Schema, descriptions: Mapping[str, str] | None = None) -> MetadataValue:
    """``dagster/column_schema`` for an arrow schema: each column's type, nullability and description.

    Descriptions come from the fields' metadata (``lakehouse.schemas.described``), else from ``descriptions``.
    """
    described = {**(descriptions or {}), **column_descriptions(schema)}
    return MetadataValue.table_schema(
        TableSchema(
            columns=[
                TableColumn(
                    name=field.name,
                    type=str(field.type),
                    description=described.get(field.name),
                    constraints=TableColumnConstraints(nullable=field.nullable),
                )
                for field in schema
            ]
        )
    )


def stored_row_count(files: Iterable[Path]) -> int:
    """Rows of those of ``files`` that exist, from their parquet footers (no data read).

    A file that cannot be read is not counted: the audit names it, the count stays a count of what reads.
    """
    total = 0
    for path in files:
        try:
            total += pq.ParquetFile(parquet_source(path)).metadata.num_rows
        except (FileNotFoundError, pa.ArrowInvalid, OSError):
            continue
    return total


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, limit: int = 50) -> MetadataValue:
    """A markdown table of the first ``limit`` rows (the UI renders it), with a line saying what was cut."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"\n{len(rows) - limit} more rows not shown")
    return MetadataValue.md("\n".join(lines))


#: A run over at most this many symbols lists each in its materialisation's table; a longer run lists only the
#: symbols with something to note. Dagster copies a range run's metadata into the materialisation of every
#: partition: 500 rows of "1 new bar" made each of 505 events ~23 KB, 12 MB a day to write and read back.
SYMBOLS_LISTED_IN_FULL = 20


def symbols_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, noted: Callable[[Mapping[str, Any]], bool]
) -> MetadataValue:
    """A table of one row per symbol: all of them for a short run, else those for which ``noted`` is true."""
    if len(rows) <= SYMBOLS_LISTED_IN_FULL:
        return markdown_table(rows, columns, limit=SYMBOLS_LISTED_IN_FULL)
    shown = [row for row in rows if noted(row)]
    table = markdown_table(shown, columns, limit=200).value
    return MetadataValue.md(f"{table}\n\n{len(rows) - len(shown)} of {len(rows)} symbols had nothing to note")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).replace("|", "/") if value is not None else ""
