"""From discovery candidates and audit verdicts to the validated candidate list of one RUN_ID."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from alpha_assets.errors import EmptyUniverseError, ExportConflictError

OK_VERDICT = "OK"
SHORT_HISTORY_VERDICT = "SHORT_HISTORY"


def validate_candidates(
    candidates: Mapping[str, Any], verdicts: Sequence[Mapping[str, Any]], *, accept_short_history: bool = True
) -> dict[str, Any]:
    """The ``candidates_validated.json`` document: candidates whose verdict is OK, reasons for the rest.

    A ``SHORT_HISTORY`` verdict (clean bars that start after the requested start) is validated when
    ``accept_short_history``, and its reason is kept under ``short_history``; an ``INGEST_FAILED`` verdict (the
    symbol's ingestion failed in this run) is rejected with the source's error.

    Parameters
    ----------
    candidates : Mapping
        The ``candidates.json`` document (``run_id``, ``as_of``, ``candidates`` with ``symbol_key`` each).
    verdicts : Sequence of Mapping
        One audit verdict per candidate (``symbol_key``, ``verdict``, ``reasons``), as written to ``audit.json``.
    accept_short_history : bool
        The manifest's ``ingestion.accept_short_history``.

    Raises
    ------
    EmptyUniverseError
        When no candidate passed, with the count of each verdict.
    ValueError
        When a candidate has no verdict.
    """
    by_key = {v["symbol_key"]: v for v in verdicts}
    rows = list(candidates["candidates"])
    missing = [c["symbol_key"] for c in rows if c["symbol_key"] not in by_key]
    if missing:
        raise ValueError(f"no audit verdict for candidates {missing[:10]} of run {candidates['run_id']}")
    passing = {OK_VERDICT, SHORT_HISTORY_VERDICT} if accept_short_history else {OK_VERDICT}
    validated = [c for c in rows if by_key[c["symbol_key"]]["verdict"] in passing]
    rejected = {
        c["symbol_key"]: {
            "verdict": by_key[c["symbol_key"]]["verdict"],
            "reasons": by_key[c["symbol_key"]]["reasons"],
        }
        for c in rows
        if by_key[c["symbol_key"]]["verdict"] not in passing
    }
    short_history = {
        c["symbol_key"]: by_key[c["symbol_key"]]["reasons"]
        for c in validated
        if by_key[c["symbol_key"]]["verdict"] == SHORT_HISTORY_VERDICT
    }
    if not validated:
        counts: dict[str, int] = {}
        for verdict in rejected.values():
            counts[verdict["verdict"]] = counts.get(verdict["verdict"], 0) + 1
        raise EmptyUniverseError(
            f"run {candidates['run_id']}: none of {len(rows)} candidates passed the audit ({counts})"
        )
    return {
        "run_id": candidates["run_id"],
        "as_of": candidates["as_of"],
        "exchange": candidates.get("exchange"),
        "symbols": [c["symbol_key"] for c in validated],
        "candidates": validated,
        "rejected": rejected,
        "short_history": short_history,
    }


def check_same_universe(stored: Mapping[str, Any], fresh: Mapping[str, Any], where: str) -> None:
    """Refuse a new discovery of a RUN_ID that would change the universe its export already holds.

    Parameters
    ----------
    stored, fresh : Mapping
        The ``candidates.json`` document on disk and the one a new discovery produced.
    where : str
        The stored file, named in the message.

    Raises
    ------
    ExportConflictError
        When the exchange or the set of candidate symbols differs, naming what was added and removed.
    """
    old = {c["symbol_key"] for c in stored["candidates"]}
    new = {c["symbol_key"] for c in fresh["candidates"]}
    if old == new and stored.get("exchange") == fresh.get("exchange"):
        return
    raise ExportConflictError(
        f"RUN_ID {stored['run_id']} already has an export ({where}: {len(old)} candidates on "
        f"{stored.get('exchange')}, as of {stored.get('as_of')}); a new discovery gives {len(new)} on "
        f"{fresh.get('exchange')} (added {sorted(new - old)[:5]}, removed {sorted(old - new)[:5]}). "
        "An export is never rewritten with another universe: use a new RUN_ID"
    )
