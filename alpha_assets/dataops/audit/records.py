"""What the audit records: check names, verdicts, one check's result and one symbol's verdict, as JSON.

The checks themselves are in :mod:`alpha_assets.dataops.audit.engine`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pandas as pd

CHECK_BARS_PRESENT = "bars_present"
CHECK_SCHEMA = "schema"
CHECK_UTC_TIMESTAMPS = "utc_timestamps"
CHECK_SORTED_UNIQUE = "sorted_unique_timestamps"
CHECK_OHLC_SANITY = "ohlc_sanity"
CHECK_CLOSED_BARS = "closed_bars"
CHECK_GAPS = "gaps"
CHECK_STALENESS = "staleness"
CHECK_DAILY_RETURN = "daily_return"
CHECK_VOLUME_ZSCORE = "volume_zscore"
CHECK_FROZEN_CLOSE = "frozen_close"
CHECK_LAST_INGEST = "last_ingest"
CHECK_HISTORY_LENGTH = "history_length"

#: Every check name, in the order the checks run and their reasons are listed.
CHECK_NAMES = (
    CHECK_BARS_PRESENT,
    CHECK_SCHEMA,
    CHECK_UTC_TIMESTAMPS,
    CHECK_SORTED_UNIQUE,
    CHECK_OHLC_SANITY,
    CHECK_CLOSED_BARS,
    CHECK_GAPS,
    CHECK_STALENESS,
    CHECK_DAILY_RETURN,
    CHECK_VOLUME_ZSCORE,
    CHECK_FROZEN_CLOSE,
)
#: The checks taken from the symbol's ingestion log, after the bar checks, when there is a log.
INGEST_CHECK_NAMES = (CHECK_LAST_INGEST, CHECK_HISTORY_LENGTH)


class Verdict(StrEnum):
    """A symbol's data health, from best to worst: only ``OK`` symbols become validated candidates."""

    OK = "OK"
    SHORT_HISTORY = "SHORT_HISTORY"
    DEGRADED = "DEGRADED"
    STALE = "STALE"
    INGEST_FAILED = "INGEST_FAILED"
    TOXIC = "TOXIC"
    MISSING = "MISSING"


#: Precedence of the verdicts: the worst failed check decides.
VERDICT_SEVERITY = {
    Verdict.OK: 0,
    Verdict.SHORT_HISTORY: 1,
    Verdict.DEGRADED: 2,
    Verdict.STALE: 3,
    Verdict.INGEST_FAILED: 4,
    Verdict.TOXIC: 5,
    Verdict.MISSING: 6,
}


@dataclass(frozen=True)
class CheckResult:
    """One named check of one symbol.

    Attributes
    ----------
    passed : bool
        True when the data is healthy for this check.
    verdict : Verdict
        ``OK`` when passed, else the verdict this failure implies.
    observed : object
        JSON-ready observed number(s).
    threshold : object
        JSON-ready threshold(s) the observation was compared with.
    """

    passed: bool
    verdict: Verdict
    observed: Any
    threshold: Any

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "passed": self.passed,
            "verdict": self.verdict.value,
            "observed": self.observed,
            "threshold": self.threshold,
        }


@dataclass(frozen=True)
class AuditVerdict:
    """The audit of one symbol.

    Attributes
    ----------
    symbol_key : str
        The audited symbol.
    verdict : Verdict
        The worst verdict among the failed checks, ``OK`` when none failed.
    reasons : tuple of str
        One sentence per failed check (in :data:`CHECK_NAMES` order) with the observed number and the
        threshold.
    checks : dict
        Check name -> :class:`CheckResult`, for the checks that ran.
    first_bar, last_bar : Timestamp or None
        Open times (UTC) of the earliest and latest stored bars; None without bars.
    n_bars : int
        Rows stored (duplicates included).
    as_of : Timestamp
        The UTC instant the staleness was judged at.
    """

    symbol_key: str
    verdict: Verdict
    reasons: tuple[str, ...]
    checks: dict[str, CheckResult]
    first_bar: pd.Timestamp | None
    last_bar: pd.Timestamp | None
    n_bars: int
    as_of: pd.Timestamp

    @property
    def passed(self) -> bool:
        """True when the verdict is ``OK``."""
        return self.verdict is Verdict.OK

    def to_json_dict(self) -> dict[str, Any]:
        """Deterministic JSON-ready form (checks in :data:`CHECK_NAMES` order, timestamps as ISO 8601)."""
        return {
            "symbol_key": self.symbol_key,
            "verdict": self.verdict.value,
            "reasons": list(self.reasons),
            "checks": {
                name: self.checks[name].to_json_dict()
                for name in (*CHECK_NAMES, *INGEST_CHECK_NAMES)
                if name in self.checks
            },
            "first_bar": _iso(self.first_bar),
            "last_bar": _iso(self.last_bar),
            "n_bars": self.n_bars,
            "as_of": self.as_of.isoformat(),
        }


def _iso(stamp: pd.Timestamp | None) -> str | None:
    return None if stamp is None else stamp.isoformat()
