"""dagster-postgres instance storage whose processes keep their connections open between writes.

``DagsterPostgresStorage`` (the ``storage: postgres:`` block of ``dagster.yaml``) gives its run, event log and
schedule storages SQLAlchemy engines without a pool (``NullPool``): every statement a run writes opens a new
connection to the server (a new server process, a password handshake) and closes it. A single-run backfill over 505
symbol partitions writes about 2,000 events, several statements each, and that handling is most of the run's time
(``bench/bench_instance.py``, bench/README.md). Dagster already has the cure, for its webserver only:
``optimize_for_webserver`` swaps each storage's engine for a pooled one (one connection kept, recycled hourly, a
small overflow). This class applies it in every process that loads the instance: webserver, daemon, run workers,
step processes. Its event log also writes a check's planned rows over many partitions in one statement, each with
the planned event narrowed to its partition (``check_rows.py``; dagster-postgres serialises the whole event again
for each partition), and writes a step's per-partition check evaluations in bulk: dagster-postgres stores each on
its own (the event row and a NOTIFY in one transaction, the check execution row's update in another, the event
serialised twice), which was more than half of the 505-symbol ingest run (six ohlcv checks x 505 symbols,
bench/README.md). The event log holds the evaluations it is handed and writes them in one transaction (the event
rows in one multi-row insert, the updates sent in one round trip) before it touches the database for anything else
in this process (the step always logs another event after its evaluations) and at ``CHECK_EVALUATION_BUFFER``
evaluations. No NOTIFY is sent for them: dagster-postgres keeps NOTIFY only for older versions' watchers, and every
process runs the pinned version. A process killed while holding evaluations loses them all (never a part), as it
loses the step's end events. A batch of planned materialisations (505 when a run over 505 symbols is created) is
written in bulk too, where dagster-postgres writes it one event at a time. Schema, migrations, queries and
durability stay dagster-postgres' own.

Each process then holds up to one connection per storage (three) plus overflow while it lives; size the
server's ``max_connections`` for the processes that run at once, or put PgBouncer in front (docs/deploy.md).

Select it in ``dagster.yaml`` with the same config as ``storage: postgres:`` (deploy/dagster.yaml)::

    storage:
      custom:
        module: alpha_assets.orchestration.postgres_storage
        class: PooledPostgresStorage
        config:
          postgres_db: {hostname: ..., port: ..., username: ..., password: ..., db_name: ...}

It relies on dagster-postgres' ``optimize_for_webserver`` methods, so the lockstep pin in ``pyproject.toml``
moves with it: ``alpha_assets_tests/test_orchestration/test_postgres_storage.py`` runs a backfill on it against a real
server, checks the connections are reused and compares its check rows with dagster-postgres' own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import groupby

from dagster import DagsterEventType, EventLogEntry
from dagster._core.storage.config import PostgresStorageConfig
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable, SqlEventLogStorageTable
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage, PostgresEventLogStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config
from psycopg2.extras import execute_batch
from sqlalchemy.engine import Connection

from alpha_assets.orchestration.check_rows import (
    UPDATE_CHECK_EXECUTION,
    HeldCheckEvaluations,
    PlannedCheckRowsInBulk,
    check_execution_values,
    last_event_per_asset,
)

__all__ = ["PooledPostgresStorage", "PostgresEventLogWithCheckRowsInBulk"]

#: Seconds a connection is reused before it is replaced (Dagster's webserver default).
POOL_RECYCLE_S = 3600
#: Connections opened beyond the pooled one when threads of a process write at once; returned when done.
POOL_MAX_OVERFLOW = 4
#: No statement timeout: a run's writes may be slow under load and must not be cut (the webserver sets one).
NO_STATEMENT_TIMEOUT = 0


class PostgresEventLogWithCheckRowsInBulk(HeldCheckEvaluations, PlannedCheckRowsInBulk, PostgresEventLogStorage):
    """dagster-postgres' event log: a check's planned rows and its per-partition evaluations written in bulk."""

    def __init__(self, *args, **kwargs) -> None:
        self._held_evaluations: list[EventLogEntry] = []  # guarded by _held_lock
        self._held_lock = threading.RLock()
        self._writing = threading.local()  # this thread's connection while it writes held evaluations
        super().__init__(*args, **kwargs)

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        """dagster-postgres' connection, after the held evaluations are written (inside their write: its own)."""
        connection = getattr(self._writing, "connection", None)
        if connection is not None:
            yield connection
            return
        if self._held_evaluations:
            with self._held_lock:
                self._write_held_evaluations()
        with super()._connect() as connection:
            yield connection

    def store_event(self, event: EventLogEntry) -> None:
        """Store ``event`` as dagster-postgres does, except a run's evaluation of a check partition: held."""
        if not self._hold(event):
            super().store_event(event)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """A batch as dagster-postgres stores it, except a run's planned materialisations: in bulk.

        dagster-postgres writes a batch of materialisations or observations in bulk and any other batch one event
        at a time; a run over 505 symbol partitions hands it 505 planned materialisations when it is created, its
        planned checks among them. Each run of consecutive planned materialisations is written like a
        materialisation batch: the event rows in one insert, their tags in one, and the asset's entry once per
        asset key, from its last event (the entry's values come from that event alone, so the row ends as the
        per-event upserts leave it); the other events as dagster-postgres writes them, in their place.
        """
        for planned, group in groupby(events, key=_is_planned_materialisation):
            if not planned:
                super().store_event_batch(list(group))
                continue
            in_bulk = list(group)
            with self.index_transaction() as connection:
                event_ids = (
                    connection.execute(self.prepare_insert_event_batch(in_bulk).returning(SqlEventLogStorageTable.c.id))
                    .scalars()
                    .all()
                )
                self._store_asset_event_tags(connection, in_bulk, event_ids)
                for event, event_id in last_event_per_asset(in_bulk, event_ids):
                    self._store_asset_event(connection, event, event_id)

    def _write_check_evaluations(self, events: Sequence[EventLogEntry]) -> None:
        """Write evaluations in one transaction: event rows, then their check execution rows.

        Should a planned row be missing (Dagster's own storage tolerates it), dagster-postgres' per-evaluation
        update-or-insert runs for that evaluation, in the same transaction (``_connect`` hands it this one).
        """
        with super()._connect() as connection, connection.begin():
            self._writing.connection = connection
            try:
                self._write_rows(connection, events)
            finally:
                del self._writing.connection

    def _write_rows(self, connection: Connection, events: Sequence[EventLogEntry]) -> None:
        rows = [self._event_to_row(event) for event in events]
        # Postgres returns a multi-row insert's ids in the order of its rows (dagster-postgres' batches rely on it).
        event_ids = (
            connection.execute(SqlEventLogStorageTable.insert().values(rows).returning(SqlEventLogStorageTable.c.id))
            .scalars()
            .all()
        )
        # psycopg2's executemany is a round trip per row; execute_batch sends them all in one, on the same
        # connection and transaction (the update's SQL is compiled by the connection's own dialect).
        with connection.connection.driver_connection.cursor() as cursor:
            execute_batch(
                cursor,
                str(UPDATE_CHECK_EXECUTION.compile(dialect=connection.dialect)),
                [check_execution_values(e, row, i) for e, row, i in zip(events, rows, event_ids, strict=True)],
                page_size=len(events),
            )
        # execute_batch reports the row count of its last statement only: look the evaluations up instead.
        written = set(
            connection.execute(
                AssetCheckExecutionsTable.select()
                .with_only_columns(AssetCheckExecutionsTable.c.evaluation_event_storage_id)
                .where(AssetCheckExecutionsTable.c.evaluation_event_storage_id.in_(event_ids))
            ).scalars()
        )
        for event, event_id in zip(events, event_ids, strict=True):
            if event_id not in written:
                self._update_asset_check_evaluation(event, event_id)


