"""The project's instance storage (dagster.yaml -> orchestration/sqlite_storage.py) on real runs.

A single-run backfill over many symbol partitions is recorded completely (every partition materialised, the
check evaluated, the run's events readable through Dagster's API), with a bounded number of engines instead of
one per event; a backfill whose check is evaluated per partition (as the ohlcv checks) commits about once per
evaluation, with Dagster's batches in one transaction, on WAL connections that sync at checkpoints; two processes
writing runs into one DAGSTER_HOME at once both succeed; and the storage reads the files Dagster's default storage
wrote (same layout), so an existing home can switch in either direction.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    BackfillPolicy,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    DynamicPartitionsDefinition,
    EventLogEntry,
    MaterializeResult,
    Output,
    asset,
    define_asset_job,
)
from dagster._core.events import ASSET_EVENTS
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from dagster._serdes import deserialize_value, serialize_value
from sqlalchemy import create_engine
from sqlalchemy.event import listen

from alpha_assets.cli import PROJECT_DAGSTER_YAML
from alpha_assets.defs.dataops.assets import _add_symbol_partitions
from alpha_assets.orchestration import sqlite_storage
from alpha_assets.orchestration.sqlite_storage import OPEN_RUN_SHARDS, PooledSqliteEventLogStorage
from alpha_assets_tests.test_orchestration.test_check_rows import narrowed_to

KEYS = [f"SIM_T{i:03d}USDT" for i in range(60)]
PARTITIONS = DynamicPartitionsDefinition(name="test_symbols")


@asset(
    partitions_def=PARTITIONS,
    backfill_policy=BackfillPolicy.single_run(),
    check_specs=[AssetCheckSpec("rows_positive", asset="bars")],
)
def bars(context) -> tuple[MaterializeResult, AssetCheckResult]:
    yield MaterializeResult(metadata={"symbols": len(context.partition_keys)})
    yield AssetCheckResult(check_name="rows_positive", passed=True)


#: Evaluated per partition, as the ohlcv checks: one evaluation event per symbol; one symbol fails.
BARS_COMPLETE = AssetCheckKey(AssetKey("checked_bars"), "bars_complete")
FAILING_KEY = KEYS[7]


@asset(
    partitions_def=PARTITIONS,
    backfill_policy=BackfillPolicy.single_run(),
    check_specs=[AssetCheckSpec(BARS_COMPLETE.name, asset=BARS_COMPLETE.asset_key, partitions_def=PARTITIONS)],
)
def checked_bars(context):
    yield MaterializeResult(metadata={"symbols": len(context.partition_keys)})
    for key in context.partition_keys:
        yield AssetCheckEvaluation(
            asset_key=BARS_COMPLETE.asset_key,
            check_name=BARS_COMPLETE.name,
            passed=key != FAILING_KEY,
            severity=AssetCheckSeverity.WARN,
            partition=key,
        )
    yield Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(BARS_COMPLETE))


DEFS = Definitions(
    assets=[bars, checked_bars],
    jobs=[
        define_asset_job("bars_job", selection=[bars]),
        define_asset_job("checked_bars_job", selection=[checked_bars]),
    ],
)


def _home(tmp_path: Path, monkeypatch, yaml: Path | None) -> DagsterInstance:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    if yaml is not None:
        shutil.copyfile(yaml, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return DagsterInstance.get()


def _backfill(instance: DagsterInstance, keys: list[str], job: str = "bars_job") -> str:
    instance.add_dynamic_partitions(
        PARTITIONS.name, [k for k in keys if not instance.has_dynamic_partition(PARTITIONS.name, k)]
    )
    result = DEFS.resolve_job_def(job).execute_in_process(
        instance=instance, tags={ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]}
    )
    assert result.success
    return result.run_id


def test_project_instance_records_a_partition_range_run_with_few_engines(tmp_path, monkeypatch):
    created = []
    real_create_engine = sqlite_storage.create_engine
    monkeypatch.setattr(
        sqlite_storage, "create_engine", lambda *a, **k: created.append(a[0]) or real_create_engine(*a, **k)
    )
    instance = _home(tmp_path, monkeypatch, PROJECT_DAGSTER_YAML)
    try:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        run_ids = [_backfill(instance, KEYS)]
        # ~125 events went through the storage; engines: the index and this run's database.
        assert len(created) <= 2, created
        assert instance.get_materialized_partitions(AssetKey("bars")) == set(KEYS)
        materializations = instance.fetch_materializations(AssetKey("bars"), limit=1000).records
        assert sorted(r.partition_key for r in materializations) == KEYS
        planned = [
            event.dagster_event.partition
            for event in instance.all_logs(run_ids[0], of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
        ]
        assert sorted(planned) == KEYS  # one planned event per partition: the UI shows each in progress
        checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(list(bars.check_keys))
        assert [record.status.value for record in checks.values()] == ["SUCCEEDED"]
        for first in range(0, 60, 10):  # more runs than open run databases: old engines are closed
            run_ids.append(_backfill(instance, KEYS[first : first + 10]))
        assert len(instance.event_log_storage._engines) == OPEN_RUN_SHARDS + 1
        assert all(instance.get_run_by_id(run_id).is_success for run_id in run_ids)
    finally:
        instance.dispose()
    # The same home opens with Dagster's default storage: same files, same records.
    (tmp_path / "home" / "dagster.yaml").unlink()
    default = DagsterInstance.get()
    try:
        assert type(default.event_log_storage).__name__ == "SqliteEventLogStorage"
        assert default.get_materialized_partitions(AssetKey("bars")) == set(KEYS)
        assert len(default.fetch_materializations(AssetKey("bars"), limit=1000).records) == 2 * len(KEYS)
    finally:
        default.dispose()


def test_per_partition_check_evaluations_commit_once_each_and_batches_once(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)  # the storage sets it; restored after the test
    commits: dict[str, int] = {}

    def count_commits(url: str):
        def on_commit(conn) -> None:  # only transactions that wrote something
            if conn.connection.dbapi_connection.in_transaction:
                commits[url] = commits.get(url, 0) + 1

        return on_commit

    real_create_engine = sqlite_storage.create_engine

    def counting_create_engine(url, **kwargs):
        engine = real_create_engine(url, **kwargs)
        listen(engine, "commit", count_commits(url))
        return engine

    monkeypatch.setattr(sqlite_storage, "create_engine", counting_create_engine)
    instance = _home(tmp_path, monkeypatch, PROJECT_DAGSTER_YAML)
    try:
        assert instance.event_log_storage is not None
        assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == sqlite_storage.EVENT_BATCH_SIZE
        run_id = _backfill(instance, KEYS, job="checked_bars_job")
        index = next(url for url in commits if url.endswith("/index.db"))
        # 60 evaluations, one commit each; the 61 planned events and the 60 materialisations are two batches, one
        # commit each; the rest is the run's own events. Dagster's storage commits each statement group: ~250.
        assert commits[index] <= len(KEYS) + 10, commits
        assert commits[next(url for url in commits if url.endswith(f"/{run_id}.db"))] <= len(KEYS) + 20, commits
        evaluations = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
        assert len(evaluations) == len(KEYS)
        statuses = {
            info.partition_key: info.latest_execution_status
            for info in instance.event_log_storage.get_asset_check_partition_info([BARS_COMPLETE])
        }
        assert statuses == {
            key: AssetCheckExecutionRecordStatus.FAILED
            if key == FAILING_KEY
            else AssetCheckExecutionRecordStatus.SUCCEEDED
            for key in KEYS
        }
        assert instance.get_materialized_partitions(BARS_COMPLETE.asset_key) == set(KEYS)
        with instance.event_log_storage.index_connection() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    finally:
        instance.dispose()


def test_storage_keeps_an_event_batch_size_the_environment_sets(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "0")  # Dagster's "no batches"
    instance = _home(tmp_path, monkeypatch, PROJECT_DAGSTER_YAML)
    try:
        run_id = _backfill(instance, KEYS[:10], job="checked_bars_job")
        assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == "0"
        assert len(instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)) == 10
        assert instance.get_materialized_partitions(BARS_COMPLETE.asset_key) == set(KEYS[:10])
    finally:
        instance.dispose()


def test_project_instance_takes_two_writing_processes_at_once(tmp_path, monkeypatch):
    instance = _home(tmp_path, monkeypatch, PROJECT_DAGSTER_YAML)
    instance.dispose()
    script = textwrap.dedent(
        f"""
        import sys
        from dagster import DagsterInstance
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_sqlite_storage import _backfill
        instance = DagsterInstance.get()
        _backfill(instance, [f"SIM_P{{sys.argv[1]}}{{i:03d}}USDT" for i in range(40)])
        instance.dispose()
        """
    )
    children = [
        subprocess.Popen([sys.executable, "-c", script, str(n)], stderr=subprocess.PIPE, text=True) for n in (1, 2)
    ]
    errors = [child.communicate(timeout=300)[1] for child in children]
    assert [child.returncode for child in children] == [0, 0], errors
    instance = DagsterInstance.get()
    try:
        assert len(instance.get_materialized_partitions(AssetKey("bars"))) == 80
    finally:
        instance.dispose()


def test_add_symbol_partitions_stores_each_key_once_when_two_flows_race(tmp_path, monkeypatch):
    instance = _home(tmp_path, monkeypatch, PROJECT_DAGSTER_YAML)
    try:
        universe = [f"SIM_U{i:05d}USDT" for i in range(3000)]
        known = universe[::3]
        instance.add_dynamic_partitions("symbols", known)
        assert _add_symbol_partitions(instance, known) == []
        start = threading.Barrier(2)

        def discovery(keys: list[str]) -> list[str]:
            start.wait()
            return _add_symbol_partitions(instance, keys)

        # Two flows discovering the same universe at once, one walking it backwards.
        with ThreadPoolExecutor(2) as pool:
            added = list(pool.map(discovery, [universe, universe[::-1]]))
        stored = instance.get_dynamic_partitions("symbols")
        assert sorted(stored) == sorted(universe)
        # Each flow names new keys only, those missing when it looked: both may name a key the other inserted.
        assert (added[0] or added[1]) and set(added[0]) | set(added[1]) <= set(universe) - set(known)
        # The stored order is the first insertion: the 1,000 known keys, then the new ones.
        assert stored[:1000] == known
        assert _add_symbol_partitions(instance, [*universe, "SIM_NEWUSDT"]) == ["SIM_NEWUSDT"]
    finally:
        instance.dispose()


def test_storage_without_base_dir_or_dagster_home_names_both(monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with pytest.raises(ValueError, match="needs `base_dir` in its config or DAGSTER_HOME in the environment"):
        PooledSqliteEventLogStorage.from_config_value(None, {})


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory) -> tuple[Path, list]:
    """A ``checked_bars_job`` range run over ``KEYS`` on Dagster's default storage: its home and its events in order."""
    home = tmp_path_factory.mktemp("recorded")
    with pytest.MonkeyPatch.context() as monkeypatch:
        instance = _home(home, monkeypatch, None)
        try:
            assert type(instance.event_log_storage).__name__ == "SqliteEventLogStorage"
            return home / "home", instance.all_logs(_backfill(instance, KEYS, job="checked_bars_job"))
        finally:
            instance.dispose()


