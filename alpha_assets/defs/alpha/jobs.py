"""flow_production: the Alpha cycle for one RUN_ID, one run."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from alpha_assets.defs import keys
from alpha_assets.defs.partitions import runs_partitions

flow_production = define_asset_job(
    keys.PRODUCTION_JOB,
    selection=AssetSelection.groups(keys.ALPHA_GROUP),
    partitions_def=runs_partitions,
    description="Frozen snapshot, foundation gate, HTR selection and optimisation of one RUN_ID, offline.",
)

ALPHA_JOBS = [flow_production]
