"""DataOps assets: discovery, OHLCV ingestion with repair and audit, symbol metadata, validation, features."""

# No `from __future__ import annotations`: Dagster inspects these signatures at decoration time.

import functools
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pandas as pd
import sqlalchemy.exc
from dagster import (
    AllPartitionMapping,
    AssetCheckResult,
    AssetDep,
    AssetExecutionContext,
    DagsterInstance,
    DataVersion,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
)

from alpha_assets.dataops.audit.engine import AuditParams, audit_symbol_file
from alpha_assets.dataops.audit.records import AuditVerdict
from alpha_assets.dataops.candidates import check_same_universe, validate_candidates
from alpha_assets.defs import names
from alpha_assets.defs.automation import ON_DEPS_UPDATED
from alpha_assets.defs.chain import tag_run_with_run_id
from alpha_assets.defs.dataops.checks import (
    SPOT_CHECK_CUT_BARS,
    SPOT_CHECK_SYMBOLS,
    audit_check_results,
    feature_check_results,
)
from alpha_assets.defs.dataops.resources import ExchangeCredentialsResource, MarketSourceResource
from alpha_assets.defs.dataops.sections import DATAOPS_SECTIONS
from alpha_assets.defs.metadata import (
    column_schema,
    data_version_of,
    file_metadata,
    markdown_table,
    stored_row_count,
    symbols_table,
)
from alpha_assets.defs.partitions import runs_asset, symbols_asset, symbols_partitions
from alpha_assets.defs.resources import LakehouseResource, ManifestResource
from alpha_assets.features.backfill import backfill_features
from alpha_assets.features.matrix import FEATURE_COLUMNS, FEATURE_DESCRIPTIONS
from alpha_assets.lakehouse.duckdb_views import refresh_views
from alpha_assets.lakehouse.features_store import features_data_version, features_schema, features_table_version
from alpha_assets.lakehouse.jsonio import read_json, write_json_atomic
from alpha_assets.lakehouse.keys import split_symbol_key, validate_run_id
from alpha_assets.lakehouse.ohlcv import GAP_FACTOR
from alpha_assets.lakehouse.schemas import OHLCV_SCHEMA, SYMBOLS_SCHEMA
from alpha_assets.lakehouse.symbols import upsert_symbol_metadata
from alpha_assets.processes import workers_for
from alpha_assets.sources.base import Market
from alpha_assets.sources.discovery import discover_candidates
from alpha_assets.sources.files import FileSource
from alpha_assets.sources.ingest import IngestReport, IngestStatus, ingest_symbols_then
from alpha_assets.sources.markets import classify_markets

OWNERS = ["team:dataops"]
#: ``@asset`` of one file per RUN_ID of this cycle.
_dataops_runs_asset = functools.partial(runs_asset, group_name=names.DATAOPS_GROUP, owners=OWNERS)
#: ``@asset`` of one file per symbol of this cycle.
_dataops_symbols_asset = functools.partial(symbols_asset, group_name=names.DATAOPS_GROUP, owners=OWNERS)


#: Symbols per worker process below which a step's ingestion stays in its own process: a fork of the run's
#: process and the reports' trip back cost more than a few dozen symbols' work.
MIN_SYMBOLS_PER_PROCESS = 64


#: Tries to add the symbol partitions when concurrent runs keep inserting some of the same keys.
_PARTITION_ADD_TRIES = 3


def _add_symbol_partitions(instance: DagsterInstance, symbol_keys: list[str]) -> list[str]:
    """Add the keys not yet in ``symbols``; return them. Safe against flows adding the same keys at once.

    The keys returned are those missing when looked up: two flows racing may both name a key. Dagster checks which
    keys exist and then inserts the others, without a lock: two flow_data on one instance can both insert a key, and
    the second hits the table's unique constraint. The keys are then re-read and only those still missing are added.
    Both steps are bulk queries: one query per key took 5.3 s for 40,000 keys (bench/bench_partitions.py).
    """
    for attempt in range(_PARTITION_ADD_TRIES):
        existing = instance.get_existing_dynamic_partitions("symbols", symbol_keys)
        missing = [k for k in symbol_keys if k not in existing]
        try:
            instance.add_dynamic_partitions("symbols", missing)
            return missing
        except sqlalchemy.exc.IntegrityError:
            if attempt + 1 == _PARTITION_ADD_TRIES:
                raise
    raise AssertionError("unreachable: the loop returns or raises")


