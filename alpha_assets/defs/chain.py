"""The chain of one RUN_ID: which symbols each link covers, and the settings every link carries.

A chain is discovery -> ingestion (bars, audit and features in one run) -> validation -> flow_production,
whoever starts it (the UI, the schedule, a sensor or the command line). Two rules hold for every link:

- **Exactly the RUN_ID's universe.** A Dagster run covers one contiguous range of partition keys, and the
  ``symbols`` partitions are ordered by insertion across every RUN_ID and data folder that used the instance.
  A symbol link therefore runs once per contiguous stretch of the universe in that order (one run when the
  universe was added together, the usual case) and never touches a symbol outside the universe.
- **The settings of the first link.** Each link copies the ``resources`` section of the run config (manifest
  path and profile, source, exchange, files folder, clock, data folder) and the user's tags from the link
  before it, and tags itself with the RUN_ID and the chain (the Dagster run id of its discovery), so every run
  of a chain reads the same data folder with the same profile at the same clock, and shows in the UI under
  its RUN_ID.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    RunsFilter,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
    SYSTEM_TAG_PREFIX,
)

from alpha_assets.defs import names
from alpha_assets.lakehouse.jsonio import read_json
from alpha_assets.lakehouse.paths import LakehousePaths

#: Tags a link sets itself; never copied from the link before.
_CHAIN_OWNED_TAGS = frozenset({names.RUN_ID_TAG, names.CHAIN_TAG, names.PART_TAG})
#: Run statuses after which a run will not write anything any more.
FINISHED_STATUSES = frozenset({DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED})


def contiguous_ranges(ordered: Sequence[str], symbol_keys: Sequence[str], run_id: str) -> list[tuple[str, str]]:
    """The fewest ``(first, last)`` ranges of ``ordered`` that together hold exactly ``symbol_keys``.

    Parameters
    ----------
    ordered : sequence of str
        Every ``symbols`` partition key, in the instance's order.
    symbol_keys : sequence of str
        The RUN_ID's symbols.
    run_id : str
        Named in the error message.

    Raises
    ------
    ValueError
        When no symbol is given, or a symbol is not a ``symbols`` partition.
    """
    position = {key: i for i, key in enumerate(ordered)}
    unknown = sorted(k for k in set(symbol_keys) if k not in position)
    if unknown or not symbol_keys:
        raise ValueError(
            f"run {run_id}: {len(unknown)} symbols {unknown[:5]} are not partitions of 'symbols'"
            if unknown
            else f"run {run_id}: no symbol to run"
        )
    indices = sorted({position[k] for k in symbol_keys})
    ranges: list[tuple[str, str]] = []
    start = previous = indices[0]
    for index in indices[1:]:
        if index != previous + 1:
            ranges.append((ordered[start], ordered[previous]))
            start = index
        previous = index
    ranges.append((ordered[start], ordered[previous]))
    return ranges


def symbol_link_tags(
    instance: DagsterInstance, symbol_keys: Sequence[str], chain_tags: Mapping[str, str]
) -> list[dict[str, str]]:
    """Tags of the runs of one symbol link: one run per contiguous range, each tagged ``i/n``."""
    ranges = contiguous_ranges(instance.get_dynamic_partitions("symbols"), symbol_keys, chain_tags[names.RUN_ID_TAG])
    return [
        {
            **chain_tags,
            ASSET_PARTITION_RANGE_START_TAG: first,
            ASSET_PARTITION_RANGE_END_TAG: last,
            names.PART_TAG: f"{i}/{len(ranges)}",
        }
        for i, (first, last) in enumerate(ranges, start=1)
    ]


def candidate_symbols(paths: LakehousePaths, run_id: str) -> list[str]:
    """The symbols discovery chose for ``run_id``."""
    return [c["symbol_key"] for c in read_json(paths.candidates_file(run_id))["candidates"]]


@dataclass(frozen=True)
class ChainSettings:
    """What every link of a chain carries: the run config's resources and the tags.

    Attributes
    ----------
    run_config : dict
        ``{"resources": {...}}`` as the first link was given it (empty: the code location's defaults).
    tags : dict
        The user's tags, the RUN_ID tag and the chain tag.
    """

    run_config: dict[str, Any]
    tags: dict[str, str]

    @classmethod
    def of_run(cls, run: DagsterRun, run_id: str) -> ChainSettings:
        """The settings ``run`` carries for the next link of RUN_ID ``run_id``.

        A run without a chain tag starts a chain: its own Dagster run id names it.
        """
        resources = run.run_config.get("resources")
        tags = {k: v for k, v in run.tags.items() if not k.startswith(SYSTEM_TAG_PREFIX) and k not in _CHAIN_OWNED_TAGS}
        tags.update({names.RUN_ID_TAG: run_id, names.CHAIN_TAG: run.tags.get(names.CHAIN_TAG) or run.run_id})
        return cls(run_config={"resources": dict(resources)} if resources else {}, tags=tags)

    def lakehouse_paths(self, default: LakehousePaths) -> LakehousePaths:
        """The chain's data folder: its lakehouse config if it set one, else ``default``."""
        data_dir = self.run_config.get("resources", {}).get("lakehouse", {}).get("config", {}).get("data_dir")
        return LakehousePaths(data_dir) if data_dir else default

    @property
    def chain_id(self) -> str:
        """The Dagster run id of the chain's discovery (or of the run that started it)."""
        return self.tags[names.CHAIN_TAG]


def run_id_of(run: DagsterRun, *, per_run: bool) -> str | None:
    """The RUN_ID of a link: its tag, else (for a ``runs``-partitioned link) its partition."""
    return run.tags.get(names.RUN_ID_TAG) or (run.tags.get(PARTITION_NAME_TAG) if per_run else None)


def link_runs(instance: DagsterInstance, job_name: str, chain_id: str) -> list[DagsterRun]:
    """The runs of ``job_name`` in the chain ``chain_id``."""
    return list(instance.get_runs(RunsFilter(job_name=job_name, tags={names.CHAIN_TAG: chain_id})))


def link_succeeded(runs: Sequence[DagsterRun]) -> bool:
    """Whether every part of a link (tagged ``i/n``) succeeded in its newest run.

    ``runs`` come newest first (as the instance lists them), so a part that failed and was re-executed from
    the UI counts by its re-execution.
    """
    latest: dict[str, DagsterRun] = {}
    for run in runs:
        latest.setdefault(run.tags.get(names.PART_TAG, "1/1"), run)
    if not latest or any(r.status != DagsterRunStatus.SUCCESS for r in latest.values()):
        return False
    total = int(next(iter(latest)).split("/")[1])
    return set(latest) == {f"{i}/{total}" for i in range(1, total + 1)}


def in_flight(instance: DagsterInstance, run_id: str) -> bool:
    """Whether a run of ``run_id`` (by RUN_ID tag or by partition) has not finished yet."""
    unfinished = [s for s in DagsterRunStatus if s not in FINISHED_STATUSES]
    return any(
        instance.get_run_ids(RunsFilter(statuses=unfinished, tags={tag: run_id}), limit=1)
        for tag in (names.RUN_ID_TAG, PARTITION_NAME_TAG)
    )


def export_writer(instance: DagsterInstance, run_id: str) -> DagsterRun | None:
    """The run that last materialised ``candidates_validated`` for ``run_id`` on this instance, if any."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(names.CANDIDATES_VALIDATED.path), asset_partitions=[run_id]),
        limit=1,
        ascending=False,
    ).records
    return instance.get_run_by_id(records[0].run_id) if records else None


def tag_run_with_run_id(context: AssetExecutionContext, run_id: str) -> None:
    """Tag the step's run with its RUN_ID when it was launched without it.

    A run started from the UI's launchpad or by the automation sensor names its RUN_ID only in its partition;
    with the tag, every run of a RUN_ID shows under one filter (``alpha_assets/run_id``) and the chain sensors
    find it. Queue limits apply to launch tags only: ``dagster.yaml`` also limits runs per partition.
    """
    if not context.run.tags.get(names.RUN_ID_TAG):
        context.instance.add_run_tags(context.run.run_id, {names.RUN_ID_TAG: run_id})
