"""Suite-wide setup: the network guard (only loopback may be reached), the local exchange server fixture, the
throwaway Postgres server fixture, the data-directory backends (a local folder, or a bucket of the tests' own S3
server), and the guard that a test run leaves the tracked files of the checkout as it
found them.

Tests write to ``tmp_path`` or ``test-artifacts/`` (ignored by git), never to a tracked file: generated documents
such as ``docs/reliability.md`` are regenerated on purpose (``make reliability-doc``). At the end of the session
``git status --porcelain`` of the tracked files is compared with its state at the start; a file that became
modified or deleted during the run fails it, named. A file already modified before the run is not watched (a
developer's edit in progress is not the suite's doing); CI runs on a clean clone, where every file is watched.
Outside a git checkout, or without ``git``, the guard stands aside.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from alpha_assets.lakehouse.storage import DataPath, is_object_store

if TYPE_CHECKING:
    from alpha_assets_tests.s3_server import S3Server

pytest_plugins = [
    "alpha_assets_tests.socket_guard",
    "alpha_assets_tests.exchange_server",
    "alpha_assets_tests.postgres_server",
    "alpha_assets_tests.s3_server",
]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: Where the data directory of a backend-parametrised test lives: a local folder, or ``s3://`` on moto's server.
DATA_BACKENDS = ("local", "s3")
#: Tracked files a conftest declared as written on purpose in this session (absolute paths), e.g. the reliability
#: table when ``make reliability-doc`` asks for it.
INTENDED_WRITES = pytest.StashKey[set[Path]]()
_TRACKED_BEFORE = pytest.StashKey["set[str] | None"]()


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.decode() if done.returncode == 0 else None


def tracked_changes(root: Path = PROJECT_ROOT) -> set[str] | None:
    """The tracked files under ``root`` that differ from ``HEAD``, as ``git status --porcelain`` lines.

    Parameters
    ----------
    root : Path, default the project
        A folder inside a git checkout.

    Returns
    -------
    set of str, or None
        ``"XY path"`` (status code, path from the top of the checkout) per file; None when ``root`` is not in a
        git checkout or ``git`` cannot run.
    """
    status = _git(root, "status", "--porcelain=v1", "-z", "--untracked-files=no", "--", ".")
    if status is None:
        return None
    entries = iter(status.split("\0"))
    changed = set()
    for entry in entries:
        if entry:
            changed.add(entry)
            if entry[0] in "RC":
                next(entries, None)  # a staged rename or copy is followed by its source path
    return changed


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Note the tracked files already changed before any test ran.

    First of every ``pytest_configure``: a folder's conftest (test_reliability's) adds to ``INTENDED_WRITES`` in its
    own, and pluggy calls the later-registered conftests first otherwise.
    """
    config.stash[INTENDED_WRITES] = set()
    config.stash[_TRACKED_BEFORE] = tracked_changes()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a tracked file changed during it (``--snapshot-update`` rewrites snapshots on purpose)."""
    config = session.config
    before = config.stash.get(_TRACKED_BEFORE, None)
    if before is None or config.getoption("snapshot_update", default=False):
        return
    after = tracked_changes()
    if after is None:
        return
    top = Path(_git(PROJECT_ROOT, "rev-parse", "--show-toplevel").strip())
    written = sorted(
        entry[3:] for entry in after - before if (top / entry[3:]).resolve() not in config.stash[INTENDED_WRITES]
    )
    if not written:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("")
        reporter.write_sep("=", "tracked files changed during the test run", red=True)
        reporter.write_line(
            f"{', '.join(written)}: tests must write to tmp_path or test-artifacts/ (a file first edited by hand "
            "during the run also shows here)",
            red=True,
        )
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@dataclass(frozen=True)
class DataBackend:
    """Where the data directories of a test module live: local folders, or buckets of the tests' S3 server.

    ``name`` is ``local`` or ``s3`` (the test id's suffix). While an ``s3`` backend is in use, AWS's standard
    variables point every process the tests start at the moto server (children inherit them).
    """

    name: str
    tmp: pytest.TempPathFactory
    server: S3Server | None

    @property
    def in_object_store(self) -> bool:
        return self.server is not None

    def fresh(self, name: str = "data") -> str:
        """A new, empty data directory: ``<tmp>/<name>N/data`` or ``s3://<new bucket>/<name>``."""
        if self.server is None:
            return str(self.tmp.mktemp(name) / "data")
        return f"s3://{self.server.create_bucket(f't-{secrets.token_hex(6)}')}/{name}"


@pytest.fixture(scope="module", params=DATA_BACKENDS)
def data_backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataBackend]:
    """Each test that asks for it runs twice: data directories in local folders, then in buckets on 127.0.0.1.

    Module-scoped, so a module's expensive set-up (a whole cycle through Dagster) runs once per backend; for ``s3``
    the session's moto server is started on first use and AWS's variables are set for the module's duration.
    """
    if request.param == "local":
        yield DataBackend("local", tmp_path_factory, None)
        return
    server: S3Server = request.getfixturevalue("s3_server")
    with pytest.MonkeyPatch.context() as patch:
        for variable, value in server.env().items():
            patch.setenv(variable, value)
        yield DataBackend("s3", tmp_path_factory, server)


@pytest.fixture
def data_dir(data_backend: DataBackend) -> str:
    """A fresh data directory of the test's backend (a local path or ``s3://bucket/data``), for one test."""
    return data_backend.fresh()


def remove_tree(path: DataPath) -> None:
    """Delete the folder ``path`` and everything under it, in a local folder or a bucket (tests' clean-up)."""
    if is_object_store(path):
        if path.fs.exists(path.path):
            path.fs.rm(path.path, recursive=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def copy_file(source: DataPath, target: DataPath) -> None:
    """Copy one file or object (a test planting a file next to the product's)."""
    target.write_bytes(source.read_bytes())
