"""The data directory in an S3 bucket: paths, atomic puts, leases instead of flock, moves, DuckDB views.

Against a real S3-compatible server on 127.0.0.1 (moto in server mode, started by the ``s3_server`` fixture), each
test in a bucket of its own, configured only through AWS's standard environment variables. The ingestion into a
bucket must store exactly the bytes it stores in a local folder; two processes ingesting the same symbols into
one bucket must lose and duplicate no bar (the lease objects serialise them as ``flock`` does locally); a lease
whose holder died is taken over, a live one is waited for, and a holder never deletes a lease it lost; a writer
killed while it holds a lease leaves every object whole, and the next run takes the lease over at once.

Leaves to other modules: the Dagster cycles through the CLI on a bucket and the credentials in their outputs
(test_cli_object_store.py), exchange credentials (test_reliability/test_secrets.py).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from upath import UPath

from alpha_assets.alpha.withdrawal import withdraw_downstream
from alpha_assets.errors import UnsafeKeyError
from alpha_assets.lakehouse import storage
from alpha_assets.lakehouse.duckdb_views import connect, load_s3_access, refresh_views
from alpha_assets.lakehouse.jsonio import read_json, write_json_atomic
from alpha_assets.lakehouse.locks import exclusive_lock
from alpha_assets.lakehouse.parquet import read_table
from alpha_assets.lakehouse.paths import LakehousePaths, resolve_data_dir
from alpha_assets.sources.ingest import IngestStatus, ingest_symbols
from alpha_assets.sources.params import IngestionParams
from alpha_assets.sources.simulated import SimulatedExchange

SEED = 7
N_SYMBOLS = 10
#: The symbols ingested: a few keep each test quick.
N_INGESTED = 5
PARAMS = IngestionParams(history_days=300, warmup_days=100)
START = pd.Timestamp("2026-11-25T12:00:00+00:00")
DAYS_AHEAD = 4
INCREMENTS = 10


def _ingest_days(data_dir: str, days: list[int]) -> list[str]:
    """Ingest every symbol at ``START + day`` for each day in turn; the statuses (runs in a process of its own)."""
    statuses = []
    for day in days:
        now = START + pd.Timedelta(days=day)
        source = SimulatedExchange(seed=SEED, now=now, n_symbols=N_SYMBOLS)
        markets = source.load_markets()[:N_INGESTED]
        reports = ingest_symbols(source, markets, LakehousePaths(data_dir), now=now, params=PARAMS)
        statuses += [f"{r.symbol_key}: {r.status.value} {r.error or ''}".strip() for r in reports]
    return statuses


def _increment(data_dir: str, times: int) -> None:
    """Read, add one to and write back a counter object ``times`` times, each under the lease of one symbol."""
    paths = LakehousePaths(data_dir)
    counter = paths.root / "counter.json"
    for _ in range(times):
        with exclusive_lock(paths.ohlcv_lock_file("SIM_BTCUSDT")):
            value = read_json(counter)["value"]
            time.sleep(0.01)  # widen the read-modify-write window: without the lease, increments get lost
            write_json_atomic({"value": value + 1}, counter)


def _tree(root: Path | UPath) -> dict[str, bytes]:
    """Every file under ``root`` (leases and lock files left out): path relative to ``root`` -> bytes."""
    files = {}
    for path in root.rglob("*"):
        relative = str(path.relative_to(root))
        if path.is_file() and "_locks" not in relative:
            files[relative] = path.read_bytes()
    return files


# ------------------------------------------------------------------------------------------------ the root
@pytest.mark.parametrize(
    ("location", "words"),
    [
        ("s3://Bad_Bucket/data", ["'Bad_Bucket' is not an S3 bucket name"]),
        ("s3://ab/data", ["'ab' is not an S3 bucket name"]),
        ("s3://bucket/../etc", ["prefix segment '..'"]),
        ("s3://bucket/a//b", ["prefix segment ''"]),
        ("s3://bucket/a b", ["prefix segment 'a b'"]),
        ("gs://bucket/data", ["only a local folder or s3://bucket/prefix"]),
        ("s3://AKIAKEY:topsecret@bucket/data", ["'s3://bucket/data'", "holds credentials", "AWS_ACCESS_KEY_ID"]),
    ],
    ids=["uppercase_bucket", "short_bucket", "dotdot", "empty_segment", "space", "other_scheme", "userinfo"],
)
def test_data_root_refuses_a_bad_location_naming_it_and_the_reason(location, words):
    with pytest.raises(ValueError, match="is refused") as caught:
        LakehousePaths(location)
    for word in words:
        assert word in str(caught.value)
    assert "topsecret" not in str(caught.value) and "AKIAKEY" not in str(caught.value)


def test_data_root_in_a_bucket_builds_every_path_from_validated_keys(monkeypatch):
    monkeypatch.setenv("ALPHA_ASSETS_DATA_DIR", "s3://my-bucket/team/prod/")
    paths = LakehousePaths(resolve_data_dir(None))
    assert paths.in_object_store
    assert str(paths.ohlcv_file("SIM_BTCUSDT")) == "s3://my-bucket/team/prod/lakehouse/SIM_BTCUSDT_1d.parquet"
    assert str(paths.run_data_file("R1", "snapshot.json")) == (
        "s3://my-bucket/team/prod/artifacts/summaries/runs/R1/data/snapshot.json"
    )
    for unsafe in ("../X_Y", "SIM_BTC/USDT", "sim_btcusdt"):
        with pytest.raises(UnsafeKeyError):
            paths.ohlcv_file(unsafe)
    with pytest.raises(UnsafeKeyError):
        paths.run_dir("../../other-bucket")
    assert not LakehousePaths("relative/data").in_object_store


def test_table_storage_options_carry_settings_and_no_credential(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-in-the-options")
    options = storage.table_storage_options(LakehousePaths("s3://bucket/data").root)
    assert options == {"aws_conditional_put": "etag", "aws_allow_http": "true", "aws_region": "eu-west-1"}
    assert storage.table_storage_options(LakehousePaths("data").root) is None


# --------------------------------------------------------------------------------------- against the server
def test_ingestion_into_a_bucket_stores_the_bytes_of_a_local_folder(s3_data_dir, s3_server, tmp_path):
    statuses = _ingest_days(s3_data_dir, [0, 1])
    assert all(IngestStatus.FAILED.value not in status for status in statuses), statuses
    _ingest_days(str(tmp_path / "data"), [0, 1])
    in_bucket, local = _tree(LakehousePaths(s3_data_dir).lakehouse_dir), _tree(tmp_path / "data" / "lakehouse")
    assert sorted(in_bucket) == sorted(local)
    assert len([name for name in local if name.endswith("_1d.parquet")]) == N_INGESTED
    assert in_bucket == local
    # What the code wrote is in the bucket, as seen by an independent client; nothing was written locally.
    bucket = s3_data_dir.removeprefix("s3://").split("/")[0]
    objects = s3_server.objects(bucket, "data/lakehouse/")
    assert {key.removeprefix("data/lakehouse/") for key in objects if "_locks" not in key} == set(local)
    assert not Path("s3:").exists()


def test_duckdb_views_over_a_bucket_count_the_rows_of_the_local_folder(s3_data_dir, tmp_path):
    _ingest_days(s3_data_dir, [0])
    _ingest_days(str(tmp_path / "data"), [0])
    in_bucket = refresh_views(LakehousePaths(s3_data_dir))
    local = refresh_views(LakehousePaths(tmp_path / "data"))
    assert in_bucket["ohlcv"] == local["ohlcv"] > 0
    # The database is one object in the bucket; its views name the objects by their s3:// URIs.
    database = tmp_path / "lakehouse.duckdb"
    database.write_bytes(LakehousePaths(s3_data_dir).duckdb_file.read_bytes())
    with duckdb.connect(str(database), read_only=True) as connection:
        sql = connection.execute("select sql from duckdb_views() where view_name = 'ohlcv'").fetchone()[0]
        assert f"{s3_data_dir}/lakehouse/*_1d.parquet" in sql
        load_s3_access(connection)
        assert connection.execute("select count(*) from ohlcv").fetchone()[0] == local["ohlcv"]
    # connect() attaches the object itself, read-only, with the S3 access its views need.
    with connect(LakehousePaths(s3_data_dir)) as connection:
        assert connection.execute("select count(*) from ohlcv").fetchone()[0] == local["ohlcv"]
    with pytest.raises(ValueError, match="lakehouse.duckdb is an object in a bucket: it opens read-only"):
        connect(LakehousePaths(s3_data_dir), read_only=False)


def test_withdrawal_in_a_bucket_moves_every_file_and_loses_none(s3_data_dir):
    paths = LakehousePaths(s3_data_dir)
    documents = {name: {"name": name} for name in ("portfolio_flattened.json", "selection.json")}
    for name, document in documents.items():
        write_json_atomic(document, paths.run_data_file("R1", name))
    first = withdraw_downstream(paths, "R1", "gate failed: freshness")
    assert first is not None and str(first.folder).endswith("runs/R1/withdrawn/1")
    assert sorted(first.files) == ["data/portfolio_flattened.json", "data/selection.json"]
    for name, document in documents.items():
        assert not paths.run_data_file("R1", name).exists()
        assert read_json(first.folder / "data" / name) == document
    assert read_json(first.folder / "withdrawal.json")["reason"] == "gate failed: freshness"
    write_json_atomic(documents["selection.json"], paths.run_data_file("R1", "selection.json"))
    second = withdraw_downstream(paths, "R1", "again")
    assert str(second.folder).endswith("withdrawn/2") and second.files == ("data/selection.json",)


def test_two_processes_ingesting_one_bucket_lose_and_duplicate_no_bar(s3_data_dir, tmp_path):
    context = multiprocessing.get_context("spawn")
    days = list(range(1, DAYS_AHEAD + 1))
    _ingest_days(s3_data_dir, [0])
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        racing = [pool.submit(_ingest_days, s3_data_dir, days) for _ in range(2)]
        statuses = [status for future in racing for status in future.result()]
    assert all(IngestStatus.FAILED.value not in status for status in statuses), statuses
    _ingest_days(str(tmp_path / "data"), [0, *days])
    paths = LakehousePaths(s3_data_dir)
    markets = SimulatedExchange(seed=SEED, now=START, n_symbols=N_SYMBOLS).load_markets()[:N_INGESTED]
    for key in [market.symbol_key for market in markets]:
        raced, alone = read_table(paths.ohlcv_file(key)), read_table(LakehousePaths(tmp_path / "data").ohlcv_file(key))
        assert raced.equals(alone), key
    assert not list(paths.locks_dir.rglob("*.lock")), "every lease was released"


def test_a_writer_killed_holding_a_lease_leaves_every_object_whole_and_the_next_run_completes(s3_data_dir, tmp_path):
    paths = LakehousePaths(s3_data_dir)
    _ingest_days(s3_data_dir, [0])
    writer = multiprocessing.get_context("spawn").Process(target=_ingest_days, args=(s3_data_dir, [1, 2, 3]))
    writer.start()
    deadline = time.monotonic() + 120
    while not list(paths.locks_dir.rglob("*.lock")) and time.monotonic() < deadline and writer.is_alive():
        time.sleep(0.01)
    held = [str(lease) for lease in paths.locks_dir.rglob("*.lock")]
    os.kill(writer.pid, signal.SIGKILL)
    writer.join()
    assert held, "the writer was killed while it held a lease"
    # Each object is whole: every parquet file parses with its schema, every JSON document parses.
    for path in paths.lakehouse_dir.rglob("*"):
        if path.name.endswith("_1d.parquet"):
            read_table(path)
        elif path.suffix == ".json":
            read_json(path)
    # The dead writer's lease is taken over at once (its process is gone from this host) and nothing is lost.
    started = time.monotonic()
    statuses = _ingest_days(s3_data_dir, [3])
    assert time.monotonic() - started < storage.LEASE_WAIT_SECONDS / 10
    assert all(IngestStatus.FAILED.value not in status for status in statuses), statuses
    _ingest_days(str(tmp_path / "data"), [0, 3])
    reference = LakehousePaths(tmp_path / "data")
    for market in SimulatedExchange(seed=SEED, now=START, n_symbols=N_SYMBOLS).load_markets()[:N_INGESTED]:
        assert read_table(paths.ohlcv_file(market.symbol_key)).equals(
            read_table(reference.ohlcv_file(market.symbol_key))
        )
    assert not list(paths.locks_dir.rglob("*.lock"))


# ------------------------------------------------------------------------------------------------- leases
def test_leases_serialise_read_modify_writes_of_three_processes(s3_data_dir):
    write_json_atomic({"value": 0}, LakehousePaths(s3_data_dir).root / "counter.json")
    with ProcessPoolExecutor(max_workers=3, mp_context=multiprocessing.get_context("spawn")) as pool:
        for future in [pool.submit(_increment, s3_data_dir, INCREMENTS) for _ in range(3)]:
            future.result()
    assert read_json(LakehousePaths(s3_data_dir).root / "counter.json") == {"value": 3 * INCREMENTS}


def test_a_live_lease_is_waited_for_and_a_dead_holders_lease_is_taken_over(s3_data_dir):
    lease = LakehousePaths(s3_data_dir).ohlcv_lock_file("SIM_BTCUSDT")
    order, held = [], []

    def crashing_writer() -> None:
        held.append(exclusive_lock(lease))  # entered, never left: a writer that died holding the lease
        held[0].__enter__()
        order.append("second")

    with exclusive_lock(lease):
        waiter = threading.Thread(target=crashing_writer)
        waiter.start()
        time.sleep(0.5)
        order.append("first released")
    waiter.join(timeout=30)
    assert order == ["first released", "second"]
    # A lease whose process is gone on this host is taken over at once.
    holder = json.loads(lease.read_bytes())
    lease.write_bytes(json.dumps({**holder, "pid": _dead_pid()}).encode())
    started = time.monotonic()
    with exclusive_lock(lease):
        assert json.loads(lease.read_bytes())["pid"] == os.getpid()
    assert time.monotonic() - started < 5
    assert not lease.exists()


def test_an_expired_lease_is_taken_over_and_its_old_holder_does_not_delete_the_new_one(s3_data_dir, monkeypatch):
    lease = LakehousePaths(s3_data_dir).ohlcv_lock_file("SIM_ETHUSDT")
    monkeypatch.setattr(storage, "LEASE_SECONDS", 0.2)
    with exclusive_lock(lease):
        time.sleep(0.5)  # expired while held (a holder that hung): the next writer takes it over
        taken = threading.Event()
        release = threading.Event()

        def second_writer() -> None:
            with exclusive_lock(lease):
                taken.set()
                release.wait(30)

        thread = threading.Thread(target=second_writer)
        thread.start()
        assert taken.wait(30)
    # The first holder's conditional delete found the second holder's lease and left it.
    assert lease.exists()
    release.set()
    thread.join(timeout=30)
    assert not lease.exists()


def test_a_lease_held_longer_than_the_wait_names_the_lease(s3_data_dir, monkeypatch):
    lease = LakehousePaths(s3_data_dir).ohlcv_lock_file("SIM_SOLUSDT")
    monkeypatch.setattr(storage, "LEASE_WAIT_SECONDS", 0.5)
    lease.write_bytes(
        json.dumps({"host": "another-host", "pid": 1, "expires": time.time() + 600}, sort_keys=True).encode()
    )
    with pytest.raises(storage.LeaseTimeoutError, match="held by pid 1 on another-host") as caught:
        with exclusive_lock(lease):
            pass
    assert str(lease) in str(caught.value)
    assert socket.gethostname() != "another-host"


def _dead_pid() -> int:
    process = multiprocessing.get_context("spawn").Process(target=int)
    process.start()
    process.join()
    return process.pid
