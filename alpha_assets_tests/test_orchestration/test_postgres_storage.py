"""The deployment's instance (deploy/dagster.yaml -> orchestration/postgres_storage.py) on a real Postgres server.

A single-run backfill over many symbol partitions is recorded completely (every partition materialised and planned,
the check evaluated) through a handful of pooled connections, with Dagster's event batching on; dagster-postgres'
own storage, on the same server, opens a connection for every statement (why it was slower than SQLite here,
bench/README.md) and records the same thing. If a later dagster-postgres pools by itself, the second test fails
and the subclass can go.
"""

from __future__ import annotations

from pathlib import Path

import psycopg2
import pytest
import sqlalchemy
from dagster import AssetKey, DagsterEventType, DagsterInstance
from dagster_postgres import PostgresEventLogStorage
from sqlalchemy.pool import NullPool, QueuePool

from alpha_assets.orchestration.postgres_storage import (
    POOL_MAX_OVERFLOW,
    PooledPostgresStorage,
    PostgresEventLogWithPlannedRowsOnce,
)
from alpha_assets_tests.postgres_server import DEPLOY_DAGSTER_YAML, DEPLOY_ENV, PostgresServer, storage_yaml
from alpha_assets_tests.test_orchestration.test_sqlite_storage import (  # noqa: F401 (recorded_run: a fixture)
    FAILING_KEY,
    KEYS,
    _backfill,
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
        assert isinstance(instance.event_log_storage, PostgresEventLogWithPlannedRowsOnce)
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


def test_event_log_writes_the_check_rows_dagster_postgres_writes(postgres_server, recorded_run):  # noqa: F811
    # The events of a range run with a check planned over 60 partitions (one evaluation each, one failing),
    # stored by dagster-postgres' event log and by ours, which serialises the planned event once: same rows.
    _home, events = recorded_run
    rows = {}
    for storage_class in (PostgresEventLogStorage, PostgresEventLogWithPlannedRowsOnce):
        storage = storage_class(postgres_server.url(postgres_server.create_database(storage_class.__name__.lower())))
        try:
            for event in events:
                storage.store_event(event)
            with storage.index_connection() as conn:
                rows[storage_class] = conn.exec_driver_sql(
                    "SELECT asset_key, check_name, partition, run_id, execution_status, evaluation_event, "
                    "evaluation_event_timestamp, evaluation_event_storage_id, materialization_event_storage_id "
                    "FROM asset_check_executions ORDER BY asset_key, check_name, partition"
                ).fetchall()
        finally:
            storage.dispose()
    assert rows[PostgresEventLogWithPlannedRowsOnce] == rows[PostgresEventLogStorage]
    assert {row[2]: row[4] for row in rows[PostgresEventLogStorage]} == {
        key: "FAILED" if key == FAILING_KEY else "SUCCEEDED" for key in KEYS
    }