#: What Dagster reports as one batch when it creates a run: every planned materialisation and planned check.
PLANNED = {DagsterEventType.ASSET_MATERIALIZATION_PLANNED, DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED}


def _batch_kind(event) -> object:
    return "planned" if event.dagster_event_type in PLANNED else event.dagster_event_type


def _store_as_dagster_hands_them(storage, events: list) -> None:
    """Store ``events`` in order and in Dagster's batches (``DAGSTER_EVENT_BATCH_SIZE`` set): a run's planned
    materialisations with its planned checks among them (one batch when the run is created), each run of an
    output's materialisations; every other event on its own."""
    batch: list = []
    for event in [*events, None]:
        if batch and (event is None or _batch_kind(event) != _batch_kind(batch[0])):
            if len(batch) > 1:
                storage.store_event_batch(batch)
            else:
                storage.store_event(batch[0])
            batch = []
        if event is not None and (event.dagster_event_type in ASSET_EVENTS or event.dagster_event_type in PLANNED):
            batch.append(event)
        elif event is not None:
            storage.store_event(event)


def _rows(storage, run_id: str) -> dict[str, list[tuple]]:
    """The rows a run left in the index and in its own database, with the columns each storage fills the same way."""
    with storage.index_connection() as conn:
        index = conn.exec_driver_sql("SELECT id, event, dagster_event_type, partition FROM event_logs ORDER BY id")
        index_rows = index.fetchall()
        assets = conn.exec_driver_sql(
            "SELECT asset_key, last_materialization, last_run_id, last_materialization_timestamp, wipe_timestamp, "
            "cached_status_data FROM asset_keys ORDER BY asset_key"
        ).fetchall()
        tags = conn.exec_driver_sql(
            "SELECT event_id, asset_key, key, value FROM asset_event_tags ORDER BY id"
        ).fetchall()
        checks = conn.exec_driver_sql(
            "SELECT asset_key, check_name, partition, run_id, execution_status, evaluation_event, "
            "evaluation_event_timestamp, evaluation_event_storage_id, materialization_event_storage_id "
            "FROM asset_check_executions ORDER BY asset_key, check_name, partition"
        ).fetchall()
    with storage.run_connection(run_id) as conn:
        run_rows = conn.exec_driver_sql("SELECT id, event, step_key FROM event_logs ORDER BY id").fetchall()
    return {"index": index_rows, "checks": checks, "run": run_rows, "assets": assets, "tags": tags}


