"""The deployment's instance (deploy/dagster.yaml -> orchestration/postgres_storage.py) on a real Postgres server.

A single-run backfill over many symbol partitions is recorded completely (every partition materialised and planned,
the check evaluated) through a handful of pooled connections, with Dagster's event batching on; dagster-postgres'
own storage, on the same server, opens a connection for every statement (why it was slower than SQLite here,
bench/README.md) and records the same thing. If a later dagster-postgres pools by itself, the second test fails
and the subclass can go. The event log writes the event and check rows dagster-postgres writes for a recorded run
(its per-partition evaluations held and written in one transaction), reads held evaluations back in the process,
holds them all again when their write fails, and a process killed while holding them loses them whole.
"""

from __future__ import annotations

from pathlib import Path

import psycopg2
import pytest
import sqlalchemy
from dagster import AssetKey, DagsterEventType, DagsterInstance
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster_postgres import PostgresEventLogStorage
from sqlalchemy.pool import NullPool, QueuePool

from alpha_assets.orchestration.postgres_storage import (
    POOL_MAX_OVERFLOW,
    PooledPostgresStorage,
    PostgresEventLogWithCheckRowsInBulk,
)
from alpha_assets_tests.postgres_server import DEPLOY_DAGSTER_YAML, DEPLOY_ENV, PostgresServer, storage_yaml
from alpha_assets_tests.test_orchestration.test_sqlite_storage import (  # noqa: F401 (recorded_run: a fixture)
    BARS_COMPLETE,
    FAILING_KEY,
    KEYS,
    _backfill,
    _store_as_dagster_hands_them,
    assert_a_killed_process_loses_its_held_evaluations_whole,
    bars,
    recorded_run,
)


@pytest.fixture
def connects(monkeypatch) -> list[int]:
    """Every new connection psycopg2 opens from now on (SQLAlchemy's dialect calls ``psycopg2.connect``)."""
    opened: list[int] = []
    real_connect = psycopg2.connect

    def counting_connect(*args, **kwargs):
        opened.append(1)
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(psycopg2, "connect", counting_connect)
    return opened


def _instance(tmp_path: Path, monkeypatch, server: PostgresServer, database: str, yaml_text: str) -> DagsterInstance:
    home = tmp_path / database
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml_text)
    for name, value in server.env(server.create_database(database)).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return DagsterInstance.get()


def _assert_recorded(instance: DagsterInstance, run_id: str) -> None:
    assert instance.get_run_by_id(run_id).is_success
    assert instance.get_materialized_partitions(AssetKey("bars")) == set(KEYS)
    materializations = instance.fetch_materializations(AssetKey("bars"), limit=1000).records
    assert sorted(r.partition_key for r in materializations) == KEYS
    planned = [
        event.dagster_event.partition
        for event in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    ]
    assert sorted(planned) == KEYS  # one planned event per partition: the UI shows each in progress
    checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(list(bars.check_keys))
    assert [record.status.value for record in checks.values()] == ["SUCCEEDED"]


def test_deployment_instance_records_a_backfill_on_a_few_pooled_connections(
    postgres_server, tmp_path, monkeypatch, connects
):
    for name, value in DEPLOY_ENV.items():  # as docs/deploy.md sets them
        monkeypatch.setenv(name, value)
    instance = _instance(tmp_path, monkeypatch, postgres_server, "deploy_yaml", DEPLOY_DAGSTER_YAML.read_text())
    try:
        assert isinstance(instance.event_log_storage, PostgresEventLogWithCheckRowsInBulk)
        engines = [s._engine for s in (instance.run_storage, instance.event_log_storage, instance.schedule_storage)]
        assert all(isinstance(engine.pool, QueuePool) for engine in engines)
        before = len(connects)
        run_id = _backfill(instance, KEYS)
        # Over a hundred events were written: each of the three storages kept its connection (plus overflow).
        assert len(connects) - before <= 3 * (1 + POOL_MAX_OVERFLOW), len(connects) - before
        _assert_recorded(instance, run_id)
        with instance.event_log_storage._engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("SHOW synchronous_commit")).scalar() == "off"
    finally:
        instance.dispose()


def test_dagster_postgres_own_storage_connects_for_every_statement(postgres_server, tmp_path, monkeypatch, connects):
    instance = _instance(tmp_path, monkeypatch, postgres_server, "plain_yaml", storage_yaml(pooled=False))
    try:
        assert not isinstance(instance.run_storage, PooledPostgresStorage)
        assert isinstance(instance.event_log_storage._engine.pool, NullPool)
        before = len(connects)
        run_id = _backfill(instance, KEYS)
        events = len(instance.all_logs(run_id))
        assert len(connects) - before > events, (len(connects) - before, events)
        _assert_recorded(instance, run_id)
    finally:
        instance.dispose()


