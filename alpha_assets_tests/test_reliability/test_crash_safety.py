"""Crash safety: ``alpha-assets flow-data`` killed with SIGKILL at seeded random moments, again and again.

One campaign (module fixture) runs the real command in child processes (own session, own ``DAGSTER_HOME``,
the simulated exchange, a fixed clock, a 12-symbol universe) and kills each one's process group: aimed inside
the ingestion (once the progress output names the ingest link), inside the feature backfill (once the ohlcv
step of that link logged its summary and features_matrix starts), each within that part's length in an
uninterrupted reference run timed first (so the aim follows the machine's speed), or at a random time after
start. Every attempt resumes from what the previous one left in the same data folder and the same instance;
once the lakehouse is complete it is emptied so the next kills hit real writes again. After every attempt the
lakehouse is inspected; at the end an uninterrupted run must reach, byte for byte, the state of an
uninterrupted run from scratch in another folder. The features are a Delta table whose data file names are
random: they are compared per symbol on their rows (``lakehouse/features_matrix/<KEY>`` in the listings below),
read through the table's log, which is what any reader sees.

The campaign runs once per data-directory backend: ``[local]`` (a folder: a write is a temporary file renamed over
the old one, a kill can fall between the two steps and leave the temporary file, which must never match
``*.parquet``) and ``[s3]`` (a bucket on the tests' moto server: a write is one PUT, so the kill between a rename's
steps has no analogue and no temporary file is ever left; the kills fall mid-PUT, between a Delta commit and the
provenance commit, and while a lease object is held). The reference run is on the same backend; the lakehouse is
inspected through the lakehouse's own paths (pathlib or UPath), DuckDB over ``s3://`` with the project's S3 access.

Leaves to other modules: concurrent writers (test_concurrency.py), bad inputs (test_hostile_inputs.py).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from alpha_assets.lakehouse.duckdb_views import load_delta_extension, load_s3_access
from alpha_assets.lakehouse.features_store import read_features
from alpha_assets.lakehouse.hashing import file_sha256
from alpha_assets.lakehouse.parquet import read_table
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.lakehouse.storage import DataPath, is_object_store
from alpha_assets_tests.conftest import remove_tree
from alpha_assets_tests.test_reliability.conftest import flow_data_command

SEED = 20261125
#: Attempts aimed at each place; a few more than 20 so that at least 20 land before the process ends.
PLAN = ("ingest",) * 8 + ("features",) * 8 + ("random",) * 6
MIN_KILLS = 20
MAX_ATTEMPTS = 30
#: Where each aim waits: the progress text that starts the link it aims at, and that link's name.
#: The ohlcv step's closing log line: within the ingest link, the features start after it.
OHLCV_DONE_TEXT = "ohlcv - ingest: "
AIM = {
    "ingest": ("ingest, repair, audit and features", "ingestion"),
    "features": (OHLCV_DONE_TEXT, "feature backfill"),
}
#: Random kills fall this many seconds after the start.
RANDOM_AIM_S = (2.5, 8.0)
#: Kills aimed at a link fall within this share of its length in the reference run (timed on this machine).
AIM_SHARE = 0.8
#: The part of flow_data that is running when the output last showed this text: the runner's stage names (the
#: progress bar's postfix) and, inside the ingest link (bars, then features in the same run), the ohlcv step's
#: closing log line. The first match wins: a chunk of output can hold the bar's redraw and that log line.
LINK_OF_TEXT = (
    ("discovery for RUN_ID", "discovery"),
    (OHLCV_DONE_TEXT, "feature backfill"),
    ("ingest, repair, audit and features", "ingestion"),
    ("validation of the candidates", "validation"),
)
RUN_TIMEOUT_S = 120


@dataclass
class Attempt:
    """One start of the command and what the lakehouse looked like after it."""

    number: int
    aim: str
    killed: bool
    landed: str
    problems: list[str] = field(default_factory=list)
    files_changed: int = 0
    temp_files: int = 0


@dataclass
class Campaign:
    attempts: list[Attempt]
    reference: dict[str, str]
    final: dict[str, str]
    final_exit: int
    resets: int
    link_seconds: dict[str, float]
    backend: str

    @property
    def kills(self) -> list[Attempt]:
        return [a for a in self.attempts if a.killed]


def _start(data_dir: DataPath, manifest: Path, run_id: str, home: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        flow_data_command(data_dir, manifest, run_id),
        stdout=subprocess.PIPE,
        stderr=open(log, "ab"),
        env=env,
        start_new_session=True,
    )


def _reader(process: subprocess.Popen, lines: queue.Queue) -> threading.Thread:
    """Forward the child's output as it comes, cut at newlines and at the progress bar's carriage returns."""

    def pump() -> None:
        pending = ""
        while chunk := os.read(process.stdout.fileno(), 4096).decode(errors="replace"):
            *complete, pending = re.split(r"[\r\n]", pending + chunk)
            # The bar's line is only ended by its next redraw: the unfinished piece counts as soon as it comes.
            for line in [*complete, pending]:
                lines.put(line.strip())
        lines.put(None)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


def _link_of(line: str, current: str) -> str:
    """The link running once ``line`` was printed (``current`` when the line names none)."""
    if line.startswith("RUN_ID "):
        return "summary"
    return next((link for text, link in LINK_OF_TEXT if text in line), current)


def _run_uninterrupted(data_dir: DataPath, manifest: Path, run_id: str, home: Path, log: Path) -> tuple[int, dict]:
    """Run the command to its end; return its exit code and each link's length in seconds (from the output)."""
    process = _start(data_dir, manifest, run_id, home, log)
    lines: queue.Queue = queue.Queue()
    reader = _reader(process, lines)
    started, link = {}, "start-up"
    while (line := lines.get(timeout=RUN_TIMEOUT_S)) is not None:
        link = _link_of(line, link)
        started.setdefault(link, time.monotonic())
    exit_code = process.wait(timeout=RUN_TIMEOUT_S)
    reader.join(timeout=5)
    order = sorted(started, key=started.get)
    return exit_code, {link: started[after] - started[link] for link, after in zip(order, order[1:], strict=False)}


