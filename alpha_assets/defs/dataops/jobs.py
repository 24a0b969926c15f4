"""The three links of flow_data: one asset job per partitioning, chained by sensors or the command line.

Every link runs its steps in the run's own process (``in_process_executor``): each link is a short chain of
steps with nothing to run in parallel, and a step process costs ~2 s of start-up on this machine.
"""

from __future__ import annotations

from dagster import define_asset_job, in_process_executor

from alpha_assets.defs import names

discovery_job = define_asset_job(
    names.DISCOVERY_JOB,
    selection=[names.CANDIDATES],
    executor_def=in_process_executor,
    description="flow_data 1/3: discover the RUN_ID's candidates and add them as symbol partitions.",
)
ingest_job = define_asset_job(
    names.INGEST_JOB,
    selection=[names.OHLCV, names.FEATURES_MATRIX],
    executor_def=in_process_executor,
    description="flow_data 2/3: ingest, repair and audit the bars of the RUN_ID's symbols, then upsert their "
    "point-in-time features, in one run per contiguous range of the universe.",
)
validation_job = define_asset_job(
    names.VALIDATION_JOB,
    selection=[names.CANDIDATES_VALIDATED, names.SYMBOLS],
    executor_def=in_process_executor,
    description="flow_data 3/3: keep the RUN_ID's candidates whose data passed the audit; version their metadata.",
)

DATAOPS_JOBS = [discovery_job, ingest_job, validation_job]