def test_pooled_storage_writes_the_rows_dagster_writes_for_a_run_with_per_partition_checks(tmp_path, recorded_run):
    # The same events (a range run: 60 planned materialisations, planned check rows over 60 partitions, 60
    # materialisations, 60 evaluations, one failing) stored by Dagster's storage and by ours, which writes the
    # batches and the held evaluations in bulk: identical rows, ids and order included, in the index, the run's
    # database, the check execution table, the asset's entry and its tags.
    home, events = recorded_run
    run_id = events[0].run_id
    assert sum(e.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION for e in events) == len(KEYS)
    assert any(e.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED for e in events)
    stored = {}
    for name, storage_class in (("dagster", SqliteEventLogStorage), ("pooled", PooledSqliteEventLogStorage)):
        storage = storage_class(str(tmp_path / name))
        try:
            _store_as_dagster_hands_them(storage, events)
            stored[name] = _rows(storage, run_id)
        finally:
            storage.dispose()
    assert stored["pooled"] == stored["dagster"]
    assert [row[0] for row in stored["pooled"]["assets"]] == ['["checked_bars"]']
    statuses = {row[2]: row[4] for row in stored["pooled"]["checks"]}
    assert statuses == {key: "FAILED" if key == FAILING_KEY else "SUCCEEDED" for key in KEYS}
    # Each evaluation's row points at its own event in the index.
    index_events = {row[0]: row[1] for row in stored["pooled"]["index"]}
    assert all(index_events[row[7]] == row[5] for row in stored["pooled"]["checks"])