def _attempt(
    data_dir: DataPath,
    manifest: Path,
    home: Path,
    log: Path,
    number: int,
    aim: str,
    rng: np.random.Generator,
    link_seconds: dict,
) -> tuple[bool, str]:
    """Start the command, kill its process group at the aimed moment; return (killed, link it landed in)."""
    line_wanted, link = AIM.get(aim, (None, None))
    # Aimed kills fall inside the link as long as it took in the reference run, whatever this machine's speed.
    delay = (
        float(rng.uniform(0.0, AIM_SHARE * link_seconds[link])) if line_wanted else float(rng.uniform(*RANDOM_AIM_S))
    )
    process = _start(data_dir, manifest, f"KILL_{number:02d}", home, log)
    lines: queue.Queue = queue.Queue()
    reader = _reader(process, lines)
    last_link, deadline, aimed_at = "start-up", time.monotonic() + RUN_TIMEOUT_S, None
    if line_wanted is None:
        aimed_at = time.monotonic() + delay
    ended = False
    while True:
        timeout = (aimed_at - time.monotonic()) if aimed_at is not None else (deadline - time.monotonic())
        if timeout <= 0:
            break
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            break
        if line is None:
            ended = True
            break
        last_link = _link_of(line, last_link)
        if aimed_at is None and line_wanted is not None and line_wanted in line:
            aimed_at = time.monotonic() + delay
    killed = False
    if not ended and process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        killed = True
    process.wait(timeout=RUN_TIMEOUT_S)
    reader.join(timeout=5)
    while not lines.empty():  # lines printed just before the kill
        line = lines.get()
        if line is not None:
            last_link = _link_of(line, last_link)
    return killed and process.returncode == -signal.SIGKILL, last_link


