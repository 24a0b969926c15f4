"""The features store on four layouts, same workloads, one run: the per-symbol files of before the Delta table,
Delta Lake (the project's store), Apache Iceberg and DuckLake.

Workloads, each on long-form features (``date``, ``symbol``, the 78 float64 feature columns of
``alpha_assets.features.matrix``) of ``n_symbols`` x ``n_days`` (synthetic values, fixed seed):

1. **full write**: every row, as a full backfill writes it;
2. **one new day**: one row per symbol appended, ``--days`` times (median, and the last day's figure);
3. **as-of read**: each symbol's latest row at or before the last day (what the Alpha cycle freezes), and at a
   date in the middle of the history;
4. **two concurrent writers**: two processes each appending ``--days`` days for its half of the symbols at the
   same time; commits that failed, and rows stored once each afterwards;
5. **crash mid-commit**: a process appending day after day is killed with SIGKILL at a random moment; then the
   store is read: the rows must be whole days (no partial commit) and stored once.

Layouts:

- ``files``: the store before issue 14 (per-symbol base + delta files, inode/size/mtime footers, ``flock``), loaded
  from git at ``LEGACY_COMMIT`` (it is no longer in the package); writes go symbol by symbol, as its backfill did.
- ``delta``: ``alpha_assets.lakehouse.features_store`` (deltalake; unpartitioned table, one commit for a day of
  every symbol, a provenance commit after it).
- ``iceberg``: pyiceberg with a SQLite catalog, unpartitioned, one append per day.
- ``ducklake``: DuckDB's ``ducklake`` extension (from its wheel), a DuckDB-file catalog, one INSERT per day.

Every result is checked before it is reported (row counts, one row per (symbol, date), the as-of rows equal across
layouts). Usage: ``.venv/bin/python bench/bench_table_formats.py --size small|moderate|medium|large|huge``
(100 x 300, 300 x 1,000, 1,000 x 1,000, 1,000 x 2,000, 5,000 x 2,000). The other formats need
``pip install -e '.[bench]'``.
Results go to ``bench/results/table_formats_<size>.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path

import duckdb
import duckdb_extension_ducklake
import numpy as np
import pandas as pd
import pyarrow as pa
from common import timed, write_results

from alpha_assets.features.matrix import FEATURE_COLUMNS
from alpha_assets.lakehouse import features_store
from alpha_assets.lakehouse.duckdb_views import load_delta_extension
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.lakehouse.schemas import UTC_MS

SIZES = {
    "small": (100, 300),
    "moderate": (300, 1000),
    "medium": (1000, 1000),
    "large": (1000, 2000),
    "huge": (5000, 2000),
}
SEED = 20261206
#: The last commit with the per-symbol store (features_store.py and the paths it used).
LEGACY_COMMIT = "65c1c1f69f6fa4cc1d4d2e4ef0d7e426e6467565"
ROOT = Path(__file__).resolve().parents[1]
START = pd.Timestamp("2020-01-01", tz="UTC")
DAY_MS = 86_400_000


def key_of(index: int) -> str:
    return f"BENCH_S{index:05d}USDT"


def day_ms(day: int) -> int:
    return int(START.value // 1_000_000) + day * DAY_MS


def values_of(n_rows: int, seed: int) -> np.ndarray:
    """(n_features, n_rows) float64, feature-major, with some NaN like warm-up rows."""
    values = np.random.default_rng(seed).normal(size=(len(FEATURE_COLUMNS), n_rows))
    values[:, : min(n_rows, 3)] = np.nan
    return values


def day_table(keys: list[str], day: int) -> pa.Table:
    """One row per symbol for ``day``."""
    values = values_of(len(keys), SEED + day)
    columns = {"date": pa.array([day_ms(day)] * len(keys), type=pa.int64()).cast(UTC_MS), "symbol": keys}
    columns.update((name, values[i]) for i, name in enumerate(FEATURE_COLUMNS))
    return pa.table(columns, schema=features_store.features_schema(FEATURE_COLUMNS))


def history_of(index: int, n_days: int) -> tuple[np.ndarray, np.ndarray]:
    dates = np.array([day_ms(d) for d in range(n_days)], dtype=np.int64)
    return dates, values_of(n_days, SEED + 100_000 + index)


# --- layouts -----------------------------------------------------------------------------------------------------


class Layout:
    """One store under ``root``: write the history, append a day, read as of a day, count rows."""

    name = ""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write_history(self, keys: list[str], n_days: int) -> None:
        raise NotImplementedError

    def append_day(self, keys: list[str], day: int) -> None:
        raise NotImplementedError

    def read_asof(self, keys: list[str], day: int) -> pd.DataFrame:
        raise NotImplementedError

    def rows(self) -> pd.DataFrame:
        """``date`` and ``symbol`` of every stored row."""
        raise NotImplementedError


def _latest(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.sort_values(["symbol", "date"]).groupby("symbol", as_index=False).tail(1)
    return frame.reset_index(drop=True)


class Files(Layout):
    name = "files"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.store, self.paths = legacy_store()
        self.lake = self.paths.LakehousePaths(root)

    def write_history(self, keys: list[str], n_days: int) -> None:
        for index, key in enumerate(keys):
            dates, values = history_of(index, n_days)
            with self.store.open_symbol_features(self.lake, key) as features:
                features.upsert(dates, values, FEATURE_COLUMNS, {"bars": n_days})

    def append_day(self, keys: list[str], day: int) -> None:
        table = day_table(keys, day)
        values = np.stack([table.column(name).to_numpy() for name in FEATURE_COLUMNS])
        for index, key in enumerate(keys):
            with self.store.open_symbol_features(self.lake, key) as features:
                features.append(
                    np.array([day_ms(day)], dtype=np.int64),
                    np.ascontiguousarray(values[:, index : index + 1]),
                    FEATURE_COLUMNS,
                    {"bars": day + 1},
                )

    def read_asof(self, keys: list[str], day: int) -> pd.DataFrame:
        as_of = pd.Timestamp(day_ms(day), unit="ms", tz="UTC")
        return self.store.read_features_asof(self.lake, keys, as_of)

    def rows(self) -> pd.DataFrame:
        keys = sorted({p.name.split(".")[0] for p in self.lake.features_dir.glob("*.parquet")})
        return self.store.read_features(self.lake, keys)[["date", "symbol"]]


class Delta(Layout):
    name = "delta"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.lake = LakehousePaths(root)

    def write_history(self, keys: list[str], n_days: int) -> None:
        batch: list[features_store.FeatureRows] = []
        for index, key in enumerate(keys):
            dates, values = history_of(index, n_days)
            batch.append(features_store.FeatureRows(key, dates, values, {"bars": n_days}, append=True))
            if len(batch) * n_days >= 500_000:  # the backfill's COMMIT_ROWS
                features_store.write_features(self.lake, batch, FEATURE_COLUMNS)
                batch = []
        if batch:
            features_store.write_features(self.lake, batch, FEATURE_COLUMNS)

    def append_day(self, keys: list[str], day: int) -> None:
        table = day_table(keys, day)
        values = np.stack([table.column(name).to_numpy() for name in FEATURE_COLUMNS])
        dates = np.array([day_ms(day)], dtype=np.int64)
        batch = [
            features_store.FeatureRows(key, dates, np.ascontiguousarray(values[:, i : i + 1]), {"bars": day + 1}, True)
            for i, key in enumerate(keys)
        ]
        features_store.write_features(self.lake, batch, FEATURE_COLUMNS)

    def read_asof(self, keys: list[str], day: int) -> pd.DataFrame:
        as_of = pd.Timestamp(day_ms(day), unit="ms", tz="UTC")
        rows, _ = features_store.read_features_asof(self.lake, keys, as_of)
        frame = rows.to_pandas()
        frame["date"] = frame["date"].astype("datetime64[ns, UTC]")
        return frame

    def rows(self) -> pd.DataFrame:
        with duckdb.connect() as connection:
            load_delta_extension(connection)
            return connection.execute(f"select date, symbol from delta_scan('{self.lake.features_table_uri}')").df()


class Iceberg(Layout):
    name = "iceberg"

    def _table(self):  # noqa: ANN202 - pyiceberg's Table
        from pyiceberg.catalog.sql import SqlCatalog

        catalog = SqlCatalog(
            "bench", uri=f"sqlite:///{self.root}/catalog.db", warehouse=f"file://{self.root}/warehouse"
        )
        catalog.create_namespace_if_not_exists("bench")
        if catalog.table_exists("bench.features"):
            return catalog.load_table("bench.features")
        return catalog.create_table("bench.features", schema=_iceberg_schema())

    def write_history(self, keys: list[str], n_days: int) -> None:
        table = self._table()
        for first in range(0, len(keys), max(1, 500_000 // n_days)):
            chunk = keys[first : first + max(1, 500_000 // n_days)]
            table.append(_history_table(chunk, first, n_days))

    def append_day(self, keys: list[str], day: int) -> None:
        self._table().append(_iceberg_cast(day_table(keys, day)))

    def read_asof(self, keys: list[str], day: int) -> pd.DataFrame:
        from pyiceberg.expressions import And, GreaterThan, LessThanOrEqual

        as_of = pd.Timestamp(day_ms(day), unit="ms", tz="UTC")
        table = self._table()
        window = And(
            LessThanOrEqual("date", as_of.isoformat()), GreaterThan("date", (as_of - pd.Timedelta(days=14)).isoformat())
        )
        frame = table.scan(row_filter=window).to_pandas()
        return _latest(_ns(frame[frame["symbol"].isin(keys)]))

    def rows(self) -> pd.DataFrame:
        return _ns(self._table().scan(selected_fields=("date", "symbol")).to_pandas())


def _iceberg_schema() -> pa.Schema:
    return _iceberg_cast(features_store.features_schema(FEATURE_COLUMNS).empty_table()).schema


def _iceberg_cast(table: pa.Table) -> pa.Table:
    """Iceberg stores microseconds: the table's ``date`` in that unit."""
    return table.cast(table.schema.set(0, pa.field("date", pa.timestamp("us", tz="UTC"), nullable=False)))


