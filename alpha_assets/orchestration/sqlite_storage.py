"""Dagster's default SQLite event log, keeping its connections open between events.

Dagster's ``SqliteEventLogStorage`` (a database per run plus ``index.db`` for cross-run asset queries) creates a
SQLAlchemy engine, connects, compiles the statement and disposes of the engine for every event it writes;
closing the last connection to a WAL database also checkpoints and syncs it. A single-run backfill over 500
symbol partitions writes about 1,000 events (one materialisation-planned and one materialisation per
partition), and that connection handling is most of the run's time (bench/README.md). This subclass keeps one
engine per database (the index, and the few runs written most recently), so an event costs its statements and
its commit. Storage layout, schema, migrations, durability (``synchronous=FULL``) and what the UI shows are
Dagster's own.

Select it in ``dagster.yaml``::

    event_log_storage:
      module: alpha_assets.orchestration.sqlite_storage
      class: PooledSqliteEventLogStorage
      config: {}    # base_dir defaults to $DAGSTER_HOME/history/runs, where Dagster keeps it

It overrides Dagster's private ``_connect`` (the per-shard connection context), so the Dagster pin in
``pyproject.toml`` moves with it: ``alpha_assets_tests/test_orchestration/test_sqlite_storage.py`` runs a partitioned
backfill on it, reads the events back through Dagster's API and checks that connections are reused.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from dagster import Field, StringSource
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy.engine import Connection, Engine

__all__ = ["PooledSqliteEventLogStorage"]

#: Run databases whose engine stays open besides the index: the runs this process is writing or watching.
OPEN_RUN_SHARDS = 4


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` with one long-lived engine per database instead of one per event."""

    def __init__(self, base_dir: str, inst_data=None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_lock = threading.Lock()
        self._tables: set[str] = set()
        super().__init__(base_dir, inst_data=inst_data)

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
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

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
