"""One real ``dagster dev`` (webserver + daemon) per instance storage, shared by the end-to-end tests, and a
GraphQL client for it.

The fixture is parametrised over the two instances the project ships: ``sqlite`` (the project's dagster.yaml,
the embedded default) and ``postgres`` (deploy/dagster.yaml, the deployment's, on a database of the session's
throwaway Postgres server, with the environment docs/deploy.md prescribes). Every end-to-end test runs on both.
A third server, ``sqlite-s3``, keeps its data directory in a bucket of the tests' S3 server (moto on 127.0.0.1,
AWS's standard variables in the server's and the test process's environment); the modules that run on it too
say so with ``pytest.mark.parametrize("dagster_dev", ON_EVERY_SERVER, indirect=True)``.
The server runs from the project root on a free loopback port, in its own process group, with its own
DAGSTER_HOME (that dagster.yaml copied in) and ALPHA_ASSETS_DATA_DIR, both under the session's tmp dir.
Before it starts, ``alpha-assets flow-data`` prepares the data folder on the simulated exchange at a fixed clock,
on the same instance, so the UI shows those runs. Teardown stops the whole process group, whatever happened.
The server log stays next to the data as a test artifact; a failing test prints its path and tail.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest

from alpha_assets.defs.partitions import SYMBOLS_PER_RUN_ENV
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets_tests.postgres_server import DEPLOY_DAGSTER_YAML, DEPLOY_ENV, PG_ENV, PostgresServer
from alpha_assets_tests.s3_server import S3Server

T = TypeVar("T")

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: Instance storages the end-to-end tests run on, each with a local data folder.
INSTANCES = ("sqlite", "postgres")
#: The sqlite instance with its data directory in a bucket (``s3://<bucket>/data``).
S3_SERVER = "sqlite-s3"
#: The servers of the modules that also run with the data directory in a bucket.
ON_EVERY_SERVER = (*INSTANCES, S3_SERVER)
#: Symbols per run of a backfill on both instances: small, so that a dozen symbols split into several runs.
SYMBOLS_PER_RUN = 4
LOCATION_NAME = "alpha_assets"
REPOSITORY_NAME = "__repository__"

#: The RUN_ID flow-data prepares before the server starts, at a fixed clock, with the small manifest profile.
PREPARED_RUN_ID = "E2E_RUN"
CLOCK = "2026-11-25T12:00:00+00:00"
PROFILE = "development"

#: Bounds of every wait (seconds). Serving takes ~12 s on 2 cores; a graceful stop often outlasts the grace.
PREPARE_TIMEOUT_S = 180
START_TIMEOUT_S = 90
STOP_GRACE_S = 10
HTTP_TIMEOUT_S = 30
LOG_TAIL_LINES = 80

#: Environment variables of the developer's shell that would change what the server does.
_SCRUBBED_ENV = (
    "ALPHA_ASSETS_DAILY_SCHEDULE",
    "ALPHA_ASSETS_DAILY_CRON",
    "DAGSTER_HOME",
    "ALPHA_ASSETS_DATA_DIR",
    SYMBOLS_PER_RUN_ENV,
    *PG_ENV,
    *DEPLOY_ENV,
)

_LOCATION_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


@dataclass
class DagsterDev:
    """A running ``dagster dev``: its instance storage, URL, process, log file, instance folder and data directory.

    ``data_dir`` is a local folder or ``s3://bucket/prefix``.
    """

    instance: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    home: Path
    data_dir: str | Path

    @property
    def paths(self) -> LakehousePaths:
        return LakehousePaths(self.data_dir)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        if not self.log_path.exists():
            return "(no log yet)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def fail(self, message: str) -> NoReturn:
        log = f"{self.instance} instance, server log {self.log_path} (last {LOG_TAIL_LINES} lines)"
        tail = f"--- {log} ---\n{self.log_tail()}"
        pytest.fail(f"{message}\n{tail}", pytrace=False)

    def post(self, query: str, variables: dict[str, Any] | None = None, *, timeout: float = HTTP_TIMEOUT_S) -> Any:
        """POST one GraphQL document and return the decoded answer; urllib's errors propagate."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST one GraphQL document and return its ``data``; fail with the server's answer on any error."""
        try:
            answer = self.post(query, variables)
        except urllib.error.HTTPError as err:
            # Dagster answers a PythonError union member with HTTP 500 and the JSON body: show it.
            self.fail(f"GraphQL HTTP {err.code}: {err.read().decode(errors='replace')[:2000]}")
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            self.fail(f"GraphQL request to {self.url} failed: {err!r}")
        if answer.get("errors"):
            self.fail(f"GraphQL errors: {json.dumps(answer['errors'])[:2000]}")
        return answer["data"]

    def wait_for(self, probe: Callable[[], T | None], *, timeout: float, what: str, interval: float = 2.0) -> T:
        """Call ``probe`` until it returns something other than None; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                self.fail(f"dagster dev exited with code {self.process.returncode} while waiting for {what}")
            result = probe()
            if result is not None:
                return result
            if time.monotonic() > deadline:
                self.fail(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(interval)


def venv_command(name: str) -> str:
    """The console script ``name`` installed next to this interpreter (the project's venv)."""
    path = Path(sys.executable).with_name(name)
    if not path.exists():
        pytest.fail(f"{path} not found: install the project into this venv (`make install`)", pytrace=False)
    return str(path)


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process_group(process: subprocess.Popen[bytes], grace: float = STOP_GRACE_S) -> None:
    """SIGTERM the process group of ``process``, then SIGKILL what is left of it after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)  # start_new_session made the server the group leader
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while _group_alive(process) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not _group_alive(process):
            break
    process.wait(timeout=10)


def _group_alive(process: subprocess.Popen[bytes]) -> bool:
    process.poll()  # reap the leader: a zombie still counts as a member of its group
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True


def server_env(home: Path, data_dir: str | Path, extra: dict[str, str]) -> dict[str, str]:
    """The server's environment: this one without the developer's settings, plus ``extra``, home and data."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env.update(extra, DAGSTER_HOME=str(home), ALPHA_ASSETS_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    env[SYMBOLS_PER_RUN_ENV] = str(SYMBOLS_PER_RUN)
    return env


def _instance_home(request: pytest.FixtureRequest, home: Path) -> dict[str, str]:
    """Write the parametrised instance's dagster.yaml into ``home``; return the environment it needs."""
    if request.param in ("sqlite", S3_SERVER):
        shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
        return {}
    server: PostgresServer = request.getfixturevalue("postgres_server")
    shutil.copyfile(DEPLOY_DAGSTER_YAML, home / "dagster.yaml")
    return {**server.env(server.create_database("e2e_dagster")), **DEPLOY_ENV}


def _prepare_data(root: Path, env: dict[str, str], data_dir: str | Path) -> None:
    log_path = root / "flow_data.log"
    command = [
        venv_command("alpha-assets"),
        "flow-data",
        "--data-dir",
        str(data_dir),
        "--clock",
        CLOCK,
        "--run-id",
        PREPARED_RUN_ID,
        "--profile",
        PROFILE,
    ]
    with log_path.open("wb") as log:
        try:
            done = subprocess.run(
                command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=PREPARE_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            done = None
    if done is None or done.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:])
        outcome = "timed out" if done is None else f"exited with {done.returncode}"
        pytest.fail(f"`{' '.join(command)}` {outcome}; log {log_path}:\n{tail}", pytrace=False)


