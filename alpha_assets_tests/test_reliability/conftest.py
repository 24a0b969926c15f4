"""The reliability suite's registry and the generator of ``docs/reliability.md``.

Every test of this folder carries ``@pytest.mark.reliability(fault=..., expected=...)`` (on the function or on each
``pytest.param``): the fault or bad input it injects and the behaviour it proves. A test without one stops the
session at collection. When the whole folder ran (every module collected, nothing deselected, every test
reported), ``pytest_sessionfinish`` writes the table: one row per test with its result, then the figures the tests
recorded with the ``reliability_figures`` fixture. A test run writes it to ``test-artifacts/reliability.md`` (ignored
by git: tests never write tracked files); ``make reliability-doc`` sets ``ALPHA_ASSETS_RELIABILITY_TABLE`` to
``docs/reliability.md`` to regenerate the committed document on purpose. ``test_reliability_table.py`` fails when
the committed table no longer matches the tests, so the document cannot drift from them.

Also the shared set-up of the suite: the fixed clock, a small manifest, and an in-process CLI runner.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alpha_assets_tests.conftest import INTENDED_WRITES

FOLDER = Path(__file__).resolve().parent
PROJECT_ROOT = FOLDER.parents[1]
#: The committed document, regenerated on purpose by ``make reliability-doc``.
RELIABILITY_DOC = PROJECT_ROOT / "docs" / "reliability.md"
#: Where a session writes its table: ``$ALPHA_ASSETS_RELIABILITY_TABLE`` (relative to the project), else an artifact.
TABLE_ENV = "ALPHA_ASSETS_RELIABILITY_TABLE"
TABLE_ARTIFACT = PROJECT_ROOT / "test-artifacts" / "reliability.md"
MARKER = "reliability"

#: The clock of every flow in this suite: runs are reproducible to the byte.
CLOCK = "2026-11-25T12:00:00+00:00"
#: A small universe so that a full flow_data takes a few seconds: 12 symbols, 400 bars each.
SMALL_MANIFEST = {
    "default_profile": "reliability",
    "defaults": {},
    "profiles": {
        "reliability": {
            "discovery": {"top_n": 12, "min_traded_value_24h": 0},
            "ingestion": {"history_days": 300, "warmup_days": 100},
            "returns": {"min_history": 90},
            "optimization": {"periods_per_year": 365},
        }
    },
}

_ROWS = pytest.StashKey[dict]()
_RESULTS = pytest.StashKey[dict]()
_FIGURES = pytest.StashKey[dict]()
_DESELECTED = pytest.StashKey[list]()
_STARTED = pytest.StashKey[float]()
_SEVERITY = {"pass": 0, "skip": 1, "FAIL": 2, "ERROR": 3}


@dataclass(frozen=True)
class Row:
    """One line of the table: a test and the fault it proves the code survives."""

    test_id: str  # ``module.py::test_name[param id]``
    fault: str
    expected: str


# --------------------------------------------------------------------------------------------- registry
def pytest_configure(config: pytest.Config) -> None:
    """Register the marker (the suite runs with --strict-markers) and the session's stores."""
    config.addinivalue_line("markers", f"{MARKER}(fault, expected): a row of docs/reliability.md proven by this test")
    config.stash[_ROWS] = {}
    config.stash[_RESULTS] = {}
    config.stash[_FIGURES] = {}
    config.stash[_DESELECTED] = []
    config.stash[_STARTED] = time.monotonic()
    if os.environ.get(TABLE_ENV):
        config.stash[INTENDED_WRITES].add(table_path())


def table_path() -> Path:
    """The file this session's table goes to (see the module docstring)."""
    chosen = os.environ.get(TABLE_ENV)
    return (PROJECT_ROOT / chosen).resolve() if chosen else TABLE_ARTIFACT


def _in_folder(item: pytest.Item) -> bool:
    return FOLDER in Path(item.path).parents


def _test_id(item: pytest.Item) -> str:
    return f"{Path(item.path).name}::{item.name}"


def pytest_deselected(items: list[pytest.Item]) -> None:
    """Remember deselected tests of this folder: the table is then not rewritten."""
    if items:
        items[0].config.stash[_DESELECTED].extend(i for i in items if _in_folder(i))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Collect the rows; refuse a test of this folder that has none."""
    rows, unmarked = {}, []
    for item in session.items:
        if not _in_folder(item):
            continue
        marker = item.get_closest_marker(MARKER)
        if marker is None or not marker.kwargs.get("fault") or not marker.kwargs.get("expected"):
            unmarked.append(item.nodeid)
            continue
        rows[item.nodeid] = Row(_test_id(item), marker.kwargs["fault"], marker.kwargs["expected"])
    if unmarked:
        raise pytest.UsageError(
            f"tests of {FOLDER.name} without @pytest.mark.{MARKER}(fault=..., expected=...), so without a row in "
            f"docs/reliability.md: {unmarked}"
        )
    session.config.stash[_ROWS] = rows


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[pytest.TestReport]:
    """Keep the worst outcome of each test's setup, call and teardown."""
    report = yield
    if _in_folder(item):
        if report.skipped:
            outcome = "skip"
        elif report.failed:
            outcome = "FAIL" if report.when == "call" else "ERROR"
        else:
            outcome = "pass" if report.when == "call" else None
        results = item.config.stash[_RESULTS]
        if outcome is not None and _SEVERITY[outcome] > _SEVERITY.get(results.get(item.nodeid), -1):
            results[item.nodeid] = outcome
    return report


