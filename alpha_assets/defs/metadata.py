"""Metadata helpers shared by both cycles' assets: paths, hashes, tables a person can read in the UI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
from dagster import DataVersion, MetadataValue, TableColumn, TableSchema

from alpha_assets.lakehouse.parquet import bytes_sha256, file_sha256


def file_metadata(path: Path) -> dict[str, Any]:
    """The path of a written file and its content hash."""
    return {"path": MetadataValue.path(str(path)), "sha256": file_sha256(path)}


def data_version_of(paths: Sequence[Path]) -> DataVersion:
    """A data version from the content of every file an asset wrote (order-independent)."""
    digests = sorted(file_sha256(p) for p in paths if p.exists())
    return DataVersion(bytes_sha256("\n".join(digests).encode())[:24])


def column_schema(schema: pa.Schema) -> MetadataValue:
    """``dagster/column_schema`` for an arrow schema."""
    return MetadataValue.table_schema(TableSchema(columns=[TableColumn(name=f.name, type=str(f.type)) for f in schema]))


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, limit: int = 50) -> MetadataValue:
    """A markdown table of the first ``limit`` rows (the UI renders it), with a line saying what was cut."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"\n{len(rows) - limit} more rows not shown")
    return MetadataValue.md("\n".join(lines))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).replace("|", "/") if value is not None else ""
