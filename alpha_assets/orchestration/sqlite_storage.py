"""Dagster's default SQLite event log, with open connections, one transaction per event or batch, WAL commits.

Dagster's ``SqliteEventLogStorage`` (a database per run plus ``index.db`` for cross-run asset queries) creates a
SQLAlchemy engine, connects, compiles the statement and disposes of the engine for every event it writes, and
commits each group of statements on its own (a check evaluation: three commits), each commit synced to disk
(SQLite's default ``synchronous=FULL``). The ingest run writes about 4,000 events for 505 symbols (a planned
event and a materialisation per symbol partition, and one evaluation per ohlcv check and symbol, which the UI
needs for per-symbol status), so that bookkeeping was most of the run's time (bench/README.md). This subclass:

- keeps one engine per database (the index, and the few runs written most recently);
- writes all of an event's statements in one transaction per database, and a batch of events (Dagster's
  ``DAGSTER_EVENT_BATCH_SIZE``: a run's planned events, a partitioned output's materialisations) in one
  transaction per database instead of one per event. Dagster reads that variable from the environment only, so
  the storage sets it to ``EVENT_BATCH_SIZE`` for its process unless the environment already sets it;
- writes the per-partition check evaluations of a step (six ohlcv checks x 505 symbols: three quarters of the
  ingest run's events) in bulk: Dagster stores each on its own (an event row in the run's database and in the
  index, then an update of the check's execution row), which never joins a batch. The storage holds the
  evaluations it is handed and writes them together, in one transaction per database, before it touches the
  databases for anything else (the next event of the run, which a step always logs after its evaluations, or
  any read in this process) and at ``CHECK_EVALUATION_BUFFER`` evaluations; each event is serialised once;
- inserts the planned rows of a check over many partitions in one statement, each holding the planned event
  narrowed to its partition, from one serialisation (``check_rows.py``), where Dagster serialises the whole
  event, with the run's every partition, again for every row;
- commits with ``synchronous=NORMAL`` in WAL mode (SQLite's documented pairing for WAL): a commit is a write to
  the log, synced at checkpoints. Nothing committed is lost when a process crashes or is killed; a power loss or
  an operating system crash can roll back the last transactions before it (never corrupts the database).

Storage layout, schema, migrations and what the UI shows are Dagster's own: the rows written are those Dagster
writes, in the same order. What differs is when another process sees held evaluations (at the next write of
this process, as with Dagster's own batches), and that a process killed while holding evaluations loses them
all (never a part: they are written in one transaction), as it loses the step's end events.

Select it in ``dagster.yaml``::

    event_log_storage:
      module: alpha_assets.orchestration.sqlite_storage
      class: PooledSqliteEventLogStorage
      config: {}    # base_dir defaults to $DAGSTER_HOME/history/runs, where Dagster keeps it

It overrides Dagster's private ``_connect`` (the per-shard connection context), so the Dagster pin in
``pyproject.toml`` moves with it: ``alpha_assets_tests/test_orchestration/test_sqlite_storage.py`` runs partitioned
backfills on it, reads the events back through Dagster's API (check status per partition included), and checks
that connections are reused, that an event and a batch each commit once per database, and that held
evaluations are written before any other event and any read.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from itertools import groupby
from typing import Any

from dagster import EventLogEntry, Field, StringSource
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.event import listen

from alpha_assets.orchestration.check_rows import (
    UPDATE_CHECK_EXECUTION,
    HeldCheckEvaluations,
    PlannedCheckRowsInBulk,
    check_execution_values,
    is_asset_event,
    last_event_per_asset,
)

__all__ = ["PooledSqliteEventLogStorage"]

#: Run databases whose engine stays open besides the index: the runs this process is writing or watching.
OPEN_RUN_SHARDS = 4
#: Events Dagster buffers before handing them to ``store_event_batch`` (as deploy/dagster.yaml's environment).
EVENT_BATCH_SIZE = "1000"


class PooledSqliteEventLogStorage(HeldCheckEvaluations, PlannedCheckRowsInBulk, SqliteEventLogStorage):
    """``SqliteEventLogStorage`` with long-lived engines, a transaction per event or batch, and WAL commits."""

    def __init__(self, base_dir: str, inst_data=None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_lock = threading.Lock()
        self._tables: set[str] = set()
        self._asset_key_columns: set[str] = set()
        self._open = threading.local()  # this thread's connections inside store_event(_batch), by database
        self._held_evaluations: list[EventLogEntry] = []  # guarded by _db_lock
        super().__init__(base_dir, inst_data=inst_data)
        # Re-entrant, so that the statements of one event (or one batch) share a transaction per database.
        self._db_lock = threading.RLock()
        self._held_lock = self._db_lock  # held evaluations are written inside _connect, under the same lock
        os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        """``base_dir`` (optional): the directory of the run databases and ``index.db``."""
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value: Mapping[str, Any]) -> PooledSqliteEventLogStorage:
        """Build from ``dagster.yaml``; ``base_dir`` defaults to ``$DAGSTER_HOME/history/runs``."""
        base_dir = config_value.get("base_dir")
        if base_dir is None:
            home = os.environ.get("DAGSTER_HOME")
            if not home:
                raise ValueError(
                    "PooledSqliteEventLogStorage needs `base_dir` in its config or DAGSTER_HOME in the environment"
                )
            base_dir = os.path.join(home, "history", "runs")
        return cls(base_dir, inst_data=inst_data)

    def _engine(self, shard: str) -> Engine:
        with self._engines_lock:
            engine = self._engines.get(shard)
            if engine is None:
                # One connection per engine is enough: Dagster serialises this storage's connections with
                # ``_db_lock``; the overflow covers a thread that reads while another writes.
                engine = create_engine(
                    self.conn_string_for_shard(shard),
                    pool_size=1,
                    max_overflow=2,
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
                )
                listen(engine, "connect", _write_ahead_log)
                self._engines[shard] = engine
                self._evict_run_shards()
            else:
                self._engines.move_to_end(shard)
            return engine

    def _evict_run_shards(self) -> None:
        run_shards = [shard for shard in self._engines if shard != INDEX_SHARD_NAME]
        for shard in run_shards[: max(0, len(run_shards) - OPEN_RUN_SHARDS)]:
            self._engines.pop(shard).dispose()

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            open_connections = self._open.__dict__.setdefault("connections", {})
            if not open_connections and self._held_evaluations:  # nothing reads or writes before them
                self._write_held_evaluations()
            if shard in open_connections:  # inside store_event(_batch): one transaction for all of it
                yield open_connections[shard]
                return
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                open_connections[shard] = conn
                try:
                    yield conn
                finally:
                    del open_connections[shard]

    def store_event(self, event: EventLogEntry) -> None:
        """Store one event as Dagster does, with its index statements in one transaction instead of up to three.

        A run's evaluation of a partitioned check is held and written with the evaluations that follow it, before
        this storage writes or reads anything else.
        """
        if self._hold(event):
            return
        with self._connect(INDEX_SHARD_NAME):
            super().store_event(event)

    def _write_check_evaluations(self, events: Sequence[EventLogEntry]) -> None:
        """Write evaluations as Dagster's ``store_event`` would, in one transaction per database.

        Rows, in order: each event in its run's database and in the index (whose id is the evaluation's storage
        id), then the evaluation on the check execution row its planned event created. Each event is serialised
        once. Should a planned row be missing (Dagster's own storage tolerates it), Dagster's per-evaluation
        update-or-insert runs instead, in the same transaction.
        """
        rows = [self._event_to_row(event) for event in events]
        with ExitStack() as transactions:
            index = transactions.enter_context(self._connect(INDEX_SHARD_NAME))
            for run_id in sorted({row["run_id"] for row in rows}):
                transactions.enter_context(self._connect(run_id))
            event_ids = self._insert_event_rows(index, rows)
            updated = index.execute(
                UPDATE_CHECK_EXECUTION,
                [check_execution_values(e, row, i) for e, row, i in zip(events, rows, event_ids, strict=True)],
            ).rowcount
            if updated != len(events):
                for event, event_id in zip(events, event_ids, strict=True):
                    self._update_asset_check_evaluation(event, event_id)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Store a batch (``DAGSTER_EVENT_BATCH_SIZE``) in one transaction per database, instead of per event.

        Each run of consecutive asset events (Dagster batches a run's planned materialisations, with its planned
        checks among them, and an output's partition materialisations) is written in bulk: the event rows of
        each run in one statement, the index rows compiled once, the tags in one statement, and the asset's entry
        updated once per event type instead of once per event (the entry's columns end as Dagster's per-event
        updates leave them: each takes the value of the last event that sets it, and each event type sets the
        same columns). Any other event of the batch is stored on its own, in its place: the ids keep the order.
        """
        with ExitStack() as transactions:
            index = transactions.enter_context(self._connect(INDEX_SHARD_NAME))
            for run_id in sorted({e.run_id for e in events}):
                transactions.enter_context(self._connect(run_id))
            for asset_events, group in groupby(events, key=is_asset_event):
                if not asset_events:
                    for event in group:
                        super().store_event(event)
                    continue
                in_bulk = list(group)
                event_ids = self._insert_event_rows(index, [self._event_to_row(event) for event in in_bulk])
                self._store_asset_event_tags(index, in_bulk, event_ids)
                for event, event_id in last_event_per_asset(in_bulk, event_ids):
                    self._store_asset_event(index, event, event_id)

    def _insert_event_rows(self, index: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """Insert event rows in their runs' databases (one statement per run) and the index; the index ids."""
        for run_id in sorted({row["run_id"] for row in rows}):
            with self._connect(run_id) as run:
                run.execute(SqlEventLogStorageTable.insert(), [row for row in rows if row["run_id"] == run_id])
        return _insert_with_consecutive_ids(index, rows)

    def _has_asset_key_col_on_connection(self, conn: Connection, column_name: str) -> bool:
        """Whether the asset key table has ``column_name``; Dagster asks for every asset event.

        Columns are only ever added (by migrations), so a column seen once is remembered.
        """
        if column_name not in self._asset_key_columns:
            if super()._has_asset_key_col_on_connection(conn, column_name):
                self._asset_key_columns.add(column_name)
        return column_name in self._asset_key_columns

    def has_table(self, table_name: str) -> bool:
        """Whether the index database has ``table_name``; Dagster asks before most writes.

        Tables are only ever added (by migrations), so a table seen once is remembered.
        """
        if table_name not in self._tables:
            engine = self._engine(INDEX_SHARD_NAME)
            with engine.connect() as conn:
                if engine.dialect.has_table(conn, table_name):
                    self._tables.add(table_name)
        return table_name in self._tables

    def dispose(self) -> None:
        """Write the held evaluations, stop watching and close every engine."""
        super().dispose()
        with self._engines_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()


def _insert_with_consecutive_ids(index: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert ``rows`` in the index's event table in one transaction; their ids, in order.

    SQLite returns no ids from a bulk insert, and a statement per row took four times as long (bench/README.md).
    The first row's id comes back from its insert; the others are inserted in bulk and follow it: from its first
    write to its commit the transaction holds the database's write lock, and SQLite gives a row inserted without
    an id the largest id plus one (``id`` is the rowid, without AUTOINCREMENT). The largest id after the bulk
    insert is read back to prove it.
    """
    if not rows:
        return []
    table = SqlEventLogStorageTable
    first = index.execute(table.insert().returning(table.c.id), rows[0]).scalar_one()
    if len(rows) > 1:
        index.execute(table.insert(), rows[1:])
        last = index.execute(select(func.max(table.c.id))).scalar_one()
        if last != first + len(rows) - 1:
            raise RuntimeError(f"event ids not consecutive: {len(rows)} rows from id {first}, largest id {last}")
    return list(range(first, first + len(rows)))


def _write_ahead_log(dbapi_connection: Any, _record: Any) -> None:
    """WAL (as Dagster sets it when it creates a database) with commits synced at checkpoints, on every connection."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
