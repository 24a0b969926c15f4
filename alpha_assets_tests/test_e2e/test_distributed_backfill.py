"""A backfill over two exchanges, split into runs that two run workers execute in parallel (Dagster's own run
queue and run launcher; each run's steps in its own process), on the SQLite and on the Postgres instance.

The simulated source stands for two more venues (``SIMB``, ``SIMC``: the same pairs and bars under their own
prefix). One partition backfill per exchange (each with its exchange in the run config) is launched through
GraphQL; with ``ALPHA_ASSETS_SYMBOLS_PER_RUN`` = 4 (conftest) each splits into a run of four symbols and a run of
two. The daemon's queue (``max_concurrent_runs: 2``) launches every run as its own process, two at a time.
Checked from outside: every partition materialised exactly once, by one of the backfill's runs; the runs' symbol
sets are disjoint and cover the backfill; the queue had two runs in flight at once (from their launch to their
end: a run's own start comes after its process loaded the code, which on a loaded machine can outlast a short
run) and never more than two; every stored file holds the venue's bars, complete up to the last closed day.
"""

from __future__ import annotations

import itertools
from typing import Any

import pandas as pd
import pytest

from alpha_assets.defs import names
from alpha_assets.lakehouse.ohlcv import read_ohlcv
from alpha_assets.sources.simulated import SimulatedExchange
from alpha_assets_tests.test_e2e.conftest import CLOCK, LOCATION_NAME, PROFILE, REPOSITORY_NAME, SYMBOLS_PER_RUN
from alpha_assets_tests.test_e2e.test_dagster_dev import (
    _BACKFILL_OK,
    _LAUNCH_BACKFILL,
    _finished_backfill,
    _runs,
)

pytestmark = pytest.mark.e2e

