"""Both cycles through the ``alpha-assets`` command with the data directory in an S3 bucket.

``flow-data`` (simulated exchange) then ``flow-production`` run once with ``--data-dir s3://<bucket>/data`` against
moto's S3 server on 127.0.0.1 (configured only by AWS's standard variables) and once on a local folder, each on a
DAGSTER_HOME of its own. The portfolio must be byte-identical, every contract file must be an object in the bucket
(read back by an independent boto3 client), nothing must land in a local folder, the credentials must reach no
output, object or instance file, and a bucket that does not exist must stop the command with exit code 6 naming it.
A ``flow-data`` killed while it holds a lease, then run again, must store the bars of the uninterrupted run byte
for byte.

Leaves to other modules, which run on a bucket as on a folder (the ``data_backend`` fixture): the cycles through
Dagster (test_defs/test_flows.py), sensors and automation (test_defs/test_sensors.py), two ``flow-data`` at once
and racing writers (test_reliability/test_concurrency.py), the SIGKILL campaign (test_reliability/
test_crash_safety.py); leases, moves and the DuckDB views on a bucket (test_lakehouse/test_object_store.py).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from alpha_assets.cli import main
from alpha_assets.errors import ExitCode
from alpha_assets_tests.s3_server import S3Server
from alpha_assets_tests.test_reliability.conftest import CLOCK, SMALL_MANIFEST, flow_data_command

RUN_ID = "S3RUN"
BUCKET = "alpha-assets-cycle"


def _cycle(data_dir: str, home: Path, manifest: Path) -> tuple[list[int], str]:
    """``flow-data`` then ``flow-production`` on ``data_dir``; their exit codes and everything they printed."""
    os.environ["DAGSTER_HOME"] = str(home)
    common = ["--data-dir", data_dir, "--manifest", str(manifest)]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        codes = [main(["flow-data", *common, "--clock", CLOCK, "--run-id", RUN_ID])]
        codes.append(main(["flow-production", *common, "--run-id", RUN_ID]))
    return codes, printed.getvalue()


@pytest.fixture(scope="module")
def cycles(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server) -> dict:
    """Both cycles in a bucket and in a local folder (same manifest, clock and RUN_ID)."""
    root = tmp_path_factory.mktemp("s3_cycles")
    manifest = root / "manifest.json"
    manifest.write_text(json.dumps(SMALL_MANIFEST))
    s3_server.create_bucket(BUCKET)
    outcome = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # a stray local write of an s3:// path would land here, as ./s3:/...
        for name, value in s3_server.env().items():
            patch.setenv(name, value)
        outcome["local"] = _cycle(str(root / "data"), root / "home_local", manifest)
        outcome["bucket"] = _cycle(f"s3://{BUCKET}/data", root / "home_bucket", manifest)
        patch.delenv("DAGSTER_HOME")
    outcome.update(root=root, server=s3_server)
    return outcome


def test_both_cycles_on_a_bucket_succeed_and_give_the_local_portfolio_byte_for_byte(cycles):
    assert cycles["local"][0] == [ExitCode.OK, ExitCode.OK], cycles["local"][1][-3000:]
    assert cycles["bucket"][0] == [ExitCode.OK, ExitCode.OK], cycles["bucket"][1][-3000:]
    assert (
        f"portfolio: s3://{BUCKET}/data/artifacts/summaries/runs/{RUN_ID}/data/portfolio_flattened.json"
        in (cycles["bucket"][1])
    )
    local = (cycles["root"] / "data/artifacts/summaries/runs" / RUN_ID / "data/portfolio_flattened.json").read_bytes()
    objects = cycles["server"].objects(BUCKET, "data/")
    in_bucket = objects[f"data/artifacts/summaries/runs/{RUN_ID}/data/portfolio_flattened.json"]
    assert in_bucket == local
    assert json.loads(in_bucket)["profiles"], "a portfolio with profiles"


def test_every_contract_file_is_an_object_in_the_bucket_and_nothing_is_local(cycles):
    keys = set(cycles["server"].objects(BUCKET, "data/"))
    written = [p for p in (cycles["root"] / "data").rglob("*") if p.is_file() and "_locks" not in p.parts]
    local = {str(p.relative_to(cycles["root"])) for p in written}
    # Every file the local run wrote exists as an object under the same relative name, lock files aside and the
    # Delta tables' data files too (named by a fresh UUID at each write: their commit logs are compared instead).
    tables = ("data/lakehouse/features_matrix/", "data/lakehouse/features_provenance/")
    missing = sorted(
        name for name in local if name not in keys and not (name.startswith(tables) and "_delta_log" not in name)
    )
    assert missing == []
    assert all(f"{table}_delta_log/00000000000000000000.json" in keys for table in tables)
    assert sum(1 for key in keys if key.startswith("data/lakehouse/") and key.endswith("_1d.parquet")) >= 10
    assert any(key.startswith("data/lakehouse/symbols.parquet/") for key in keys)
    assert f"data/export/{RUN_ID}/candidates_validated.json" in keys
    assert "data/lakehouse.duckdb" in keys
    assert not (cycles["root"] / "s3:").exists(), "no s3:// path was written as a local folder"
    assert not [key for key in keys if key.startswith("data/lakehouse/_locks/")], "every lease was released"


def test_the_credentials_reach_no_object_no_instance_file_and_no_output(cycles):
    server = cycles["server"]
    needles = [server.secret_access_key.encode(), server.access_key_id.encode()]
    objects = server.objects(BUCKET)
    assert [key for key, body in objects.items() if any(needle in body for needle in needles)] == []
    home = cycles["root"] / "home_bucket"
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in files), "the sqlite storages were searched"
    assert [str(p) for p in files if any(needle in p.read_bytes() for needle in needles)] == []
    assert [needle for needle in needles if needle in cycles["bucket"][1].encode()] == []


def test_a_bucket_that_does_not_exist_exits_environment_naming_it(s3_server, tmp_path, monkeypatch, capsys):
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    code = main(["flow-data", "--data-dir", "s3://no-such-bucket-here/data", "--clock", CLOCK])
    err = capsys.readouterr().err.splitlines()
    assert code == ExitCode.ENVIRONMENT
    assert len(err) == 1 and "s3://no-such-bucket-here/data" in err[0] and "bucket does not exist" in err[0], err
    assert s3_server.secret_access_key not in err[0] and s3_server.access_key_id not in err[0]


def test_flow_data_killed_mid_ingestion_on_a_bucket_then_rerun_stores_the_uninterrupted_bars(cycles, tmp_path):
    server = cycles["server"]
    bucket = server.create_bucket("alpha-assets-crash")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(SMALL_MANIFEST))
    data_dir = f"s3://{bucket}/data"
    env = {**os.environ, **server.env(), "DAGSTER_HOME": str(tmp_path / "home")}
    command = flow_data_command(data_dir, manifest, RUN_ID)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    client, deadline = server.client(), time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        listed = client.list_objects_v2(Bucket=bucket, Prefix="data/lakehouse/_locks/").get("KeyCount", 0)
        if listed:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert listed, "killed while it held a lease, mid-ingestion"
    rerun = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    objects = server.objects(bucket, "data/lakehouse/")
    bars = {key: body for key, body in objects.items() if key.endswith("_1d.parquet")}
    reference = {
        f"data/lakehouse/{p.name}": p.read_bytes() for p in (cycles["root"] / "data/lakehouse").glob("*_1d.parquet")
    }
    assert bars == reference
    assert not [key for key in objects if "/_locks/" in key], "the dead writer's lease was taken over and released"
