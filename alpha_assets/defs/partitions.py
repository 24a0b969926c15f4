"""The two dynamic partitionings, symbols (lakehouse files) and runs (RUN_IDs), and how symbol backfills split."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from dagster import AssetCheckSpec, AssetKey, AssetsDefinition, BackfillPolicy, DynamicPartitionsDefinition, asset

from alpha_assets.defs.versions import asset_code_version
from alpha_assets.processes import objects_left_out_of_collections

#: One partition per symbol key (``BINANCE_BTCUSDT``), added by discovery.
symbols_partitions = DynamicPartitionsDefinition(name="symbols")
#: One partition per RUN_ID, added by discovery (or by the export sensor for a dropped export).
runs_partitions = DynamicPartitionsDefinition(name="runs")


def runs_asset(
    key: AssetKey, *, group_name: str, owners: list[str], kind: str, **options: Any
) -> Callable[..., AssetsDefinition]:
    """``@asset`` of one file per RUN_ID: partitioned by ``runs``, versioned by the code that computes it.

    ``options`` are the asset's other arguments (``deps``, ``check_specs``, ``metadata``, ...).
    """
    return asset(
        key=key,
        group_name=group_name,
        partitions_def=runs_partitions,
        kinds={kind},
        owners=owners,
        code_version=asset_code_version(key),
        **options,
    )


#: Environment variable read when the code location loads: the most symbols one run of a backfill takes.
SYMBOLS_PER_RUN_ENV = "ALPHA_ASSETS_SYMBOLS_PER_RUN"
#: One machine: a run costs seconds of process start-up, so a whole universe fits in one (505 symbols today).
DEFAULT_SYMBOLS_PER_RUN = 1000


def symbols_backfill_policy(environ: Mapping[str, str] = os.environ) -> BackfillPolicy:
    """How a backfill of ``symbols`` partitions splits into runs: at most ``$ALPHA_ASSETS_SYMBOLS_PER_RUN`` each.

    Each run processes its symbols together (one source session, batched feature computation); the run queue
    hands the runs to as many run workers as ``max_concurrent_runs`` allows (docs/deploy.md). A cluster sets a
    smaller number to spread a backfill over more workers.

    Raises
    ------
    ValueError
        When the variable is set to something other than a positive integer.
    """
    text = environ.get(SYMBOLS_PER_RUN_ENV) or str(DEFAULT_SYMBOLS_PER_RUN)
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"${SYMBOLS_PER_RUN_ENV} must be a positive integer, got {text!r}")
    return BackfillPolicy.multi_run(max_partitions_per_run=int(text))


#: The policy of every ``symbols``-partitioned asset, read once when the code location loads.
symbols_backfill = symbols_backfill_policy()


def symbols_asset(
    key: AssetKey,
    *,
    group_name: str,
    owners: list[str],
    checks: Mapping[str, str],
    kinds: frozenset[str] = frozenset({"parquet"}),
    **options: Any,
) -> Callable[..., AssetsDefinition]:
    """``@asset`` of one parquet file per symbol, partitioned by ``symbols``, versioned by the code computing it.

    Backfills split into runs by :data:`symbols_backfill`.
    ``checks`` maps each check's name to its description. The checks are partitioned by ``symbols`` too:
    one status per symbol, so a one-symbol run never turns another symbol's failure green. ``kinds`` are the
    storage kinds the UI shows (``deltalake`` for a table rather than files). ``options`` are the asset's other
    arguments (``deps``, ``metadata``, ...).

    The compute function is a generator (results, then per-symbol check evaluations). It runs, with Dagster's
    handling of what it yields, leaving the objects the step's process held before it out of garbage collections
    (:func:`~alpha_assets.processes.objects_left_out_of_collections`): a range run makes thousands of events, and
    one full collection of a Dagster process took as long as 500 of them.
    """
    define = asset(
        key=key,
        group_name=group_name,
        partitions_def=symbols_partitions,
        backfill_policy=symbols_backfill,
        check_specs=[
            AssetCheckSpec(name, asset=key, description=text, partitions_def=symbols_partitions)
            for name, text in checks.items()
        ],
        kinds=set(kinds),
        owners=owners,
        code_version=asset_code_version(key),
        **options,
    )

    def decorator(compute: Callable[..., Iterator[Any]]) -> AssetsDefinition:
        @functools.wraps(compute)
        def compute_with_older_objects_left_out(*args: Any, **kwargs: Any) -> Iterator[Any]:
            with objects_left_out_of_collections():
                yield from compute(*args, **kwargs)

        return define(compute_with_older_objects_left_out)

    return decorator
