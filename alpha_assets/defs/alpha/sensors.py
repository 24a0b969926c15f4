"""What launches flow_production: the end of a chain's validation, or a finished export that no chain owns.

- ``validation_succeeded_sensor`` (the chain's last hop, in ``defs/dataops/sensors.py``): a
  ``flow_data_validation`` run the daemon launched succeeded -> flow_production for its RUN_ID, with that run's
  settings (run config resources and tags, see ``defs/chain.py``), whatever data folder the chain used.
- ``export_sensor``: a ``candidates_validated.json`` in the daemon's data folder whose writer is not such a run
  (a terminal's in-process chain, or an export copied in) -> flow_production once no run of the RUN_ID is
  still going, with the writer's settings, or the code location's defaults when no run of this instance wrote
  it.
"""

# No `from __future__ import annotations`: Dagster inspects the sensor's signature at decoration time.

import json
from dataclasses import dataclass

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from alpha_assets.defs import names
from alpha_assets.defs.alpha.jobs import flow_production
from alpha_assets.defs.chain import ChainSettings, export_writer, in_flight
from alpha_assets.defs.partitions import runs_partitions
from alpha_assets.defs.resources import LakehouseResource

#: Minimum seconds between two looks at the export folders: every loop of the daemon (5 s at least); a look
#: is one stat per export folder.
EXPORT_SENSOR_INTERVAL_S = 1


def new_exports(exports: list[tuple[str, int]], cursor: str | None) -> tuple[list[str], str | None]:
    """RUN_IDs whose export is new since ``cursor``, and the next cursor.

    The cursor holds the newest modification time handled (ns) and the RUN_IDs handled at that very time. A
    time alone would lose exports: S3 dates an object to the second (``Last-Modified``) and a local file
    system to its clock's tick, so an export written just after a tick can carry the time the tick already
    handled; it is told apart by its RUN_ID. A cursor of the earlier form (a bare time) counts every export
    at that time as handled.

    Parameters
    ----------
    exports : list of (RUN_ID, mtime_ns)
        Every validated export.
    cursor : str or None
        What the previous tick returned; None on the first tick.
    """
    seen, handled = _read_cursor(cursor)

    def is_new(run_id: str, mtime: int) -> bool:
        return mtime > seen or (mtime == seen and handled is not None and run_id not in handled)

    fresh = sorted(run_id for run_id, mtime in exports if is_new(run_id, mtime))
    if not fresh:
        return [], cursor
    newest = max(mtime for _, mtime in exports)
    at_newest = {run_id for run_id, mtime in exports if mtime == newest}
    if newest == seen:
        at_newest |= handled or set()
    return fresh, export_cursor(newest, at_newest)


def export_cursor(mtime_ns: int, run_ids: set[str] | frozenset[str] = frozenset()) -> str:
    """The cursor saying: exports up to ``mtime_ns`` were handled, at ``mtime_ns`` only those of ``run_ids``."""
    return json.dumps({"mtime_ns": mtime_ns, "run_ids": sorted(run_ids)})


def _read_cursor(cursor: str | None) -> tuple[int, set[str] | None]:
    """(time, RUN_IDs handled at that time; None: all of them) of a cursor; (-1, set()) before the first tick."""
    if not cursor:
        return -1, set()
    if cursor.lstrip("-").isdigit():
        return int(cursor), None
    document = json.loads(cursor)
    return int(document["mtime_ns"]), set(document["run_ids"])


@dataclass(frozen=True)
class ExportDecision:
    """What the sensor does with one fresh export: launch with these settings, wait, or leave it."""

    run_id: str
    settings: ChainSettings | None = None
    waiting: bool = False
    reason: str = ""


def decide(instance: DagsterInstance, run_id: str) -> ExportDecision:
    """Launch, wait for or leave the export of ``run_id``, from what the instance knows of its runs."""
    if in_flight(instance, run_id):
        return ExportDecision(run_id, waiting=True, reason="a run of it is still going")
    writer = export_writer(instance, run_id)
    if writer is None:
        return ExportDecision(run_id, settings=ChainSettings(run_config={}, tags={names.RUN_ID_TAG: run_id}))
    if writer.remote_job_origin is not None and writer.job_name == names.VALIDATION_JOB:
        return ExportDecision(run_id, reason=f"validation_succeeded_sensor follows its chain (run {writer.run_id})")
    if writer.status != DagsterRunStatus.SUCCESS:
        return ExportDecision(run_id, reason=f"the run that wrote it ({writer.run_id}) ended {writer.status.value}")
    return ExportDecision(run_id, settings=ChainSettings.of_run(writer, run_id))


@sensor(
    name="export_sensor",
    job=flow_production,
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=EXPORT_SENSOR_INTERVAL_S,
    description="When export/<RUN_ID>/candidates_validated.json is complete (its chain's last run succeeded), "
    "adds the RUN_ID to `runs` and launches flow_production for it with the chain's settings, once per RUN_ID.",
)
def export_sensor(context: SensorEvaluationContext, lakehouse: LakehouseResource) -> SensorResult | SkipReason:
    """Request flow_production for every RUN_ID whose validated export is complete since the last tick."""
    exports = {run_id: path.stat().st_mtime_ns for run_id, path in lakehouse.paths.validated_exports()}
    fresh, cursor = new_exports(list(exports.items()), context.cursor)
    if not fresh:
        return SkipReason(f"no new validated export among {len(exports)}")
    decisions = [decide(context.instance, run_id) for run_id in fresh]
    waiting = [d.run_id for d in decisions if d.waiting]
    if waiting:
        # Look at the waiting exports again next tick; the ones launched meanwhile are kept from a second
        # launch by their run key.
        cursor = export_cursor(min(exports[run_id] for run_id in waiting) - 1)
    for decision in decisions:
        if decision.reason:
            context.log.info(f"export {decision.run_id}: not launched yet, {decision.reason}")
    launch = [d for d in decisions if d.settings is not None]
    missing = [d.run_id for d in launch if not context.instance.has_dynamic_partition("runs", d.run_id)]
    return SensorResult(
        # The run key is the RUN_ID: a rewritten export never launches a second production run for it.
        run_requests=[
            RunRequest(run_key=d.run_id, partition_key=d.run_id, run_config=d.settings.run_config, tags=d.settings.tags)
            for d in launch
        ],
        dynamic_partitions_requests=[runs_partitions.build_add_request(missing)] if missing else [],
        cursor=cursor,
    )


ALPHA_SENSORS = [export_sensor]
