"""Asset check results of the DataOps assets: the audit on ohlcv (per symbol), the health of features_matrix.

Severity WARN: a failing symbol is kept out of candidates_validated, it does not stop the other symbols.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    MetadataValue,
    Output,
)
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from alpha_assets.dataops.audit import records as audit
from alpha_assets.defs import names
from alpha_assets.defs.metadata import markdown_table
from alpha_assets.errors import LakehouseReadError
from alpha_assets.features.backfill import symbol_periods_per_year
from alpha_assets.features.checks import count_infinite, point_in_time_mismatches
from alpha_assets.lakehouse.features_store import read_features
from alpha_assets.lakehouse.ohlcv import read_ohlcv
from alpha_assets.lakehouse.paths import LakehousePaths

#: Which audit sub-checks each UI check summarises.
AUDIT_CHECKS_BY_ASSET_CHECK = {
    names.OHLCV_SCHEMA_IS_VALID: (
        audit.CHECK_BARS_PRESENT,
        audit.CHECK_SCHEMA,
        audit.CHECK_UTC_TIMESTAMPS,
        audit.CHECK_SORTED_UNIQUE,
    ),
    names.OHLCV_PRICES_ARE_SANE: (audit.CHECK_OHLC_SANITY, audit.CHECK_CLOSED_BARS),
    names.OHLCV_HAS_NO_UNREPAIRED_GAPS: (audit.CHECK_GAPS,),
    names.OHLCV_IS_FRESH: (audit.CHECK_STALENESS,),
    names.OHLCV_IS_NOT_TOXIC: (audit.CHECK_DAILY_RETURN, audit.CHECK_VOLUME_ZSCORE, audit.CHECK_FROZEN_CLOSE),
}
#: Symbols recomputed by the point-in-time spot check per run, and how many bars are cut off.
SPOT_CHECK_SYMBOLS = 3
SPOT_CHECK_CUT_BARS = 30


def audit_check_results(
    context: AssetExecutionContext, reports: Sequence[Any], verdicts: Sequence[audit.AuditVerdict]
) -> Iterator[AssetCheckEvaluation | Output]:
    """One result per ohlcv check and per symbol partition of the run, with the observed value and threshold.

    The ohlcv checks are partitioned by ``symbols``. A run over a range of symbols has no single partition key,
    and Dagster 1.13 records an ``AssetCheckResult`` of such a run under no partition at all (the partitions it
    planned stay unevaluated), so each symbol's result is emitted as an ``AssetCheckEvaluation`` naming its
    partition and the materialisation it checked. A one-symbol run after a range run then changes that symbol's
    status only: the other symbols keep theirs.
    """
    failures = {
        check_name: {
            v.symbol_key: [
                {
                    "check": name,
                    "verdict": v.checks[name].verdict.value,
                    "observed": v.checks[name].observed,
                    "threshold": v.checks[name].threshold,
                }
                for name in sub_checks
                if name in v.checks and not v.checks[name].passed
            ]
            for v in verdicts
        }
        for check_name, sub_checks in AUDIT_CHECKS_BY_ASSET_CHECK.items()
    }
    failures[names.OHLCV_INGEST_SUCCEEDED] = {
        r.symbol_key: [{"check": "ingest", "verdict": "FAILED", "observed": r.error, "threshold": None}]
        if r.status == "failed"
        else []
        for r in reports
    }
    verdict_of = {v.symbol_key: v.verdict.value for v in verdicts}
    results = {
        check_name: {key: _symbol_result(key, verdict_of[key], rows) for key, rows in by_symbol.items()}
        for check_name, by_symbol in failures.items()
    }
    yield from _per_partition_results(context, names.OHLCV, results)


def _symbol_result(key: str, verdict: str, failures: list[dict[str, Any]]) -> tuple[bool, str, dict[str, Any]]:
    """A symbol's (passed, description, metadata) for one ohlcv check from the audit sub-checks that failed."""
    if not failures:
        return True, f"{key}: passed (audit verdict {verdict})", {"audit_verdict": verdict}
    text = "; ".join(
        f"{f['check']} {f['verdict']} (observed {f['observed']}, threshold {f['threshold']})" for f in failures
    )
    return False, f"{key}: {text}", {"audit_verdict": verdict, "failures": MetadataValue.json(failures)}


