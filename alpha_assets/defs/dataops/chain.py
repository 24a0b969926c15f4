"""The links of flow_data for one RUN_ID: which symbol range each symbol-partitioned run covers.

A run carries one contiguous range of partition keys, and dynamic partitions are ordered by insertion, so a
RUN_ID's symbol link covers the smallest range holding all of its symbols; the symbols in between are
refreshed too (incrementally, about one request each), which is what a daily refresh wants anyway.
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster import DagsterInstance
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from alpha_assets.defs import keys
from alpha_assets.lakehouse.parquet import read_json
from alpha_assets.lakehouse.paths import LakehousePaths


def symbol_range_tags(instance: DagsterInstance, symbol_keys: Sequence[str], run_id: str) -> dict[str, str]:
    """Tags of a single run over the smallest partition range covering ``symbol_keys``.

    Raises
    ------
    ValueError
        When a symbol is not a ``symbols`` partition yet, or no symbol is given.
    """
    ordered = instance.get_dynamic_partitions("symbols")
    position = {key: i for i, key in enumerate(ordered)}
    unknown = [k for k in symbol_keys if k not in position]
    if unknown or not symbol_keys:
        raise ValueError(f"run {run_id}: symbols {unknown[:5]} are not partitions of 'symbols' (or none given)")
    indices = sorted(position[k] for k in symbol_keys)
    return {
        ASSET_PARTITION_RANGE_START_TAG: ordered[indices[0]],
        ASSET_PARTITION_RANGE_END_TAG: ordered[indices[-1]],
        keys.RUN_ID_TAG: run_id,
    }


def candidate_symbols(paths: LakehousePaths, run_id: str) -> list[str]:
    """The symbols discovery chose for ``run_id``."""
    return [c["symbol_key"] for c in read_json(paths.candidates_file(run_id))["candidates"]]


def validated_symbols(paths: LakehousePaths, run_id: str) -> list[str]:
    """The symbols that passed the audit for ``run_id``."""
    return list(read_json(paths.candidates_validated_file(run_id))["symbols"])
