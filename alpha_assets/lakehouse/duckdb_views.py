"""``lakehouse.duckdb``: DuckDB views over the lakehouse files and the runs' artifacts, rebuilt atomically.

The database holds views only (SQL text, no data): each view reads its parquet or JSON files when it is
queried, so ``duckdb data/lakehouse.duckdb`` (or any DuckDB client) sees the files as they are at query time.

- **Absolute paths.** The views name the files by absolute path, taken from
  :class:`~alpha_assets.lakehouse.paths.LakehousePaths` (every pattern is that class's path of one key with
  the key replaced by ``*``). Moving or copying the data folder needs a refresh before its views work again.
- **Globs.** Without ``run_ids``, each view reads a glob pattern (``lakehouse/*_1d.parquet``,
  ``artifacts/summaries/runs/*/data/selection.json``, ...), so symbols and runs written after the refresh
  appear without another one. A lakehouse view is created only when its pattern matches at least one file at
  refresh time: a missing view means no such file existed yet (DuckDB fails on a glob that matches nothing).
  The per-run views always exist: with no file (no production run yet, every portfolio withdrawn) they are
  empty, with the columns and types they have over real files, and read no file until the next refresh. With
  ``run_ids``, the per-run views read exactly the files of those runs that exist (a fixed list).
- **Safe for readers.** The new database is built in a temporary directory next to the old one, checkpointed,
  closed, then renamed over it with ``os.replace``: a reader that has the old file open keeps its view of it
  (POSIX keeps an open file alive) and the next connection opens the new one. The file is rebuilt by every
  refresh: keep your own tables in another database (``ATTACH``).
- **Buckets being written.** In a bucket, DuckDB reads an object in several ranged requests and fails a query
  whose object was replaced between two of them (it never mixes versions). Writers take no pause for readers,
  so the views' own queries go through :func:`fetch_all`, which runs such a query again; a reader of a bucket
  being written should do the same.
- **Delta tables.** The ``features`` view reads the ``features_matrix`` Delta table with ``delta_scan`` (DuckDB's
  ``delta`` extension, installed with the project as the ``duckdb-extension-delta`` wheel: DuckDB never downloads
  it). A session that queries the view loads it first: :func:`connect` does, or
  ``LOAD '<path of delta_extension_path()>'`` in any DuckDB client of the same version.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import string
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TypedDict

import duckdb
import duckdb_extension_delta
import duckdb_extension_httpfs
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable

from alpha_assets.errors import DiskFullError, LakehouseReadError, UnusableEnvironmentError
from alpha_assets.lakehouse.keys import validate_run_id
from alpha_assets.lakehouse.parquet import parquet_source
from alpha_assets.lakehouse.paths import LakehousePaths, RunDataFile
from alpha_assets.lakehouse.schemas import RETURNS_MATRIX_LAYOUT
from alpha_assets.lakehouse.storage import DataPath, is_object_store, make_folder, put_object

# Valid keys that appear nowhere else in a path: each file pattern is LakehousePaths' path of the sentinel
# with the sentinel replaced by ``*``, so the patterns follow any change of layout in ``paths.py``.
_SYMBOL_SENTINEL = "GLOBSENTINEL_KEY"
_RUN_SENTINEL = "GLOBSENTINEL-RUN"
#: How many times :func:`fetch_all` runs a query whose objects keep being replaced while DuckDB reads them.
CHANGED_OBJECT_ATTEMPTS = 8
# Seconds before re-run ``k`` (1-based) is ``k`` times this: a writer replaces an object with one PUT.
_CHANGED_OBJECT_WAIT_S = 0.05
# Where DuckDB's messages for a changed object name it (an ETag that changed, a 416 for a range past the end).
_CHANGED_OBJECT_NAME = re.compile(r"""(?:reading file "|GET error on ')([^"']+)""")
# The ``key`` of a Delta table source (its views name no file).
_DELTA_KEY = "<delta>"
# A data folder whose path holds a glob metacharacter cannot be globbed literally: list its files instead.
_GLOB_CHARACTERS = re.compile(r"[*?\[\]{}]")

_RUN_FILES = {
    "returns": RunDataFile.RETURNS,
    "portfolio": RunDataFile.PORTFOLIO,
    "selection": RunDataFile.SELECTION,
    "gate": RunDataFile.GATE_VERDICT,
}

_PORTFOLIO_JSON = """read_json($files, format = 'unstructured', columns = {
    metadata: 'STRUCT(run_id VARCHAR, as_of VARCHAR, manifest_sha256 VARCHAR)',
    profiles: 'MAP(VARCHAR, STRUCT(status VARCHAR, reason VARCHAR,
        "rows" STRUCT("Symbol" VARCHAR, "Weight" DOUBLE, "Net_Weight" DOUBLE, "Gross_Weight" DOUBLE,
                      "Direction" VARCHAR, "Cluster_ID" BIGINT, "Market" VARCHAR, "Sector" VARCHAR)[],
        report STRUCT(solver VARCHAR, status VARCHAR, objective DOUBLE, cluster_cap DOUBLE,
                      reason VARCHAR)))'})"""

_SELECTION_JSON = """read_json($files, format = 'unstructured', columns = {
    run_id: 'VARCHAR', as_of: 'VARCHAR', method: 'VARCHAR', stage_reached: 'BIGINT',
    scores: 'MAP(VARCHAR, DOUBLE)', clusters: 'MAP(VARCHAR, BIGINT)', admitted_at: 'MAP(VARCHAR, BIGINT)',
    atoms: 'STRUCT(symbol VARCHAR, direction VARCHAR, cluster BIGINT)[]',
    vetoes: 'STRUCT(symbol VARCHAR, stage BIGINT, reason VARCHAR, feature VARCHAR, observed DOUBLE,
                    threshold DOUBLE)[]'})"""


def _write_empty_file(path: Path) -> None:
    path.write_bytes(b"")


def _write_empty_returns(path: Path) -> None:
    pq.write_table(RETURNS_MATRIX_LAYOUT.empty_table(), path)


#: The per-run sources: with no file, their views are still created, empty, with the same columns (a RUN_ID
#: whose portfolio was withdrawn, or no production run yet, must read as no rows, not as a missing view).
#: Source -> (placeholder suffix, writer of an empty placeholder file DuckDB derives the columns from).
_RUN_SOURCE_PLACEHOLDERS: dict[str, tuple[str, Callable[[Path], None]]] = {
    "candidates_validated": (".json", _write_empty_file),
    "returns": (".parquet", _write_empty_returns),
    "portfolio": (".json", _write_empty_file),
    "selection": (".json", _write_empty_file),
    "gate": (".json", _write_empty_file),
}

#: View name -> (source it reads, SQL of its body). ``$files`` is the source's files, ``$key`` an RE2
#: pattern whose group 1 is the symbol key or RUN_ID in a file name. Created in this order.
VIEWS: dict[str, tuple[str, str]] = {
    "ohlcv": (
        "ohlcv",
        """
        SELECT regexp_extract(filename, '$key', 1) AS symbol_key,
               "timestamp", "open", high, low, "close", volume
        FROM read_parquet($files, filename = true, union_by_name = true)""",
    ),
    "symbols": ("symbols", "SELECT * FROM read_parquet($files, union_by_name = true)"),
    "symbols_current": ("symbols", "SELECT * FROM symbols WHERE valid_to IS NULL"),
    "features": ("features", "SELECT * FROM delta_scan($files)"),
    "candidates_validated": (
        "candidates_validated",
        """
        SELECT d.run_id, CAST(d.as_of AS TIMESTAMPTZ) AS as_of, d.exchange, c.symbol_key, c.ccxt_symbol,
               c.base, c.quote, c.sector, c."rank", c.quote_volume_24h
        FROM read_json($files, format = 'unstructured', columns = {
                run_id: 'VARCHAR', as_of: 'VARCHAR', exchange: 'VARCHAR',
                candidates: 'STRUCT(symbol_key VARCHAR, ccxt_symbol VARCHAR, base VARCHAR, quote VARCHAR,
                                    sector VARCHAR, "rank" BIGINT, quote_volume_24h DOUBLE)[]'}) AS d,
             unnest(d.candidates) AS t(c)""",
    ),
    "returns": (
        "returns",
        """
        UNPIVOT (SELECT regexp_extract(filename, '$key', 1) AS run_id, * EXCLUDE (filename)
                 FROM read_parquet($files, filename = true, union_by_name = true))
        ON COLUMNS(* EXCLUDE (run_id, "date")) INTO NAME symbol_key VALUE daily_return""",
    ),
    "weights": (
        "portfolio",
        f"""
        SELECT p.metadata.run_id AS run_id, CAST(p.metadata.as_of AS DATE) AS as_of, e.key AS profile,
               r."Symbol", r."Weight", r."Net_Weight", r."Gross_Weight", r."Direction", r."Cluster_ID",
               r."Market", r."Sector"
        FROM {_PORTFOLIO_JSON} AS p, unnest(map_entries(p.profiles)) AS t(e),
             unnest(e.value."rows") AS u(r)""",
    ),
    "profiles": (
        "portfolio",
        f"""
        SELECT p.metadata.run_id AS run_id, CAST(p.metadata.as_of AS DATE) AS as_of, e.key AS profile,
               e.value.status AS status, e.value.reason AS reason, e.value.report.solver AS solver,
               e.value.report.objective AS objective, e.value.report.cluster_cap AS cluster_cap,
               len(e.value."rows") AS n_rows, p.metadata.manifest_sha256 AS manifest_sha256
        FROM {_PORTFOLIO_JSON} AS p, unnest(map_entries(p.profiles)) AS t(e)""",
    ),
    "selection": (
        "selection",
        f"""
        WITH docs AS (SELECT * FROM {_SELECTION_JSON}),
        labels AS (SELECT run_id, as_of, method, stage_reached, e.key AS symbol_key, e.value AS cluster
                   FROM docs, unnest(map_entries(clusters)) AS t(e)),
        scores AS (SELECT run_id, e.key AS symbol_key, e.value AS score
                   FROM docs, unnest(map_entries(scores)) AS t(e)),
        admitted AS (SELECT run_id, e.key AS symbol_key, e.value AS admitted_at_stage
                     FROM docs, unnest(map_entries(admitted_at)) AS t(e)),
        atoms AS (SELECT run_id, a.symbol AS symbol_key, a.direction FROM docs, unnest(atoms) AS t(a))
        SELECT run_id, CAST(as_of AS DATE) AS as_of, method, stage_reached, symbol_key, score, cluster,
               direction IS NOT NULL AS selected, direction, admitted_at_stage
        FROM labels LEFT JOIN scores USING (run_id, symbol_key) LEFT JOIN atoms USING (run_id, symbol_key)
             LEFT JOIN admitted USING (run_id, symbol_key)""",
    ),
    "vetoes": (
        "selection",
        f"""
        SELECT d.run_id, v.symbol AS symbol_key, v.stage, v.reason, v.feature, v.observed, v.threshold
        FROM {_SELECTION_JSON} AS d, unnest(d.vetoes) AS t(v)""",
    ),
    "gate_checks": (
        "gate",
        """
        SELECT d.run_id, d.passed AS gate_passed, e.key AS check_name, e.value.passed AS passed,
               e.value.message AS message, e.value.observed AS observed, e.value.threshold AS threshold
        FROM read_json($files, format = 'unstructured', columns = {
                run_id: 'VARCHAR', passed: 'BOOLEAN',
                checks: 'MAP(VARCHAR, STRUCT(passed BOOLEAN, message VARCHAR, observed JSON,
                                             threshold JSON))'}) AS d,
             unnest(map_entries(d.checks)) AS t(e)""",
    ),
}


def delta_extension_path() -> Path:
    """The ``delta`` extension of the installed DuckDB, shipped by the ``duckdb-extension-delta`` wheel.

    Raises
    ------
    UnusableEnvironmentError
        When the wheel holds no build for this DuckDB version (the two are pinned together in pyproject.toml).
    """
    return _wheel_extension_path(duckdb_extension_delta, "delta")


def _wheel_extension_path(wheel: ModuleType, name: str) -> Path:
    """Extension ``name`` of the installed DuckDB in the ``duckdb-extension-<name>`` wheel ``wheel``."""
    path = Path(wheel.__file__).parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.is_file():
        raise UnusableEnvironmentError(
            f"duckdb-extension-{name} has no build for DuckDB {duckdb.__version__} ({path} is missing): install the "
            "versions pinned in pyproject.toml"
        )
    return path


def load_s3_access(connection: duckdb.DuckDBPyConnection) -> None:
    """Let ``connection`` read ``s3://`` URIs: DuckDB's ``httpfs`` extension and a temporary S3 secret.

    The extension comes from the ``duckdb-extension-httpfs`` wheel (never downloaded); the secret from AWS's
    standard variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``,
    ``AWS_ENDPOINT_URL``). A temporary secret lives in this connection only: it is never written to the database.
    """
    connection.execute(f"LOAD {_quote(_wheel_extension_path(duckdb_extension_httpfs, 'httpfs').as_posix())}")
    settings = {
        "KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID"),
        "SECRET": os.environ.get("AWS_SECRET_ACCESS_KEY"),
        "SESSION_TOKEN": os.environ.get("AWS_SESSION_TOKEN"),
        "REGION": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
    }
    clauses = [f"{name} {_quote(value)}" for name, value in settings.items() if value]
    endpoint = urllib.parse.urlsplit(os.environ.get("AWS_ENDPOINT_URL", ""))
    if endpoint.netloc:
        # An S3-compatible server: its host and port, path-style URLs, TLS as its URL says.
        clauses += [f"ENDPOINT {_quote(endpoint.netloc)}", "URL_STYLE 'path'", f"USE_SSL {endpoint.scheme == 'https'}"]
    try:
        connection.execute(f"CREATE OR REPLACE TEMPORARY SECRET alpha_assets_s3 ({', '.join(['TYPE s3', *clauses])})")
    except duckdb.Error as err:
        # DuckDB may quote the statement back, and the statement holds the secret: name the error class only.
        raise UnusableEnvironmentError(
            f"DuckDB refused the S3 settings from the environment ({type(err).__name__})"
        ) from None


