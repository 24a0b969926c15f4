"""The planned check rows' events: each row's planned event narrowed to its partition, as serialize_value writes it."""

from __future__ import annotations

import logging

import pytest
from dagster import (
    AssetKey,
    DagsterEventType,
    DailyPartitionsDefinition,
    EventLogEntry,
)
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluationPlanned
from dagster._core.definitions.partitions.subset import DefaultPartitionsSubset
from dagster._core.events import DagsterEvent
from dagster._serdes import deserialize_value, serialize_value

from alpha_assets.orchestration.check_rows import planned_row_events

#: Symbol keys, and keys whose JSON text needs escapes (a quote, a backslash, non-ASCII): each is replaced whole.
KEYS = ["SIM_BTCUSDT", "SIM_ETHUSDT", 'odd"quote', "back\\slash", "caf\u00e9", "\u65e5\u672c"]


def _planned(subset) -> EventLogEntry:
    planned = AssetCheckEvaluationPlanned(
        asset_key=AssetKey("ohlcv"), check_name="ohlcv_is_fresh", partitions_subset=subset
    )
    event = DagsterEvent(
        event_type_value=DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED.value,
        job_name="flow_data_ingest",
        event_specific_data=planned,
        step_key="ohlcv",
    )
    return EventLogEntry(
        error_info=None,
        level=logging.DEBUG,
        user_message="",
        run_id="a1b2c3",
        timestamp=1_765_000_000.25,
        step_key="ohlcv",
        job_name="flow_data_ingest",
        dagster_event=event,
    )


def narrowed_to(event: EventLogEntry, key: str) -> EventLogEntry:
    """``event`` (a check's planned event) with its plan reduced to ``key``, built as Dagster builds any event."""
    planned = event.get_dagster_event().event_specific_data
    narrowed = AssetCheckEvaluationPlanned(
        asset_key=planned.asset_key, check_name=planned.check_name, partitions_subset=DefaultPartitionsSubset({key})
    )
    return event._replace(dagster_event=event.dagster_event._replace(event_specific_data=narrowed))


def test_each_key_gets_the_event_narrowed_to_it_byte_for_byte():
    event = _planned(DefaultPartitionsSubset(set(KEYS)))
    rows = planned_row_events(event)
    # In the subset's own order, as Dagster inserts the rows.
    assert [key for key, _ in rows] == list(
        event.get_dagster_event().event_specific_data.partitions_subset.get_partition_keys()
    )
    assert sorted(key for key, _ in rows) == sorted(KEYS)
    for key, serialised in rows:
        assert serialised == serialize_value(narrowed_to(event, key))
        read = deserialize_value(serialised, EventLogEntry)
        assert list(read.get_dagster_event().event_specific_data.partitions_subset.get_partition_keys()) == [key]
        assert (read.run_id, read.step_key, read.timestamp) == (event.run_id, event.step_key, event.timestamp)
    assert len(rows[0][1]) < len(serialize_value(event))


def test_an_unpartitioned_plan_has_one_row_with_the_whole_event():
    event = _planned(None)
    assert planned_row_events(event) == [(None, serialize_value(event))]


def test_a_time_window_plan_keeps_the_whole_event_in_each_row():
    days = DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-05")
    event = _planned(days.subset_with_partition_keys(["2026-01-02", "2026-01-03"]).to_serializable_subset())
    rows = planned_row_events(event)
    assert rows == [("2026-01-02", serialize_value(event)), ("2026-01-03", serialize_value(event))]


def test_a_key_holding_the_marker_text_cannot_be_confused_with_it():
    # A key shaped like the marker's JSON text stays a key: the template holds the marker once, the key's text once.
    event = _planned(DefaultPartitionsSubset({"\\u0000", "SIM_BTCUSDT"}))
    rows = dict(planned_row_events(event))
    for key, serialised in rows.items():
        assert serialised == serialize_value(narrowed_to(event, key))


@pytest.mark.parametrize("n_keys", [1, 505])
def test_rows_follow_the_plans_key_count(n_keys):
    keys = {f"SIM_S{i:04d}USDT" for i in range(n_keys)}
    rows = planned_row_events(_planned(DefaultPartitionsSubset(keys)))
    assert sorted(key for key, _ in rows) == sorted(keys)
    assert len({serialised for _, serialised in rows}) == n_keys
