"""A throwaway S3-compatible server on 127.0.0.1, for the tests that put the data directory in a bucket.

moto in server mode (``python -m moto.server``, installed with the test extra) runs as its own process on a free
loopback port and keeps its objects in memory; it speaks S3's REST protocol, conditional writes included
(``If-None-Match: *`` and ``If-Match`` on put and delete, answered 412 as S3 does). The server is started by the
``s3_server`` fixture (session-scoped) and stopped at the end; each test takes a bucket of its own
(:meth:`S3Server.create_bucket`) and points the code at the server through AWS's standard environment
variables (:meth:`S3Server.env`), with credentials made up for the session.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import pytest

START_TIMEOUT_S = 60
REGION = "eu-west-1"


class S3Unavailable(RuntimeError):
    """The moto server did not start; the message says why."""


@dataclass(frozen=True)
class S3Server:
    """A running S3-compatible server and the credentials the tests use with it."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str

    def env(self) -> dict[str, str]:
        """AWS's standard environment variables for this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_REGION": REGION,
        }

    def client(self):  # noqa: ANN201 - a boto3 client, whose class botocore builds at run time
        """A boto3 S3 client of this server, to create buckets and look at objects independently of the code."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=REGION,
        )

    def create_bucket(self, name: str) -> str:
        """Create bucket ``name`` (in :data:`REGION`) and return it."""
        self.client().create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
        return name

    def objects(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        """Every object of ``bucket`` under ``prefix``: key -> content."""
        client = self.client()
        found: dict[str, bytes] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                found[entry["Key"]] = client.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
        return found


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def throwaway_s3() -> Iterator[S3Server]:
    """Start moto's server on a free loopback port; stop it on exit.

    Its request log goes to a temporary file (a pipe nobody reads would fill and stall the server).
    """
    port = _free_loopback_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            _wait_until_answering(process, url, log)
            yield S3Server(url, f"AKIA{secrets.token_hex(8).upper()}", secrets.token_urlsafe(30))
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_answering(process: subprocess.Popen, url: str, log: IO[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            log.seek(0)
            raise S3Unavailable(f"moto's server exited with {process.returncode}: {log.read()[-2000:].decode()}")
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
            return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise S3Unavailable(f"moto's server did not answer on {url} within {START_TIMEOUT_S} s") from None
            time.sleep(0.1)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One S3-compatible server for the session (moto, 127.0.0.1)."""
    with throwaway_s3() as server:
        yield server


@pytest.fixture
def s3_data_dir(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """``s3://<bucket>/data`` in a fresh bucket of the test's own, with AWS's variables set for the server."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    bucket = s3_server.create_bucket(f"t-{secrets.token_hex(6)}")
    return f"s3://{bucket}/data"
