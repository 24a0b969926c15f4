"""Every path under the data directory is built here, from validated keys only.

No other module joins paths under the data directory. The root is a local folder or ``s3://bucket/prefix``
(:func:`~alpha_assets.lakehouse.storage.data_root`): every path below is then a :class:`pathlib.Path` or a
:class:`upath.UPath` with the same API, built the same way from the same validated keys.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum

from alpha_assets.lakehouse.keys import RUN_ID_PATTERN, validate_run_id, validate_symbol_key
from alpha_assets.lakehouse.storage import DataPath, data_root, is_object_store, table_storage_options

DATA_DIR_ENV = "ALPHA_ASSETS_DATA_DIR"
DEFAULT_DATA_DIR = "data"


def resolve_data_dir(explicit: str | os.PathLike[str] | None = None) -> DataPath:
    """The data directory: ``explicit`` if given, else ``$ALPHA_ASSETS_DATA_DIR``, else ``./data``.

    Read at call time, never at import time. A folder or ``s3://bucket/prefix`` (see
    :func:`~alpha_assets.lakehouse.storage.data_root`, which raises ``ValueError`` for anything else).
    """
    chosen = explicit if explicit not in (None, "") else os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    return data_root(chosen)


@dataclass(frozen=True)
class LakehousePaths:
    """Paths of the lakehouse, the exports and the run artifacts under one data directory.

    Parameters
    ----------
    root : Path or UPath
        The data directory (``./data`` by default), or ``s3://bucket/prefix``.
    """

    root: DataPath

    def __init__(self, root: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "root", data_root(root))

    @property
    def in_object_store(self) -> bool:
        """Whether the data directory is a bucket prefix (``s3://``) rather than a local folder."""
        return is_object_store(self.root)

    # --- lakehouse -------------------------------------------------------------------------------------
    @property
    def lakehouse_dir(self) -> DataPath:
        """``lakehouse/``: the market data the DataOps cycle owns."""
        return self.root / "lakehouse"

    def ohlcv_file(self, symbol_key: str) -> DataPath:
        """``lakehouse/<EXCHANGE>_<SYMBOL>_1d.parquet``."""
        return self.lakehouse_dir / f"{validate_symbol_key(symbol_key)}_1d.parquet"

    @property
    def symbols_dir(self) -> DataPath:
        """``lakehouse/symbols.parquet/``: a dataset directory, one SCD-2 history file per symbol."""
        return self.lakehouse_dir / "symbols.parquet"

    def symbol_metadata_file(self, symbol_key: str) -> DataPath:
        """``lakehouse/symbols.parquet/<KEY>.parquet``."""
        return self.symbols_dir / f"{validate_symbol_key(symbol_key)}.parquet"

    @property
    def features_table_dir(self) -> DataPath:
        """``lakehouse/features_matrix/``: the Delta Lake table of the features, long form, every symbol.

        Read it as a Delta table (``deltalake``, DuckDB ``delta_scan``, ``polars.read_delta``), never by globbing its
        parquet files: files a commit removed stay on disk until vacuumed.
        """
        return self.lakehouse_dir / "features_matrix"

    @property
    def features_table_uri(self) -> str:
        """Where ``deltalake`` and DuckDB open the features table: every reader and writer takes it from here."""
        return str(self.features_table_dir)

    @property
    def features_provenance_dir(self) -> DataPath:
        """``lakehouse/features_provenance/``: a Delta table, one row per symbol: what its stored features came from."""
        return self.lakehouse_dir / "features_provenance"

    @property
    def features_provenance_uri(self) -> str:
        """Where ``deltalake`` opens the provenance table (see :attr:`features_table_uri`)."""
        return str(self.features_provenance_dir)

    @property
    def table_storage_options(self) -> dict[str, str] | None:
        """``storage_options`` of ``deltalake`` for the tables above (``storage.table_storage_options``)."""
        return table_storage_options(self.root)

    @property
    def legacy_features_dir(self) -> DataPath:
        """``lakehouse/features_matrix.parquet/``: the per-symbol base + delta files of before the Delta table.

        Only the migration reads it (``features_store.migrate_legacy_features``), then moves it to
        :attr:`legacy_archive_dir`.
        """
        return self.lakehouse_dir / "features_matrix.parquet"

    @property
    def legacy_archive_dir(self) -> DataPath:
        """``lakehouse/_legacy/``: layouts a migration replaced, kept (stored data is never deleted by a migration)."""
        return self.lakehouse_dir / "_legacy"

    @property
    def locks_dir(self) -> DataPath:
        """``lakehouse/_locks/``: the lock files of read-merge-write cycles, kept out of every dataset directory.

        A lock file inside ``symbols.parquet/`` would be an empty "parquet" file
        to every reader that opens the directory (pandas, pyarrow, polars, DuckDB). The leading ``_`` keeps
        pyarrow's dataset discovery of ``lakehouse/`` from descending into it.
        """
        return self.lakehouse_dir / "_locks"

    def ohlcv_lock_file(self, symbol_key: str) -> DataPath:
        """``lakehouse/_locks/ohlcv/<KEY>.lock``: held by a read-merge-write of the symbol's bars."""
        return self.locks_dir / "ohlcv" / f"{validate_symbol_key(symbol_key)}.lock"

    def symbol_metadata_lock_file(self, symbol_key: str) -> DataPath:
        """``lakehouse/_locks/symbols/<KEY>.lock``: held by an upsert of the symbol's metadata history."""
        return self.locks_dir / "symbols" / f"{validate_symbol_key(symbol_key)}.lock"

    @property
    def quarantine_dir(self) -> DataPath:
        """``lakehouse/quarantine/``: rows and files refused on the way in, with the reason."""
        return self.lakehouse_dir / "quarantine"

    def quarantine_file(self, symbol_key: str) -> DataPath:
        """``lakehouse/quarantine/<KEY>.jsonl``: one JSON record per refused row or file."""
        return self.quarantine_dir / f"{validate_symbol_key(symbol_key)}.jsonl"

    def quarantined_ohlcv_file(self, symbol_key: str, stamp: str, number: int = 0) -> DataPath:
        """``lakehouse/quarantine/<KEY>_1d.<stamp>[.<number>].parquet``: an unreadable bars file moved aside.

        ``stamp`` is the UTC time of the move (``YYYYmmddTHHMMSSZ``); ``number`` > 0 tells apart files moved
        in the same second.
        """
        suffix = f".{number}" if number else ""
        return self.quarantine_dir / f"{validate_symbol_key(symbol_key)}_1d.{stamp}{suffix}.parquet"

    @property
    def repairs_dir(self) -> DataPath:
        """``lakehouse/repairs/``: per symbol, the gaps tried and what came of each try."""
        return self.lakehouse_dir / "repairs"

    def repair_log_file(self, symbol_key: str) -> DataPath:
        """``lakehouse/repairs/<KEY>.json``."""
        return self.repairs_dir / f"{validate_symbol_key(symbol_key)}.json"

    @property
    def ingest_logs_dir(self) -> DataPath:
        """``lakehouse/ingest/``: the last ingestion of each symbol (status, error, history shortfall)."""
        return self.lakehouse_dir / "ingest"

    def ingest_log_file(self, symbol_key: str) -> DataPath:
        """``lakehouse/ingest/<KEY>.json``."""
        return self.ingest_logs_dir / f"{validate_symbol_key(symbol_key)}.json"

    @property
    def duckdb_file(self) -> DataPath:
        """``lakehouse.duckdb``: views over the lakehouse and the run artifacts."""
        return self.root / "lakehouse.duckdb"

    # --- exports (one folder per RUN_ID, written by DataOps) --------------------------------------------
    @property
    def export_root(self) -> DataPath:
        """``export/``: one folder per RUN_ID."""
        return self.root / "export"

    def export_dir(self, run_id: str) -> DataPath:
        """``export/<RUN_ID>/``."""
        return self.export_root / validate_run_id(run_id)

    def candidates_file(self, run_id: str) -> DataPath:
        """``export/<RUN_ID>/candidates.json``: the discovery output."""
        return self.export_dir(run_id) / "candidates.json"

    def audit_report_file(self, run_id: str) -> DataPath:
        """``export/<RUN_ID>/audit.json``: every candidate's verdict and reasons."""
        return self.export_dir(run_id) / "audit.json"

    def validated_exports(self) -> list[tuple[str, DataPath]]:
        """``(RUN_ID, candidates_validated.json)`` of every export folder whose name is a valid RUN_ID, sorted.

        Folders whose names are not RUN_IDs are left out, so a stray folder never becomes a partition key.
        """
        if not self.export_root.is_dir():
            return []
        found = []
        for folder in sorted(self.export_root.iterdir()):
            if RUN_ID_PATTERN.fullmatch(folder.name) and (folder / "candidates_validated.json").is_file():
                found.append((folder.name, folder / "candidates_validated.json"))
        return found

    def candidates_validated_file(self, run_id: str) -> DataPath:
        """``export/<RUN_ID>/candidates_validated.json``: the candidates that passed the audit."""
        return self.export_dir(run_id) / "candidates_validated.json"

    # --- run artifacts (written by the Alpha cycle) ------------------------------------------------------
    @property
    def runs_root(self) -> DataPath:
        """``artifacts/summaries/runs/``."""
        return self.root / "artifacts" / "summaries" / "runs"

    def run_dir(self, run_id: str) -> DataPath:
        """``artifacts/summaries/runs/<RUN_ID>/``."""
        return self.runs_root / validate_run_id(run_id)

    def run_data_dir(self, run_id: str) -> DataPath:
        """``artifacts/summaries/runs/<RUN_ID>/data/``."""
        return self.run_dir(run_id) / "data"

    def run_data_file(self, run_id: str, name: RunDataFile) -> DataPath:
        """A named artifact in the run's ``data/`` folder, e.g. ``returns_matrix.parquet``."""
        if name not in _RUN_DATA_NAMES:
            raise ValueError(f"run artifact name must be one of {sorted(map(str, _RUN_DATA_NAMES))}, got {name!r}")
        return self.run_data_dir(run_id) / name

    def run_withdrawn_dir(self, run_id: str) -> DataPath:
        """``artifacts/summaries/runs/<RUN_ID>/withdrawn/``: artifacts a later failed gate took out of every view."""
        return self.run_dir(run_id) / "withdrawn"

    def run_withdrawal_dir(self, run_id: str, number: int) -> DataPath:
        """``artifacts/summaries/runs/<RUN_ID>/withdrawn/<N>/``: the ``number``-th withdrawal of the RUN_ID."""
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise ValueError(f"withdrawal number must be a positive int, got {number!r}")
        return self.run_withdrawn_dir(run_id) / str(number)

    def run_report_dir(self, run_id: str) -> DataPath:
        """``artifacts/summaries/runs/<RUN_ID>/reports/``."""
        return self.run_dir(run_id) / "reports"

    def run_report_file(self, run_id: str, name: RunReportFile) -> DataPath:
        """A named file of the run's ``reports/`` folder, e.g. ``report.html``."""
        if name not in _RUN_REPORT_NAMES:
            raise ValueError(f"run report name must be one of {sorted(map(str, _RUN_REPORT_NAMES))}, got {name!r}")
        return self.run_report_dir(run_id) / name


class RunDataFile(StrEnum):
    """The artifacts the Alpha cycle writes into ``runs/<RUN_ID>/data/``."""

    MANIFEST = "manifest_resolved.json"
    SNAPSHOT = "snapshot.json"
    RETURNS = "returns_matrix.parquet"
    RETURNS_DROPS = "returns_drops.json"
    FEATURES_ASOF = "features_asof.parquet"
    GATE_VERDICT = "gate_verdict.json"
    SELECTION = "selection.json"
    OPTIMIZATION = "optimization.json"
    PORTFOLIO = "portfolio_flattened.json"


class RunReportFile(StrEnum):
    """The files of ``runs/<RUN_ID>/reports/``."""

    REPORT_MD = "report.md"
    REPORT_HTML = "report.html"
    WEIGHTS_PNG = "weights.png"
    CORRELATION_PNG = "cluster_correlation.png"
    EQUITY_PNG = "equity_curves.png"


#: Why and what a withdrawal moved, in ``runs/<RUN_ID>/withdrawn/<N>/``.
WITHDRAWAL_RECORD_FILE = "withdrawal.json"

# Names as plain strings too: a caller may pass "selection.json" itself (a StrEnum hashes and compares as its value).
_RUN_DATA_NAMES = frozenset(RunDataFile)
_RUN_REPORT_NAMES = frozenset(RunReportFile)