def load_delta_extension(connection: duckdb.DuckDBPyConnection) -> None:
    """Load DuckDB's ``delta`` extension from the installed wheel (DuckDB would otherwise try to download it)."""
    connection.execute(f"LOAD {_quote(delta_extension_path().as_posix())}")


def _object_changed(err: Exception) -> bool:
    """Whether ``err`` is DuckDB refusing to combine two versions of an object that was replaced mid-read."""
    # DuckDB 1.5.5's Python binding decodes the HTTP response body into the exception's text: for a binary object
    # (parquet) that raises UnicodeDecodeError, which no other failure of a query raises (DuckDB strings are UTF-8).
    # A 416 answers a range computed from a length the object no longer has (it shrank).
    if isinstance(err, UnicodeDecodeError):
        return True
    return isinstance(err, duckdb.HTTPException) and (err.status_code == 416 or "ETag" in str(err))


def fetch_all(
    connection: duckdb.DuckDBPyConnection, sql: str, *, attempts: int = CHANGED_OBJECT_ATTEMPTS
) -> list[tuple]:
    """The rows of ``sql``, run again when an object in a bucket was replaced while DuckDB read it.

    DuckDB reads an object with several ranged GETs and fails the query when one returns another ETag than the
    first (the object was replaced in between: ``duckdb.HTTPException`` "ETag ... has changed", a 416 when the
    object shrank, or ``UnicodeDecodeError`` for a binary object, see ``_object_changed``). Writers replace the
    lakehouse's objects whole while readers take no lock, so a query over a bucket being written can meet this;
    as DuckDB advises for parquet sources, the whole query runs again and sees each object whole. Local files are
    renamed into place, never changed under an open handle, so this never happens to them.

    Parameters
    ----------
    connection : duckdb.DuckDBPyConnection
        A connection, with :func:`load_s3_access` done for ``s3://`` sources.
    sql : str
        One statement; it runs up to ``attempts`` times, so it must be safe to repeat (a query, or
        ``CREATE OR REPLACE``).
    attempts : int
        Runs at most, waiting 0.05 s, 0.10 s, ... between them.

    Returns
    -------
    list of tuple
        The statement's rows (empty for one that returns none).

    Raises
    ------
    LakehouseReadError
        When the objects changed during each of the ``attempts`` runs (the message names the last object
        DuckDB named, when it named one).
    duckdb.Error
        Any other failure of the statement, as DuckDB raised it.
    """
    for attempt in range(1, attempts + 1):
        try:
            return connection.execute(sql).fetchall()
        except (duckdb.Error, UnicodeDecodeError) as err:
            if not _object_changed(err):
                raise
            if attempt == attempts:
                changed = _CHANGED_OBJECT_NAME.search(str(err)) if isinstance(err, duckdb.Error) else None
                raise LakehouseReadError(
                    changed.group(1) if changed else "objects of the query",
                    f"replaced by a writer during each of {attempts} reads in a row (DuckDB reads an object in "
                    "several ranged requests and refuses to mix two versions); read again when the writer is done",
                ) from err
            time.sleep(_CHANGED_OBJECT_WAIT_S * attempt)
    raise AssertionError("unreachable: the last attempt returns or raises")


