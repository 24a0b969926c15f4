"""Peak memory of the files source on large files: the reads stream in batches instead of loading the file.

Sizes: small = 20 MB files (smoke), large = 200 MB files (issue 11). Two generated files, each read in a fresh
process whose peak resident memory is reported next to a process that only imports the source (the floor):

- ``wide``: daily bars with 400 extra indicator columns (as TradingView exports them), ~7.8 kB per row;
  discovery (``fetch_tickers``) and ingestion (``fetch_daily_bars`` of the whole history) are measured, and
  for contrast ``pandas.read_csv`` of the same file (what a whole-file read costs).
- ``minutes``: one-minute bars in a ``_1d.csv`` (50 bytes per row), refused as intraday after the first block.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from common import peak_rss_mb, write_results

SIZES_MB = {"small": 20, "large": 200}
CLOCK = pd.Timestamp("2026-11-25T12:00:00Z")
EXTRA_COLUMNS = 400


def _write_wide(path: Path, megabytes: int) -> int:
    """Daily bars ending the day before CLOCK, ~7.8 kB per row; returns the number of rows."""
    row_bytes = 7_820  # measured: a date, five prices and 400 values of up to 17 digits
    n_rows = megabytes * 1_000_000 // row_bytes
    rng = np.random.default_rng(11)
    days = pd.date_range(end=CLOCK.floor("D") - pd.Timedelta(days=1), periods=n_rows, freq="D", tz="UTC")
    header = "time,open,high,low,close,Volume," + ",".join(f"indicator_{i}" for i in range(EXTRA_COLUMNS))
    with open(path, "w") as handle:
        handle.write(header + "\n")
        for start in range(0, n_rows, 1000):
            chunk = days[start : start + 1000]
            close = rng.uniform(10, 1000, len(chunk))
            extra = rng.normal(0, 1e6, (len(chunk), EXTRA_COLUMNS))
            for day, price, values in zip(chunk.strftime("%Y-%m-%d"), close, extra, strict=True):
                prices = f"{price * 0.99:.6f},{price * 1.02:.6f},{price * 0.97:.6f},{price:.6f},{price * 1e3:.2f}"
                handle.write(f"{day},{prices}," + ",".join(f"{v:.17g}" for v in values) + "\n")
    return n_rows


def _write_minutes(path: Path, megabytes: int) -> int:
    """One-minute bars (epoch milliseconds), 50 bytes per row; returns the number of rows."""
    n_rows = megabytes * 1_000_000 // 50
    start = int((CLOCK.floor("D") - pd.Timedelta(minutes=n_rows)).value // 1_000_000)
    with open(path, "w") as handle:
        handle.write("timestamp,open,high,low,close,volume\n")
        for first in range(0, n_rows, 100_000):
            stamps = start + 60_000 * np.arange(first, min(first + 100_000, n_rows))
            handle.writelines(f"{t},101.25,102.5,100.75,101.5,12.345678\n" for t in stamps)
    return n_rows


def _worker(mode: str, path: str) -> None:
    """Run one read in this process and print its figures as JSON."""
    from alpha_assets.errors import SourceError
    from alpha_assets.sources.files import FileSource

    folder = Path(path).parent
    started = time.perf_counter()
    result: dict[str, object] = {}
    if mode == "tickers":
        result["tickers"] = len(FileSource(folder, now=CLOCK).fetch_tickers())
    elif mode == "bars":
        source = FileSource(folder, now=CLOCK)
        market = source.load_markets()[0]
        result["bars"] = len(source.fetch_daily_bars(market, since=pd.Timestamp("1900-01-01", tz="UTC"), until=CLOCK))
    elif mode == "refused":
        source = FileSource(folder, now=CLOCK)
        try:
            source.fetch_daily_bars(source.load_markets()[0], since=pd.Timestamp("1900-01-01", tz="UTC"), until=CLOCK)
        except SourceError as err:
            result["refused"] = str(err)[:80]
    elif mode == "pandas":
        result["rows"] = len(pd.read_csv(path))
    result.update(seconds=round(time.perf_counter() - started, 2), peak_rss_mb=round(peak_rss_mb(), 1))
    print(json.dumps(result))


def _measure(mode: str, path: Path) -> dict[str, object]:
    output = subprocess.run(
        [sys.executable, __file__, "--worker", mode, str(path)], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=SIZES_MB, default="small")
    parser.add_argument("--worker", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(*args.worker)
        return
    megabytes = SIZES_MB[args.size]
    results: dict[str, object] = {"size": args.size}
    with tempfile.TemporaryDirectory() as tmp:
        wide, minutes = Path(tmp) / "wide", Path(tmp) / "minutes"
        wide.mkdir()
        minutes.mkdir()
        wide_file, minutes_file = wide / "TVC_WIDE_1d.csv", minutes / "BINANCE_BTCUSDT_1d.csv"
        results["wide_rows"] = _write_wide(wide_file, megabytes)
        results["minute_rows"] = _write_minutes(minutes_file, megabytes)
        results["wide_mb"] = round(wide_file.stat().st_size / 1e6, 1)
        results["minutes_mb"] = round(minutes_file.stat().st_size / 1e6, 1)
        results["import_only"] = _measure("none", wide_file)
        results["wide_tickers"] = _measure("tickers", wide_file)
        results["wide_bars"] = _measure("bars", wide_file)
        results["wide_pandas_read_csv"] = _measure("pandas", wide_file)
        results["minutes_refused"] = _measure("refused", minutes_file)
    # The reads must be right before their memory means anything.
    assert results["wide_tickers"]["tickers"] == 1 and results["wide_bars"]["bars"] == results["wide_rows"]
    assert "intraday bars" in results["minutes_refused"]["refused"]
    for name, value in results.items():
        print(f"{name}: {value}")
    write_results("files_source", args.size, results)


if __name__ == "__main__":
    main()
