"""The ``alpha-assets`` command's failures a user can cause: one line on stderr, a documented exit code, nothing lost.

Each case goes through the real command (``main([...])`` in-process with the streams captured, and one through a
real subprocess): a naive ``--clock``, a ``DAGSTER_HOME`` that is a file, read-only, bad YAML or an invalid instance
configuration, a full disk (a real small tmpfs when the suite may mount one), a data folder whose path holds
``?``, ``[``, ``#`` and a space, a truncated JSON export, a failed foundation gate, every optimisation profile
failing, and features failing for one symbol. Each asserts the exit code of :class:`ExitCode`, that stderr is
exactly one ``alpha-assets: error: ...`` line with no trace, and that stored files are intact.

Leaves to other modules: unsafe RUN_IDs and hostile exchange answers (test_reliability/test_hostile_inputs.py),
the flows' numbers (test_defs/test_flows.py).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from dagster import DagsterInstance
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from alpha_assets.cli import exit_code_of, main
from alpha_assets.definitions import build_definitions
from alpha_assets.defs import names
from alpha_assets.errors import ExitCode
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.orchestration.runner import FlowFailedError, run_link
from alpha_assets.sources.simulated import SimulatedExchange
from alpha_assets_tests.exchange_server import KLINES_PATH, ExchangeServer, Fault

CLOCK = "2026-11-25T12:00:00+00:00"
NEXT_DAY = "2026-11-26T12:00:00+00:00"
#: 12 symbols of 400 bars: a whole flow_data in a few seconds.
MANIFEST = {
    "default_profile": "cli",
    "defaults": {},
    "profiles": {
        "cli": {
            "discovery": {"top_n": 12, "min_traded_value_24h": 0},
            "ingestion": {"history_days": 300, "warmup_days": 100},
            "returns": {"min_history": 90},
            "optimization": {"periods_per_year": 365},
        }
    },
}
#: A data folder name holding what breaks naive globbing, URI parsing and shell quoting.
ODD_NAME = "data?dir (1) #x é"
RUN_ID = "R1"
#: Pairs the local Binance-format server lists in the partial-ingest case.
PAIRS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "DOGE/USDT")


def _manifest(folder: Path, name: str = "manifest.json", **sections: dict) -> Path:
    document = json.loads(json.dumps(MANIFEST))
    for section, values in sections.items():
        document["profiles"]["cli"].setdefault(section, {}).update(values)
    path = folder / name
    path.write_text(json.dumps(document))
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, list[str]]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err.splitlines()


def _assert_one_error_line(err: list[str], *words: str) -> str:
    assert len(err) == 1, err
    assert err[0].startswith(("alpha-assets: error: ", "alpha-assets flow-data: error: ")), err
    for word in words:
        assert word in err[0], (word, err[0])
    assert "Traceback" not in err[0] and "Stack Trace" not in err[0]
    return err[0]


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock") and "_locks" not in p.parts
    }


@contextlib.contextmanager
def _tmpfs(where: Path, *options: str) -> Iterator[bool]:
    """Mount a tmpfs at ``where`` with ``options``; yields False (nothing mounted) where mounting is not allowed."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = (
        os.geteuid() == 0
        and shutil.which("mount") is not None
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(where)], capture_output=True
        ).returncode
        == 0
    )
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(where)], check=True)


def _export_as(data: Path, run_id: str) -> LakehousePaths:
    """Give ``data`` a new RUN_ID whose validated universe is R1's: a run that was never frozen."""
    paths = LakehousePaths(data)
    document = json.loads(paths.candidates_validated_file(RUN_ID).read_text())
    paths.export_dir(run_id).mkdir(parents=True)
    paths.candidates_validated_file(run_id).write_text(json.dumps({**document, "run_id": run_id}))
    return paths


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh DAGSTER_HOME for one command."""
    folder = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(folder))
    return folder


@pytest.fixture(scope="module")
def flowed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder named :data:`ODD_NAME` after one ``flow-data`` run (RUN_ID R1), which must exit 0."""
    root = tmp_path_factory.mktemp("flowed")
    data = root / ODD_NAME
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(root / "home"))
        code = main(
            ["flow-data", "--data-dir", str(data), "--manifest", str(_manifest(root)), "--clock", CLOCK]
            + ["--run-id", RUN_ID]
        )
    assert code == ExitCode.OK
    return data


@pytest.fixture
def data_copy(flowed: Path, tmp_path: Path) -> Path:
    """A copy of :func:`flowed`'s data folder, under the same odd name, for a test to change."""
    copy = tmp_path / ODD_NAME
    shutil.copytree(flowed, copy)
    return copy


