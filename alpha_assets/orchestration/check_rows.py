"""The planned rows of an asset check over many partitions, as Dagster's SQL event logs write them, serialised once.

When a run is created, Dagster's ``SqlEventLogStorage`` stores each check's planned event and one row per planned
partition in ``asset_check_executions``, each row holding the serialised planned event, and it serialises the
event again for every row: the planned event carries the run's partition subset, so a range run over 505 symbol
partitions serialised six 505-key events 505 times each (most of the ingest run's creation, bench/README.md).
The mixin writes the same rows with the event serialised once, in one bulk insert. It overrides Dagster's
private ``_store_asset_check_evaluation_planned``, so the Dagster pin moves with it
(``alpha_assets_tests/test_orchestration`` compares the rows with those Dagster's own storages write).
"""

from __future__ import annotations

from typing import Any

from dagster import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._serdes import serialize_value

__all__ = ["PlannedCheckRowsSerialisedOnce"]


class PlannedCheckRowsSerialisedOnce:
    """Mixin before a ``SqlEventLogStorage`` subclass: planned check rows with one serialisation per event."""

    index_connection: Any
    _event_insert_timestamp: Any

    def _store_asset_check_evaluation_planned(self, event: EventLogEntry, event_id: int | None) -> None:
        """Dagster's planned rows of a check (one per partition), with the event serialised once, not per row."""
        planned = event.get_dagster_event().event_specific_data
        partition_keys = planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        common = {
            "asset_key": planned.asset_key.to_string(),
            "check_name": planned.check_name,
            "run_id": event.run_id,
            "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
            "evaluation_event": serialize_value(event),
            "evaluation_event_timestamp": self._event_insert_timestamp(event),
            "evaluation_event_storage_id": event_id,
        }
        with self.index_connection() as conn:
            conn.execute(AssetCheckExecutionsTable.insert(), [{**common, "partition": key} for key in partition_keys])