def _postgres_rows(storage) -> dict[str, list[tuple]]:
    with storage.index_connection() as conn:
        return {
            "events": conn.exec_driver_sql(
                "SELECT id, run_id, event, dagster_event_type, partition FROM event_logs ORDER BY id"
            ).fetchall(),
            "checks": conn.exec_driver_sql(
                "SELECT asset_key, check_name, partition, run_id, execution_status, evaluation_event, "
                "evaluation_event_timestamp, evaluation_event_storage_id, materialization_event_storage_id "
                "FROM asset_check_executions ORDER BY asset_key, check_name, partition"
            ).fetchall(),
            "assets": conn.exec_driver_sql(
                "SELECT asset_key, last_materialization, last_run_id, last_materialization_timestamp, "
                "wipe_timestamp, cached_status_data FROM asset_keys ORDER BY asset_key"
            ).fetchall(),
            "tags": conn.exec_driver_sql(
                "SELECT event_id, asset_key, key, value FROM asset_event_tags ORDER BY id"
            ).fetchall(),
        }


def test_event_log_writes_the_rows_dagster_postgres_writes(postgres_server, recorded_run):  # noqa: F811
    # The events of a range run with a check planned over 60 partitions (one evaluation each, one failing), handed
    # over as Dagster hands them (planned materialisations and materialisations in batches), stored by
    # dagster-postgres' event log and by ours, which writes the planned batch and the planned check rows in bulk
    # and the held evaluations together: the same event rows (ids and order included), check rows (once
    # evaluated: a planned row's own event is narrowed to its partition, test_sqlite_storage.py), asset entry
    # and tags.
    _home, events = recorded_run
    rows, written_together = {}, []
    for storage_class in (PostgresEventLogStorage, PostgresEventLogWithCheckRowsInBulk):
        storage = storage_class(postgres_server.url(postgres_server.create_database(storage_class.__name__.lower())))
        if storage_class is PostgresEventLogWithCheckRowsInBulk:
            real_write = storage._write_held_evaluations

            def recording_write(storage=storage, real_write=real_write):
                written_together.append(len(storage._held_evaluations))
                real_write()

            storage._write_held_evaluations = recording_write
        try:
            _store_as_dagster_hands_them(storage, events)
            rows[storage_class] = _postgres_rows(storage)
        finally:
            storage.dispose()
    assert [n for n in written_together if n] == [len(KEYS)]  # every evaluation held, then written at once
    assert rows[PostgresEventLogWithCheckRowsInBulk] == rows[PostgresEventLogStorage]
    assert [row[0] for row in rows[PostgresEventLogStorage]["assets"]] == ['["checked_bars"]']
    assert {row[2]: row[4] for row in rows[PostgresEventLogStorage]["checks"]} == {
        key: "FAILED" if key == FAILING_KEY else "SUCCEEDED" for key in KEYS
    }


def test_held_evaluations_are_read_back_in_this_process_and_held_again_when_their_write_fails(
    postgres_server,
    recorded_run,  # noqa: F811
    monkeypatch,
):
    _home, events = recorded_run
    first = next(i for i, e in enumerate(events) if e.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION)
    storage = PostgresEventLogWithCheckRowsInBulk(postgres_server.url(postgres_server.create_database("held")))
    try:
        for event in events[: first + 3]:
            storage.store_event(event)
        assert storage._held_evaluations == events[first : first + 3]
        real_write = storage._write_check_evaluations
        monkeypatch.setattr(
            storage, "_write_check_evaluations", lambda _events: (_ for _ in ()).throw(OSError("network"))
        )
        with pytest.raises(OSError, match="network"):  # a read writes them first
            storage.get_records_for_run(events[0].run_id)
        assert storage._held_evaluations == events[first : first + 3]  # nothing half-written, all held again
        monkeypatch.setattr(storage, "_write_check_evaluations", real_write)
        stored = [r.event_log_entry for r in storage.get_records_for_run(events[0].run_id).records]
        assert stored == events[: first + 3] and storage._held_evaluations == []
        statuses = {
            info.partition_key: info.latest_execution_status
            for info in storage.get_asset_check_partition_info([BARS_COMPLETE])
        }
        assert [statuses[e.get_dagster_event().asset_check_evaluation_data.partition] for e in stored[first:]] == [
            AssetCheckExecutionRecordStatus.SUCCEEDED
        ] * 3
    finally:
        storage.dispose()


def test_killed_process_loses_its_held_evaluations_whole_never_a_part(
    postgres_server,
    recorded_run,  # noqa: F811
    monkeypatch,
):
    url = postgres_server.url(postgres_server.create_database("killed"))
    assert_a_killed_process_loses_its_held_evaluations_whole(
        PostgresEventLogWithCheckRowsInBulk, url, recorded_run, monkeypatch
    )