def _location_loaded(server: DagsterDev) -> bool | None:
    try:
        data = server.post(_LOCATION_QUERY, timeout=5)["data"]
    except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError, KeyError):
        return None  # not serving yet
    entries = {e["name"]: e for e in data["workspaceOrError"].get("locationEntries", [])}
    entry = entries.get(LOCATION_NAME)
    if entry is None or entry["loadStatus"] != "LOADED":
        return None
    loaded = entry["locationOrLoadError"]
    if loaded["__typename"] != "RepositoryLocation":
        server.fail(f"code location {LOCATION_NAME} failed to load: {loaded.get('message')}")
    return True


def start_dagster_dev(root: Path, home: Path, data_dir: str | Path, env: dict[str, str], instance: str) -> DagsterDev:
    """Start ``dagster dev`` on a free loopback port in its own process group; return once it serves.

    The caller stops it with :func:`stop_process_group` (the fixture below, ``bench/bench_chain.py``).
    """
    port = free_loopback_port()
    log_path = root / "dagster_dev.log"
    command = [venv_command("dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = DagsterDev(
        instance=instance,
        url=f"http://127.0.0.1:{port}",
        process=process,
        log_path=log_path,
        home=home,
        data_dir=data_dir,
    )
    try:
        server.wait_for(
            lambda: _location_loaded(server),
            timeout=START_TIMEOUT_S,
            interval=1.0,
            what=f"`{' '.join(command)}` to serve GraphQL with {LOCATION_NAME} loaded",
        )
    except BaseException:
        stop_process_group(process)
        raise
    return server


@pytest.fixture(scope="session", params=INSTANCES)
def dagster_dev(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterDev]:
    """``dagster dev`` over a prepared data directory, serving on 127.0.0.1, stopped by its process group."""
    root = tmp_path_factory.mktemp(f"e2e_{request.param}")
    home, data_dir = root / "dagster_home", root / "data"
    home.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        extra = _instance_home(request, home)
        if request.param == S3_SERVER:
            s3: S3Server = request.getfixturevalue("s3_server")
            data_dir = f"s3://{s3.create_bucket(f'e2e-{secrets.token_hex(4)}')}/data"
            extra.update(s3.env())
            for variable, value in s3.env().items():  # the tests read the bucket too
                patch.setenv(variable, value)
        env = server_env(home, data_dir, extra)
        _prepare_data(root, env, data_dir)
        server = start_dagster_dev(root, home, data_dir, env, request.param)
        try:
            yield server
        finally:
            stop_process_group(server.process)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failure of a test using the server, attach the server log's path and tail to the report."""
    outcome = yield
    report = outcome.get_result()
    server = getattr(item, "funcargs", {}).get("dagster_dev")
    # server.fail() already put the tail into the message; other failures (asserts, exceptions) get it here.
    if report.failed and isinstance(server, DagsterDev) and str(server.log_path) not in str(report.longrepr):
        report.sections.append(("dagster dev log", f"{server.log_path}\n{server.log_tail()}"))
