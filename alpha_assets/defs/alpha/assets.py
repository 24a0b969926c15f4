"""Alpha assets: frozen returns snapshot with the blocking foundation gate, selection, flattened portfolio."""

# No `from __future__ import annotations` here: Dagster resolves the `config: SnapshotConfig` annotation
# at decoration time and cannot resolve it from a string.

import functools
from collections.abc import Iterator

from dagster import (
    AllPartitionMapping,
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetObservation,
    AssetRecordsFilter,
    AutomationCondition,
    Config,
    MaterializeResult,
    MetadataValue,
)
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from alpha_assets.alpha import pipeline
from alpha_assets.alpha.foundation_gate import GateVerdict
from alpha_assets.alpha.portfolio import encode_portfolio_json
from alpha_assets.alpha.returns import compute_returns_matrix, toxic_return_drops
from alpha_assets.alpha.snapshot import FrozenRun, freeze_run, is_frozen, load_frozen_run, take_snapshot
from alpha_assets.alpha.withdrawal import Withdrawal, withdraw_downstream
from alpha_assets.defs import names
from alpha_assets.defs.alpha.gate import (
    GATE_CHECKS,
    TOXIC_DROPS_CHECK_DESCRIPTION,
    WITHDRAWAL_CHECKS,
    require_gate_passed,
    toxic_drops_summary,
)
from alpha_assets.defs.automation import ON_DEPS_UPDATED
from alpha_assets.defs.chain import tag_run_with_run_id
from alpha_assets.defs.metadata import column_schema, data_version_of, file_metadata, markdown_table
from alpha_assets.defs.partitions import runs_asset, runs_partitions
from alpha_assets.defs.resources import LakehouseResource, ManifestResource, OfflineGuardResource
from alpha_assets.lakehouse.atomic import write_bytes_atomic
from alpha_assets.lakehouse.duckdb_views import refresh_views
from alpha_assets.lakehouse.jsonio import read_json, write_json_atomic
from alpha_assets.lakehouse.keys import validate_run_id
from alpha_assets.lakehouse.paths import LakehousePaths, RunDataFile, RunReportFile
from alpha_assets.lakehouse.schemas import RETURNS_MATRIX_LAYOUT
from alpha_assets.reports.run_folder import growth_sparklines, plots_markdown, render_run_reports

OWNERS = ["team:alpha"]
#: ``@asset`` of one file per RUN_ID of this cycle.
_alpha_runs_asset = functools.partial(runs_asset, group_name=names.ALPHA_GROUP, owners=OWNERS)
#: Selection runs by automation only once every blocking check upstream has passed.
GATED_AUTOMATION = ON_DEPS_UPDATED & AutomationCondition.all_deps_blocking_checks_passed()
#: The steps after the gate: a JSON file per RUN_ID, automated only once the gate's checks passed.
_gated_asset = functools.partial(_alpha_runs_asset, kind="json", automation_condition=GATED_AUTOMATION)


def _withdrawal_check_spec(asset_key: AssetKey) -> AssetCheckSpec:
    """The blocking check, one status per RUN_ID, that ``asset_key``'s latest materialisation was not withdrawn."""
    name, description = WITHDRAWAL_CHECKS[asset_key]
    return AssetCheckSpec(name, asset=asset_key, description=description, blocking=True, partitions_def=runs_partitions)


def _stands(asset_key: AssetKey, run_id: str) -> AssetCheckResult:
    """The withdrawal check passing on the materialisation just made: its gate passed (verified before)."""
    return AssetCheckResult(
        check_name=WITHDRAWAL_CHECKS[asset_key][0],
        passed=True,
        description=f"{run_id}: computed after a foundation gate that passed; not withdrawn.",
    )


class SnapshotConfig(Config):
    """Per-run option of returns_matrix."""

    refreeze: bool = False
    """Read the lakehouse again for this RUN_ID, replacing its frozen inputs (and its manifest)."""