#: The Delta tables of the lakehouse: their files are compared through the table, not one by one.
DELTA_TABLES = ("features_matrix", "features_provenance")


def _feature_rows(data_dir: DataPath) -> dict[str, pd.DataFrame]:
    """Each symbol's feature rows in the table's current version, as ``lakehouse/features_matrix/<KEY>``."""
    paths = LakehousePaths(data_dir)
    if not (paths.features_table_dir / "_delta_log").is_dir():
        return {}
    keys = sorted(p.name.removesuffix("_1d.parquet") for p in paths.lakehouse_dir.glob("*_1d.parquet"))
    frame = read_features(paths, keys)
    if frame.empty:
        return {}
    table = f"lakehouse/{paths.features_table_dir.name}"
    return {f"{table}/{key}": rows.reset_index(drop=True) for key, rows in frame.groupby("symbol", sort=True)}


def _parquet_hashes(data_dir: DataPath) -> dict[str, str]:
    lakehouse = data_dir / "lakehouse"
    if not lakehouse.exists():
        return {}
    hashes = {
        str(p.relative_to(data_dir)): file_sha256(p)
        for p in sorted(lakehouse.rglob("*.parquet"))
        if p.is_file() and p.relative_to(lakehouse).parts[0] not in DELTA_TABLES
    }
    for path, rows in _feature_rows(data_dir).items():
        hashes[path] = hashlib.sha256(pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes()).hexdigest()
    return hashes


def _stored_rows(data_dir: DataPath) -> dict[str, pd.DataFrame]:
    """The OHLCV bars (indexed by timestamp) and feature dates of every symbol, to compare after a kill."""
    lakehouse = data_dir / "lakehouse"
    stored = {}
    for path in sorted(lakehouse.glob("*_1d.parquet")):
        stored[str(path.relative_to(data_dir))] = read_table(path).to_pandas().set_index("timestamp")
    for path, rows in _feature_rows(data_dir).items():
        stored[path] = rows[["date"]].set_index("date")
    return stored


def _inspect(
    data_dir: DataPath, before: dict[str, str], rows_before: dict[str, pd.DataFrame], reference: dict[str, str]
) -> tuple[list[str], int, int]:
    """Problems of the lakehouse after an attempt, the number of files it changed and the temp files left."""
    problems = []
    try:
        after = _parquet_hashes(data_dir)
        features = _feature_rows(data_dir)
    except Exception as err:  # noqa: BLE001 - any reader error is the finding
        return [f"features table unreadable: {type(err).__name__}: {err}"], 0, 0
    problems += [f"{path} existed before the attempt and is gone" for path in sorted(set(before) - set(after))]
    for path, digest in after.items():
        try:
            table = features[path] if path in features else read_table(data_dir / path).to_pandas()
        except Exception as err:  # noqa: BLE001 - any reader error is the finding
            problems.append(f"{path} unreadable: {type(err).__name__}: {err}")
            continue
        if digest not in (before.get(path), reference.get(path)):
            problems.append(f"{path} is neither its previous version nor the reference one")
        old = rows_before.get(path)
        if old is not None:
            new = table.set_index(old.index.name)
            lost = old.index.difference(new.index)
            if len(lost):
                problems.append(f"{path} lost {len(lost)} stored rows, first {lost[0]}")
            elif len(old.columns) and not new.loc[old.index, old.columns].equals(old):
                problems.append(f"{path} changed stored bar values")
    temps = [p for p in (data_dir / "lakehouse").rglob("*") if p.name.startswith(".") and p.name.endswith(".tmp")]
    problems += [f"temp file {p.name} matches *.parquet" for p in temps if fnmatch.fnmatch(p.name, "*.parquet")]
    lakehouse = data_dir / "lakehouse"
    sources = {
        "*_1d.parquet": f"read_parquet('{lakehouse.as_posix()}/*_1d.parquet')",
        "features_matrix/_delta_log": f"delta_scan('{lakehouse.as_posix()}/features_matrix')",
    }
    with duckdb.connect() as connection:
        load_delta_extension(connection)
        if is_object_store(data_dir):
            load_s3_access(connection)
        for pattern, source in sources.items():
            if any(lakehouse.glob(pattern)):
                try:
                    connection.sql(f"select count(*) from {source}").fetchall()
                except duckdb.Error as err:
                    problems.append(f"duckdb cannot read {source}: {err}")
    for path in sorted(data_dir.rglob("*.json")):
        # A Delta commit is newline-delimited JSON: one action per line.
        documents = path.read_bytes().splitlines() if path.parent.name == "_delta_log" else [path.read_bytes()]
        try:
            for document in documents:
                json.loads(document)
        except ValueError as err:
            problems.append(f"{path.relative_to(data_dir)} is not valid JSON: {err}")
    changed = sum(1 for p, d in after.items() if before.get(p) != d)
    return problems, changed, len(temps)


