"""The immutable input of one RUN_ID: read once from the lakehouse, frozen into the run folder, reused after.

The first materialisation of a RUN_ID reads the validated candidates' bars and feature rows up to the as-of
date (the features from one version of the ``features_matrix`` Delta table, which ``snapshot.json`` records as
``features_table_version``), hashes exactly the bytes it parsed, trims the returns and writes everything into
``artifacts/summaries/runs/<RUN_ID>/data/``. Every later materialisation of that RUN_ID loads the frozen files
(after checking their hashes) and never looks at the lakehouse again, so appended bars or re-upserted
features cannot change an old run's weights.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa

from alpha_assets.alpha.returns import ReturnsMatrix, align_closes, last_grid_date
from alpha_assets.alpha.selection_params import FEATURE_COLUMNS
from alpha_assets.errors import LakehouseReadError
from alpha_assets.lakehouse.atomic import write_bytes_atomic
from alpha_assets.lakehouse.calendars import CONTINUOUS
from alpha_assets.lakehouse.features_store import read_features_asof
from alpha_assets.lakehouse.hashing import bytes_sha256, file_sha256
from alpha_assets.lakehouse.jsonio import encode_json, parse_json_bytes, read_json, write_json_atomic
from alpha_assets.lakehouse.ohlcv import wide_closes
from alpha_assets.lakehouse.parquet import read_table_and_sha256, write_table_atomic
from alpha_assets.lakehouse.paths import LakehousePaths, RunDataFile
from alpha_assets.lakehouse.schemas import OHLCV_SCHEMA

#: The feature columns a run freezes: the ones the gate and the selection read.
SNAPSHOT_FEATURE_COLUMNS = ["date", "symbol", *FEATURE_COLUMNS]
#: The frozen files, in the run's ``data/`` folder.
FROZEN_FILES = (RunDataFile.MANIFEST, RunDataFile.RETURNS, RunDataFile.RETURNS_DROPS, RunDataFile.FEATURES_ASOF)


@dataclass(frozen=True)
class LakehouseSnapshot:
    """What a RUN_ID reads from the lakehouse, with the sha256 of every file read.

    Attributes
    ----------
    as_of : Timestamp
        The last closed daily bar the run may see (UTC midnight): the day before the discovery time.
    closes : DataFrame of shape (n_observations, n_assets)
        Closes, UTC-midnight index, one column per validated symbol (sorted), aligned on the grid of the
        symbols' calendars (:func:`~alpha_assets.alpha.returns.align_closes`); NaN where a symbol had no bar
        on one of its sessions.
    features : DataFrame of shape (n_assets_with_features, 2 + n_features)
        Per symbol the latest feature row dated on or before the last date of the returns grid (``as_of``
        for a 24/7 universe, the last exchange session on or before it otherwise): ``symbol``, ``date`` and the
        ``SNAPSHOT_FEATURE_COLUMNS`` the gate and the selection read.
    metadata : DataFrame of shape (n_assets, 3)
        ``symbol``, ``market`` (exchange key) and ``sector`` from the discovery record.
    fingerprints : dict
        Data-directory-relative path -> sha256 of every lakehouse and export file read; for the features table,
        the sha256 of the rows read (Arrow IPC stream bytes), under the table's path.
    calendar : dict
        ``grid`` (``24/7`` or the exchange calendars of the rows), ``periods_per_year`` of the returns and
        ``calendars`` (symbol -> its calendar), as recorded in ``snapshot.json``.
    features_table_version : int or None
        The version of the ``features_matrix`` Delta table the feature rows were read at (None: no table yet):
        ``read_features_asof(..., version=...)`` reads the same rows again, and vacuum keeps that version.
    """

    run_id: str
    as_of: pd.Timestamp
    closes: pd.DataFrame
    features: pd.DataFrame
    metadata: pd.DataFrame
    fingerprints: dict[str, str]
    calendar: dict[str, Any] = dataclasses.field(default_factory=dict)
    features_table_version: int | None = None


@dataclass(frozen=True)
class FrozenRun:
    """The frozen inputs of a RUN_ID as loaded back from its run folder."""

    run_id: str
    as_of: pd.Timestamp
    returns: pd.DataFrame
    features: pd.DataFrame
    metadata: pd.DataFrame
    manifest: dict[str, Any]
    snapshot: dict[str, Any]


def last_closed_day(discovery_time: str | pd.Timestamp) -> pd.Timestamp:
    """The open time of the last daily bar closed at ``discovery_time``: its UTC day minus one."""
    return pd.Timestamp(discovery_time).tz_convert("UTC").floor("D") - pd.Timedelta(days=1)


def take_snapshot(paths: LakehousePaths, run_id: str) -> LakehouseSnapshot:
    """Read the validated candidates' bars and as-of feature rows of ``run_id`` from the lakehouse.

    Raises
    ------
    LakehouseReadError
        When the validated candidate list or a candidate's bars are missing or unreadable. A candidate
        without a feature file is left out of ``features`` (the gate then names it).
    """
    validated_path = paths.candidates_validated_file(run_id)
    validated_bytes = _read_bytes(validated_path)
    validated = parse_json_bytes(validated_bytes, validated_path)
    if validated.get("run_id") != run_id:
        raise LakehouseReadError(str(validated_path), f"names run {validated.get('run_id')!r}, not {run_id!r}")
    as_of = last_closed_day(validated["as_of"])
    # Candidates of runs discovered before calendars existed were all crypto (24/7).
    calendars = {c["symbol_key"]: c.get("calendar", CONTINUOUS) for c in validated["candidates"]}
    # Every member's features are read at the last row of the returns grid, so a crypto pair next to
    # equities is judged on Friday's features on a Monday, as the equities are.
    features_date = last_grid_date(calendars.values(), as_of)
    fingerprints = {_relative(paths, validated_path): bytes_sha256(validated_bytes)}
    bars = {}
    for key in validated["symbols"]:
        table, sha = read_table_and_sha256(paths.ohlcv_file(key), OHLCV_SCHEMA)
        bars[key] = table.to_pandas()
        fingerprints[_relative(paths, paths.ohlcv_file(key))] = sha
    rows, features_version = read_features_asof(
        paths, validated["symbols"], features_date, columns=SNAPSHOT_FEATURE_COLUMNS
    )
    if features_version is not None:
        fingerprints[_relative(paths, paths.features_table_dir)] = bytes_sha256(_ipc_bytes(rows))
    features = rows.to_pandas() if rows.num_rows else pd.DataFrame(columns=["symbol", "date"])
    metadata = pd.DataFrame(
        [
            {
                "symbol": c["symbol_key"],
                "market": validated.get("exchange") or c["symbol_key"].split("_")[0],
                "sector": c.get("sector") or "unknown",
            }
            for c in validated["candidates"]
        ],
        columns=["symbol", "market", "sector"],
    )
    aligned = align_closes(wide_closes(bars, until=as_of), calendars)
    return LakehouseSnapshot(
        run_id=run_id,
        as_of=as_of,
        closes=aligned.closes,
        calendar={
            "grid": aligned.grid,
            "periods_per_year": aligned.periods_per_year,
            "calendars": dict(sorted(aligned.calendars.items())),
        },
        features=features.sort_values("symbol", ignore_index=True),
        metadata=metadata,
        fingerprints=dict(sorted(fingerprints.items())),
        features_table_version=features_version,
    )


def freeze_run(
    paths: LakehousePaths,
    snapshot: LakehouseSnapshot,
    returns: ReturnsMatrix,
    manifest_document: Mapping[str, Any],
) -> dict[str, Any]:
    """Write the frozen inputs into the run folder and return the ``snapshot.json`` document."""
    run_id = snapshot.run_id
    write_json_atomic(dict(manifest_document), paths.run_data_file(run_id, RunDataFile.MANIFEST))
    frame = returns.returns.reset_index(names="date")
    write_table_atomic(
        pa.Table.from_pandas(frame, preserve_index=False), paths.run_data_file(run_id, RunDataFile.RETURNS)
    )
    write_json_atomic([_drop_json(d) for d in returns.drops], paths.run_data_file(run_id, RunDataFile.RETURNS_DROPS))
    write_table_atomic(
        pa.Table.from_pandas(snapshot.features, preserve_index=False),
        paths.run_data_file(run_id, RunDataFile.FEATURES_ASOF),
    )
    document = {
        "run_id": run_id,
        "as_of": snapshot.as_of.isoformat(),
        "inputs": snapshot.fingerprints,
        "metadata": snapshot.metadata.to_dict(orient="records"),
        "calendar": snapshot.calendar,
        "features_table_version": snapshot.features_table_version,
        "frozen": {name: file_sha256(paths.run_data_file(run_id, name)) for name in FROZEN_FILES},
    }
    write_bytes_atomic(encode_json(document), paths.run_data_file(run_id, RunDataFile.SNAPSHOT))
    return document


def is_frozen(paths: LakehousePaths, run_id: str) -> bool:
    """True when ``run_id`` already has a frozen snapshot."""
    return paths.run_data_file(run_id, RunDataFile.SNAPSHOT).exists()


def load_frozen_run(paths: LakehousePaths, run_id: str) -> FrozenRun:
    """Load a RUN_ID's frozen inputs after checking each file against the hash recorded at freezing.

    Raises
    ------
    LakehouseReadError
        When a frozen file is missing or its content changed since it was frozen.
    """
    snapshot = read_json(paths.run_data_file(run_id, RunDataFile.SNAPSHOT))
    for name, expected in snapshot["frozen"].items():
        path = paths.run_data_file(run_id, name)
        if not path.exists() or file_sha256(path) != expected:
            raise LakehouseReadError(str(path), "frozen artifact is missing or changed since the run froze it")
    returns = read_table_and_sha256(paths.run_data_file(run_id, RunDataFile.RETURNS))[0].to_pandas().set_index("date")
    returns.columns.name = None
    features = read_table_and_sha256(paths.run_data_file(run_id, RunDataFile.FEATURES_ASOF))[0].to_pandas()
    return FrozenRun(
        run_id=run_id,
        as_of=pd.Timestamp(snapshot["as_of"]),
        returns=returns,
        features=features,
        metadata=pd.DataFrame(snapshot["metadata"], columns=["symbol", "market", "sector"]),
        manifest=read_json(paths.run_data_file(run_id, RunDataFile.MANIFEST)),
        snapshot=snapshot,
    )


def _drop_json(record: Any) -> dict[str, Any]:
    return {k: (v if not isinstance(v, float) or v == v else None) for k, v in dataclasses.asdict(record).items()}


def _ipc_bytes(table: pa.Table) -> bytes:
    """The Arrow IPC stream of ``table``: the bytes a features fingerprint hashes (same rows, same bytes)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _read_bytes(path: Any) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as err:
        raise LakehouseReadError(str(path), "file does not exist: run the DataOps validation first") from err


def _relative(paths: LakehousePaths, path: Any) -> str:
    return str(path.relative_to(paths.root))