def connect(paths: LakehousePaths, *, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """A connection to ``lakehouse.duckdb`` with the ``delta`` extension loaded, ready to query every view.

    In a bucket the database is an object: it is attached read-only over ``httpfs`` (with the S3 access of
    :func:`load_s3_access`, which its views need too) and made the connection's default database.

    Raises
    ------
    ValueError
        When ``read_only`` is false for a data directory in a bucket (the object is rebuilt by
        :func:`refresh_views`, never written in place).
    """
    if not paths.in_object_store:
        connection = duckdb.connect(str(paths.duckdb_file), read_only=read_only)
        load_delta_extension(connection)
        return connection
    if not read_only:
        raise ValueError(
            f"{paths.duckdb_file} is an object in a bucket: it opens read-only (refresh_views rebuilds it)"
        )
    connection = duckdb.connect()
    try:
        load_delta_extension(connection)
        load_s3_access(connection)
        connection.execute(f"ATTACH {_quote(str(paths.duckdb_file))} AS lakehouse (READ_ONLY)")
        connection.execute("USE lakehouse")
    except BaseException:
        connection.close()
        raise
    return connection


def _build_database(
    database: Path, paths: LakehousePaths, run_ids: Sequence[str] | None, skipped: list[Path] | None
) -> dict[str, int]:
    """Create the views in a new database file ``database``; return their row counts."""
    if "?" not in str(database):
        with contextlib.closing(duckdb.connect(str(database))) as connection:
            load_delta_extension(connection)
            counts = _create_views(connection, paths, run_ids, skipped)
            # Everything in the main file before the rename: no write-ahead log is left behind.
            connection.execute("CHECKPOINT")
        return counts
    # DuckDB reads a `?` in a database name as the start of connection options and then looks for its
    # write-ahead log elsewhere (`/a.wal?b/...`), even through a symlink: build where the path has none, copy.
    build_dir = Path(tempfile.mkdtemp(prefix="alpha_assets_duckdb_"))
    try:
        counts = _build_database(build_dir / database.name, paths, run_ids, skipped)
        shutil.copyfile(build_dir / database.name, database)
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)
    return counts