# ------------------------------------------------------------------------------------------- bad input
def test_cli_naive_clock_exits_bad_input_before_anything_is_written(tmp_path, home, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["flow-data", "--data-dir", str(tmp_path / "data"), "--clock", "2026-11-25T12:00:00"])
    err = capsys.readouterr().err.splitlines()
    assert exited.value.code == ExitCode.BAD_INPUT
    _assert_one_error_line(err, "--clock", "'2026-11-25T12:00:00' has no time zone", "2026-11-25T12:00:00Z")
    assert not (tmp_path / "data").exists() and not home.exists()


def test_cli_brackets_in_the_data_path_exit_bad_input_naming_the_folder(tmp_path, home, capsys):
    data = tmp_path / "data [1]"
    code, _, err = _run(capsys, "flow-data", "--data-dir", str(data), "--clock", CLOCK)
    assert code == ExitCode.BAD_INPUT
    _assert_one_error_line(err, str(data), "'[' and ']'", "Delta Lake")
    assert not data.exists()


def test_cli_manifest_refused_by_a_cross_field_rule_exits_bad_input_naming_the_key(tmp_path, home, capsys):
    # A rule across keys (an unknown calendar in markets.exchanges) is a bad input like a bound, not a failure.
    manifest = _manifest(tmp_path, markets={"exchanges": {"NYSE": {"asset_class": "equity", "calendar": "NYSEX"}}})
    data = tmp_path / "data"
    code, _, err = _run(capsys, "flow-data", "--data-dir", str(data), "--manifest", str(manifest), "--clock", CLOCK)
    assert code == ExitCode.BAD_INPUT
    _assert_one_error_line(err, "manifest key 'markets' is refused: exchanges.NYSE.calendar", "'NYSEX'")
    assert not list(data.rglob("*.parquet"))


def test_cli_truncated_export_json_names_the_file(data_copy, home, tmp_path, capsys):
    paths = LakehousePaths(data_copy)
    source = paths.candidates_validated_file(RUN_ID)
    target = paths.candidates_validated_file("R9")
    target.parent.mkdir(parents=True)
    target.write_bytes(source.read_bytes()[:200])
    before = _digests(data_copy / "lakehouse")
    code, _, err = _run(
        capsys,
        "flow-production",
        "--run-id",
        "R9",
        "--data-dir",
        str(data_copy),
        "--manifest",
        str(_manifest(tmp_path)),
    )
    assert code == ExitCode.BAD_INPUT
    _assert_one_error_line(err, str(target), "not valid JSON")
    assert _digests(data_copy / "lakehouse") == before


# ------------------------------------------------------------------------------------------ environment
@pytest.mark.parametrize(
    ("content", "words"),
    [
        pytest.param("storage: [unclosed\n", ("is not valid YAML at line 2",), id="bad_yaml"),
        pytest.param(
            "storage:\n  sqlite_nope: {}\n",
            ("is not a valid Dagster instance configuration", '"sqlite_nope"'),
            id="invalid_instance_config",
        ),
    ],
)
def test_cli_dagster_home_with_a_broken_dagster_yaml_exits_environment(tmp_path, home, capsys, content, words):
    home.mkdir()
    (home / "dagster.yaml").write_text(content)
    code, _, err = _run(capsys, "flow-data", "--data-dir", str(tmp_path / "data"), "--clock", CLOCK)
    assert code == ExitCode.ENVIRONMENT
    _assert_one_error_line(err, str(home / "dagster.yaml"), *words)
    assert (home / "dagster.yaml").read_text() == content
    assert not (tmp_path / "data").exists()


def test_cli_dagster_home_that_is_a_file_exits_environment_in_a_real_process(tmp_path):
    home = tmp_path / "home"
    home.write_text("not a folder")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "alpha_assets.cli", "flow-data", "--data-dir", str(tmp_path / "data")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == ExitCode.ENVIRONMENT
    _assert_one_error_line(done.stderr.splitlines(), f"DAGSTER_HOME {home} is a file, not a folder")
    assert home.read_text() == "not a folder"


def test_cli_read_only_dagster_home_exits_environment(tmp_path, monkeypatch, capsys):
    home = tmp_path / "ro_home"
    with _tmpfs(home, "size=1m", "ro") as mounted:
        if not mounted:
            if os.geteuid() == 0:
                pytest.skip("root without permission to mount a read-only tmpfs: no way to make a folder read-only")
            home.chmod(0o500)
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        code, _, err = _run(capsys, "flow-data", "--data-dir", str(tmp_path / "data"), "--clock", CLOCK)
    assert code == ExitCode.ENVIRONMENT
    _assert_one_error_line(
        err, f"DAGSTER_HOME {home} cannot be used", "ead-only file system" if mounted else "ermission"
    )


