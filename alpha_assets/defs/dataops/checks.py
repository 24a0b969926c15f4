"""Asset check results of the DataOps assets: the audit on ohlcv, the health of features_matrix.

Severity WARN: a failing symbol is kept out of candidates_validated, it does not stop the other symbols.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue

from alpha_assets.defs import keys
from alpha_assets.defs.metadata import markdown_table
from alpha_assets.errors import LakehouseReadError
from alpha_assets.features.quality import count_infinite, point_in_time_mismatches
from alpha_assets.lakehouse import audit
from alpha_assets.lakehouse.features_store import read_features
from alpha_assets.lakehouse.ohlcv import read_ohlcv
from alpha_assets.lakehouse.paths import LakehousePaths

#: Which audit sub-checks each UI check summarises.
AUDIT_CHECKS_BY_ASSET_CHECK = {
    keys.OHLCV_SCHEMA_IS_VALID: (
        audit.CHECK_BARS_PRESENT,
        audit.CHECK_SCHEMA,
        audit.CHECK_UTC_TIMESTAMPS,
        audit.CHECK_SORTED_UNIQUE,
    ),
    keys.OHLCV_PRICES_ARE_SANE: (audit.CHECK_OHLC_SANITY, audit.CHECK_CLOSED_BARS),
    keys.OHLCV_HAS_NO_UNREPAIRED_GAPS: (audit.CHECK_GAPS,),
    keys.OHLCV_IS_FRESH: (audit.CHECK_STALENESS,),
    keys.OHLCV_IS_NOT_TOXIC: (audit.CHECK_DAILY_RETURN, audit.CHECK_VOLUME_ZSCORE, audit.CHECK_FROZEN_CLOSE),
}
#: Symbols recomputed by the point-in-time spot check per run, and how many bars are cut off.
SPOT_CHECK_SYMBOLS = 3
SPOT_CHECK_CUT_BARS = 30


def audit_check_results(reports: Sequence[Any], verdicts: Sequence[audit.AuditVerdict]) -> Iterator[AssetCheckResult]:
    """One result per ohlcv check, listing every failing symbol with the observed value and threshold."""
    failed_ingest = [r for r in reports if r.status == "failed"]
    yield AssetCheckResult(
        check_name=keys.OHLCV_INGEST_SUCCEEDED,
        passed=not failed_ingest,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "failed": len(failed_ingest),
            "symbols": len(reports),
            "failures": markdown_table(
                [{"symbol_key": r.symbol_key, "error": r.error} for r in failed_ingest],
                ["symbol_key", "error"],
            ),
        },
    )
    for check_name, sub_checks in AUDIT_CHECKS_BY_ASSET_CHECK.items():
        rows = [
            {
                "symbol_key": v.symbol_key,
                "check": name,
                "verdict": v.checks[name].verdict.value,
                "observed": v.checks[name].observed,
                "threshold": v.checks[name].threshold,
            }
            for v in verdicts
            for name in sub_checks
            if name in v.checks and not v.checks[name].passed
        ]
        failing = sorted({row["symbol_key"] for row in rows})
        yield AssetCheckResult(
            check_name=check_name,
            passed=not rows,
            severity=AssetCheckSeverity.WARN,
            metadata={
                "failing_symbols": len(failing),
                "symbols": len(verdicts),
                "failures": markdown_table(rows, ["symbol_key", "check", "verdict", "observed", "threshold"]),
            },
        )


def feature_check_results(paths: LakehousePaths, symbol_keys: Sequence[str]) -> Iterator[AssetCheckResult]:
    """No infinities, coverage up to each symbol's last bar, and a point-in-time spot check on a sample."""
    infinite: dict[str, int] = {}
    uncovered: list[dict[str, Any]] = []
    frames = {}
    for key in symbol_keys:
        try:
            bars = read_ohlcv(paths, key)
            stored = read_features(paths, [key])
        except LakehouseReadError as err:
            uncovered.append({"symbol_key": key, "last_bar": None, "last_feature": None, "why": err.reason})
            continue
        frames[key] = (bars, stored)
        if (count := count_infinite(stored)) > 0:
            infinite[key] = count
        last_bar = bars["timestamp"].max() if len(bars) else None
        last_feature = stored["date"].max() if len(stored) else None
        if last_bar is not None and (last_feature is None or last_feature < last_bar):
            uncovered.append(
                {
                    "symbol_key": key,
                    "last_bar": str(last_bar),
                    "last_feature": str(last_feature),
                    "why": "features end before the last bar",
                }
            )
    yield AssetCheckResult(
        check_name=keys.FEATURES_HAVE_NO_INF,
        passed=not infinite,
        metadata={"symbols_with_inf": len(infinite), "inf_cells": MetadataValue.json(infinite)},
    )
    yield AssetCheckResult(
        check_name=keys.FEATURES_COVER_LAST_BAR,
        passed=not uncovered,
        metadata={
            "uncovered_symbols": len(uncovered),
            "symbols": len(symbol_keys),
            "uncovered": markdown_table(uncovered, ["symbol_key", "last_bar", "last_feature", "why"]),
        },
    )
    sample = sorted(frames)[:: max(1, len(frames) // SPOT_CHECK_SYMBOLS)][:SPOT_CHECK_SYMBOLS]
    mismatches = {
        key: point_in_time_mismatches(*frames[key], key, cut=max(1, len(frames[key][0]) - SPOT_CHECK_CUT_BARS))
        for key in sample
        if len(frames[key][0])
    }
    mismatches = {k: v for k, v in mismatches.items() if v}
    yield AssetCheckResult(
        check_name=keys.FEATURES_ARE_POINT_IN_TIME,
        passed=not mismatches,
        metadata={
            "sampled": MetadataValue.json(sample),
            "cut_bars": SPOT_CHECK_CUT_BARS,
            "mismatched_columns": MetadataValue.json(mismatches),
        },
    )
