"""How a UI backfill of ``symbols`` partitions becomes runs: what README and docs/runbook.md say happens.

Dagster's backfill daemon turns the selected partitions of ``ohlcv`` and ``features_matrix`` into run requests
with ``build_run_requests_with_backfill_policies`` (``dagster/_core/execution/asset_backfill.py``): one run per
contiguous stretch of the selection in the instance's partition order, cut at the backfill policy's
``max_partitions_per_run``. These tests call that function on this code location's asset graph and a real
instance, so a Dagster upgrade that changes it (dagster-io/dagster#32335 asks for one run per selection) fails
here and the docs get updated. The queue's side is checked on the two instance files' ``run_queue`` settings: the
runs of one backfill are taken ``max_concurrent_runs`` at a time, no tag limit holding them back. The daemon and
the run processes are left to the e2e tests and to ``bench/bench_chain.py``, which measures what each run costs.
"""

from __future__ import annotations

import pytest
import yaml
from dagster import DagsterInstance, DagsterRun
from dagster._core.definitions.automation_tick_evaluation_context import build_run_requests_with_backfill_policies
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.definitions.partitions.context import partition_loading_context
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG, BACKFILL_ID_TAG
from dagster._utils.tags import TagConcurrencyLimitsCounter

from alpha_assets.cli import PROJECT_DAGSTER_YAML
from alpha_assets.definitions import build_definitions
from alpha_assets.defs import names

#: 12 symbol partitions, in the order discovery added them.
SYMBOLS = [f"SIM_{base}USDT" for base in "ABCDEFGHIJKL"]


@pytest.fixture(scope="module")
def instance(tmp_path_factory) -> DagsterInstance:
    with DagsterInstance.local_temp(tempdir=str(tmp_path_factory.mktemp("home"))) as instance:
        instance.add_dynamic_partitions("symbols", SYMBOLS)
        yield instance


def _requests(instance: DagsterInstance, selected: list[str]) -> list:
    """The run requests of a UI backfill of ``ohlcv`` + ``features_matrix`` over ``selected``."""
    graph = build_definitions().resolve_asset_graph()
    wanted = {AssetKeyPartitionKey(key, symbol) for key in (names.OHLCV, names.FEATURES_MATRIX) for symbol in selected}
    with partition_loading_context(dynamic_partitions_store=instance):
        return list(build_run_requests_with_backfill_policies(wanted, graph, instance))


def _runs(instance: DagsterInstance, selected: list[str]) -> list[list[str]]:
    """The symbols each run of a UI backfill of ``ohlcv`` + ``features_matrix`` over ``selected`` covers."""
    runs = []
    for request in _requests(instance, selected):
        assert set(request.asset_selection) == {names.OHLCV, names.FEATURES_MATRIX}, "both assets in every run"
        first, last = request.tags[ASSET_PARTITION_RANGE_START_TAG], request.tags[ASSET_PARTITION_RANGE_END_TAG]
        runs.append(SYMBOLS[SYMBOLS.index(first) : SYMBOLS.index(last) + 1])
    return sorted(runs)


def test_backfill_of_a_contiguous_range_is_one_run(instance):
    assert _runs(instance, SYMBOLS[2:9]) == [SYMBOLS[2:9]]


def test_backfill_of_hand_picked_symbols_is_one_run_per_contiguous_stretch_and_never_a_foreign_symbol(instance):
    picked = [SYMBOLS[1], SYMBOLS[2], SYMBOLS[5], SYMBOLS[8], SYMBOLS[9], SYMBOLS[10], SYMBOLS[0]]
    runs = _runs(instance, picked)
    assert runs == [SYMBOLS[0:3], [SYMBOLS[5]], SYMBOLS[8:11]], "A-C, F, I-K: three stretches, three runs"
    assert sorted(symbol for run in runs for symbol in run) == sorted(picked)


def test_backfill_of_every_other_symbol_is_one_run_each(instance):
    assert _runs(instance, SYMBOLS[::2]) == [[symbol] for symbol in SYMBOLS[::2]]


#: The instance files of a single machine and of a deployment.
INSTANCE_FILES = [PROJECT_DAGSTER_YAML, PROJECT_DAGSTER_YAML.parent / "deploy" / "dagster.yaml"]


@pytest.mark.parametrize("instance_file", INSTANCE_FILES, ids=["local", "deploy"])
def test_runs_of_one_hand_picked_backfill_are_taken_two_at_a_time(instance, instance_file):
    queue = yaml.safe_load(instance_file.read_text())["run_queue"]
    # As the backfill daemon submits them (asset_backfill.py): the request's tags plus the backfill's id.
    queued = [
        DagsterRun(job_name="__ASSET_JOB", tags={**request.tags, BACKFILL_ID_TAG: "abcdefgh"})
        for request in _requests(instance, SYMBOLS[::2])
    ]
    # The queue's pass over them with none finished (queued_run_coordinator_daemon.py): the run limit, then the
    # tag limits of the runs already launched.
    launched: list[DagsterRun] = []
    for run in queued:
        counter = TagConcurrencyLimitsCounter(queue["tag_concurrency_limits"], launched)
        if len(launched) < queue["max_concurrent_runs"] and not counter.is_blocked(run):
            launched.append(run)
    assert queue["max_concurrent_runs"] == 2, "README and docs/runbook.md say two at a time"
    assert len(launched) == 2, "no tag limit may hold back a second run of the same backfill"