def test_cli_full_disk_is_named_and_every_stored_file_is_kept(tmp_path, home, monkeypatch, capsys):
    """A real full file system where the suite may mount one; else ENOSPC from fsync, as a full disk reports it."""
    disk = tmp_path / "disk"
    manifest = _manifest(tmp_path)
    with _tmpfs(disk, "size=16m") as mounted:
        data = disk / "data"
        argv = ["flow-data", "--data-dir", str(data), "--manifest", str(manifest), "--run-id", "FULL"]
        assert _run(capsys, *argv, "--clock", CLOCK)[0] == ExitCode.OK
        before = _digests(data)
        if mounted:
            with open(disk / "filler", "wb") as filler, contextlib.suppress(OSError):
                while True:
                    filler.write(b"\0" * (1 << 16))
                    filler.flush()
        else:

            def no_space(fd: int) -> None:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            monkeypatch.setattr("alpha_assets.lakehouse.atomic.os.fsync", no_space)
        code, _, err = _run(capsys, *argv[:-1], "FULL2", "--clock", NEXT_DAY)
        assert code == ExitCode.ENVIRONMENT
        _assert_one_error_line(err, "disk full: no space left on the file system holding", str(data))
        assert _digests(data) == before
        assert not [p for p in data.rglob("*.tmp")]


def test_cli_and_dagster_refuse_a_second_data_dir_on_one_instance_writing_to_neither(
    flowed, tmp_path, monkeypatch, capsys
):
    """The instance of :func:`flowed` serves its data folder; another one is refused before anything is written."""
    home = flowed.parent / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    second = tmp_path / "second_data"
    before = _digests(flowed)
    with DagsterInstance.get() as instance:
        runs_before = len(instance.get_run_records())
        partitions_before = {name: instance.get_dynamic_partitions(name) for name in ("runs", "symbols")}

    # From a terminal: one line, ExitCode.ENVIRONMENT, before the folder is even created.
    argv = ("flow-data", "--data-dir", str(second), "--manifest", str(_manifest(tmp_path)), "--clock", CLOCK)
    code, _, err = _run(capsys, *argv, "--run-id", "R2")
    assert code == ExitCode.ENVIRONMENT
    _assert_one_error_line(err, f"data directory {second} refused", f"DAGSTER_HOME {home} serves {flowed}")

    # A run launched in Dagster (as from the UI, with the data folder in its run config): the step fails on the
    # lakehouse resource with the same message, before the asset's body runs.
    with DagsterInstance.get() as instance:
        symbol = instance.get_dynamic_partitions("symbols")[0]
        with pytest.raises(FlowFailedError, match=f"data directory {second} refused") as failed:
            run_link(
                build_definitions(),
                instance,
                names.INGEST_JOB,
                tags={ASSET_PARTITION_RANGE_START_TAG: symbol, ASSET_PARTITION_RANGE_END_TAG: symbol},
                run_config={"resources": {"lakehouse": {"config": {"data_dir": str(second)}}}},
            )
        assert failed.value.error_class == "DataDirMismatchError"
        assert exit_code_of(failed.value) == ExitCode.ENVIRONMENT
        assert len(instance.get_run_records()) == runs_before + 1, "only the refused run itself is recorded"
        assert {name: instance.get_dynamic_partitions(name) for name in ("runs", "symbols")} == partitions_before
    assert not second.exists()
    assert _digests(flowed) == before


def test_cli_data_dir_rebind_moves_the_binding_to_an_existing_folder_only(tmp_path, home, capsys):
    first, moved = tmp_path / "first", tmp_path / "moved"
    assert (
        _run(capsys, "data-dir")[1] == f"DAGSTER_HOME {home} serves no data directory yet (its first run records one)\n"
    )
    # The first command that uses a data directory records it, even one refused for its input.
    code, _, err = _run(capsys, "flow-production", "--run-id", "NOPE", "--data-dir", str(first))
    assert code == ExitCode.BAD_INPUT and "NOPE has no validated export" in err[0]
    assert _run(capsys, "data-dir")[1] == f"DAGSTER_HOME {home} serves {first}\n"

    code, _, err = _run(capsys, "data-dir", "--rebind", str(moved))
    assert code == ExitCode.BAD_INPUT
    _assert_one_error_line(err, f"--rebind {moved}: no such folder; move the data directory there first")
    first.rename(moved)
    assert _run(capsys, "data-dir", "--rebind", str(moved)) == (
        ExitCode.OK,
        f"DAGSTER_HOME {home} serves {moved}\n",
        [],
    )
    code, _, err = _run(capsys, "flow-production", "--run-id", "NOPE", "--data-dir", str(first))
    assert code == ExitCode.ENVIRONMENT
    _assert_one_error_line(err, f"data directory {first} refused", f"serves {moved}")
    assert not first.exists()