EXCHANGES = ("SIMB", "SIMC")
PAIRS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "DOGEUSDT")
#: Runs of one exchange's backfill: ceil(6 / 4).
RUNS_PER_EXCHANGE = -(-len(PAIRS) // SYMBOLS_PER_RUN)
MAX_CONCURRENT_RUNS = 2  # dagster.yaml and deploy/dagster.yaml
BACKFILL_TIMEOUT_S = 420

_ADD_PARTITION = """
mutation($repo: RepositorySelector!, $key: String!) {
  addDynamicPartition(repositorySelector: $repo, partitionsDefName: "symbols", partitionKey: $key) {
    __typename ... on Error { message }
  }
}
"""
_RUN_TIMES = """
query($ids: [String!]) {
  runsOrError(filter: {runIds: $ids}) { ... on Runs { results { runId status endTime
    eventConnection { events { __typename ... on MessageEvent { timestamp } } } } } }
}
"""
_MATERIALIZATIONS = """
query($partitions: [String!]) {
  assetOrError(assetKey: {path: ["ohlcv"]}) {
    ... on Asset { assetMaterializations(partitions: $partitions) { partition runId } }
  }
}
"""


def _symbol_keys(exchange: str) -> list[str]:
    return [f"{exchange}_{pair}" for pair in PAIRS]


def _launch(server, exchange: str) -> str:
    params = {
        "partitionNames": _symbol_keys(exchange),
        "assetSelection": [{"path": list(names.OHLCV.path)}],
        "title": f"e2e: {exchange} on two workers",
        "runConfigData": {
            "resources": {
                "market_source": {"config": {"clock": CLOCK, "simulated_exchange": exchange}},
                "manifest": {"config": {"profile": PROFILE}},
            }
        },
    }
    launched = server.graphql(_LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    if launched["__typename"] != "LaunchBackfillSuccess":
        server.fail(f"launchPartitionBackfill({exchange}) answered {launched}")
    return launched["backfillId"]


def _launched_at(run: dict[str, Any]) -> float:
    """When the queue launched ``run`` (epoch seconds): its run-starting event, before its process exists."""
    (stamp,) = [e["timestamp"] for e in run["eventConnection"]["events"] if e["__typename"] == "RunStartingEvent"]
    return int(stamp) / 1000


def _most_runs_in_flight(runs: list[dict[str, Any]]) -> int:
    """The largest number of runs between their launch and their end at one instant."""
    edges = sorted([(_launched_at(r), 1) for r in runs] + [(r["endTime"], -1) for r in runs])
    return max(itertools.accumulate(step for _, step in edges))


def test_two_exchange_backfill_runs_on_two_workers_and_stores_each_symbol_once(dagster_dev):
    repo = {"repositoryLocationName": LOCATION_NAME, "repositoryName": REPOSITORY_NAME}
    for symbol_key in itertools.chain.from_iterable(_symbol_keys(e) for e in EXCHANGES):
        added = dagster_dev.graphql(_ADD_PARTITION, {"repo": repo, "key": symbol_key})["addDynamicPartition"]
        assert added["__typename"] == "AddDynamicPartitionSuccess", added

    backfills = {exchange: _launch(dagster_dev, exchange) for exchange in EXCHANGES}
    runs: dict[str, dict[str, Any]] = {}
    for exchange, backfill_id in backfills.items():
        backfill = dagster_dev.wait_for(
            lambda backfill_id=backfill_id: _finished_backfill(dagster_dev, backfill_id),
            timeout=BACKFILL_TIMEOUT_S,
            what=f"backfill {backfill_id} ({exchange}) to finish",
        )
        backfill_runs = _runs(dagster_dev, {"dagster/backfill": backfill_id})
        assert backfill["status"] in _BACKFILL_OK, f"{exchange}: {backfill}, runs {backfill_runs}"
        assert len(backfill_runs) == RUNS_PER_EXCHANGE, backfill_runs
        runs.update({run["runId"]: {**run, "exchange": exchange} for run in backfill_runs})

    timed = dagster_dev.graphql(_RUN_TIMES, {"ids": list(runs)})["runsOrError"]["results"]
    assert all(run["status"] == "SUCCESS" for run in timed), [(r["runId"], r["status"]) for r in timed]
    # Two run workers took the queue's runs in parallel, and the queue never let a third one in.
    in_flight = [(r["runId"][:8], _launched_at(r), r["endTime"]) for r in timed]
    assert _most_runs_in_flight(timed) == MAX_CONCURRENT_RUNS, in_flight

    all_keys = [k for e in EXCHANGES for k in _symbol_keys(e)]
    events = dagster_dev.graphql(_MATERIALIZATIONS, {"partitions": all_keys})["assetOrError"]["assetMaterializations"]
    by_partition = {key: [e["runId"] for e in events if e["partition"] == key] for key in all_keys}
    assert all(len(run_ids) == 1 for run_ids in by_partition.values()), by_partition  # none lost, none twice
    for key, (run_id,) in by_partition.items():
        assert run_id in runs and key.startswith(runs[run_id]["exchange"] + "_"), (key, run_id)
    sizes = sorted(sum(1 for (r,) in by_partition.values() if r == run_id) for run_id in runs)
    assert sizes == sorted([SYMBOLS_PER_RUN, len(PAIRS) - SYMBOLS_PER_RUN] * len(EXCHANGES))

    last_closed_day = pd.Timestamp(CLOCK).floor("D") - pd.Timedelta(days=1)
    for exchange in EXCHANGES:
        venue = SimulatedExchange(now=pd.Timestamp(CLOCK), exchange_key=exchange)
        markets = {m.symbol_key: m for m in venue.load_markets()}
        for key in _symbol_keys(exchange):
            stored = read_ohlcv(dagster_dev.paths, key)
            days = stored["timestamp"].diff().dropna()
            assert stored["timestamp"].iloc[-1] == last_closed_day, key
            assert (days == pd.Timedelta(days=1)).all(), f"{key}: gaps or duplicates in the stored bars"
            source = venue.fetch_daily_bars(markets[key], since=stored["timestamp"].iloc[0], until=venue.now())
            assert stored["close"].to_numpy().tolist() == source["close"].to_numpy().tolist(), key
