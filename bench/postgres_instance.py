"""A throwaway Postgres cluster on loopback and a Dagster instance stored in it (benchmarks only)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_postgres(*command: str) -> None:
    done = subprocess.run(["runuser", "-u", "postgres", "--", *command], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{command[0]} failed ({done.returncode}): {done.stderr.strip()[-500:]}")


@contextlib.contextmanager
def postgres_instance(root: Path) -> Iterator[DagsterInstance]:
    """Start a private cluster under ``root`` (trust auth, 127.0.0.1 only) and yield an instance using it."""
    data, sockets, home = root / "pg_data", root / "pg_sockets", root / "pg_home"
    root.chmod(0o755)  # the postgres user must reach its folders inside a private temp dir
    for folder in (data, sockets):
        folder.mkdir(parents=True)
        shutil.chown(folder, "postgres", "postgres")
    home.mkdir()
    port = _free_port()
    _as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust")
    _as_postgres(
        str(PG_BIN / "pg_ctl"),
        "-D",
        str(data),
        "-w",
        "-l",
        str(data / "server.log"),
        "-o",
        f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1",
        "start",
    )
    try:
        _as_postgres(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "dagster")
        # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; dagster-postgres speaks psycopg2.
        (home / "dagster.yaml").write_text(
            "storage:\n  postgres:\n"
            f"    postgres_url: postgresql+psycopg2://postgres@127.0.0.1:{port}/dagster\n"
            "telemetry:\n  enabled: false\n"
        )
        instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
        try:
            yield instance
        finally:
            instance.dispose()
    finally:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "stop")