class PooledPostgresStorage(DagsterPostgresStorage):
    """``DagsterPostgresStorage`` with one pooled connection per storage instead of one per statement."""

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: ConfigurableClassData | None = None,
        token_provider=None,
    ) -> None:
        super().__init__(postgres_url, should_autocreate_tables, inst_data=inst_data, token_provider=token_provider)
        # dagster-postgres builds its own event log class; this one differs only in how it writes check rows.
        self._event_log_storage.dispose()
        self._event_log_storage = PostgresEventLogWithCheckRowsInBulk(
            postgres_url, should_autocreate_tables, token_provider=token_provider
        )
        for storage in (self.run_storage, self.event_log_storage, self.schedule_storage):
            storage.optimize_for_webserver(
                statement_timeout=NO_STATEMENT_TIMEOUT, pool_recycle=POOL_RECYCLE_S, max_overflow=POOL_MAX_OVERFLOW
            )

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: PostgresStorageConfig
    ) -> PooledPostgresStorage:
        """Build from ``dagster.yaml``: the ``storage: postgres:`` config, unchanged."""
        return cls(
            pg_url_from_config(config_value),
            config_value.get("should_autocreate_tables", True),
            inst_data=inst_data,
            token_provider=get_token_provider_from_config(config_value),
        )


def _is_planned_materialisation(event: EventLogEntry) -> bool:
    return event.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION_PLANNED
