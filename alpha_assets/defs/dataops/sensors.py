"""Sensors that chain a RUN_ID's runs on the daemon: discovery -> ingest -> validation -> flow_production.

Each link starts when the whole link before it succeeded, with that link's settings (see ``defs/chain.py``).
The last hop hands the RUN_ID to the Alpha cycle's job; the Alpha side never imports this module.
"""

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

from alpha_assets.defs import names
from alpha_assets.defs.alpha.jobs import flow_production
from alpha_assets.defs.chain import (
    ChainSettings,
    candidate_symbols,
    link_runs,
    link_succeeded,
    run_id_of,
    symbol_link_tags,
)
from alpha_assets.defs.dataops.jobs import discovery_job, ingest_job, validation_job
from alpha_assets.defs.resources import LakehouseResource
from alpha_assets.lakehouse.keys import validate_run_id
from alpha_assets.lakehouse.paths import LakehousePaths

AnyJob = JobDefinition | UnresolvedAssetJobDefinition
#: Minimum seconds between two evaluations of a chain sensor: 1 lets it run on every loop of the daemon (one
#: loop takes 5 s at least); Dagster's default of 30 s was half of a chain's latency from the UI.
CHAIN_SENSOR_INTERVAL_S = 1

NextLink = Callable[[RunStatusSensorContext, LakehousePaths, str, ChainSettings], list[RunRequest] | SkipReason]


def _chain_sensor(name: str, after: AnyJob, then: AnyJob, request: NextLink, *, per_run: bool) -> SensorDefinition:

    @run_status_sensor(
        name=name,
        run_status=DagsterRunStatus.SUCCESS,
        monitored_jobs=[after],
        request_job=then,
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=CHAIN_SENSOR_INTERVAL_S,
        description=f"When {after.name} succeeds for a RUN_ID (every part of it), launch {then.name} for it "
        "with the same run config resources and tags.",
    )
    def _sensor(context: RunStatusSensorContext, lakehouse: LakehouseResource) -> list[RunRequest] | SkipReason:
        run = context.dagster_run
        run_id = run_id_of(run, per_run=per_run)
        if not run_id:
            return SkipReason(f"run {run.run_id} has no RUN_ID: it was launched outside a chain")
        settings = ChainSettings.of_run(run, validate_run_id(run_id))
        return request(context, settings.lakehouse_paths(lakehouse.paths), run_id, settings)

    return _sensor


def _ingest_requests(
    context: RunStatusSensorContext, paths: LakehousePaths, run_id: str, settings: ChainSettings
) -> list[RunRequest]:
    tag_sets = symbol_link_tags(context.instance, candidate_symbols(paths, run_id), settings.tags)
    return [
        RunRequest(
            run_key=f"{run_id}:{settings.chain_id}:ingest:{tags[names.PART_TAG]}",
            run_config=settings.run_config,
            tags=tags,
        )
        for tags in tag_sets
    ]


def _run_link_request(link: str, run_id: str, settings: ChainSettings) -> list[RunRequest]:
    """The one run of a RUN_ID-partitioned link (validation, production) of the chain."""
    return [
        RunRequest(
            run_key=f"{run_id}:{settings.chain_id}:{link}",
            partition_key=run_id,
            run_config=settings.run_config,
            tags=settings.tags,
        )
    ]


def _production_request(
    context: RunStatusSensorContext, paths: LakehousePaths, run_id: str, settings: ChainSettings
) -> list[RunRequest]:
    return _run_link_request("production", run_id, settings)


def _validation_request(
    context: RunStatusSensorContext, paths: LakehousePaths, run_id: str, settings: ChainSettings
) -> list[RunRequest] | SkipReason:
    if not link_succeeded(link_runs(context.instance, names.INGEST_JOB, settings.chain_id)):
        return SkipReason(f"{run_id}: waiting for every part of {names.INGEST_JOB} in chain {settings.chain_id}")
    return _run_link_request("validation", run_id, settings)


discovery_succeeded_sensor = _chain_sensor(
    "discovery_succeeded_sensor", discovery_job, ingest_job, _ingest_requests, per_run=True
)
ingest_succeeded_sensor = _chain_sensor(
    "ingest_succeeded_sensor", ingest_job, validation_job, _validation_request, per_run=False
)
validation_succeeded_sensor = _chain_sensor(
    "validation_succeeded_sensor", validation_job, flow_production, _production_request, per_run=True
)

DATAOPS_SENSORS = [discovery_succeeded_sensor, ingest_succeeded_sensor, validation_succeeded_sensor]