@_dataops_runs_asset(
    names.CANDIDATES,
    kind="json",
)
def candidates(
    context: AssetExecutionContext,
    lakehouse: LakehouseResource,
    market_source: MarketSourceResource,
    exchange_credentials: ExchangeCredentialsResource,
    manifest: ManifestResource,
) -> MaterializeResult:
    """The RUN_ID's universe: pairs passing the manifest's discovery filters.

    Writes `export/<RUN_ID>/candidates.json`.
    """
    run_id = validate_run_id(context.partition_key)
    profile = manifest.resolve(DATAOPS_SECTIONS)
    source = market_source.build(profile.sections["source"], exchange_credentials)
    markets = classify_markets(source.load_markets(), profile.sections["markets"])
    discovery = discover_candidates(markets, source.fetch_tickers(), profile.sections["discovery"])
    chosen = {c.symbol_key for c in discovery.candidates}
    document = {
        "run_id": run_id,
        "as_of": market_source.now().isoformat(),
        "exchange": source.exchange_key,
        "source": market_source.source.value,
        "manifest_profile": profile.name,
        "manifest_sha256": profile.sha256,
        **discovery.to_json_dict(),
        # What the symbols asset versions later, as the source described each candidate at discovery.
        "markets": {
            m.symbol_key: market_record(m, split_symbol_key(m.symbol_key)[0]) for m in markets if m.symbol_key in chosen
        },
    }
    tag_run_with_run_id(context, run_id)
    path = lakehouse.paths.candidates_file(run_id)
    if path.exists():
        # The RUN_ID's history stays as it was: the same universe keeps the stored document (a retried
        # chain), another one is refused.
        stored = read_json(path)
        check_same_universe(stored, document, str(path))
        document = stored
    else:
        write_json_atomic(document, path)
    symbol_keys = [c["symbol_key"] for c in document["candidates"]]
    new_keys = _add_symbol_partitions(context.instance, symbol_keys)
    context.log.info(
        f"discovery {run_id}: {len(symbol_keys)} candidates, {len(document['excluded'])} excluded, "
        f"{len(new_keys)} new symbol partitions"
    )
    return MaterializeResult(
        metadata={
            **file_metadata(path),
            "dagster/row_count": len(symbol_keys),
            "excluded": len(document["excluded"]),
            "new_symbol_partitions": len(new_keys),
            "candidates": markdown_table(document["candidates"], ["rank", "symbol_key", "sector", "quote_volume_24h"]),
            **skipped_files_metadata(source),
        },
        data_version=data_version_of([path]),
    )


def ohlcv_check_descriptions(audit: AuditParams) -> dict[str, str]:
    """The ohlcv checks' descriptions, with the thresholds of ``audit`` and the manifest keys that set them."""
    return {
        names.OHLCV_INGEST_SUCCEEDED: "Every symbol of the run was fetched without a source error.",
        names.OHLCV_SCHEMA_IS_VALID: "Files read with the OHLCV schema; timestamps UTC, sorted and unique.",
        names.OHLCV_PRICES_ARE_SANE: "low <= open, close <= high; prices > 0; volume >= 0.",
        names.OHLCV_HAS_NO_UNREPAIRED_GAPS: (
            f"Missing sessions (a step over {GAP_FACTOR:g} bar intervals) left after repair stay within "
            f"`audit.max_gap_fraction` of the sessions ({audit.max_gap_fraction:.0%})."
        ),
        names.OHLCV_IS_FRESH: (
            "The last bar is at most `audit.max_staleness_sessions` "
            f"({audit.max_staleness_sessions}) sessions behind the last closed session of the symbol's calendar."
        ),
        names.OHLCV_IS_NOT_TOXIC: (
            f"No daily |return| above `audit.max_daily_return` ({audit.max_daily_return:.0%}), no volume z-score "
            f"above `audit.max_volume_zscore` ({audit.max_volume_zscore:g}), no close frozen for "
            f"`audit.frozen_close_bars` ({audit.frozen_close_bars}) bars."
        ),
    }


#: The thresholds the UI describes: the packaged manifest's default profile (each check result names its run's).
OHLCV_CHECK_DESCRIPTIONS = ohlcv_check_descriptions(
    ManifestResource().resolve({"audit": AuditParams}).sections["audit"]
)
#: Daily assets: a new bar closes every day at 00:00 UTC and the daily schedule runs at 00:15, so an asset
#: not updated for a day and an hour has missed one cycle (WARN), and one not updated for two days and an
#: hour lacks a whole closed bar (FAIL). Evaluated by the daemon when the instance enables freshness.
DAILY_FRESHNESS = FreshnessPolicy.time_window(fail_window=timedelta(hours=49), warn_window=timedelta(hours=25))


