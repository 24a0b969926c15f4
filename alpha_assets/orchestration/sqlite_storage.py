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
- commits with ``synchronous=NORMAL`` in WAL mode (SQLite's documented pairing for WAL): a commit is a write to
  the log, synced at checkpoints. Nothing committed is lost when a process crashes or is killed; a power loss or
  an operating system crash can roll back the last transactions before it (never corrupts the database).

Storage layout, schema, migrations and what the UI shows are Dagster's own.

Select it in ``dagster.yaml``::

    event_log_storage:
      module: alpha_assets.orchestration.sqlite_storage
      class: PooledSqliteEventLogStorage
      config: {}    # base_dir defaults to $DAGSTER_HOME/history/runs, where Dagster keeps it

It overrides Dagster's private ``_connect`` (the per-shard connection context), so the Dagster pin in
``pyproject.toml`` moves with it: ``alpha_assets_tests/test_orchestration/test_sqlite_storage.py`` runs partitioned
backfills on it, reads the events back through Dagster's API, and checks that connections are reused and that
an event and a batch each commit once per database.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from dagster import EventLogEntry, Field, StringSource
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.event import listen

__all__ = ["PooledSqliteEventLogStorage"]

#: Run databases whose engine stays open besides the index: the runs this process is writing or watching.
OPEN_RUN_SHARDS = 4
#: Events Dagster buffers before handing them to ``store_event_batch`` (as deploy/dagster.yaml's environment).
EVENT_BATCH_SIZE = "1000"


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` with long-lived engines, a transaction per event or batch, and WAL commits."""

    def __init__(self, base_dir: str, inst_data=None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_lock = threading.Lock()
        self._tables: set[str] = set()
        self._open = threading.local()  # this thread's connections inside store_event(_batch), by database
        super().__init__(base_dir, inst_data=inst_data)
        # Re-entrant, so that the statements of one event (or one batch) share a transaction per database.
        self._db_lock = threading.RLock()
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
        """Store one event as Dagster does, with its index statements in one transaction instead of up to three."""
        with self._connect(INDEX_SHARD_NAME):
            super().store_event(event)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Store a batch (``DAGSTER_EVENT_BATCH_SIZE``) in one transaction per database, instead of per event."""
        with ExitStack() as transactions:
            transactions.enter_context(self._connect(INDEX_SHARD_NAME))
            for run_id in sorted({e.run_id for e in events}):
                transactions.enter_context(self._connect(run_id))
            for e in events:
                super().store_event(e)

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
        """Stop watching and close every engine."""
        super().dispose()
        with self._engines_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()


def _write_ahead_log(dbapi_connection: Any, _record: Any) -> None:
    """WAL (as Dagster sets it when it creates a database) with commits synced at checkpoints, on every connection."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