def _local_folder(folder: DataPath) -> Path | None:
    """``folder`` when it is local (the staged database is renamed within one file system), else None (``/tmp``)."""
    return None if is_object_store(folder) else folder


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class _Source(TypedDict):
    """One source of views: ``files`` and ``key`` are substituted into a view's SQL."""

    files: str  # a quoted glob pattern or a list of quoted paths
    key: str  # RE2: group 1 is the symbol key or RUN_ID in a file name
    paths: list[Path]  # the files it named at refresh time


def _location(path: DataPath) -> str:
    """How DuckDB names ``path``: a local path, or the object's ``s3://`` URI."""
    return str(path) if is_object_store(path) else path.as_posix()


def _list_sql(files: Sequence[DataPath]) -> str:
    return "[" + ", ".join(_quote(_location(p)) for p in files) + "]"


def _source_sql(
    paths: LakehousePaths,
    build: Callable[[str], Path],
    sentinel: str,
    keys: Sequence[str] | None,
    skipped: list[Path] | None = None,
) -> _Source | None:
    """The files of one source and their SQL, or None when none of its files exists.

    With ``skipped``, a per-run JSON file that does not parse is left out (and appended to it).
    """
    head, tail = str(build(sentinel).relative_to(paths.root)).split(sentinel)
    key = "([^/]+)" + re.escape(tail) + "$"
    if keys is not None:
        files = [p for p in (build(k) for k in keys) if p.is_file()]
    else:
        files = sorted(p for p in paths.root.glob(f"{head}*{tail}") if p.is_file())
    unreadable = [p for p in files if not _parses(p)] if skipped is not None and tail.endswith(".json") else []
    if unreadable:
        skipped.extend(unreadable)
        files = [p for p in files if p not in unreadable]
    if not files:
        return None
    root = _location(paths.root)
    if keys is None and not unreadable and not _GLOB_CHARACTERS.search(root):
        return {"files": _quote(f"{root}/{head}*{tail}"), "key": key, "paths": files}
    return {"files": _list_sql(files), "key": key, "paths": files}