@_dataops_symbols_asset(
    names.OHLCV,
    checks=OHLCV_CHECK_DESCRIPTIONS,
    metadata={"dagster/column_schema": column_schema(OHLCV_SCHEMA)},
    freshness_policy=DAILY_FRESHNESS,
)
def ohlcv(
    context: AssetExecutionContext,
    lakehouse: LakehouseResource,
    market_source: MarketSourceResource,
    exchange_credentials: ExchangeCredentialsResource,
    manifest: ManifestResource,
) -> Iterator[MaterializeResult | AssetCheckResult]:
    """Closed daily bars per symbol, fetched incrementally, gaps repaired, audited.

    Writes `lakehouse/<EXCHANGE>_<SYMBOL>_1d.parquet`.
    """
    paths = lakehouse.paths
    profile = manifest.resolve(DATAOPS_SECTIONS)
    symbol_keys = list(context.partition_keys)
    source = market_source.build(profile.sections["source"], exchange_credentials)
    now = market_source.now()
    markets = {m.symbol_key: m for m in classify_markets(source.load_markets(), profile.sections["markets"])}
    audit_params = profile.sections["audit"]

    def audit(symbol_key: str, calendar: str | None) -> AuditVerdict:
        return audit_symbol_file(paths, symbol_key, as_of=now, params=audit_params, calendar=calendar)

    # Each file audited right after its ingestion, in the same worker process (bench/README.md).
    ingested = ingest_symbols_then(
        source,
        [markets[k] for k in symbol_keys if k in markets],
        paths,
        now=now,
        params=profile.sections["ingestion"],
        processes=workers_for(len(symbol_keys), min_items_each=MIN_SYMBOLS_PER_PROCESS),
        then=lambda market, _report: audit(market.symbol_key, market.calendar),
    )
    listed = [report for report, _ in ingested]
    by_key = {report.symbol_key: (report, verdict) for report, verdict in ingested}
    reports, verdicts = [], []
    for key in symbol_keys:
        report, verdict = by_key.get(key) or (_unlisted_report(key, source.exchange_key), audit(key, None))
        reports.append(report)
        verdicts.append(verdict)
    statuses = Counter(r.status.value for r in reports)
    context.log.info(
        f"ingest: {len(reports)} symbols {dict(statuses)}, {sum(r.new_bars for r in reports)} new bars, "
        f"{source.requests_made} requests; audit {dict(Counter(v.verdict.value for v in verdicts))}"
    )
    # A listed symbol's report counts its stored bars (an unlisted one's counts none): only the other
    # partitions' files are opened.
    run_bars = sum(r.bars_after for r in listed)
    unreported = set(context.instance.get_dynamic_partitions(symbols_partitions.name)) - by_key.keys()
    yield MaterializeResult(
        metadata={
            # The lakehouse's bars of every symbol partition, not only this run's (those are `run_bars`).
            "dagster/row_count": run_bars + stored_row_count(paths.ohlcv_file(k) for k in unreported),
            "run_bars": run_bars,
            "symbols": len(reports),
            "new_bars": sum(r.new_bars for r in reports),
            "requests": source.requests_made,
            "requests_per_symbol": round(source.requests_made / max(len(reports), 1), 3),
            "failed_symbols": MetadataValue.json(sorted(r.symbol_key for r in reports if r.status == "failed")),
            "failures": MetadataValue.json({r.symbol_key: r.error for r in reports if r.status == "failed"}),
            "short_history": MetadataValue.json(
                {r.symbol_key: r.history.to_json_dict() for r in reports if r.history is not None}
            ),
            "per_symbol": symbols_table(
                [r.to_json_dict() for r in reports],
                [
                    "symbol_key",
                    "status",
                    "new_bars",
                    "bars_after",
                    "first_bar",
                    "last_bar",
                    "gaps_found",
                    "gaps_repaired",
                    "quarantined",
                    "error",
                ],
                noted=_ingest_worth_noting,
            ),
            "lakehouse_dir": MetadataValue.path(str(paths.lakehouse_dir)),
            **skipped_files_metadata(source),
        },
        data_version=data_version_of([paths.ohlcv_file(k) for k in symbol_keys]),
    )
    yield from audit_check_results(context, reports, verdicts)


