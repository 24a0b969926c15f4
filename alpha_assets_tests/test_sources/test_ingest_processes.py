"""Ingestion spread over forked worker processes, against the same work done in one process.

Exercised on the simulated exchange (a source that forks may call) and on a source of the network kind (one
that does not say so): the reports and every byte of the lakehouse equal those of the one-process run; the
source's request count covers the workers' requests; which process called the source; a lakehouse in an object
store; a worker that dies or raises; the helper's order and its refusal of a chunk function that loses results.
"""

from __future__ import annotations

import contextvars
import gc
import os
import signal
from pathlib import Path

import pandas as pd
import pytest

from alpha_assets.lakehouse.ohlcv import read_ohlcv
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.processes import WorkerProcessDiedError, map_chunks_in_forked_processes
from alpha_assets.sources.base import Market, is_fork_safe
from alpha_assets.sources.ingest import ingest_symbols, ingest_symbols_then
from alpha_assets.sources.params import IngestionParams
from alpha_assets.sources.simulated import SimulatedExchange

DAY_1 = pd.Timestamp("2026-11-25T12:00:00Z")
DAY_2 = DAY_1 + pd.Timedelta(days=1)
PARAMS = IngestionParams(history_days=300, warmup_days=100)
N_LISTED = 30


class CallerRecordingExchange(SimulatedExchange):
    """The simulated exchange as a network source would be: not fork-safe; records the pid of each call."""

    fork_safe = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.caller_pids: set[int] = set()

    def fetch_daily_bars(self, market: Market, *, since: pd.Timestamp, until: pd.Timestamp) -> pd.DataFrame:
        self.caller_pids.add(os.getpid())
        return super().fetch_daily_bars(market, since=since, until=until)


def _markets(source: SimulatedExchange) -> list[Market]:
    return [m for m in source.load_markets() if m.quote == "USDT"]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _two_days(data_dir: Path, processes: int, source_type=SimulatedExchange):
    """Ingest two days; the day-2 reports and source."""
    paths = LakehousePaths(data_dir)
    for day in (DAY_1, DAY_2):
        source = source_type(n_symbols=N_LISTED, now=day)
        markets = _markets(source)
        reports = ingest_symbols(source, markets, paths, now=day, params=PARAMS, processes=processes)
    return reports, source


def test_ingest_in_two_processes_equals_one_process_byte_for_byte(tmp_path):
    assert is_fork_safe(SimulatedExchange())
    one_reports, one_source = _two_days(tmp_path / "one", processes=1)
    two_reports, two_source = _two_days(tmp_path / "two", processes=2)
    assert len(two_reports) > 20
    assert two_reports == one_reports
    assert {r.new_bars for r in two_reports if r.symbol_key != "SIM_HOLEUSDT"} == {1}
    assert _tree(tmp_path / "two") == _tree(tmp_path / "one")
    # The workers' requests are the source's: one a symbol, and the pair with planted gaps re-fetches them.
    assert two_source.requests_made == one_source.requests_made == sum(r.requests for r in two_reports) + 1


def test_a_source_that_does_not_say_it_forks_is_called_from_this_process_only(tmp_path):
    assert not is_fork_safe(CallerRecordingExchange())
    reports, source = _two_days(tmp_path / "net", processes=2, source_type=CallerRecordingExchange)
    assert source.caller_pids == {os.getpid()}
    one_reports, _ = _two_days(tmp_path / "one", processes=1)
    assert reports == one_reports


def test_an_object_store_lakehouse_is_ingested_in_this_process(tmp_path, s3_data_dir):
    pids: set[int] = set()

    class Recording(SimulatedExchange):
        def fetch_daily_bars(self, market, *, since, until):
            pids.add(os.getpid())
            return super().fetch_daily_bars(market, since=since, until=until)

    source = Recording(n_symbols=N_LISTED, now=DAY_1)
    markets = _markets(source)[:4]
    reports = ingest_symbols(source, markets, LakehousePaths(s3_data_dir), now=DAY_1, params=PARAMS, processes=2)
    assert pids == {os.getpid()} and [r.status.value for r in reports] == ["ok"] * 4