@_alpha_runs_asset(
    names.RETURNS_MATRIX,
    kind="parquet",
    deps=[
        names.CANDIDATES_VALIDATED,
        AssetDep(names.OHLCV, partition_mapping=AllPartitionMapping()),
        AssetDep(names.FEATURES_MATRIX, partition_mapping=AllPartitionMapping()),
    ],
    # Partitioned like the asset: one status per RUN_ID, so automation holds back exactly the failed RUN_IDs.
    check_specs=[
        *(
            AssetCheckSpec(
                name, asset=names.RETURNS_MATRIX, description=text, blocking=True, partitions_def=runs_partitions
            )
            for name, text in GATE_CHECKS.values()
        ),
        AssetCheckSpec(
            names.RETURNS_DROPPED_NO_TOXIC_SYMBOL,
            asset=names.RETURNS_MATRIX,
            description=TOXIC_DROPS_CHECK_DESCRIPTION,
            partitions_def=runs_partitions,
        ),
    ],
    metadata={"dagster/column_schema": column_schema(RETURNS_MATRIX_LAYOUT)},
)
def returns_matrix(
    context: AssetExecutionContext,
    config: SnapshotConfig,
    lakehouse: LakehouseResource,
    manifest: ManifestResource,
    offline_guard: OfflineGuardResource,
) -> Iterator[MaterializeResult | AssetCheckResult]:
    """Daily simple returns of the validated candidates, frozen with the run's inputs.

    Writes `runs/<RUN_ID>/data/returns_matrix.parquet`.
    """
    paths = lakehouse.paths
    run_id = validate_run_id(context.partition_key)
    if config.refreeze or not is_frozen(paths, run_id):
        profile = manifest.resolve(pipeline.ALPHA_SECTIONS)
        snapshot = take_snapshot(paths, run_id)
        trimmed = compute_returns_matrix(snapshot.closes, profile.sections["returns"])
        freeze_run(paths, snapshot, trimmed, profile.document)
        context.log.info(f"froze {len(snapshot.fingerprints)} lakehouse files for {run_id} (profile {profile.name})")
    else:
        context.log.info(f"{run_id} is frozen: reusing its snapshot and manifest (refreeze to re-read)")
    frozen = load_frozen_run(paths, run_id)
    verdicts = pipeline.evaluate_gate(frozen, pipeline.alpha_params(frozen.manifest)["gate"])
    gate_path = paths.run_data_file(run_id, RunDataFile.GATE_VERDICT)
    write_json_atomic(pipeline.gate_document(run_id, verdicts), gate_path)
    drops = read_json(paths.run_data_file(run_id, RunDataFile.RETURNS_DROPS))
    toxic = toxic_return_drops(drops)
    returns_path = paths.run_data_file(run_id, RunDataFile.RETURNS)
    withdrawn = _withdraw_if_gate_failed(context, paths, run_id, verdicts)
    context.log.info(
        f"returns {run_id}: {frozen.returns.shape[0]} days x {frozen.returns.shape[1]} symbols, {len(drops)} drops, "
        f"gate {'passed' if all(v.passed for v in verdicts) else 'FAILED'}"
    )
    yield MaterializeResult(
        metadata={
            **file_metadata(returns_path),
            "dagster/row_count": frozen.returns.shape[0],
            "n_assets": frozen.returns.shape[1],
            "as_of": frozen.as_of.strftime("%Y-%m-%d"),
            "first_date": str(frozen.returns.index.min()) if len(frozen.returns) else "",
            "calendar_grid": frozen.snapshot.get("calendar", {}).get("grid", "24/7"),
            "periods_per_year": pipeline.returns_periods_per_year(frozen),
            "gate_verdict": MetadataValue.path(str(gate_path)),
            "drops": markdown_table(drops, ["axis", "key", "stage", "reason", "observed", "threshold"]),
            "withdrawn": MetadataValue.json([] if withdrawn is None else list(withdrawn.files)),
        },
        data_version=data_version_of([returns_path, gate_path]),
    )
    limit = pipeline.alpha_params(frozen.manifest)["returns"].max_abs_return
    yield AssetCheckResult(
        check_name=names.RETURNS_DROPPED_NO_TOXIC_SYMBOL,
        passed=not toxic,
        severity=AssetCheckSeverity.WARN,
        description=toxic_drops_summary(toxic, limit),
        metadata={
            "dropped_symbols": len(toxic),
            "max_abs_return": limit,
            "dropped": markdown_table(toxic, ["symbol", "date", "abs_return", "threshold"]),
        },
    )
    for verdict in verdicts:
        check_name, _ = GATE_CHECKS[verdict.name]
        yield AssetCheckResult(
            check_name=check_name,
            passed=verdict.passed,
            severity=AssetCheckSeverity.ERROR,
            description=verdict.message,
            metadata={
                "observed": MetadataValue.json(verdict.observed),
                "threshold": MetadataValue.json(verdict.threshold),
            },
        )