def test_planned_check_rows_hold_the_planned_event_narrowed_to_their_partition(tmp_path, recorded_run):
    # Stored up to the first evaluation, a run's check rows are all planned: ours differ from Dagster's only in the
    # event each holds, the planned event of the row's partition alone instead of the run's 60-key plan, and
    # Dagster reads them back as the same planned executions (status, run, step).
    home, events = recorded_run
    first = next(i for i, e in enumerate(events) if e.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION)
    stored, history = {}, {}
    for name, storage_class in (("dagster", SqliteEventLogStorage), ("pooled", PooledSqliteEventLogStorage)):
        storage = storage_class(str(tmp_path / name))
        try:
            _store_as_dagster_hands_them(storage, events[:first])
            stored[name] = _rows(storage, events[0].run_id)["checks"]
            history[name] = storage.get_asset_check_execution_history(BARS_COMPLETE, limit=100)
        finally:
            storage.dispose()
    assert len(stored["dagster"]) == len(KEYS)
    event_column = 5
    without_event = [[row[:event_column] + row[event_column + 1 :] for row in stored[name]] for name in stored]
    assert without_event[0] == without_event[1]
    for ours, dagsters in zip(stored["pooled"], stored["dagster"], strict=True):
        whole = deserialize_value(dagsters[event_column], EventLogEntry)
        planned = whole.get_dagster_event().event_specific_data
        assert len(planned.partitions_subset.get_partition_keys()) == len(KEYS)
        assert ours[event_column] == serialize_value(narrowed_to(whole, ours[2]))
    assert len(stored["pooled"][0][event_column]) * 2 < len(stored["dagster"][0][event_column])
    read = {name: [(r.partition, r.status, r.run_id, r.event.step_key) for r in history[name]] for name in history}
    assert sorted(read["pooled"]) == sorted(read["dagster"])
    assert {status for _, status, _, _ in read["pooled"]} == {AssetCheckExecutionRecordStatus.PLANNED}


