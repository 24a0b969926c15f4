"""A throwaway PostgreSQL cluster from Debian's packages, for the tests and the benchmarks.

``initdb`` makes a fresh cluster in a private temporary folder; the server listens on 127.0.0.1 (a free port)
and on a unix socket in that folder, with password authentication (SCRAM, a random password, as a production
server would ask for) and is stopped and deleted on exit. Initdb and the server refuse to run as root, so as
root (CI) they run as Debian's ``postgres`` user, which owns the folder.

The ``postgres_server`` pytest fixture (session-scoped) yields one started server; each user takes its own
database (:meth:`PostgresServer.create_database`). ``make postgres`` installs the server binaries.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

#: Debian installs each major version's server binaries under here.
PG_ROOT = Path("/usr/lib/postgresql")
#: The account Debian's package creates; the cluster runs as it when the caller is root.
SERVICE_USER = "postgres"
SUPERUSER = "dagster"
START_TIMEOUT_S = 60

#: Server settings for a cluster that lives as long as a test session: nothing in it has to survive a crash of
#: this machine, so no WAL flush waits for the disk. Never for a server that keeps data (docs/deploy.md).
THROWAWAY_SETTINGS: Mapping[str, str] = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}

#: The deployment's instance configuration, and what docs/deploy.md sets in the environment next to it.
DEPLOY_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "deploy" / "dagster.yaml"
DEPLOY_ENV: Mapping[str, str] = {"DAGSTER_EVENT_BATCH_SIZE": "1000"}
#: The variables deploy/dagster.yaml reads the connection from.
PG_ENV = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")
_PG_DB_CONFIG = """postgres_db:
  hostname: {env: DAGSTER_PG_HOST}
  port: {env: DAGSTER_PG_PORT}
  username: {env: DAGSTER_PG_USERNAME}
  password: {env: DAGSTER_PG_PASSWORD}
  db_name: {env: DAGSTER_PG_DB}
  scheme: postgresql+psycopg2
"""


def storage_yaml(*, pooled: bool) -> str:
    """A ``dagster.yaml`` storage block on the ``DAGSTER_PG_*`` database, nothing else of deploy/dagster.yaml.

    ``pooled=False``: dagster-postgres' own storage as it documents it (``storage: postgres:``); ``True``: the same
    config through ``alpha_assets.orchestration.postgres_storage.PooledPostgresStorage``.
    """
    if not pooled:
        return "storage:\n  postgres:\n" + textwrap.indent(_PG_DB_CONFIG, "    ")
    custom = (
        "storage:\n  custom:\n    module: alpha_assets.orchestration.postgres_storage\n"
        "    class: PooledPostgresStorage\n"
    )
    return custom + "    config:\n" + textwrap.indent(_PG_DB_CONFIG, "      ")


class PostgresUnavailableError(RuntimeError):
    """The server binaries are missing or the cluster did not start; the message says which and why."""


def postgres_bin_dir() -> Path:
    """The ``bin`` folder of the newest PostgreSQL installed under :data:`PG_ROOT`."""
    versions = sorted((p for p in PG_ROOT.glob("*/bin") if (p / "initdb").exists()), key=lambda p: int(p.parent.name))
    if not versions:
        raise PostgresUnavailableError(
            f"no PostgreSQL server under {PG_ROOT}: install Debian's `postgresql` package (`make postgres`)"
        )
    return versions[-1]


@dataclass(frozen=True)
class PostgresServer:
    """A started throwaway cluster: where it listens and the superuser's credentials."""

    host: str
    port: int
    username: str
    password: str
    data_dir: Path

    def url(self, database: str) -> str:
        """SQLAlchemy URL of ``database`` (psycopg2, which dagster-postgres speaks)."""
        return f"postgresql+psycopg2://{self.username}:{quote(self.password)}@{self.host}:{self.port}/{database}"

    def env(self, database: str) -> dict[str, str]:
        """The ``DAGSTER_PG_*`` variables that point deploy/dagster.yaml at ``database``."""
        values = (self.host, str(self.port), self.username, self.password, database)
        return dict(zip(PG_ENV, values, strict=True))

    def create_database(self, name: str) -> str:
        """Create an empty database ``name`` (letters, digits, underscores) and return its name."""
        import psycopg2

        if not name.replace("_", "").isalnum():
            raise ValueError(f"database name must be letters, digits and underscores, got {name!r}")
        connection = psycopg2.connect(
            host=self.host, port=self.port, user=self.username, password=self.password, dbname="postgres"
        )
        try:
            connection.autocommit = True  # CREATE DATABASE cannot run inside a transaction
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return name


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_as_owner(command: list[str], what: str) -> None:
    prefix = ["runuser", "-u", SERVICE_USER, "--"] if os.geteuid() == 0 else []
    done = subprocess.run(prefix + command, capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False)
    if done.returncode:
        output = (done.stderr or done.stdout).strip()[-1500:]
        raise PostgresUnavailableError(f"{what} failed with exit code {done.returncode}: {output}")


@contextlib.contextmanager
def throwaway_postgres(settings: Mapping[str, str] = THROWAWAY_SETTINGS) -> Iterator[PostgresServer]:
    """Start a fresh cluster with the server ``settings`` (``name=value``); stop and delete it on exit.

    Raises
    ------
    PostgresUnavailableError
        When no server is installed, or ``initdb`` or ``pg_ctl start`` fails (with its output).
    """
    bin_dir = postgres_bin_dir()
    root = Path(tempfile.mkdtemp(prefix="alpha_assets_pg_"))
    data_dir, password = root / "data", secrets.token_urlsafe(24)
    try:
        password_file = root / "password"
        password_file.write_text(password)
        password_file.chmod(0o600)
        if os.geteuid() == 0:
            for path in (root, password_file):
                shutil.chown(path, SERVICE_USER, SERVICE_USER)
        initdb = [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", SUPERUSER, "--pwfile", str(password_file)]
        _run_as_owner([*initdb, "--auth=scram-sha-256", "--encoding=UTF8", "--no-sync"], "initdb")
        password_file.unlink()
        port = _free_loopback_port()
        options = [f"-p {port}", f"-k {root}", "-c listen_addresses=127.0.0.1"]
        options += [f"-c {name}={value}" for name, value in settings.items()]
        pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-l", str(root / "server.log")]
        try:
            _run_as_owner([*pg_ctl, "-w", "-t", str(START_TIMEOUT_S), "-o", " ".join(options), "start"], "pg_ctl start")
        except PostgresUnavailableError as err:
            log = root / "server.log"
            raise PostgresUnavailableError(f"{err}\n{log.read_text()[-1500:] if log.exists() else ''}") from None
        try:
            yield PostgresServer("127.0.0.1", port, SUPERUSER, password, data_dir)
        finally:
            _run_as_owner([*pg_ctl, "-m", "fast", "-w", "stop"], "pg_ctl stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway cluster for the session (:data:`THROWAWAY_SETTINGS`); fails the test if it cannot start."""
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(throwaway_postgres())
        except PostgresUnavailableError as err:
            pytest.fail(str(err), pytrace=False)
        yield server
