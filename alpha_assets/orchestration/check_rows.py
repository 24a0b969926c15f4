"""Asset check rows as Dagster's SQL event logs write them, in fewer statements: planned rows and evaluations.

**Planned rows.** When a run is created, Dagster's ``SqlEventLogStorage`` stores each check's planned event and one
row per planned partition in ``asset_check_executions``, each row holding the whole planned event, serialised again
for every row: the event carries the run's partition subset, so a range run over 505 symbol partitions serialised
six 505-key events 505 times each and stored 3,030 copies of them (9.4 KB each, 28 MB per run; bench/README.md). The
mixin writes the same rows in one bulk insert, each holding the planned event narrowed to the row's own partition
(a key set of one), made from one serialisation. What Dagster reads from a planned row's event (its run, its step)
is unchanged; the run's event log keeps the whole event. It overrides Dagster's private
``_store_asset_check_evaluation_planned``, so the Dagster pin moves with it (``alpha_assets_tests/test_orchestration``
compares the rows with those Dagster's own storages write).

**Evaluations.** A run's evaluation of one partition of a check updates the planned row of that partition;
``UPDATE_CHECK_EXECUTION`` with :func:`check_execution_values` writes the values Dagster's own update writes, for
many evaluations at once (the project's SQLite and Postgres event logs, which hold a step's per-partition
evaluations and write them together).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from dagster import DagsterEventType, EventLogEntry
from dagster._core.definitions.partitions.subset import DefaultPartitionsSubset
from dagster._core.events import ASSET_EVENTS
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._serdes import serialize_value
from dagster_shared.record import replace
from sqlalchemy import and_, bindparam

__all__ = [
    "CHECK_EVALUATION_BUFFER",
    "UPDATE_CHECK_EXECUTION",
    "HeldCheckEvaluations",
    "PlannedCheckRowsInBulk",
    "check_execution_values",
    "is_partition_check_evaluation",
    "last_event_per_asset",
    "planned_row_events",
]

#: Per-partition check evaluations a storage holds before it writes them even if nothing else comes first.
CHECK_EVALUATION_BUFFER = 1000
#: One planned check execution row per partition becomes the evaluation's row (the unique index on
#: asset key, check name, run id and partition lets each evaluation match at most one row).
UPDATE_CHECK_EXECUTION = (
    AssetCheckExecutionsTable.update()
    .where(
        and_(
            AssetCheckExecutionsTable.c.asset_key == bindparam("b_asset_key"),
            AssetCheckExecutionsTable.c.check_name == bindparam("b_check_name"),
            AssetCheckExecutionsTable.c.run_id == bindparam("b_run_id"),
            AssetCheckExecutionsTable.c.partition == bindparam("b_partition"),
        )
    )
    .values(
        execution_status=bindparam("b_execution_status"),
        evaluation_event=bindparam("b_evaluation_event"),
        evaluation_event_timestamp=bindparam("b_evaluation_event_timestamp"),
        evaluation_event_storage_id=bindparam("b_evaluation_event_storage_id"),
        materialization_event_storage_id=bindparam("b_materialization_event_storage_id"),
    )
)


def is_partition_check_evaluation(event: EventLogEntry) -> bool:
    """Whether ``event`` is a run's evaluation of one partition of a check (what the storages write in bulk)."""
    return (
        bool(event.run_id)
        and event.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION
        and event.get_dagster_event().asset_check_evaluation_data.partition is not None
    )


def check_execution_values(event: EventLogEntry, row: Mapping[str, Any], event_id: int) -> dict[str, Any]:
    """``UPDATE_CHECK_EXECUTION``'s parameters for one evaluation and its event ``row``: what Dagster writes."""
    evaluation = event.get_dagster_event().asset_check_evaluation_data
    target = evaluation.target_materialization_data
    status = AssetCheckExecutionRecordStatus.SUCCEEDED if evaluation.passed else AssetCheckExecutionRecordStatus.FAILED
    return {
        "b_asset_key": evaluation.asset_key.to_string(),
        "b_check_name": evaluation.check_name,
        "b_run_id": event.run_id,
        "b_partition": evaluation.partition,
        "b_execution_status": status.value,
        "b_evaluation_event": row["event"],
        "b_evaluation_event_timestamp": row["timestamp"],
        "b_evaluation_event_storage_id": event_id,
        "b_materialization_event_storage_id": None if target is None else target.storage_id,
    }