@_gated_asset(names.SELECTION, deps=[names.RETURNS_MATRIX], check_specs=[_withdrawal_check_spec(names.SELECTION)])
def selection(
    context: AssetExecutionContext, lakehouse: LakehouseResource, offline_guard: OfflineGuardResource
) -> Iterator[MaterializeResult | AssetCheckResult]:
    """HTR selection: scores, clusters, vetoes, stage reached and LONG/SHORT atoms.

    Writes `runs/<RUN_ID>/data/selection.json`.
    """
    paths, run_id, frozen = _gated_frozen_run(context, lakehouse)
    result = pipeline.run_selection(frozen, pipeline.alpha_params(frozen.manifest)["selection"])
    document = {"run_id": run_id, "as_of": frozen.as_of.strftime("%Y-%m-%d"), **result.to_json_dict()}
    path = paths.run_data_file(run_id, RunDataFile.SELECTION)
    write_json_atomic(document, path)
    context.log.info(
        f"selection {run_id}: {len(result.winners)} winners of {document['n_assets']} in {result.n_clusters} "
        f"clusters, stage {result.stage_reached}, {len(result.vetoes)} vetoes"
    )
    yield MaterializeResult(
        metadata={
            **file_metadata(path),
            "winners": len(result.winners),
            "n_clusters": result.n_clusters,
            "stage_reached": result.stage_reached,
            "vetoes": len(result.vetoes),
            "atoms": markdown_table(document["atoms"], ["symbol", "direction", "cluster"]),
        },
        data_version=data_version_of([path]),
    )
    yield _stands(names.SELECTION, run_id)


@_gated_asset(
    names.PORTFOLIO_FLATTENED, deps=[names.SELECTION], check_specs=[_withdrawal_check_spec(names.PORTFOLIO_FLATTENED)]
)
def portfolio_flattened(
    context: AssetExecutionContext, lakehouse: LakehouseResource, offline_guard: OfflineGuardResource
) -> Iterator[MaterializeResult | AssetCheckResult]:
    """Target weights per optimisation profile with the solver report of each.

    Writes `runs/<RUN_ID>/data/portfolio_flattened.json`.
    """
    paths, run_id, frozen = _gated_frozen_run(context, lakehouse)
    selection_doc = read_json(paths.run_data_file(run_id, RunDataFile.SELECTION))
    params = pipeline.alpha_params(frozen.manifest)["optimization"]
    results, atoms, atom_returns = pipeline.run_optimization(frozen, selection_doc, params)
    document = pipeline.portfolio_document(frozen, results, atoms)
    path = paths.run_data_file(run_id, RunDataFile.PORTFOLIO)
    write_bytes_atomic(encode_portfolio_json(document), path)
    reports = render_run_reports(
        returns=frozen.returns,
        atom_returns=atom_returns,
        selection_doc=selection_doc,
        portfolio_doc=document,
        gate_doc=read_json(paths.run_data_file(run_id, RunDataFile.GATE_VERDICT)),
        drops=read_json(paths.run_data_file(run_id, RunDataFile.RETURNS_DROPS)),
        annualisation={
            "grid": frozen.snapshot.get("calendar", {}).get("grid", "24/7"),
            "periods_per_year": params.periods_per_year or pipeline.returns_periods_per_year(frozen),
        },
    )
    for name, content in reports.items():
        write_bytes_atomic(content, paths.run_report_file(run_id, name))
    # The catalog holds views only (no lakehouse data): rebuilding it makes this run's weights queryable now.
    _refresh_views(context, paths)
    summary = [
        {
            "profile": p.value,
            "status": r.status,
            "solver": r.solver,
            "assets": 0 if r.weights is None else int((r.weights > 1e-9).sum()),
            "max_weight": None if r.weights is None else float(r.weights.max()),
            "reason": r.reason,
        }
        for p, r in results.items()
    ]
    for row in summary:
        context.log.info(f"profile {row['profile']}: {row['status']} ({row['solver'] or row['reason']})")
    plots = plots_markdown(reports, run_id)
    # Markdown metadata over 1,000 characters hides behind "Show Markdown"; an event's description is shown
    # as rendered Markdown: this observation puts the plots on the asset's Events tab, images inline.
    context.log_event(
        AssetObservation(
            asset_key=names.PORTFOLIO_FLATTENED,
            partition=run_id,
            description=plots,
            metadata={"report": MetadataValue.path(str(paths.run_report_file(run_id, RunReportFile.REPORT_HTML)))},
        )
    )
    yield MaterializeResult(
        metadata={
            **file_metadata(path),
            "profiles": markdown_table(summary, ["profile", "status", "solver", "assets", "max_weight", "reason"]),
            # Each under the UI's inline limit: the overview draws these sparklines of the equity-curves plot.
            **{
                f"growth_{name}": MetadataValue.md(line)
                for name, line in growth_sparklines(atom_returns, document).items()
            },
            "failed_profiles": MetadataValue.json(sorted(r["profile"] for r in summary if r["status"] != "optimal")),
            "report": MetadataValue.path(str(paths.run_report_file(run_id, RunReportFile.REPORT_HTML))),
            # Over the limit: a "[Show Markdown]" button on the overview; the Events tab shows them inline.
            "plots": MetadataValue.md(plots),
        },
        data_version=data_version_of([path]),
    )
    yield _stands(names.PORTFOLIO_FLATTENED, run_id)


