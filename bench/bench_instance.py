"""Dagster's own cost of one single-run backfill over 505 symbol partitions, per instance storage (issues 2, 14).

A trivial asset shaped like ``ohlcv`` (dynamic partitions, 6 WARN checks partitioned like it, one check evaluation
per check and partition as ``defs/dataops/checks.py`` emits them, the same metadata keys) runs once over every
partition in one run, in-process, as ``orchestration/runner.py`` runs a link, on a fresh ``DAGSTER_HOME`` (and a fresh
Postgres database) per run. Variants, interleaved in one script run, each in its own process:

- ``dagster-default``: no ``dagster.yaml`` storage block (Dagster's SQLite event log);
- ``project``: the project's ``dagster.yaml`` (the same storage with pooled connections, a transaction per event
  or batch, WAL commits synced at checkpoints; it turns on Dagster's event batches);
- ``project-unbatched``: the same with ``DAGSTER_EVENT_BATCH_SIZE=0`` (Dagster's batches off);
- ``consolidated``: Dagster's ``ConsolidatedSqliteEventLogStorage`` (one database);
- ``consolidated-subset``: that plus ``DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=1`` (one planned event
  per run instead of one per partition);
- ``postgres``: dagster-postgres' ``storage: postgres:`` as documented, on a throwaway cluster with Postgres' default
  (durable) server settings, reached over 127.0.0.1 with a password;
- ``postgres-batch``: that plus ``DAGSTER_EVENT_BATCH_SIZE=1000``;
- ``postgres-pooled``: the same config through ``orchestration/postgres_storage.py`` (pooled connections);
- ``postgres-pooled-batch``: pooled plus batched events;
- ``deploy``: deploy/dagster.yaml with the environment docs/deploy.md sets: pooled, batched, and
  ``synchronous_commit=off`` for Dagster's sessions.

Usage: ``.venv/bin/python bench/bench_instance.py [--reps 3] [--variants a,b,...]``; prints the median run time
(and the run process's CPU time, steadier on a loaded machine) per variant and writes
``bench/results/instance_large.json``. Every run is checked: success, 505 materialised partitions and one check
evaluation per check and partition.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import write_results
from postgres_instance import (
    DEPLOY_DAGSTER_YAML,
    DEPLOY_ENV,
    SERVER_SETTINGS,
    PostgresServer,
    storage_yaml,
    throwaway_postgres,
)

from alpha_assets.cli import PROJECT_DAGSTER_YAML

N_PARTITIONS = 505
N_CHECKS = 6
BATCH = DEPLOY_ENV
NO_TELEMETRY = "telemetry:\n  enabled: false\n"
CONSOLIDATED = """
event_log_storage:
  module: dagster._core.storage.event_log
  class: ConsolidatedSqliteEventLogStorage
  config:
    base_dir: {home}/history/runs