class PlannedCheckRowsInBulk:
    """Mixin before a ``SqlEventLogStorage`` subclass: a check's planned rows in one insert, each its partition's."""

    index_connection: Any
    _event_insert_timestamp: Any

    def _store_asset_check_evaluation_planned(self, event: EventLogEntry, event_id: int | None) -> None:
        """Dagster's planned rows of a check (one per partition), each holding :func:`planned_row_events`' event."""
        planned = event.get_dagster_event().event_specific_data
        common = {
            "asset_key": planned.asset_key.to_string(),
            "check_name": planned.check_name,
            "run_id": event.run_id,
            "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
            "evaluation_event_timestamp": self._event_insert_timestamp(event),
            "evaluation_event_storage_id": event_id,
        }
        rows = [
            {**common, "partition": key, "evaluation_event": serialised}
            for key, serialised in planned_row_events(event)
        ]
        with self.index_connection() as conn:
            conn.execute(AssetCheckExecutionsTable.insert(), rows)


def planned_row_events(event: EventLogEntry) -> list[tuple[str | None, str]]:
    """``(partition key, serialised event)`` of each planned row of a check's planned ``event``, in the plan's order.

    An unpartitioned plan has one row (key ``None``) holding ``event``. A plan over a set of keys (the
    dynamic ``symbols`` and ``runs`` partitions) has one row per key holding ``event`` narrowed to that key:
    ``serialize_value`` of the narrowed event, byte for byte, from one serialisation with a marker key whose
    JSON text is then replaced by each key's. Any other subset (e.g. time windows) is stored whole in each row,
    serialised once.
    """
    planned = event.get_dagster_event().event_specific_data
    subset = planned.partitions_subset
    if subset is None:
        return [(None, serialize_value(event))]
    keys = list(subset.get_partition_keys())
    if not isinstance(subset, DefaultPartitionsSubset):
        serialised = serialize_value(event)
        return [(key, serialised) for key in keys]
    marker = f"\x00{uuid.uuid4().hex}"  # a partition key never holds NUL (keys are validated names)
    narrowed = replace(planned, partitions_subset=DefaultPartitionsSubset({marker}))
    template = serialize_value(event._replace(dagster_event=event.dagster_event._replace(event_specific_data=narrowed)))
    head, quoted_marker, tail = template.partition(json.dumps(marker))
    if not quoted_marker or quoted_marker in tail:
        raise RuntimeError(f"the planned event of {planned.check_name!r} does not hold its marker key exactly once")
    return [(key, head + json.dumps(key) + tail) for key in keys]


class HeldCheckEvaluations:
    """Mixin: a storage that holds a run's per-partition check evaluations and writes them in bulk.

    The storage defines ``_held_evaluations`` (a list), ``_held_lock`` (a re-entrant lock guarding it, the one
    its writes take) and ``_write_check_evaluations(events)`` (writes them in one transaction), and writes the
    held evaluations before anything else it writes or reads.
    """

    _held_evaluations: list[EventLogEntry]
    _held_lock: Any

    def _hold(self, event: EventLogEntry) -> bool:
        """Hold ``event`` if it is a run's evaluation of a check partition (all are written at the buffer's size)."""
        if not is_partition_check_evaluation(event):
            return False
        with self._held_lock:
            self._held_evaluations.append(event)
            if len(self._held_evaluations) >= CHECK_EVALUATION_BUFFER:
                self._write_held_evaluations()
        return True

    def _write_held_evaluations(self) -> None:
        """Write the held evaluations; on failure nothing is committed and they are held again, ahead of any since."""
        events, self._held_evaluations = self._held_evaluations, []
        if not events:
            return
        try:
            self._write_check_evaluations(events)
        except BaseException:
            self._held_evaluations[:0] = events
            raise

    def dispose(self) -> None:
        """Write the held evaluations, then dispose of the storage."""
        with self._held_lock:
            self._write_held_evaluations()
        super().dispose()


def is_asset_event(event: EventLogEntry) -> bool:
    """Whether ``event`` is an asset event Dagster may batch (``ASSET_EVENTS``: planned, materialised, observed...)."""
    return event.is_dagster_event and event.dagster_event_type in ASSET_EVENTS


def last_event_per_asset(events: Sequence[EventLogEntry], event_ids: Sequence[int]) -> list[tuple[EventLogEntry, int]]:
    """The last of ``events`` (with its id) for each asset key and event type, in the order of those last events.

    An asset's entry takes its values from one event alone, so writing it from these leaves it as writing it
    once per event would.
    """
    last: dict[tuple[str | None, DagsterEventType | None], tuple[EventLogEntry, int]] = {}
    for event, event_id in zip(events, event_ids, strict=True):
        asset_key = event.get_dagster_event().asset_key
        key = (None if asset_key is None else asset_key.to_string(), event.dagster_event_type)
        last.pop(key, None)  # re-inserted: the dict keeps the order of each key's last event
        last[key] = (event, event_id)
    return list(last.values())
