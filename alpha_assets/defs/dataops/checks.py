"""Asset check results of the DataOps assets, per symbol: the audit on ohlcv, the health of features_matrix.

Severity WARN: a failing symbol is kept out of candidates_validated, it does not stop the other symbols.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
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
from alpha_assets.errors import LakehouseReadError
from alpha_assets.features.backfill import symbol_periods_per_year
from alpha_assets.features.checks import infinite_cells_by_symbol, point_in_time_mismatches
from alpha_assets.lakehouse.features_store import read_features
from alpha_assets.lakehouse.ohlcv import read_ohlcv, read_ohlcv_arrays
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
) -> Iterator[Output]:
    """One result per ohlcv check and per symbol partition of the run, with the observed value and threshold.

    The ohlcv checks are partitioned by ``symbols``. A run over a range of symbols has no single partition key,
    and Dagster 1.13 records an ``AssetCheckResult`` of such a run under no partition at all (the partitions it
    planned stay unevaluated), so each symbol's result is emitted as an ``AssetCheckEvaluation`` naming its
    partition and the materialisation it checked (logged, then each check's output yielded: see
    ``_per_partition_results``). A one-symbol run after a range run then changes that symbol's status only: the
    other symbols keep theirs.
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
) -> Iterator[Output]:
    """Log a WARN evaluation per (check, partition) of ``asset_key``'s partitioned checks; yield each check's output.

    ``results`` maps a check name to ``{partition key: (passed, description, metadata)}``. Each evaluation targets the
    partition's latest materialisation (the one this run just recorded), so the UI and automation count it as
    the current status of that partition. Checks the run did not select are left out. The evaluations go through
    ``context.log_event``: Dagster builds and stores the event it builds for a yielded evaluation, without taking
    each of the thousands of a range run through the step's per-item machinery (error boundary, signal handlers,
    output checks; ~0.1 s of a 505-symbol ingest, bench/README.md). A WARN evaluation never fails the step, so
    nothing a yield would check is skipped.
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
            context.log_event(
                AssetCheckEvaluation(
                    asset_key=asset_key,
                    check_name=check_name,
                    passed=passed,
                    severity=AssetCheckSeverity.WARN,
                    description=description,
                    partition=partition,
                    target_materialization_data=targets.get(partition),
                    metadata=dict(metadata),
                )
            )
        # The check's step output, which an AssetCheckResult would have produced.
        yield Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(check_key))


def feature_check_results(
    context: AssetExecutionContext, paths: LakehousePaths, symbol_keys: Sequence[str]
) -> Iterator[Output]:
    """One result per features_matrix check and per symbol partition of the run, like the ohlcv checks.

    No infinities and coverage up to the last bar are evaluated for every symbol of the run. The point-in-time
    spot check recomputes a sample of at most ``SPOT_CHECK_SYMBOLS`` of them (every symbol of a smaller run):
    only the sampled symbols get a result of that check for this materialisation.
    """
    yield from _per_partition_results(context, names.FEATURES_MATRIX, feature_check_outcomes(paths, symbol_keys))


def feature_check_outcomes(
    paths: LakehousePaths, symbol_keys: Sequence[str]
) -> dict[str, dict[str, tuple[bool, str, dict[str, Any]]]]:
    """``{check name: {symbol key: (passed, description, metadata)}}`` of the features_matrix checks.

    A symbol whose bars or features do not read, or whose features end before its last bar, is uncovered; a
    symbol whose backfill wrote nothing has nothing to compare and is left out of the point-in-time sample.
    """
    infinite: dict[str, tuple[bool, str, dict[str, Any]]] = {}
    covered: dict[str, tuple[bool, str, dict[str, Any]]] = {}
    comparable = []
    # One scan of the table for every symbol: a scan per symbol would read every file's `symbol` column each time.
    try:
        features = read_features(paths, symbol_keys)
        table_error = None
    except LakehouseReadError as err:
        features, table_error = pd.DataFrame(), err.reason
    # Per-symbol figures over all rows at once: a pass per symbol costs milliseconds, thousands of times a day.
    infinite_cells = infinite_cells_by_symbol(features)
    last_features = features.groupby("symbol", sort=False)["date"].max() if len(features) else pd.Series()
    for key in symbol_keys:
        try:
            timestamps = read_ohlcv_arrays(paths, key).timestamps
        except LakehouseReadError as err:
            covered[key] = (False, f"{key}: {err.reason}", {"last_bar": None, "last_feature": None})
            continue
        if table_error is not None:
            covered[key] = (False, f"{key}: {table_error}", {"last_bar": None, "last_feature": None})
            continue
        count = int(infinite_cells.get(key, 0))
        infinite[key] = (count == 0, f"{key}: {count} infinite feature value(s)", {"inf_cells": count})
        last_bar = pd.Timestamp(int(timestamps[-1]), unit="ms", tz="UTC") if len(timestamps) else None
        last_feature = last_features.get(key)
        ends_early = last_bar is not None and (last_feature is None or last_feature < last_bar)
        covered[key] = (
            not ends_early,
            f"{key}: features end before the last bar" if ends_early else f"{key}: features up to the last bar",
            {"last_bar": str(last_bar), "last_feature": str(last_feature)},
        )
        if last_bar is not None and last_feature is not None:
            comparable.append(key)
    comparable.sort()
    sample = comparable[:: max(1, len(comparable) // SPOT_CHECK_SYMBOLS)][:SPOT_CHECK_SYMBOLS]
    periods = symbol_periods_per_year(paths, sample)
    point_in_time = {}
    for key in sample:
        bars = read_ohlcv(paths, key)
        stored = features[features["symbol"].to_numpy() == key].reset_index(drop=True)
        cut = max(1, len(bars) - SPOT_CHECK_CUT_BARS)
        mismatched = point_in_time_mismatches(bars, stored, key, cut=cut, periods_per_year=periods[key])
        point_in_time[key] = (
            not mismatched,
            f"{key}: recomputed from its first {cut} bars, "
            + (f"{len(mismatched)} column(s) differ" if mismatched else "every feature column equal"),
            {"cut_bars": SPOT_CHECK_CUT_BARS, "mismatched_columns": MetadataValue.json(mismatched)},
        )
    return {
        names.FEATURES_HAVE_NO_INF: infinite,
        names.FEATURES_COVER_LAST_BAR: covered,
        names.FEATURES_ARE_POINT_IN_TIME: point_in_time,
    }
