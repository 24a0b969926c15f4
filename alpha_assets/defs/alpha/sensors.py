"""The export sensor: a new validated export of a RUN_ID launches flow_production for it, once."""

# No `from __future__ import annotations`: Dagster inspects the sensor's signature at decoration time.

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from alpha_assets.defs import keys
from alpha_assets.defs.alpha.jobs import flow_production
from alpha_assets.defs.partitions import runs_partitions
from alpha_assets.defs.resources import LakehouseResource


def new_exports(exports: list[tuple[str, int]], cursor: str | None) -> tuple[list[str], str | None]:
    """RUN_IDs whose export is newer than ``cursor`` (a modification time in ns), and the next cursor.

    Parameters
    ----------
    exports : list of (RUN_ID, mtime_ns)
        Every validated export.
    cursor : str or None
        The newest modification time already handled; None on the first tick.
    """
    seen = int(cursor) if cursor else -1
    fresh = sorted(run_id for run_id, mtime in exports if mtime > seen)
    newest = max([seen, *(mtime for _, mtime in exports)])
    return fresh, (str(newest) if newest >= 0 else cursor)


@sensor(
    name="export_sensor",
    job=flow_production,
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=15,
    description="A new export/<RUN_ID>/candidates_validated.json adds the RUN_ID to `runs` and launches "
    "flow_production for it, once per RUN_ID.",
)
def export_sensor(context: SensorEvaluationContext, lakehouse: LakehouseResource) -> SensorResult | SkipReason:
    """Request flow_production for every RUN_ID whose validated export appeared since the last tick."""
    exports = [(run_id, path.stat().st_mtime_ns) for run_id, path in lakehouse.paths.validated_exports()]
    fresh, cursor = new_exports(exports, context.cursor)
    if not fresh:
        return SkipReason(f"no new validated export among {len(exports)}")
    missing = [run_id for run_id in fresh if not context.instance.has_dynamic_partition("runs", run_id)]
    return SensorResult(
        # The run key is the RUN_ID: a rewritten export never launches a second production run for it.
        run_requests=[
            RunRequest(run_key=run_id, partition_key=run_id, tags={keys.RUN_ID_TAG: run_id}) for run_id in fresh
        ],
        dynamic_partitions_requests=[runs_partitions.build_add_request(missing)] if missing else [],
        cursor=cursor,
    )


ALPHA_SENSORS = [export_sensor]