def test_a_follow_up_runs_after_each_symbol_in_the_process_that_ingested_it(tmp_path):
    paths = LakehousePaths(tmp_path)
    source = SimulatedExchange(n_symbols=N_LISTED, now=DAY_1)
    markets = _markets(source)

    def stored_rows(market, report):
        # The file the ingestion just wrote, read back where it was written.
        return os.getpid(), market.symbol_key, len(read_ohlcv(paths, market.symbol_key)), report.bars_after

    ingested = ingest_symbols_then(source, markets, paths, now=DAY_1, params=PARAMS, processes=2, then=stored_rows)
    follow_ups = [follow_up for _, follow_up in ingested]
    assert (
        [key for _, key, _, _ in follow_ups] == [r.symbol_key for r, _ in ingested] == [m.symbol_key for m in markets]
    )
    assert all(rows == bars_after > 0 for _, _, rows, bars_after in follow_ups)
    pids = {pid for pid, _, _, _ in follow_ups}
    assert len(pids) == 2 and os.getpid() not in pids
    assert source.requests_made == sum(r.requests for r, _ in ingested) + 1  # and load_markets
    one = ingest_symbols_then(
        SimulatedExchange(n_symbols=N_LISTED, now=DAY_1),
        markets,
        LakehousePaths(tmp_path / "one"),
        now=DAY_1,
        params=PARAMS,
        then=lambda market, report: os.getpid(),
    )
    assert {pid for _, pid in one} == {os.getpid()}
    assert [r for r, _ in one] == [r for r, _ in ingested]


def _square_each(chunk):
    return [x * x for x in chunk]


def test_map_chunks_returns_the_results_in_the_order_of_the_items_from_other_processes():
    pids = map_chunks_in_forked_processes(lambda chunk: [os.getpid()] * len(chunk), list(range(9)), processes=3)
    assert os.getpid() not in pids, "every chunk ran in a worker"
    assert all(len(set(pids[first::3])) == 1 for first in range(3)), "the chunks interleave the items"
    assert map_chunks_in_forked_processes(_square_each, list(range(11)), processes=3) == [x * x for x in range(11)]
    assert map_chunks_in_forked_processes(lambda chunk: [os.getpid()], [1], processes=4) == [os.getpid()]


#: Set by a caller around a call of the helper (as ``directory_syncs_batched`` sets the directories it owes).
CALLERS_VARIABLE: contextvars.ContextVar[str | None] = contextvars.ContextVar("callers_variable", default=None)


def test_map_chunks_runs_the_workers_in_an_empty_context():
    # A directory fsync owed in a worker to the caller's batch of syncs would never be made: whatever the caller
    # set in its context stays behind, and the worker's write batches are its own.
    token = CALLERS_VARIABLE.set("the caller's")
    try:
        seen = map_chunks_in_forked_processes(
            lambda chunk: [CALLERS_VARIABLE.get()] * len(chunk), list(range(4)), processes=2
        )
    finally:
        CALLERS_VARIABLE.reset(token)
    assert seen == [None] * 4


def test_map_chunks_raises_the_error_of_a_worker():
    def fail_on_seven(chunk):
        if 7 in chunk:
            raise ValueError("item 7 is refused")
        return list(chunk)

    with pytest.raises(ValueError, match="item 7 is refused"):
        map_chunks_in_forked_processes(fail_on_seven, list(range(10)), processes=2)
    with pytest.raises(ValueError, match="returned 1 results for 5 items"):
        map_chunks_in_forked_processes(lambda chunk: [0], list(range(10)), processes=2)


def test_map_chunks_names_a_worker_that_was_killed():
    def die(chunk):
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(WorkerProcessDiedError, match="died before returning its results"):
        map_chunks_in_forked_processes(die, list(range(4)), processes=2)


def test_map_chunks_leaves_the_callers_objects_out_of_the_workers_collections():
    # Collected in a worker, each object inherited from the caller would have its page copied (copy-on-write).
    tracked_here = len(gc.get_objects())
    frozen_in_workers = map_chunks_in_forked_processes(
        lambda chunk: [gc.get_freeze_count()] * len(chunk), list(range(4)), processes=2
    )
    assert min(frozen_in_workers) >= tracked_here * 0.9, "a worker inherits the caller's objects frozen"
    assert gc.get_freeze_count() == 0, "the caller's objects are collected again after the workers ended"


def test_map_chunks_keeps_objects_the_caller_froze_frozen():
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        map_chunks_in_forked_processes(lambda chunk: list(chunk), list(range(4)), processes=2)
        assert gc.get_freeze_count() >= frozen
    finally:
        gc.unfreeze()