def test_a_runs_planned_batch_goes_in_bulk_with_only_its_planned_checks_stored_one_by_one(
    tmp_path, recorded_run, monkeypatch
):
    # Dagster hands the planned materialisations of a new run and its planned checks over as one batch; the
    # materialisations must not fall back to one write each (505 of them made a next-day ingest 0.6 s slower).
    _home, events = recorded_run
    planned = [e for e in events if e.dagster_event_type in PLANNED]
    assert {e.dagster_event_type for e in planned} == PLANNED
    one_by_one = []
    store_one = SqliteEventLogStorage.store_event

    def recording_store_event(self, event):
        one_by_one.append(event.dagster_event_type)
        store_one(self, event)

    monkeypatch.setattr(SqliteEventLogStorage, "store_event", recording_store_event)
    storage = PooledSqliteEventLogStorage(str(tmp_path / "pooled"))
    try:
        storage.store_event_batch(planned)
        checks = sum(e.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED for e in planned)
        assert one_by_one == [DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED] * checks
        with storage.index_connection() as conn:
            stored = conn.exec_driver_sql("SELECT dagster_event_type FROM event_logs ORDER BY id").scalars().all()
        assert stored == [e.dagster_event_type.value for e in planned], "every event stored, in the batch's order"
    finally:
        storage.dispose()


def test_held_evaluations_are_written_before_any_read_or_other_event(tmp_path, recorded_run):
    home, events = recorded_run
    run_id = events[0].run_id
    evaluations = [i for i, e in enumerate(events) if e.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION]
    storage = PooledSqliteEventLogStorage(str(tmp_path / "pooled"))
    try:
        for event in events[: evaluations[0]]:
            storage.store_event(event)
        held = events[evaluations[0] : evaluations[0] + 3]
        for event in held:
            storage.store_event(event)
        assert len(storage._held_evaluations) == 3
        # A read in this process sees them (they are written first, in one transaction).
        statuses = {
            info.partition_key: info.latest_execution_status
            for info in storage.get_asset_check_partition_info([BARS_COMPLETE])
        }
        assert [statuses[e.get_dagster_event().asset_check_evaluation_data.partition] for e in held] == [
            AssetCheckExecutionRecordStatus.SUCCEEDED
        ] * 3
        assert storage._held_evaluations == []
        # Another event of the run comes after the evaluations held before it.
        rest = events[evaluations[0] + 3 : evaluations[-1] + 2]
        assert rest[-1].dagster_event_type != DagsterEventType.ASSET_CHECK_EVALUATION
        for event in rest:
            storage.store_event(event)
        assert storage._held_evaluations == []
        run_types = [r.event_log_entry.dagster_event_type for r in storage.get_records_for_run(run_id).records]
        assert run_types == [e.dagster_event_type for e in events[: evaluations[-1] + 2]]
    finally:
        storage.dispose()