def _delta_source(directory: Path, uri: str) -> _Source | None:
    """A Delta table as a view source (``$files`` is its quoted URI), or None when it has no commit yet."""
    if not (directory / "_delta_log").is_dir():
        return None
    return {"files": _quote(uri), "key": _DELTA_KEY, "paths": [directory]}


def _parses(path: Path) -> bool:
    try:
        json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return True


def _without_unreadable_parquet(source: _Source, skipped: list[Path]) -> _Source | None:
    """``source`` without its parquet files whose footer does not read (appended to ``skipped``).

    Only called once DuckDB failed on the source, so a healthy refresh reads no footer twice. None when every
    file reads: the failure is not one file's.
    """
    if source["key"] == _DELTA_KEY:
        # A Delta table is one dataset: without one of its files it would show a version that never existed, so a
        # damaged data file leaves the whole view out (its files are named).
        [directory] = source["paths"]
        files = [Path(uri) for uri in DeltaTable(str(directory)).file_uris()]
        unreadable = [p for p in files if not _footer_reads(p)]
        kept = [] if unreadable else source["paths"]
    else:
        unreadable = [p for p in source["paths"] if p.suffix == ".parquet" and not _footer_reads(p)]
        kept = [p for p in source["paths"] if p not in unreadable]
    if not unreadable:
        return None
    skipped.extend(unreadable)
    return {**source, "files": _list_sql(kept), "paths": kept}