@pytest.fixture
def reliability_figures(request: pytest.FixtureRequest) -> Callable[[str, list[str]], None]:
    """Record figures (kills and where they landed, reads during a race) for the table's last section.

    Call it as ``reliability_figures(title, lines)``; a later call with the same title replaces the lines.
    """

    def record(title: str, lines: list[str]) -> None:
        request.config.stash[_FIGURES][title] = (_test_id(request.node), list(lines))

    return record


def collected_rows(config: pytest.Config) -> dict[str, Row]:
    """The rows of the tests collected in this session, by node id."""
    return dict(config.stash[_ROWS])


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the table (to :func:`table_path`) when the whole folder ran to the end."""
    config = session.config
    rows = config.stash.get(_ROWS, {})
    results = config.stash.get(_RESULTS, {})
    if not rows or config.stash.get(_DESELECTED, []) or exitstatus == pytest.ExitCode.INTERRUPTED:
        return
    modules = {p.name for p in FOLDER.glob("test_*.py")}
    ran_modules = {row.test_id.split("::")[0] for row in rows.values()}
    if ran_modules != modules or set(rows) - set(results):
        return
    elapsed = time.monotonic() - config.stash[_STARTED]
    target = table_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_table(rows, results, config.stash[_FIGURES], elapsed))


# ------------------------------------------------------------------------------------------- rendering
HEADER = """# Reliability: faults, bad inputs and what alpha_assets does about them

Generated by `make reliability-doc` (the whole `alpha_assets_tests/test_reliability` folder, its `conftest.py`
writes this file); do not edit by hand. Every row is one test: the fault or bad input it injects, the behaviour it
proves, and its result in that run. A plain test run writes its table to `test-artifacts/reliability.md` instead.
`test_reliability_table.py` fails when this file no longer matches the tests: run `make reliability-doc` and commit
the regenerated file.
"""
TABLE_HEAD = "| # | Fault or bad input | Expected behaviour | Test | Result |\n|---|---|---|---|---|\n"
_PIPE = re.compile(r"(?<!\\)\|")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_table(
    rows: dict[str, Row], results: dict[str, str], figures: dict[str, tuple[str, list[str]]], elapsed: float
) -> str:
    """The whole document: header, last-run line, table in (module, test) order, figures by title."""
    ordered = sorted(rows.items(), key=lambda kv: kv[1].test_id)
    counts = {name: sum(1 for r in results.values() if r == name) for name in _SEVERITY}
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        HEADER,
        f"Last run: {stamp}: {len(rows)} cases, {counts['pass']} passed, {counts['FAIL']} failed, "
        f"{counts['ERROR']} errors, {counts['skip']} skipped, in {elapsed:.0f} s.\n",
        TABLE_HEAD.rstrip("\n"),
    ]
    for number, (nodeid, row) in enumerate(ordered, start=1):
        lines.append(
            f"| {number} | {_cell(row.fault)} | {_cell(row.expected)} | `{_cell(row.test_id)}` | "
            f"{results.get(nodeid, 'not run')} |"
        )
    if figures:
        lines.append("\n## Figures of the last run\n")
        for title, (test_id, body) in sorted(figures.items()):
            lines.append(f"### {title}\n\nFrom `{test_id}`.\n")
            lines.extend(f"- {line}" for line in body)
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def parse_table(text: str) -> dict[str, tuple[str, str]]:
    """Test id -> (fault, expected) of the rows of a rendered document."""
    parsed = {}
    for line in text.splitlines():
        cells = [c.strip() for c in _PIPE.split(line)[1:-1]]
        if len(cells) == 5 and cells[0].isdigit():
            unescape = lambda s: s.replace("\\|", "|")  # noqa: E731
            parsed[unescape(cells[3].strip("`"))] = (unescape(cells[1]), unescape(cells[2]))
    return parsed


# ------------------------------------------------------------------------------------------ shared set-up
@pytest.fixture(scope="session")
def small_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small manifest as a file (profile ``reliability``)."""
    path = tmp_path_factory.mktemp("manifest") / "manifest.json"
    path.write_text(json.dumps(SMALL_MANIFEST))
    return path


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh ``DAGSTER_HOME`` for in-process CLI calls; the previous value is restored afterwards."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    yield home


def files_outside(root: Path, allowed: tuple[Path, ...]) -> set[str]:
    """Every path under ``root`` that is not under one of ``allowed``, relative to ``root``."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d not in allowed]
        found.update(str((here / name).relative_to(root)) for name in [*dirnames, *filenames])
    return found


def flow_data_command(data_dir: Path, manifest: Path, run_id: str) -> list[str]:
    """`alpha-assets flow-data` on the simulated source at the suite's clock and reliability profile."""
    return [
        sys.executable,
        "-m",
        "alpha_assets.cli",
        "flow-data",
        "--source",
        "simulated",
        "--clock",
        CLOCK,
        "--data-dir",
        str(data_dir),
        "--run-id",
        run_id,
        "--manifest",
        str(manifest),
        "--profile",
        "reliability",
    ]
