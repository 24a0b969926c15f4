"""flow_production: the Alpha cycle for one RUN_ID, one run."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job, in_process_executor

from alpha_assets.defs import names

flow_production = define_asset_job(
    names.PRODUCTION_JOB,
    selection=AssetSelection.groups(names.ALPHA_GROUP),
    # Three steps in a line: one process for the run instead of one per step (~2 s each on this machine);
    # the offline guard covers the whole run process.
    executor_def=in_process_executor,
    description="Frozen snapshot, foundation gate, HTR selection and optimisation of one RUN_ID, offline.",
)

ALPHA_JOBS = [flow_production]