@_dataops_runs_asset(
    names.CANDIDATES_VALIDATED,
    kind="json",
    deps=[names.CANDIDATES, AssetDep(names.OHLCV, partition_mapping=AllPartitionMapping())],
)
def candidates_validated(
    context: AssetExecutionContext, lakehouse: LakehouseResource, manifest: ManifestResource
) -> MaterializeResult:
    """Candidates whose stored bars passed the audit at the run's as-of time.

    Writes `export/<RUN_ID>/candidates_validated.json`.
    """
    paths = lakehouse.paths
    run_id = validate_run_id(context.partition_key)
    tag_run_with_run_id(context, run_id)
    profile = manifest.resolve(DATAOPS_SECTIONS)
    candidates_doc = read_json(paths.candidates_file(run_id))
    as_of = pd.Timestamp(candidates_doc["as_of"])
    verdicts = [
        audit_symbol_file(
            paths, c["symbol_key"], as_of=as_of, params=profile.sections["audit"], calendar=c.get("calendar")
        ).to_json_dict()
        for c in candidates_doc["candidates"]
    ]
    audit_path = paths.audit_report_file(run_id)
    write_json_atomic({"run_id": run_id, "as_of": as_of.isoformat(), "verdicts": verdicts}, audit_path)
    document = validate_candidates(
        candidates_doc, verdicts, accept_short_history=profile.sections["ingestion"].accept_short_history
    )
    path = paths.candidates_validated_file(run_id)
    write_json_atomic(document, path)
    counts = Counter(v["verdict"] for v in verdicts)
    # Another RUN_ID's unreadable export stays out of the views instead of failing this RUN_ID's validation.
    skipped: list = []
    views = refresh_views(paths, skipped=skipped)
    context.log.info(
        f"validation {run_id}: {len(document['symbols'])} of {len(verdicts)} OK, {dict(counts)}; "
        f"{len(views)} DuckDB views refreshed"
    )
    if skipped:
        context.log.warning(f"DuckDB views leave out {len(skipped)} unreadable file(s): {[str(p) for p in skipped]}")
    return MaterializeResult(
        metadata={
            **file_metadata(path),
            "audit_report": MetadataValue.path(str(audit_path)),
            "duckdb": MetadataValue.path(str(paths.duckdb_file)),
            "duckdb_views": MetadataValue.json(views),
            "duckdb_unreadable_files": MetadataValue.json([str(p) for p in skipped]),
            "dagster/row_count": len(document["symbols"]),
            "verdicts": MetadataValue.json(dict(sorted(counts.items()))),
            "short_history": MetadataValue.json(document["short_history"]),
            "rejected": markdown_table(
                [
                    {"symbol_key": k, "verdict": v["verdict"], "reasons": "; ".join(v["reasons"])}
                    for k, v in sorted(document["rejected"].items())
                ],
                ["symbol_key", "verdict", "reasons"],
            ),
        },
        data_version=data_version_of([path, audit_path]),
    )


@_dataops_runs_asset(
    names.SYMBOLS,
    kind="parquet",
    deps=[names.CANDIDATES_VALIDATED],
    metadata={"dagster/column_schema": column_schema(SYMBOLS_SCHEMA)},
)
def symbols(context: AssetExecutionContext, lakehouse: LakehouseResource) -> MaterializeResult:
    """Versioned market metadata of the RUN_ID's candidates.

    Writes `lakehouse/symbols.parquet/<KEY>.parquet`.
    """
    paths = lakehouse.paths
    run_id = validate_run_id(context.partition_key)
    candidates_doc = read_json(paths.candidates_file(run_id))
    bars = {v["symbol_key"]: v for v in read_json(paths.audit_report_file(run_id))["verdicts"]}
    now = pd.Timestamp(candidates_doc["as_of"])
    upserts = [
        upsert_symbol_metadata(
            paths,
            key,
            {**market, **{end: _timestamp(bars[key][end]) for end in ("first_bar", "last_bar")}},
            now=now,
        )
        for key, market in sorted(candidates_doc["markets"].items())
    ]
    actions = Counter(u.action for u in upserts)
    context.log.info(f"symbols {run_id}: {dict(actions)}")
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(paths.symbols_dir)),
            "dagster/row_count": len(upserts),
            "actions": MetadataValue.json(dict(sorted(actions.items()))),
            "versioned": markdown_table(
                [
                    {"symbol_key": u.symbol_key, "changed": ", ".join(u.changed_columns)}
                    for u in upserts
                    if u.action == "versioned"
                ],
                ["symbol_key", "changed"],
            ),
        },
        data_version=data_version_of([paths.symbol_metadata_file(u.symbol_key) for u in upserts]),
    )


