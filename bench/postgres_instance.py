"""Benchmarks on Postgres: the test suite's throwaway cluster, and a Dagster instance on deploy/dagster.yaml.

The cluster comes from ``alpha_assets_tests/postgres_server.py`` (the project root is put on the path for it:
the test helpers are not installed with the package). Benchmarks start it with Postgres' default server
settings (:data:`SERVER_SETTINGS`, durable commits, as a production server), not the tests' throwaway ones.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from dagster import DagsterInstance

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alpha_assets_tests.postgres_server import (  # noqa: E402
    DEPLOY_DAGSTER_YAML,
    DEPLOY_ENV,
    PostgresServer,
    storage_yaml,
    throwaway_postgres,
)

__all__ = [
    "DEPLOY_DAGSTER_YAML",
    "DEPLOY_ENV",
    "SERVER_SETTINGS",
    "PostgresServer",
    "postgres_instance",
    "storage_yaml",
    "throwaway_postgres",
]

#: Postgres' defaults (fsync, synchronous_commit on): what a server that keeps its data runs with.
SERVER_SETTINGS: dict[str, str] = {}


@contextlib.contextmanager
def postgres_instance(root: Path) -> Iterator[DagsterInstance]:
    """A fresh cluster and an instance on deploy/dagster.yaml in ``root/pg_home``, with the deployment's environment.

    DAGSTER_HOME, the DAGSTER_PG_* variables and :data:`DEPLOY_ENV` are set for the block and restored after it.
    """
    home = root / "pg_home"
    home.mkdir()
    shutil.copyfile(DEPLOY_DAGSTER_YAML, home / "dagster.yaml")
    saved = dict(os.environ)
    with throwaway_postgres(SERVER_SETTINGS) as server:
        os.environ.update(server.env(server.create_database("dagster")), **DEPLOY_ENV, DAGSTER_HOME=str(home))
        instance = DagsterInstance.get()
        try:
            yield instance
        finally:
            instance.dispose()
            os.environ.clear()
            os.environ.update(saved)