def _footer_reads(path: Path) -> bool:
    try:
        pq.read_metadata(parquet_source(path))
    except (OSError, pa.ArrowException):
        return False
    return True


def _sources(
    paths: LakehousePaths, run_ids: Sequence[str] | None, skipped: list[Path] | None
) -> dict[str, _Source | None]:
    sources = {
        "ohlcv": _source_sql(paths, paths.ohlcv_file, _SYMBOL_SENTINEL, None),
        "symbols": _source_sql(paths, paths.symbol_metadata_file, _SYMBOL_SENTINEL, None),
        "features": _delta_source(paths.features_table_dir, paths.features_table_uri),
        "candidates_validated": _source_sql(paths, paths.candidates_validated_file, _RUN_SENTINEL, run_ids, skipped),
    }
    for name, file_name in _RUN_FILES.items():
        sources[name] = _source_sql(
            paths, lambda run_id, f=file_name: paths.run_data_file(run_id, f), _RUN_SENTINEL, run_ids, skipped
        )
    return sources


def _create_views(
    connection: duckdb.DuckDBPyConnection,
    paths: LakehousePaths,
    run_ids: Sequence[str] | None,
    skipped: list[Path] | None,
) -> dict[str, int]:
    if paths.in_object_store:
        # The views keep the objects' s3:// URIs: a reader of the database needs the same access.
        load_s3_access(connection)
    sources = _sources(paths, run_ids, skipped)
    counts: dict[str, int] = {}
    for name, (source_name, body) in VIEWS.items():
        source = sources[source_name]
        if source is None and source_name in _RUN_SOURCE_PLACEHOLDERS:
            counts[name] = _create_empty_view(connection, name, body, source_name)
            continue
        while source is not None:
            try:
                counts[name] = _create_view(connection, name, body, source)
                break
            except duckdb.Error as err:
                # A corrupt file fails the whole view: with `skipped`, leave out the parquet files that do not
                # read and try again (the views after this one over the same source read the rest too).
                readable = _without_unreadable_parquet(source, skipped) if skipped is not None else None
                if readable is None:
                    raise LakehouseReadError(source["files"], f"DuckDB view `{name}` cannot read it: {err}") from err
                source = sources[source_name] = readable if readable["paths"] else None
        if name not in counts:
            # A view whose every file was left out: the failed attempt may have defined it before its count failed.
            connection.execute(f"DROP VIEW IF EXISTS {name}")
    return counts