def _contract_files(hashes: dict[str, str]) -> dict[str, str]:
    """The OHLCV and feature files of a lakehouse listing: the state a resumed run must reproduce."""
    return {p: d for p, d in hashes.items() if p.endswith("_1d.parquet") or p.startswith("lakehouse/features_matrix/")}


@pytest.fixture(scope="module")
def campaign(tmp_path_factory, small_manifest, data_backend) -> Campaign:
    root = tmp_path_factory.mktemp("crash")
    log = root / "stderr.log"
    reference_dir = LakehousePaths(data_backend.fresh("reference")).root
    data_dir, home = LakehousePaths(data_backend.fresh("crash")).root, root / "dagster_home"
    (root / "reference_home").mkdir()
    home.mkdir()
    exit_code, link_seconds = _run_uninterrupted(
        reference_dir, small_manifest, "REFERENCE", root / "reference_home", log
    )
    assert exit_code == 0, f"the uninterrupted reference run failed; see {log}"
    reference = _parquet_hashes(reference_dir)
    rng = np.random.default_rng(SEED)
    plan = list(rng.permutation(PLAN))
    attempts: list[Attempt] = []
    resets = 0
    while len([a for a in attempts if a.killed]) < MIN_KILLS and len(attempts) < MAX_ATTEMPTS:
        aim = plan[len(attempts) % len(plan)]
        before = _parquet_hashes(data_dir)
        rows_before = _stored_rows(data_dir) if before else {}
        killed, landed = _attempt(data_dir, small_manifest, home, log, len(attempts) + 1, aim, rng, link_seconds)
        problems, changed, temps = _inspect(data_dir, before, rows_before, reference)
        attempts.append(Attempt(len(attempts) + 1, aim, killed, landed, problems, changed, temps))
        if _contract_files(_parquet_hashes(data_dir)) == _contract_files(reference):
            # Complete: start over so the next kills land in real writes, not in no-op resumes.
            remove_tree(data_dir)
            resets += 1
    if not data_dir.exists() or not any((data_dir / "lakehouse").glob("*_1d.parquet")):
        # Leave something to resume from: one last kill inside the ingestion of an empty folder.
        before = _parquet_hashes(data_dir)
        killed, landed = _attempt(data_dir, small_manifest, home, log, len(attempts) + 1, "ingest", rng, link_seconds)
        problems, changed, temps = _inspect(data_dir, before, {}, reference)
        attempts.append(Attempt(len(attempts) + 1, "ingest", killed, landed, problems, changed, temps))
    final_exit, _ = _run_uninterrupted(data_dir, small_manifest, "RESUME", home, log)
    return Campaign(
        attempts,
        _contract_files(reference),
        _contract_files(_parquet_hashes(data_dir)),
        final_exit,
        resets,
        link_seconds,
        data_backend.name,
    )