def _per_partition_results(
    context: AssetExecutionContext,
    asset_key: AssetKey,
    results: Mapping[str, Mapping[str, tuple[bool, str, Mapping[str, Any]]]],
) -> Iterator[AssetCheckEvaluation | Output]:
    """WARN evaluations of ``asset_key``'s partitioned checks, one per (check, partition), then each check's output.

    ``results`` maps a check name to ``{partition key: (passed, description, metadata)}``. Each evaluation targets the
    partition's latest materialisation (the one this run just recorded), so the UI and automation count it as
    the current status of that partition. Checks the run did not select are left out.
    """
    partitions = sorted({key for by_partition in results.values() for key in by_partition})
    instance = context.instance
    latest = instance.event_log_storage.get_latest_storage_id_by_partition(
        asset_key, DagsterEventType.ASSET_MATERIALIZATION, set(partitions)
    )
    records = (
        instance.fetch_materializations(
            AssetRecordsFilter(asset_key=asset_key, storage_ids=list(latest.values())), limit=len(latest)
        ).records
        if latest
        else []
    )
    targets = {
        r.partition_key: AssetCheckEvaluationTargetMaterializationData(
            run_id=r.run_id, storage_id=r.storage_id, timestamp=r.timestamp
        )
        for r in records
    }
    selected = context.selected_asset_check_keys
    for check_name, by_partition in results.items():
        check_key = AssetCheckKey(asset_key, check_name)
        if check_key not in selected:
            continue
        for partition, (passed, description, metadata) in sorted(by_partition.items()):
            yield AssetCheckEvaluation(
                asset_key=asset_key,
                check_name=check_name,
                passed=passed,
                severity=AssetCheckSeverity.WARN,
                description=description,
                partition=partition,
                target_materialization_data=targets.get(partition),
                metadata=dict(metadata),
            )
        # The check's step output, which an AssetCheckResult would have produced.
        yield Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(check_key))


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
        check_name=names.FEATURES_HAVE_NO_INF,
        passed=not infinite,
        metadata={"symbols_with_inf": len(infinite), "inf_cells": MetadataValue.json(infinite)},
    )
    yield AssetCheckResult(
        check_name=names.FEATURES_COVER_LAST_BAR,
        passed=not uncovered,
        metadata={
            "uncovered_symbols": len(uncovered),
            "symbols": len(symbol_keys),
            "uncovered": markdown_table(uncovered, ["symbol_key", "last_bar", "last_feature", "why"]),
        },
    )
    sample = sorted(frames)[:: max(1, len(frames) // SPOT_CHECK_SYMBOLS)][:SPOT_CHECK_SYMBOLS]
    periods = symbol_periods_per_year(paths, sample)
    mismatches = {
        key: point_in_time_mismatches(
            *frames[key],
            key,
            cut=max(1, len(frames[key][0]) - SPOT_CHECK_CUT_BARS),
            periods_per_year=periods[key],
        )
        for key in sample
        # A symbol whose features were never written (its backfill failed) has nothing to compare.
        if len(frames[key][0]) and len(frames[key][1])
    }
    mismatches = {k: v for k, v in mismatches.items() if v}
    yield AssetCheckResult(
        check_name=names.FEATURES_ARE_POINT_IN_TIME,
        passed=not mismatches,
        metadata={
            "sampled": MetadataValue.json(sample),
            "cut_bars": SPOT_CHECK_CUT_BARS,
            "mismatched_columns": MetadataValue.json(mismatches),
        },
    )
