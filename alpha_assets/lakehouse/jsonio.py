"""Deterministic JSON documents, written atomically and read with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alpha_assets.errors import LakehouseReadError
from alpha_assets.lakehouse.atomic import read_file_bytes, write_bytes_atomic


def encode_json(document: Any) -> bytes:
    """Deterministic JSON: sorted keys, two-space indent, UTF-8, trailing newline."""
    return (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


def write_json_atomic(document: Any, path: Path, *, sync_directory: bool = True) -> None:
    """Write ``document`` as deterministic JSON to ``path`` atomically.

    ``sync_directory`` is that of :func:`write_bytes_atomic`.
    """
    write_bytes_atomic(encode_json(document), path, sync_directory=sync_directory)


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