def test_held_evaluations_stay_held_when_their_write_fails_and_are_written_by_dispose(
    tmp_path, monkeypatch, recorded_run
):
    home, events = recorded_run
    first = next(i for i, e in enumerate(events) if e.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION)
    storage = PooledSqliteEventLogStorage(str(tmp_path / "pooled"))
    for event in events[: first + 2]:
        storage.store_event(event)
    real_write = storage._write_check_evaluations
    monkeypatch.setattr(storage, "_write_check_evaluations", lambda _events: (_ for _ in ()).throw(OSError("disk")))
    with pytest.raises(OSError, match="disk"):  # a read writes them first
        storage.get_records_for_run(events[0].run_id)
    assert storage._held_evaluations == events[first : first + 2]
    monkeypatch.setattr(storage, "_write_check_evaluations", real_write)
    storage.dispose()  # writes what is still held
    reopened = PooledSqliteEventLogStorage(str(tmp_path / "pooled"))
    try:
        stored = reopened.get_records_for_run(events[0].run_id).records
        assert [r.event_log_entry for r in stored][-2:] == events[first : first + 2]
    finally:
        reopened.dispose()


def assert_a_killed_process_loses_its_held_evaluations_whole(
    storage_class: type, target: str, recorded_run: tuple[Path, list], monkeypatch
) -> None:
    """A child process stores the recorded run's events through ``storage_class(target)`` and dies (``os._exit``)
    while it holds 40 evaluations: reopened, the storage has every event before them and none of them, and the
    check's rows are all still planned."""
    home, events = recorded_run
    evaluations = [i for i, e in enumerate(events) if e.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION]
    stop = evaluations[0] + 40
    script = textwrap.dedent(
        f"""
        import os, sys
        from dagster import DagsterInstance
        from {storage_class.__module__} import {storage_class.__name__} as Storage
        events = DagsterInstance.get().all_logs({events[0].run_id!r})
        storage = Storage(sys.argv[1])
        for event in events[:{stop}]:
            storage.store_event(event)
        os._exit(9)
        """
    )
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    child = subprocess.run([sys.executable, "-c", script, target], capture_output=True, text=True)
    assert child.returncode == 9, child.stderr
    storage = storage_class(target)
    try:
        stored = [r.event_log_entry for r in storage.get_records_for_run(events[0].run_id).records]
        assert stored == events[: evaluations[0]]
        partitions = storage.get_asset_check_partition_info([BARS_COMPLETE])
        assert {info.latest_execution_status for info in partitions} == {AssetCheckExecutionRecordStatus.PLANNED}
    finally:
        storage.dispose()


def test_killed_process_loses_its_held_evaluations_whole_never_a_part(tmp_path, monkeypatch, recorded_run):
    assert_a_killed_process_loses_its_held_evaluations_whole(
        PooledSqliteEventLogStorage, str(tmp_path / "pooled"), recorded_run, monkeypatch
    )


def _event_rows(n: int, step_key: str = "ohlcv") -> list[dict]:
    return [
        {
            "run_id": "r",
            "event": f"e{i}",
            "dagster_event_type": "T",
            "timestamp": None,
            "step_key": step_key,
            "asset_key": None,
            "partition": None,
        }
        for i in range(n)
    ]


def test_bulk_inserted_events_get_the_ids_sqlite_gave_them_or_the_write_fails(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'index.db'}")
    SqlEventLogStorageTable.metadata.create_all(engine, tables=[SqlEventLogStorageTable])
    with engine.begin() as conn:
        assert sqlite_storage._insert_with_consecutive_ids(conn, []) == []
        conn.execute(SqlEventLogStorageTable.insert(), _event_rows(3))
        ids = sqlite_storage._insert_with_consecutive_ids(conn, _event_rows(5))
        stored = conn.exec_driver_sql("SELECT id, event FROM event_logs WHERE id > 3 ORDER BY id").fetchall()
    assert ids == [4, 5, 6, 7, 8] and stored == [(i, f"e{i - 4}") for i in ids]
    # Another row slipped in between (here by a trigger): the ids would be wrong, so nothing is written.
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER one_more AFTER INSERT ON event_logs WHEN NEW.step_key = 'doubled' "
            "BEGIN INSERT INTO event_logs (run_id, event) VALUES ('other', 'slipped in'); END"
        )
    with pytest.raises(RuntimeError, match="event ids not consecutive: 4 rows from id 9"), engine.begin() as conn:
        sqlite_storage._insert_with_consecutive_ids(conn, _event_rows(2) + _event_rows(2, step_key="doubled"))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT max(id) FROM event_logs").scalar_one() == 8