def _create_empty_view(connection: duckdb.DuckDBPyConnection, name: str, body: str, source_name: str) -> int:
    """Create view ``name`` with no row and the columns it has over real files; return 0.

    DuckDB derives the columns and types from the view's own SQL over an empty placeholder file, so they stay
    those of the real view; the view then selects typed NULLs with ``LIMIT 0`` and names no file.
    """
    with tempfile.TemporaryDirectory(prefix="alpha_assets_empty_view_") as folder:
        placeholder = Path(folder) / f"placeholder{_RUN_SOURCE_PLACEHOLDERS[source_name][0]}"
        _RUN_SOURCE_PLACEHOLDERS[source_name][1](placeholder)
        source: _Source = {"files": _list_sql([placeholder]), "key": "([^/]+)$", "paths": [placeholder]}
        columns = connection.execute(f"DESCRIBE SELECT * FROM ({string.Template(body).substitute(source)})").fetchall()
    typed_nulls = ", ".join(f'CAST(NULL AS {column_type}) AS "{column}"' for column, column_type, *_ in columns)
    connection.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT {typed_nulls} LIMIT 0")
    return 0


def _create_view(connection: duckdb.DuckDBPyConnection, name: str, body: str, source: _Source) -> int:
    """Create (or replace, on a second attempt) view ``name`` over ``source``; return its row count."""
    fetch_all(connection, f"CREATE OR REPLACE VIEW {name} AS {string.Template(body).substitute(source)}")
    [(count,)] = fetch_all(connection, f"SELECT count(*) FROM {name}")
    return int(count)


