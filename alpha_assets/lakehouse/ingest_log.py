"""The ingestion log of a symbol: how its last ingestion went and how much of the asked history is stored.

``lakehouse/ingest/<KEY>.json`` is rewritten (atomically) by every ingestion of the symbol and read by the
audit, so that a failure of the latest ingestion and a history shorter than the manifest asks are labelled
in the verdict instead of passing silently::

    {
      "version": 1,
      "symbol_key": "KRAKEN_BTCUSD",
      "last_attempt": {"as_of": "2026-11-25T21:07:00+00:00", "status": "failed", "error": "KRAKEN_BTCUSD: ..."},
      "history": {
        "requested_start": "2023-01-01T00:00:00+00:00", "first_bar": "2024-12-06T00:00:00+00:00",
        "short_by_days": 705, "reason": "kraken sent only the 720 most recent daily bars of BTC/USD ..."
      }
    }

``history`` is null when the stored bars reach back to the requested start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alpha_assets.errors import LakehouseReadError
from alpha_assets.lakehouse.jsonio import read_json, write_json_atomic
from alpha_assets.lakehouse.paths import LakehousePaths

INGEST_LOG_VERSION = 1


@dataclass(frozen=True)
class HistoryShortfall:
    """Stored bars that start after the start the manifest asks for, and why (ISO-8601 UTC times)."""

    requested_start: str
    first_bar: str | None
    short_by_days: int
    reason: str

    def to_json_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "requested_start": self.requested_start,
            "first_bar": self.first_bar,
            "short_by_days": self.short_by_days,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class IngestLog:
    """The last ingestion of one symbol.

    Attributes
    ----------
    symbol_key : str
        The symbol.
    as_of : str
        The clock of that ingestion (ISO-8601 UTC).
    status : str
        ``ok``, ``up_to_date`` or ``failed``.
    error : str or None
        Why it failed.
    history : HistoryShortfall or None
        How far the stored history falls short of the requested start, None when it does not.
    """

    symbol_key: str
    as_of: str
    status: str
    error: str | None
    history: HistoryShortfall | None

    @property
    def failed(self) -> bool:
        """Whether the last ingestion failed."""
        return self.status == "failed"

    def to_json_dict(self) -> dict[str, Any]:
        """The document written to ``lakehouse/ingest/<KEY>.json``."""
        return {
            "version": INGEST_LOG_VERSION,
            "symbol_key": self.symbol_key,
            "last_attempt": {"as_of": self.as_of, "status": self.status, "error": self.error},
            "history": None if self.history is None else self.history.to_json_dict(),
        }


def write_ingest_log(paths: LakehousePaths, log: IngestLog) -> None:
    """Replace the symbol's ingestion log atomically."""
    write_json_atomic(log.to_json_dict(), paths.ingest_log_file(log.symbol_key))


def read_ingest_log(paths: LakehousePaths, symbol_key: str) -> IngestLog | None:
    """The symbol's ingestion log, or None when there is none or it is unreadable (it only labels verdicts)."""
    path = paths.ingest_log_file(symbol_key)
    if not path.exists():
        return None
    try:
        document = read_json(path)
        attempt = document["last_attempt"]
        history = document.get("history")
        if document.get("version") != INGEST_LOG_VERSION:
            return None
        return IngestLog(
            symbol_key=str(document["symbol_key"]),
            as_of=str(attempt["as_of"]),
            status=str(attempt["status"]),
            error=attempt.get("error"),
            history=None if history is None else HistoryShortfall(**history),
        )
    except (LakehouseReadError, KeyError, TypeError):
        return None
