"""The quarantine folder: refused rows recorded with their reason, unreadable stored files moved aside.

Nothing refused is lost: a malformed row is appended to ``lakehouse/quarantine/<KEY>.jsonl`` and an
unreadable ``<KEY>_1d.parquet`` is renamed into the folder under a fresh name before it is rebuilt.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pandas as pd

from alpha_assets.lakehouse.atomic import write_bytes_atomic
from alpha_assets.lakehouse.ohlcv import QuarantineRecord
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.lakehouse.storage import DataPath, make_folder, move


def append_quarantine(paths: LakehousePaths, key: str, records: Sequence[QuarantineRecord]) -> None:
    """Append records not yet in ``quarantine/<KEY>.jsonl`` (a re-sent bad row is recorded once); atomic."""
    if not records:
        return
    path = paths.quarantine_file(key)
    existing = path.read_bytes() if path.exists() else b""
    seen = set(existing.decode().splitlines())
    lines = []
    for record in records:
        line = json.dumps(record.to_json_dict(), sort_keys=True, ensure_ascii=False)
        if line not in seen:
            seen.add(line)
            lines.append(line)
    if lines:
        if existing and not existing.endswith(b"\n"):
            existing += b"\n"
        write_bytes_atomic(existing + ("\n".join(lines) + "\n").encode(), path)


def _quarantined_file_path(paths: LakehousePaths, key: str, now: pd.Timestamp) -> DataPath:
    """``quarantine/<KEY>_1d.<UTC stamp>.parquet``, or ``.<n>.parquet`` for the first free ``n``."""
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    candidate = paths.quarantined_ohlcv_file(key, stamp)
    number = 1
    while candidate.exists():
        candidate = paths.quarantined_ohlcv_file(key, stamp, number)
        number += 1
    return candidate


def move_aside_unreadable(paths: LakehousePaths, key: str, now: pd.Timestamp) -> str:
    """Move the symbol's unreadable file into the quarantine folder (an atomic rename; copy + delete in a bucket)."""
    target = _quarantined_file_path(paths, key, now)
    make_folder(target.parent)
    move(paths.ohlcv_file(key), target)
    return str(target)