def _history_table(keys: list[str], first_index: int, n_days: int) -> pa.Table:
    parts = []
    for offset, key in enumerate(keys):
        dates, values = history_of(first_index + offset, n_days)
        columns = {"date": pa.array(dates).cast(UTC_MS), "symbol": [key] * n_days}
        columns.update((name, values[i]) for i, name in enumerate(FEATURE_COLUMNS))
        parts.append(pa.table(columns, schema=features_store.features_schema(FEATURE_COLUMNS)))
    return _iceberg_cast(pa.concat_tables(parts))


class DuckLake(Layout):
    name = "ducklake"

    def _connect(self) -> duckdb.DuckDBPyConnection:
        connection = duckdb.connect()
        extension = (
            Path(duckdb_extension_ducklake.__file__).parent
            / "extensions"
            / f"v{duckdb.__version__}"
            / "ducklake.duckdb_extension"
        )
        connection.execute(f"LOAD '{extension}'")
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        connection.execute(f"ATTACH 'ducklake:{self.root}/catalog.ducklake' AS lake (DATA_PATH '{self.root}/data/')")
        columns = ", ".join(f'"{name}" DOUBLE' for name in FEATURE_COLUMNS)
        connection.execute(f"CREATE TABLE IF NOT EXISTS lake.features (date TIMESTAMPTZ, symbol VARCHAR, {columns})")
        return connection

    def write_history(self, keys: list[str], n_days: int) -> None:
        with self._connect() as connection:
            for first in range(0, len(keys), max(1, 500_000 // n_days)):
                chunk = _history_table(keys[first : first + max(1, 500_000 // n_days)], first, n_days)
                connection.register("chunk", chunk)
                connection.execute("INSERT INTO lake.features SELECT * FROM chunk")
                connection.unregister("chunk")

    def append_day(self, keys: list[str], day: int) -> None:
        with self._connect() as connection:
            connection.register("day", day_table(keys, day))
            connection.execute("INSERT INTO lake.features SELECT * FROM day")

    def read_asof(self, keys: list[str], day: int) -> pd.DataFrame:
        as_of = pd.Timestamp(day_ms(day), unit="ms", tz="UTC")
        with self._connect() as connection:
            frame = connection.execute(
                "SELECT * FROM lake.features WHERE date <= ? AND date > ? AND symbol IN (SELECT unnest(?))",
                [as_of, as_of - pd.Timedelta(days=14), keys],
            ).df()
        return _latest(_ns(frame))

    def rows(self) -> pd.DataFrame:
        with self._connect() as connection:
            return _ns(connection.execute("SELECT date, symbol FROM lake.features").df())


def _ns(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["date"] = pd.to_datetime(frame["date"], utc=True).astype("datetime64[ns, UTC]")
    return frame


LAYOUTS: dict[str, type[Layout]] = {"files": Files, "delta": Delta, "iceberg": Iceberg, "ducklake": DuckLake}


def legacy_store() -> tuple[types.ModuleType, types.ModuleType]:
    """The per-symbol store (``features_store``) and its ``paths`` module as of ``LEGACY_COMMIT``, from git."""
    if "legacy_features_store" in sys.modules:
        return sys.modules["legacy_features_store"], sys.modules["legacy_paths"]
    modules = {}
    for name, path in (("legacy_paths", "paths.py"), ("legacy_features_store", "features_store.py")):
        source = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{LEGACY_COMMIT}:alpha_assets/lakehouse/{path}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        source = source.replace("from alpha_assets.lakehouse.paths import", "from legacy_paths import")
        spec = importlib.util.spec_from_loader(name, loader=None)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        exec(compile(source, f"{LEGACY_COMMIT[:7]}:{path}", "exec"), module.__dict__)  # noqa: S102
        modules[name] = module
    return modules["legacy_features_store"], modules["legacy_paths"]


# --- concurrency and crash (child processes) ---------------------------------------------------------------------


def _append_days(layout: str, root: str, keys: list[str], first_day: int, n_days: int) -> list[str]:
    """Append ``n_days`` days for ``keys``; the errors of the commits that failed."""
    store = LAYOUTS[layout](Path(root))
    errors = []
    for day in range(first_day, first_day + n_days):
        try:
            store.append_day(keys, day)
        except Exception as err:  # noqa: BLE001 - a failed commit is the measurement
            errors.append(f"day {day}: {type(err).__name__}: {str(err)[:160]}")
    return errors


def _append_forever(layout: str, root: str, keys: list[str], first_day: int, marker: str) -> None:
    """Append day after day; touch ``marker`` after each (the parent kills once one day is in)."""
    store = LAYOUTS[layout](Path(root))
    for day in range(first_day, first_day + 100_000):
        store.append_day(keys, day)
        Path(marker).touch()


def concurrent_writers(layout: str, root: Path, keys: list[str], first_day: int, n_days: int) -> dict[str, object]:
    halves = [keys[: len(keys) // 2], keys[len(keys) // 2 :]]
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        started = time.perf_counter()
        results = pool.starmap(_append_days, [(layout, str(root), half, first_day, n_days) for half in halves])
        elapsed = time.perf_counter() - started
    errors = [e for result in results for e in result]
    return {"seconds": elapsed, "failed_commits": len(errors), "commits": 2 * n_days, "errors": errors[:3]}


def crash_mid_commit(
    layout: str, root: Path, keys: list[str], first_day: int, rng: np.random.Generator, day_seconds: float
) -> dict:
    """Kill a writer appending day after day at a random moment of a day's append, once one day is in."""
    before = len(LAYOUTS[layout](root).rows())
    marker = root / "appended.marker"
    context = multiprocessing.get_context("spawn")
    writer = context.Process(target=_append_forever, args=(layout, str(root), keys, first_day, str(marker)))
    writer.start()
    while not marker.exists() and writer.is_alive():
        time.sleep(0.01)
    time.sleep(float(rng.uniform(0.0, day_seconds)))
    os.kill(writer.pid, signal.SIGKILL)
    writer.join()
    rows = LAYOUTS[layout](root).rows()
    added = rows[rows["date"] >= pd.Timestamp(day_ms(first_day), unit="ms", tz="UTC")]
    per_day = added.groupby("date")["symbol"].nunique()
    return {
        "days_committed": int(len(per_day)),
        "partial_days": int((per_day != len(keys)).sum()),
        "rows_twice": int(rows.duplicated(["symbol", "date"]).sum()),
        "rows_before": before,
        "readable": True,
    }


# --- the run -----------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--days", type=int, default=5, help="one-new-day appends timed (and per concurrent writer)")
    parser.add_argument("--layouts", default=",".join(LAYOUTS), help="comma-separated subset of " + ",".join(LAYOUTS))
    args = parser.parse_args()
    n_symbols, n_days = SIZES[args.size]
    keys = [key_of(i) for i in range(n_symbols)]
    chosen = args.layouts.split(",")
    rng = np.random.default_rng(SEED)
    figures: dict[str, dict[str, object]] = {}
    reference_asof: pd.DataFrame | None = None
    base = Path(tempfile.mkdtemp(prefix="bench_table_formats_"))
    print(
        f"{n_symbols} symbols x {n_days} days, {len(FEATURE_COLUMNS)} features; load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    try:
        for name in chosen:
            root = base / name
            root.mkdir()
            store = LAYOUTS[name](root)
            result: dict[str, object] = {}
            result["full_write_s"], _ = timed(lambda s=store: s.write_history(keys, n_days))
            appends = []
            for day in range(n_days, n_days + args.days):
                appends.append(timed(lambda s=store, d=day: s.append_day(keys, d))[0])
            result["one_new_day_median_s"] = statistics.median(appends)
            result["one_new_day_s"] = appends
            last = n_days + args.days - 1
            result["asof_latest_s"], latest = timed(lambda s=store, d=last: s.read_asof(keys, d))
            result["asof_history_s"], middle = timed(lambda s=store: s.read_asof(keys, n_days // 2))
            rows = store.rows()
            assert len(rows) == n_symbols * (n_days + args.days), (name, len(rows))
            assert not rows.duplicated(["symbol", "date"]).any(), name
            assert len(latest) == n_symbols and len(middle) == n_symbols, name
            compared = latest[["date", "symbol", *FEATURE_COLUMNS]].reset_index(drop=True)
            if reference_asof is None:
                reference_asof = compared
            else:
                pd.testing.assert_frame_equal(compared, reference_asof, check_dtype=False)
            result["concurrent"] = concurrent_writers(name, root, keys, last + 1, args.days)
            after = store.rows()
            result["concurrent"]["rows_twice"] = int(after.duplicated(["symbol", "date"]).sum())
            result["concurrent"]["rows_stored"] = len(after) - len(rows)
            result["crash"] = crash_mid_commit(
                name, root, keys, last + 1 + args.days, rng, float(result["one_new_day_median_s"])
            )
            result["disk_mb"] = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**20
            result["files"] = sum(1 for p in root.rglob("*") if p.is_file())
            figures[name] = result
            print(
                f"{name:9s} full write {result['full_write_s']:7.2f} s | one new day median "
                f"{result['one_new_day_median_s']:6.3f} s | as-of latest {result['asof_latest_s']:6.3f} s, "
                f"mid-history {result['asof_history_s']:6.3f} s | concurrent: {result['concurrent']['failed_commits']}"
                f"/{result['concurrent']['commits']} commits failed, {result['concurrent']['rows_twice']} rows twice | "
                f"crash: {result['crash']['days_committed']} days kept, {result['crash']['partial_days']} partial, "
                f"{result['crash']['rows_twice']} twice | {result['files']} files, {result['disk_mb']:.0f} MB",
                flush=True,
            )
            shutil.rmtree(root, ignore_errors=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    _print_table(figures, chosen)
    write_results(
        "table_formats",
        args.size,
        {"n_symbols": n_symbols, "n_days": n_days, "appended_days": args.days, "layouts": figures},
    )


def _print_table(figures: dict[str, dict[str, object]], chosen: list[str]) -> None:
    measures: list[tuple[str, Callable[[dict], str]]] = [
        ("full write (s)", lambda r: f"{r['full_write_s']:.2f}"),
        ("one new day, median (s)", lambda r: f"{r['one_new_day_median_s']:.3f}"),
        ("as-of read, latest (s)", lambda r: f"{r['asof_latest_s']:.3f}"),
        ("as-of read, mid-history (s)", lambda r: f"{r['asof_history_s']:.3f}"),
        (
            "2 concurrent writers: failed commits",
            lambda r: f"{r['concurrent']['failed_commits']}/{r['concurrent']['commits']}",
        ),
        ("2 concurrent writers: rows twice", lambda r: str(r["concurrent"]["rows_twice"])),
        ("crash: partial days / rows twice", lambda r: f"{r['crash']['partial_days']} / {r['crash']['rows_twice']}"),
        ("files / MB at the end", lambda r: f"{r['files']} / {r['disk_mb']:.0f}"),
    ]
    print("\n| measure | " + " | ".join(chosen) + " |")
    print("|---|" + "---|" * len(chosen))
    for label, cell in measures:
        print(f"| {label} | " + " | ".join(cell(figures[name]) for name in chosen) + " |")


if __name__ == "__main__":
    main()