def refresh_views(
    paths: LakehousePaths, *, run_ids: Sequence[str] | None = None, skipped: list[Path] | None = None
) -> dict[str, int]:
    """(Re)create ``lakehouse.duckdb`` in the data folder with a view per lakehouse table and run artifact.

    Parameters
    ----------
    paths : LakehousePaths
        The data folder; the database is ``paths.duckdb_file``.
    run_ids : sequence of str, optional
        Limit the per-run views (``candidates_validated``, ``returns``, ``weights``, ``profiles``,
        ``selection``, ``vetoes``, ``gate_checks``) to these RUN_IDs' files as they exist now. None (the
        default) makes them read every run folder, present and future, through a glob.
    skipped : list of Path, optional
        When given, an unreadable file is left out of its view and appended here, so one bad file never
        blocks the refresh for the others: a per-run JSON file that does not parse (one truncated old
        export), and, when DuckDB cannot build a parquet view, each of its files whose parquet footer does
        not read (a truncated or garbage bars file, symbols file or returns matrix; a healthy refresh reads
        no footer). Such a view then reads a fixed list of the good files, so files written after the refresh
        appear at the next one; a damaged data file of the features Delta table leaves the ``features`` view
        out (a table without one of its files would be a version that never existed). Nothing is deleted.
        None (the default): such a file raises LakehouseReadError.

    Returns
    -------
    dict of str to int
        Each view created -> its number of rows at refresh time, in :data:`VIEWS` order. A lakehouse view
        whose files do not exist (yet) is not created and not listed; a per-run view without files is
        created empty (0). The views and their columns:

        - ``ohlcv``: ``symbol_key`` (from the file name), ``timestamp`` (bar open, TIMESTAMPTZ UTC),
          ``open``, ``high``, ``low``, ``close``, ``volume``;
        - ``symbols`` (every SCD-2 version) and ``symbols_current`` (``valid_to IS NULL``): the columns of
          ``SYMBOLS_SCHEMA``;
        - ``features``: ``date``, ``symbol`` and the feature columns, long form;
        - ``candidates_validated``: one row per run and validated candidate (``run_id``, ``as_of``,
          ``exchange``, ``symbol_key``, ``ccxt_symbol``, ``base``, ``quote``, ``sector``, ``rank``,
          ``quote_volume_24h``);
        - ``returns``: the frozen returns matrices in long form (``run_id``, ``date``, ``symbol_key``,
          ``daily_return`` as a fraction); symbols absent from a run have no row;
        - ``weights``: one row per run, profile and atom (``run_id``, ``as_of``, ``profile``,
          ``Symbol``, ``Weight``, ``Net_Weight``, ``Gross_Weight``, ``Direction``, ``Cluster_ID``,
          ``Market``, ``Sector``);
        - ``profiles``: one row per run and profile (``status``, ``reason``, ``solver``, ``objective``,
          ``cluster_cap``, ``n_rows``, ``manifest_sha256``), failed profiles included;
        - ``selection``: one row per run and symbol (``score``, ``cluster``, ``selected``, ``direction``,
          ``admitted_at_stage``, ``method``, ``stage_reached``, ``as_of``);
        - ``vetoes``: one row per veto (``run_id``, ``symbol_key``, ``stage``, ``reason``, ``feature``,
          ``observed``, ``threshold``);
        - ``gate_checks``: one row per run and gate check (``gate_passed``, ``check_name``, ``passed``,
          ``message``, ``observed`` and ``threshold`` as JSON).

    Raises
    ------
    TypeError
        If ``paths`` is not a LakehousePaths or ``run_ids`` is a str or not a sequence.
    UnsafeKeyError
        If a RUN_ID of ``run_ids`` is not a safe key.
    LakehouseReadError
        If DuckDB cannot read an existing file of a view (corrupt parquet, malformed JSON; with
        ``skipped``, only when leaving out the unreadable files does not help); the old database is left
        in place.
    """
    if not isinstance(paths, LakehousePaths):
        raise TypeError(f"`paths` must be a LakehousePaths, got {type(paths).__name__}")
    if run_ids is not None:
        if isinstance(run_ids, str) or not isinstance(run_ids, Sequence):
            raise TypeError(f"`run_ids` must be a sequence of RUN_IDs or None, got {type(run_ids).__name__}")
        run_ids = sorted({validate_run_id(r) for r in run_ids})
    target = paths.duckdb_file
    make_folder(target.parent)
    # In a bucket the database is built in a local temporary folder and put as one object.
    workdir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=_local_folder(target.parent)))
    try:
        staged = workdir / target.name
        counts = _build_database(staged, paths, run_ids, skipped)
        if is_object_store(target):
            put_object(target, staged.read_bytes())
        else:
            os.replace(staged, target)
    except duckdb.IOException as err:
        if "No space left on device" in str(err):
            raise DiskFullError(str(target)) from err
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return counts