def _figures(campaign: Campaign) -> list[str]:
    kills = campaign.kills
    by_link = Counter(a.landed for a in kills)
    by_aim = Counter(a.aim for a in kills)
    return [
        f"{len(campaign.attempts)} starts of `alpha-assets flow-data`, {len(kills)} killed with SIGKILL "
        f"(aimed: {', '.join(f'{n} {aim}' for aim, n in sorted(by_aim.items()))}).",
        "Kills by the link running when they landed: "
        + ", ".join(f"{link} {n}" for link, n in sorted(by_link.items()))
        + ".",
        f"Lakehouse files changed by the killed runs: {sum(a.files_changed for a in kills)}; temp files left "
        f"behind at most {max((a.temp_files for a in kills), default=0)} (named `.<file>.*.tmp`, never matched "
        "by `*.parquet`).",
        f"Lakehouse emptied {campaign.resets} times once complete, so later kills hit real writes.",
        "Aimed kills fall within 80 % of their link's length in the uninterrupted reference run: "
        + ", ".join(f"{link} {campaign.link_seconds[link]:.2f} s" for _, link in AIM.values())
        + ".",
        f"Final uninterrupted run: exit {campaign.final_exit}; {len(campaign.final)} OHLCV and feature files, "
        f"{sum(campaign.final.get(p) == d for p, d in campaign.reference.items())} identical to the reference.",
    ]


@pytest.mark.reliability(
    fault="SIGKILL of flow_data inside the ingestion (progress shows `ingest, repair, audit and features`, "
    "ohlcv not finished), at seeded random delays",
    expected="every lakehouse parquet readable (pyarrow, DuckDB glob) and either its previous or its final "
    "version (sha256); no stored bar lost; temp files never matched by `*.parquet`; every JSON valid",
)
def test_flow_data_killed_during_ingestion_leaves_previous_or_new_files(campaign, reliability_figures):
    reliability_figures(f"Crash safety (SIGKILL campaign, {campaign.backend})", _figures(campaign))
    print("\n".join(_figures(campaign)))
    _assert_kills_landed_without_problems(campaign, "ingestion")


@pytest.mark.reliability(
    fault="SIGKILL of flow_data inside the feature backfill (after the ohlcv step's `ingest:` line, features_matrix "
    "running), at seeded random delays",
    expected="feature files readable and either previous or final version; no stored feature date lost",
)
def test_flow_data_killed_during_feature_backfill_leaves_previous_or_new_files(campaign):
    _assert_kills_landed_without_problems(campaign, "feature backfill")


def _assert_kills_landed_without_problems(campaign: Campaign, link: str) -> None:
    """At least five kills landed in ``link``, and the lakehouse had no problem after any of them."""
    attempts = [a for a in campaign.kills if a.landed == link]
    assert len(attempts) >= 5, [(a.aim, a.landed) for a in campaign.attempts]
    assert {a.number: a.problems for a in attempts if a.problems} == {}


@pytest.mark.reliability(
    fault="SIGKILL of flow_data at random moments (start-up, discovery, validation, summary included), "
    "at least 20 kills in all on one data folder and one Dagster instance",
    expected="the same lakehouse guarantees after every kill, whatever the link",
)
def test_flow_data_killed_at_random_moments_at_least_twenty_times_leaves_no_damage(campaign):
    assert len(campaign.kills) >= MIN_KILLS, [(a.aim, a.killed) for a in campaign.attempts]
    assert {a.number: a.problems for a in campaign.attempts if a.problems} == {}


@pytest.mark.reliability(
    fault="an uninterrupted flow_data after a series of SIGKILLs (same data folder, same sqlite instance)",
    expected="succeeds and reaches the same sha256 for every OHLCV and feature file as an uninterrupted run "
    "from scratch with the same clock",
)
def test_flow_data_rerun_after_kills_reaches_the_reference_state(campaign):
    assert campaign.final_exit == 0
    differing = sorted(
        p for p in set(campaign.reference) | set(campaign.final) if campaign.reference.get(p) != campaign.final.get(p)
    )
    assert differing == []
    assert len(campaign.final) == 24, "12 OHLCV files and 12 feature files"