def _withdraw_if_gate_failed(
    context: AssetExecutionContext, paths: LakehousePaths, run_id: str, verdicts: list[GateVerdict]
) -> Withdrawal | None:
    """After a failed gate, take the RUN_ID's earlier selection, portfolio and reports out of every view.

    A refreeze that fails its gate must not leave the weights of the old inputs served next to
    ``passed: false``: they move to ``runs/<RUN_ID>/withdrawn/<N>/`` (nothing is deleted), the DuckDB views are
    rebuilt without them, and a passing run writes new ones.
    """
    failed = [v for v in verdicts if not v.passed]
    if not failed:
        return None
    reason = " | ".join(f"{v.name}: {v.message}" for v in failed)
    withdrawal = withdraw_downstream(paths, run_id, reason)
    if withdrawal is not None:
        _refresh_views(context, paths)
        context.log.warning(
            f"{run_id}: the gate failed, so its earlier {', '.join(withdrawal.files)} moved to {withdrawal.folder} "
            "and no view serves them until a run whose gate passes replaces them"
        )
        for asset_key in WITHDRAWAL_CHECKS:
            context.log_event(_withdrawn_evaluation(context, asset_key, run_id, withdrawal, reason))
    return withdrawal


def _withdrawn_evaluation(
    context: AssetExecutionContext, asset_key: AssetKey, run_id: str, withdrawal: Withdrawal, reason: str
) -> AssetCheckEvaluation:
    """``asset_key``'s withdrawal check failing on the RUN_ID's latest materialisation of it.

    Dagster 1.13 cannot un-materialise a partition (``wipe_asset_partitions`` is not implemented by the SQL
    event storages, and would erase the history): the old materialisation stays listed, with this failed
    blocking check on it, until a materialisation after a passing gate replaces it.
    """
    latest = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset_key, asset_partitions=[run_id]), limit=1
    ).records
    return AssetCheckEvaluation(
        asset_key=asset_key,
        check_name=WITHDRAWAL_CHECKS[asset_key][0],
        passed=False,
        severity=AssetCheckSeverity.ERROR,
        blocking=True,
        partition=run_id,
        description=(
            f"{run_id}: WITHDRAWN. A later freeze of this RUN_ID failed the foundation gate, so this "
            f"materialisation's files moved to {withdrawal.folder} and no view serves them ({reason})."
        ),
        target_materialization_data=AssetCheckEvaluationTargetMaterializationData(
            run_id=latest[0].run_id, storage_id=latest[0].storage_id, timestamp=latest[0].timestamp
        )
        if latest
        else None,
        metadata={
            "withdrawn_to": MetadataValue.path(str(withdrawal.folder)),
            "files": MetadataValue.json(list(withdrawal.files)),
        },
    )


def _refresh_views(context: AssetExecutionContext, paths: LakehousePaths) -> None:
    """Rebuild the DuckDB views; another RUN_ID's unreadable JSON is left out of them instead of failing this one."""
    skipped: list = []
    refresh_views(paths, skipped=skipped)
    if skipped:
        context.log.warning(f"DuckDB views leave out {len(skipped)} unreadable file(s): {[str(p) for p in skipped]}")


def _gated_frozen_run(
    context: AssetExecutionContext, lakehouse: LakehouseResource
) -> tuple[LakehousePaths, str, FrozenRun]:
    """The partition's RUN_ID and frozen inputs, after refusing a RUN_ID whose foundation gate did not pass.

    Every step after the gate starts here, so none can read a frozen run the gate rejected.
    """
    paths = lakehouse.paths
    run_id = validate_run_id(context.partition_key)
    tag_run_with_run_id(context, run_id)  # an automation run of selection / portfolio_flattened
    require_gate_passed(paths, run_id)
    return paths, run_id, load_frozen_run(paths, run_id)
