"""``duckdb_views.fetch_all`` against an object replaced while DuckDB reads it, as a bucket being written does.

DuckDB's ``httpfs`` reads a parquet object with a HEAD and several ranged GETs and refuses a GET whose ETag is
not the HEAD's. The server here (HTTP on 127.0.0.1, ranges and ETags as S3 answers them) replaces its object at
a chosen request, so the race that a bucket's writers cause now and then happens on every run.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alpha_assets.errors import LakehouseReadError
from alpha_assets.lakehouse.duckdb_views import fetch_all, load_s3_access

#: Rows of the object's two versions: large enough that DuckDB reads the footer and the pages in separate GETs.
ROWS = (200_000, 240_000)
AWS_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL")


def _parquet(n_rows: int) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table({"value": pa.array(range(n_rows), pa.float64())}), sink, row_group_size=n_rows // 4)
    return sink.getvalue()


class _ReplacingServer(ThreadingHTTPServer):
    """Serves one object; ``version(method, requests, heads)`` picks the version (0 or 1) each request gets.

    ``requests`` counts the requests before this one, ``heads`` the HEADs so far, this one included.
    """

    def __init__(self, version: Callable[[str, int, int], int]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies = [_parquet(n) for n in ROWS]
        self.version = version
        self.requests = 0
        self.heads = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/BINANCE_BTCUSDT_1d.parquet"


class _Handler(BaseHTTPRequestHandler):
    server: _ReplacingServer

    def _pick(self) -> tuple[int, bytes]:
        with self.server.lock:
            self.server.heads += self.command == "HEAD"
            index = self.server.version(self.command, self.server.requests, self.server.heads)
            self.server.requests += 1
        return index, self.server.bodies[index]

    def _headers(self, status: int, index: int, length: int, content_range: str | None = None) -> None:
        self.send_response(status)
        self.send_header("ETag", f'"version-{index}"')
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if content_range:
            self.send_header("Content-Range", content_range)
        self.end_headers()

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
        index, body = self._pick()
        self._headers(200, index, len(body))

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        index, body = self._pick()
        if "Range" not in self.headers:
            self._headers(200, index, len(body))
            self.wfile.write(body)
            return
        first, last = (int(bound) for bound in self.headers["Range"].removeprefix("bytes=").split("-"))
        if first >= len(body):  # S3's answer to a range past the end (the object shrank since the HEAD)
            error = b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>InvalidRange</Code></Error>"
            self._headers(416, index, len(error), f"bytes */{len(body)}")
            self.wfile.write(error)
            return
        last = min(last, len(body) - 1)
        self._headers(206, index, last - first + 1, f"bytes {first}-{last}/{len(body)}")
        self.wfile.write(body[first : last + 1])

    def log_message(self, *args: object) -> None:
        """Quiet: the test asserts on results, not on the request log."""


@pytest.fixture
def serve(monkeypatch) -> Iterator[Callable[[Callable[[str, int, int], int]], _ReplacingServer]]:
    for variable in AWS_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    servers: list[_ReplacingServer] = []

    def start(version: Callable[[str, int, int], int]) -> _ReplacingServer:
        server = _ReplacingServer(version)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _connection() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    load_s3_access(connection)  # httpfs; with no AWS variable set, a secret without keys
    return connection


def _sum_query(url: str) -> str:
    return f"select count(*), sum(value) from read_parquet('{url}')"


def _expected(version: int) -> tuple[int, float]:
    n_rows = ROWS[version]
    return n_rows, float(n_rows * (n_rows - 1) // 2)


def test_fetch_all_reruns_a_query_whose_object_was_replaced_after_its_footer_was_read(serve):
    # The first query's HEAD and footer GET see version 0, its page GETs version 1 (a writer's PUT in between).
    server = serve(lambda method, requests, heads: 0 if requests < 2 else 1)
    with pytest.raises((UnicodeDecodeError, duckdb.HTTPException)):
        # DuckDB 1.5.5's binding decodes the binary body of the refused GET: UnicodeDecodeError, not duckdb.Error.
        _connection().execute(_sum_query(server.url)).fetchall()
    server.requests = server.heads = 0
    assert fetch_all(_connection(), _sum_query(server.url)) == [_expected(1)]  # the new version whole, no mix
    assert server.heads == 2


def test_fetch_all_reads_an_unchanged_object_once(serve):
    server = serve(lambda method, requests, heads: 0)
    assert fetch_all(_connection(), _sum_query(server.url)) == [_expected(0)]
    assert server.heads == 1


def test_fetch_all_names_the_object_replaced_during_every_attempt(serve):
    # Each query's HEAD sees one version and its GETs the other (a writer replacing the object faster than anyone
    # reads it): DuckDB refuses the other ETag, or gets a 416 for a range past the end of the shorter version.
    server = serve(lambda method, requests, heads: (heads + (method == "GET")) % 2)
    with pytest.raises(LakehouseReadError, match="replaced by a writer during each of 3 reads in a row") as raised:
        fetch_all(_connection(), _sum_query(server.url), attempts=3)
    assert server.heads == 3
    assert raised.value.path == server.url


def test_fetch_all_raises_any_other_error_at_once(serve):
    server = serve(lambda method, requests, heads: 0)
    with pytest.raises(duckdb.Error, match="does_not_exist"):
        fetch_all(_connection(), "select * from does_not_exist")
    with pytest.raises(duckdb.Error, match="no_such_column"):
        fetch_all(_connection(), _sum_query(server.url).replace("sum(value)", "sum(no_such_column)"))
    assert server.heads == 1
