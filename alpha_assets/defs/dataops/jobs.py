"""The four links of flow_data: one asset job per partitioning, chained by sensors or the command line."""

from __future__ import annotations

from dagster import define_asset_job

from alpha_assets.defs import keys
from alpha_assets.defs.partitions import runs_partitions, symbols_partitions

discovery_job = define_asset_job(
    keys.DISCOVERY_JOB,
    selection=[keys.CANDIDATES],
    partitions_def=runs_partitions,
    description="flow_data 1/4: discover the RUN_ID's candidates and add them as symbol partitions.",
)
ingest_job = define_asset_job(
    keys.INGEST_JOB,
    selection=[keys.OHLCV],
    partitions_def=symbols_partitions,
    description="flow_data 2/4: ingest, repair and audit the bars of a range of symbols in one run.",
)
validation_job = define_asset_job(
    keys.VALIDATION_JOB,
    selection=[keys.CANDIDATES_VALIDATED, keys.SYMBOLS],
    partitions_def=runs_partitions,
    description="flow_data 3/4: keep the RUN_ID's candidates whose data passed the audit; version their metadata.",
)
features_job = define_asset_job(
    keys.FEATURES_JOB,
    selection=[keys.FEATURES_MATRIX],
    partitions_def=symbols_partitions,
    description="flow_data 4/4: upsert point-in-time features of the validated symbols.",
)

DATAOPS_JOBS = [discovery_job, ingest_job, validation_job, features_job]
