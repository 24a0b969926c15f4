"""Suite-wide setup: the network guard (only loopback may be reached), the local exchange server fixture, the
throwaway Postgres server fixture, and the guard that a test run leaves the tracked files of the checkout as it
found them.

Tests write to ``tmp_path`` or ``test-artifacts/`` (ignored by git), never to a tracked file: generated documents
such as ``docs/reliability.md`` are regenerated on purpose (``make reliability-doc``). At the end of the session
``git status --porcelain`` of the tracked files is compared with its state at the start; a file that became
modified or deleted during the run fails it, named. A file already modified before the run is not watched (a
developer's edit in progress is not the suite's doing); CI runs on a clean clone, where every file is watched.
Outside a git checkout, or without ``git``, the guard stands aside.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytest_plugins = [
    "alpha_assets_tests.socket_guard",
    "alpha_assets_tests.exchange_server",
    "alpha_assets_tests.postgres_server",
    "alpha_assets_tests.s3_server",
]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
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


def pytest_configure(config: pytest.Config) -> None:
    """Note the tracked files already changed before any test ran."""
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