FEATURE_CHECK_DESCRIPTIONS = {
    names.FEATURES_HAVE_NO_INF: "No feature value is +/-inf (NaN only where history is too short).",
    names.FEATURES_COVER_LAST_BAR: "Every symbol has features up to its last stored bar.",
    names.FEATURES_ARE_POINT_IN_TIME: (
        f"Recomputing the features from the bars without the last {SPOT_CHECK_CUT_BARS} gives the stored values "
        f"(nothing looks ahead); each run checks a sample of at most {SPOT_CHECK_SYMBOLS} of its symbols (a "
        "one-symbol run: that symbol); the others show as skipped for that materialisation."
    ),
}


@_dataops_symbols_asset(
    names.FEATURES_MATRIX,
    checks=FEATURE_CHECK_DESCRIPTIONS,
    deps=[names.OHLCV],
    automation_condition=ON_DEPS_UPDATED,
    kinds=frozenset({"deltalake"}),
    metadata={
        "dagster/column_schema": column_schema(
            features_schema(FEATURE_COLUMNS),
            {
                "date": "Bar open time (UTC) the row describes, computed from the bars up to it (point in time).",
                "symbol": "Symbol key `<EXCHANGE>_<BASE><QUOTE>`, as the file name.",
                **FEATURE_DESCRIPTIONS,
            },
        )
    },
    freshness_policy=DAILY_FRESHNESS,
)
def features_matrix(
    context: AssetExecutionContext, lakehouse: LakehouseResource
) -> Iterator[MaterializeResult | AssetCheckResult]:
    """Point-in-time technical ratings and statistics per symbol and day.

    Commits the partitions' rows to the Delta table `lakehouse/features_matrix/` (one commit for a new day).
    """
    paths = lakehouse.paths
    symbol_keys = list(context.partition_keys)
    report = backfill_features(paths, symbol_keys)
    rows = [r.to_json_dict() for r in report.symbols]
    context.log.info(
        f"features: {len(rows)} symbols, {sum(r['rows_changed'] for r in rows)} rows changed, "
        f"{sum(1 for r in rows if r['error'])} failed"
    )
    yield MaterializeResult(
        metadata={
            "path": MetadataValue.path(paths.features_table_uri),
            "table_version": features_table_version(paths),
            "symbols": len(rows),
            "rows_changed": sum(r["rows_changed"] for r in rows),
            "failed_symbols": MetadataValue.json(sorted(r["symbol_key"] for r in rows if r["error"])),
            "failures": MetadataValue.json({r["symbol_key"]: r["error"] for r in rows if r["error"]}),
            "per_symbol": symbols_table(
                rows,
                ["symbol_key", "rows_written", "rows_changed", "last_date", "error"],
                noted=lambda r: bool(r["error"]),
            ),
        },
        data_version=DataVersion(features_data_version(paths, symbol_keys)[:24]),
    )
    yield from feature_check_results(context, paths, symbol_keys)


def skipped_files_metadata(source: object) -> dict[str, Any]:
    """Skipped files of the files source with their reasons (``skipped_files`` JSON and a table); else none."""
    if not isinstance(source, FileSource):
        return {}
    skipped = [s.to_json_dict() for s in source.skipped]
    return {
        "skipped_files": MetadataValue.json(skipped),
        "skipped_files_table": markdown_table(skipped, ["name", "reason"], limit=200),
    }


def _ingest_worth_noting(report: dict[str, Any]) -> bool:
    """Whether a symbol's ingest did more than add bars: it failed, found gaps, refused rows or moved a file aside."""
    return bool(report["error"] or report["gaps_found"] or report["quarantined"] or report["moved_aside"])


def _unlisted_report(symbol_key: str, exchange_key: str) -> IngestReport:
    return IngestReport(
        symbol_key=symbol_key,
        status=IngestStatus.FAILED,
        bars_before=0,
        bars_after=0,
        new_bars=0,
        first_bar=None,
        last_bar=None,
        requests=0,
        error=f"{symbol_key}: not listed by the {exchange_key} source any more; stored bars kept as they are",
    )


def _timestamp(iso: str | None) -> pd.Timestamp | None:
    return None if iso is None else pd.Timestamp(iso)


def market_record(market: Market, exchange_key: str) -> dict[str, Any]:
    """The descriptive columns of ``symbols.parquet`` for one market (bars come from the audit)."""
    return {
        "exchange": exchange_key,
        "symbol_key": market.symbol_key,
        "ccxt_symbol": market.ccxt_symbol,
        "base": market.base,
        "quote": market.quote,
        "market_type": market.market_type,
        "asset_class": market.asset_class,
        "calendar": market.calendar,
        "sector": market.sector,
        "tick_size": market.tick_size,
        "lot_size": market.lot_size,
        "min_notional": market.min_notional,
        "status": "active" if market.active else "inactive",
    }