# ------------------------------------------------------------------------------------ outcomes of a run
def test_cli_odd_characters_in_the_data_path_run_both_cycles_and_the_duckdb_views(flowed, home, tmp_path, capsys):
    code, out, err = _run(
        capsys, "flow-production", "--run-id", RUN_ID, "--data-dir", str(flowed), "--manifest", str(_manifest(tmp_path))
    )
    assert (code, err) == (ExitCode.OK, [])
    assert "max_sharpe: optimal" in out
    database = LakehousePaths(flowed).duckdb_file
    with contextlib.closing(duckdb.connect(str(database), read_only=True)) as connection:
        weights = connection.execute("SELECT count(*), sum(Weight) FROM weights WHERE profile = 'hrp'").fetchone()
        bars = connection.execute("SELECT count(DISTINCT symbol_key) FROM ohlcv").fetchone()
    assert weights[0] > 0 and weights[1] == pytest.approx(1.0)
    assert bars == (12,)


def test_cli_failed_gate_exits_gate_failed_naming_the_check(data_copy, home, tmp_path, capsys):
    manifest = _manifest(tmp_path, gate={"min_assets": 50})
    paths = _export_as(data_copy, "G1")
    argv = ["flow-production", "--run-id", "G1", "--data-dir", str(data_copy), "--manifest", str(manifest)]
    code, _, err = _run(capsys, *argv)
    assert code == ExitCode.GATE_FAILED
    _assert_one_error_line(err, "run G1: the foundation gate failed (returns_matrix_is_dense_enough)", "< 50")
    assert paths.run_data_file("G1", "gate_verdict.json").exists()
    assert not paths.run_data_file("G1", "selection.json").exists()
    assert not paths.run_data_file("G1", "portfolio_flattened.json").exists()


def test_cli_every_profile_failing_exits_no_portfolio_with_the_reasons(data_copy, home, tmp_path, capsys):
    manifest = _manifest(tmp_path, optimization={"max_weight": 0.01})
    paths = _export_as(data_copy, "N1")
    argv = ["flow-production", "--run-id", "N1", "--data-dir", str(data_copy), "--manifest", str(manifest)]
    code, out, err = _run(capsys, *argv)
    assert code == ExitCode.NO_PORTFOLIO
    line = _assert_one_error_line(
        err, "every optimisation profile failed for RUN_ID N1", "full investment is impossible"
    )
    document = json.loads(paths.run_data_file("N1", "portfolio_flattened.json").read_text())
    assert {p["status"] for p in document["profiles"].values()} == {"failed"}
    assert all(name in line for name in document["profiles"])
    assert "max_sharpe: failed" in out


def test_cli_one_symbol_failing_to_ingest_exits_partial_naming_it(tmp_path, home, capsys):
    simulated = SimulatedExchange(seed=3, now=pd.Timestamp(CLOCK))
    markets = {m.ccxt_symbol: m for m in simulated.load_markets()}
    start = pd.Timestamp("2025-06-01", tz="UTC")
    bars = {
        pair: simulated.fetch_daily_bars(markets[pair], since=start, until=pd.Timestamp(CLOCK).floor("D"))
        for pair in PAIRS
    }
    data = tmp_path / "data"
    with ExchangeServer(bars) as server:
        # Every answer for ETH/USDT cut in half: retried like any bad response, then the symbol fails.
        server.inject(Fault.TRUNCATED_JSON, times=None, symbol="ETH/USDT", path=KLINES_PATH)
        code, out, err = _run(
            capsys,
            *("flow-data", "--source", "ccxt", "--exchange", "binance", "--base-url", server.base_url),
            *("--data-dir", str(data), "--manifest", str(_manifest(tmp_path)), "--clock", CLOCK, "--run-id", "P1"),
        )
    assert code == ExitCode.PARTIAL, err
    _assert_one_error_line(err, "RUN_ID P1 finished, but 1 symbol failed", "BINANCE_ETHUSDT")
    assert "    BINANCE_ETHUSDT: " in out
    paths = LakehousePaths(data)
    stored = sorted(p.name for p in paths.lakehouse_dir.glob("*_1d.parquet"))
    assert stored == sorted(f"BINANCE_{pair.replace('/', '')}_1d.parquet" for pair in PAIRS if pair != "ETH/USDT")


def test_readme_exit_code_table_lists_every_exit_code_in_order():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = [line.split("|")[1:3] for line in readme.splitlines() if line.startswith("| ") and "`" in line]
    table = [(int(code), name.strip().strip("`")) for code, name in rows if code.strip().isdigit()]
    assert table == [(code.value, code.name) for code in ExitCode]
