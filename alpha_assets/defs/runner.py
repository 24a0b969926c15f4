"""Drive the cycles' jobs on a Dagster instance from a terminal: the chain of flow_data, then flow_production.

Each link is a real run recorded on the instance (visible in the UI), executed in this process so a terminal
run pays no per-step process start-up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dagster import DagsterInstance, Definitions, ExecuteInProcessResult

from alpha_assets.defs import keys
from alpha_assets.defs.dataops.chain import candidate_symbols, symbol_range_tags, validated_symbols
from alpha_assets.errors import AlphaAssetsError
from alpha_assets.lakehouse.keys import validate_run_id
from alpha_assets.lakehouse.paths import LakehousePaths

Progress = Callable[[str], None]
#: Links of flow_data, for progress bars.
FLOW_DATA_LINKS = 4


class FlowFailedError(AlphaAssetsError):
    """A link of a flow failed; the message names the job, the run and the first error."""


@dataclass(frozen=True)
class LinkResult:
    """One finished run of a chain."""

    job_name: str
    dagster_run_id: str
    materializations: dict[str, dict[str, Any]]


def ensure_run_partition(instance: DagsterInstance, run_id: str) -> None:
    """Add ``run_id`` to the ``runs`` partitions if it is not there yet."""
    if not instance.has_dynamic_partition("runs", validate_run_id(run_id)):
        instance.add_dynamic_partitions("runs", [run_id])


def run_link(
    defs: Definitions,
    instance: DagsterInstance,
    job_name: str,
    *,
    partition_key: str | None = None,
    tags: Mapping[str, str] | None = None,
    run_config: Mapping[str, Any] | None = None,
) -> LinkResult:
    """Execute one job of the code location in this process and record it on ``instance``.

    Raises
    ------
    FlowFailedError
        When the run does not succeed, with the first step error.
    """
    # INFO on the console: the assets' one line per stage, not Dagster's step-by-step DEBUG events.
    config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}, **(run_config or {})}
    result: ExecuteInProcessResult = defs.resolve_job_def(job_name).execute_in_process(
        instance=instance,
        partition_key=partition_key,
        tags=dict(tags or {}),
        run_config=config,
        raise_on_error=False,
    )
    if not result.success:
        raise FlowFailedError(f"{job_name} failed (Dagster run {result.run_id}): {_first_error(result)}")
    materializations = {
        event.asset_key.to_user_string(): {
            k: v.value for k, v in event.step_materialization_data.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
    }
    return LinkResult(job_name=job_name, dagster_run_id=result.run_id, materializations=materializations)


def run_flow_data(
    defs: Definitions,
    instance: DagsterInstance,
    paths: LakehousePaths,
    run_id: str,
    progress: Progress = print,
) -> list[LinkResult]:
    """Discovery, ingestion, validation and features for ``run_id``: four runs, each after the previous one."""
    ensure_run_partition(instance, run_id)
    run_tags = {keys.RUN_ID_TAG: run_id}
    links = []
    progress(f"[1/4] discovery for RUN_ID {run_id}")
    links.append(run_link(defs, instance, keys.DISCOVERY_JOB, partition_key=run_id, tags=run_tags))
    symbols = candidate_symbols(paths, run_id)
    progress(f"[2/4] ingest, repair and audit of {len(symbols)} candidates")
    links.append(run_link(defs, instance, keys.INGEST_JOB, tags=symbol_range_tags(instance, symbols, run_id)))
    progress("[3/4] validation of the candidates")
    links.append(run_link(defs, instance, keys.VALIDATION_JOB, partition_key=run_id, tags=run_tags))
    validated = validated_symbols(paths, run_id)
    progress(f"[4/4] features of {len(validated)} validated symbols")
    links.append(run_link(defs, instance, keys.FEATURES_JOB, tags=symbol_range_tags(instance, validated, run_id)))
    return links


def _first_error(result: ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_failure and event.step_failure_data and event.step_failure_data.error:
            error = event.step_failure_data.error
            while error.cause is not None and "dagster" in error.cls_name.lower():
                error = error.cause
            return f"{event.step_key}: {error.message.strip()}"
    return "see the run's logs"