"""
SUBSET = {"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1"}
#: Variant -> (dagster.yaml: its text or the file to copy; extra environment).
VARIANTS = {
    "dagster-default": (NO_TELEMETRY, {}),
    "project": (PROJECT_DAGSTER_YAML, {}),
    "project-unbatched": (PROJECT_DAGSTER_YAML, {"DAGSTER_EVENT_BATCH_SIZE": "0"}),
    "consolidated": (NO_TELEMETRY + CONSOLIDATED, {}),
    "consolidated-subset": (NO_TELEMETRY + CONSOLIDATED, SUBSET),
    "postgres": (NO_TELEMETRY + storage_yaml(pooled=False), {}),
    "postgres-batch": (NO_TELEMETRY + storage_yaml(pooled=False), BATCH),
    "postgres-pooled": (NO_TELEMETRY + storage_yaml(pooled=True), {}),
    "postgres-pooled-batch": (NO_TELEMETRY + storage_yaml(pooled=True), BATCH),
    "deploy": (DEPLOY_DAGSTER_YAML, BATCH),
}


#: Every variable a variant sets; a child sees only its own variant's.
VARIANT_ENV = {key for _, env in VARIANTS.values() for key in env}


def _one(variant: str) -> tuple[float, float]:
    """Run the backfill once on a fresh home (in this process); return its wall time and this process's CPU time."""
    from dagster import (
        AssetCheckEvaluation,
        AssetCheckKey,
        AssetCheckSeverity,
        AssetCheckSpec,
        AssetKey,
        BackfillPolicy,
        DagsterEventType,
        DagsterInstance,
        DataVersion,
        Definitions,
        DynamicPartitionsDefinition,
        MaterializeResult,
        MetadataValue,
        Output,
        asset,
        define_asset_job,
    )
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    symbols = DynamicPartitionsDefinition(name="symbols")
    checks = [f"check_{i}" for i in range(N_CHECKS)]

    @asset(
        partitions_def=symbols,
        backfill_policy=BackfillPolicy.single_run(),
        check_specs=[AssetCheckSpec(name, asset="ohlcv", partitions_def=symbols) for name in checks],
    )
    def ohlcv(context):
        n = len(context.partition_keys)
        yield MaterializeResult(
            metadata={"symbols": n, "failed_symbols": MetadataValue.json([]), "per_symbol": MetadataValue.md("")},
            data_version=DataVersion("0"),
        )
        # As defs/dataops/checks.py: one WARN evaluation per check and partition, then the check's output.
        for name in checks:
            for key in context.partition_keys:
                yield AssetCheckEvaluation(
                    asset_key=AssetKey("ohlcv"),
                    check_name=name,
                    passed=True,
                    severity=AssetCheckSeverity.WARN,
                    description=f"{key}: passed (audit verdict OK)",
                    partition=key,
                    metadata={"audit_verdict": "OK"},
                )
            yield Output(
                None,
                output_name=context.assets_def.get_output_name_for_asset_check_key(
                    AssetCheckKey(AssetKey("ohlcv"), name)
                ),
            )

    defs = Definitions(assets=[ohlcv], jobs=[define_asset_job("ingest", selection=[ohlcv])])
    instance = DagsterInstance.get()
    keys = [f"SIM_S{i:04d}USDT" for i in range(N_PARTITIONS)]
    instance.add_dynamic_partitions("symbols", keys)
    tags = {ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]}
    config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    start, cpu_start = time.perf_counter(), time.process_time()
    result = defs.resolve_job_def("ingest").execute_in_process(instance=instance, tags=tags, run_config=config)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    assert result.success
    assert len(instance.get_materialized_partitions(AssetKey("ohlcv"))) == N_PARTITIONS
    evaluations = instance.all_logs(result.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    assert len(evaluations) == N_PARTITIONS * N_CHECKS
    instance.dispose()
    return elapsed, cpu


def _child(variant: str, server: PostgresServer | None, rep: int) -> tuple[float, float]:
    text, env = VARIANTS[variant]
    home = Path(tempfile.mkdtemp(prefix=f"bench_instance_{variant}_"))
    try:
        if isinstance(text, Path):
            shutil.copyfile(text, home / "dagster.yaml")
        else:
            (home / "dagster.yaml").write_text(text.replace("{home}", str(home)))
        child_env = {k: v for k, v in os.environ.items() if k not in VARIANT_ENV}
        child_env.update(env, DAGSTER_HOME=str(home))
        if variant.startswith(("postgres", "deploy")):
            assert server is not None
            child_env.update(server.env(server.create_database(f"{variant.replace('-', '_')}_{rep}")))
        out = subprocess.run(
            [sys.executable, __file__, "--one", variant], env=child_env, capture_output=True, text=True, check=False
        )
        if out.returncode:
            raise RuntimeError(f"variant {variant} failed ({out.returncode}):\n{out.stderr[-3000:]}")
        wall, cpu = out.stdout.strip().splitlines()[-1].split()
        return float(wall), float(cpu)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of the variants")
    parser.add_argument("--one", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(*_one(args.one))
        return
    variants = args.variants.split(",")
    if unknown := set(variants) - set(VARIANTS):
        parser.error(f"unknown variants {sorted(unknown)}")
    times: dict[str, list[tuple[float, float]]] = {variant: [] for variant in variants}
    with contextlib.ExitStack() as stack:
        server = None
        if any(v.startswith(("postgres", "deploy")) for v in variants):
            server = stack.enter_context(throwaway_postgres(SERVER_SETTINGS))
        for rep in range(args.reps):
            for variant in variants:
                times[variant].append(_child(variant, server, rep))
    figures = {
        variant: {
            "median_s": statistics.median(wall for wall, _ in t),
            "runs_s": [wall for wall, _ in t],
            # CPU of the run's process (Dagster, SQLite, the client side of Postgres): steadier than wall time on
            # a loaded machine, blind to waits for disk syncs and for the Postgres server.
            "median_cpu_s": statistics.median(cpu for _, cpu in t),
            "runs_cpu_s": [cpu for _, cpu in t],
        }
        for variant, t in times.items()
    }
    for variant, figure in figures.items():
        runs = ", ".join(f"{t:.2f}" for t in figure["runs_s"])
        cpu = figure["median_cpu_s"]
        print(f"{variant:22s} median {figure['median_s']:.2f} s  [{runs}]  process CPU median {cpu:.2f} s")
    write_results("instance", "large", {"n_partitions": N_PARTITIONS, "variants": figures})


if __name__ == "__main__":
    main()
