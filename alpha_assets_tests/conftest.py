"""Suite-wide setup: the network guard (only loopback may be reached), the local exchange server fixture, and the
guard that a test run leaves every tracked file of the checkout as it found it.

Tests write to ``tmp_path`` or ``test-artifacts/`` (ignored by git), never to a tracked file: generated documents
such as ``docs/reliability.md`` are regenerated on purpose (``make reliability-doc``). At the end of the session the
tracked files that differ from ``HEAD`` (and the sha256 of their content) are compared with those at its start; a
difference fails the run and names the files. Outside a git checkout, or without ``git``, the guard stands aside.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

pytest_plugins = ["alpha_assets_tests.socket_guard", "alpha_assets_tests.exchange_server"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: Tracked files a conftest declared as written on purpose in this session (absolute paths), e.g. the reliability
#: table when ``make reliability-doc`` asks for it.
INTENDED_WRITES = pytest.StashKey[set[Path]]()
_TRACKED_BEFORE = pytest.StashKey["dict[str, str] | None"]()


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.decode() if done.returncode == 0 else None


def tracked_changes(root: Path = PROJECT_ROOT) -> dict[str, str] | None:
    """Every tracked file under ``root`` that differs from ``HEAD``: absolute path -> content sha256.

    Parameters
    ----------
    root : Path, default the project
        A folder inside a git checkout.

    Returns
    -------
    dict of str to str, or None
        ``"deleted"`` for a tracked file that is gone; None when ``root`` is not in a git checkout or ``git``
        cannot run.
    """
    top = _git(root, "rev-parse", "--show-toplevel")
    status = _git(root, "status", "--porcelain=v1", "-z", "--untracked-files=no", "--", ".")
    if top is None or status is None:
        return None
    entries = iter(status.split("\0"))
    changed = {}
    for entry in entries:
        if not entry:
            continue
        code, path = entry[:2], entry[3:]
        if "R" in code or "C" in code:
            next(entries, None)  # a rename or copy is followed by its source path
        file = Path(top.strip()) / path
        changed[str(file)] = hashlib.sha256(file.read_bytes()).hexdigest() if file.is_file() else "deleted"
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
    intended = {str(path) for path in config.stash[INTENDED_WRITES]}
    written = sorted(
        str(Path(path).relative_to(PROJECT_ROOT)) if Path(path).is_relative_to(PROJECT_ROOT) else path
        for path in set(before) | set(after)
        if before.get(path) != after.get(path) and path not in intended
    )
    if not written:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("")
        reporter.write_sep("=", "tracked files changed during the test run", red=True)
        reporter.write_line(
            f"{', '.join(written)}: tests must write to tmp_path or test-artifacts/ (a file edited by hand during "
            "the run also shows here)",
            red=True,
        )
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
