"""dagster-postgres instance storage whose processes keep their connections open between writes.

``DagsterPostgresStorage`` (the ``storage: postgres:`` block of ``dagster.yaml``) gives its run, event log and
schedule storages SQLAlchemy engines without a pool (``NullPool``): every statement a run writes opens a new
connection to the server (a new server process, a password handshake) and closes it. A single-run backfill over
505 symbol partitions writes about 2,000 events, several statements each, and that handling is most of the
run's time (``bench/bench_instance.py``, bench/README.md). Dagster already has the cure, for its webserver only:
``optimize_for_webserver`` swaps each storage's engine for a pooled one (one connection kept, recycled hourly,
a small overflow). This class applies it in every process that loads the instance: webserver, daemon, run
workers, step processes. Its event log also writes a check's planned rows over many partitions with the planned
event serialised once (``check_rows.py``; dagster-postgres serialises it again for each partition). Schema,
migrations, queries and durability stay dagster-postgres' own.

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

from dagster._core.storage.config import PostgresStorageConfig
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage, PostgresEventLogStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

from alpha_assets.orchestration.check_rows import PlannedCheckRowsSerialisedOnce

__all__ = ["PooledPostgresStorage", "PostgresEventLogWithPlannedRowsOnce"]

#: Seconds a connection is reused before it is replaced (Dagster's webserver default).
POOL_RECYCLE_S = 3600
#: Connections opened beyond the pooled one when threads of a process write at once; returned when done.
POOL_MAX_OVERFLOW = 4
#: No statement timeout: a run's writes may be slow under load and must not be cut (the webserver sets one).
NO_STATEMENT_TIMEOUT = 0


class PostgresEventLogWithPlannedRowsOnce(PlannedCheckRowsSerialisedOnce, PostgresEventLogStorage):
    """dagster-postgres' event log, writing the planned rows of a check with one serialisation of the event."""


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
        # dagster-postgres builds its own event log class; this one differs only in the planned rows' writes.
        self._event_log_storage.dispose()
        self._event_log_storage = PostgresEventLogWithPlannedRowsOnce(
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
