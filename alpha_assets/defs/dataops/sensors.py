"""Sensors that chain the links of flow_data when it is driven from the UI (discovery -> ingest -> ...)."""

# No `from __future__ import annotations`: Dagster inspects these signatures at decoration time.

from collections.abc import Callable

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    JobDefinition,
    RunRequest,
    RunStatusSensorContext,
    SensorDefinition,
    SkipReason,
    run_status_sensor,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from dagster._core.storage.tags import PARTITION_NAME_TAG

from alpha_assets.defs import keys
from alpha_assets.defs.dataops.chain import candidate_symbols, symbol_range_tags, validated_symbols
from alpha_assets.defs.dataops.jobs import discovery_job, features_job, ingest_job, validation_job
from alpha_assets.defs.partitions import runs_partitions
from alpha_assets.defs.resources import LakehouseResource
from alpha_assets.lakehouse.keys import validate_run_id
from alpha_assets.lakehouse.paths import LakehousePaths

AnyJob = JobDefinition | UnresolvedAssetJobDefinition


def _chain_sensor(
    name: str,
    after: AnyJob,
    then: AnyJob,
    request: Callable[[RunStatusSensorContext, LakehousePaths, str], RunRequest],
) -> SensorDefinition:
    after_is_per_run = after.partitions_def == runs_partitions

    @run_status_sensor(
        name=name,
        run_status=DagsterRunStatus.SUCCESS,
        monitored_jobs=[after],
        request_job=then,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"When {after.name} succeeds for a RUN_ID, launch {then.name} for it.",
    )
    def _sensor(context: RunStatusSensorContext, lakehouse: LakehouseResource) -> RunRequest | SkipReason:
        tags = context.dagster_run.tags
        # A runs-partitioned link names its RUN_ID in its partition; a symbol range only in the chain's tag.
        run_id = tags.get(keys.RUN_ID_TAG) or (tags.get(PARTITION_NAME_TAG) if after_is_per_run else None)
        if not run_id:
            return SkipReason(f"run {context.dagster_run.run_id} has no RUN_ID: it was launched outside a chain")
        return request(context, lakehouse.paths, validate_run_id(run_id))

    return _sensor


def _ingest_request(context: RunStatusSensorContext, paths: LakehousePaths, run_id: str) -> RunRequest:
    tags = symbol_range_tags(context.instance, candidate_symbols(paths, run_id), run_id)
    return RunRequest(run_key=f"{run_id}:ingest", tags=tags)


def _validation_request(context: RunStatusSensorContext, paths: LakehousePaths, run_id: str) -> RunRequest:
    return RunRequest(run_key=f"{run_id}:validation", partition_key=run_id, tags={keys.RUN_ID_TAG: run_id})


def _features_request(context: RunStatusSensorContext, paths: LakehousePaths, run_id: str) -> RunRequest:
    tags = symbol_range_tags(context.instance, validated_symbols(paths, run_id), run_id)
    return RunRequest(run_key=f"{run_id}:features", tags=tags)


discovery_succeeded_sensor = _chain_sensor("discovery_succeeded_sensor", discovery_job, ingest_job, _ingest_request)
ingest_succeeded_sensor = _chain_sensor("ingest_succeeded_sensor", ingest_job, validation_job, _validation_request)
validation_succeeded_sensor = _chain_sensor(
    "validation_succeeded_sensor", validation_job, features_job, _features_request
)

DATAOPS_SENSORS = [discovery_succeeded_sensor, ingest_succeeded_sensor, validation_succeeded_sensor]
