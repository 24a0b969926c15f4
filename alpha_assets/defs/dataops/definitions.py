"""Everything the DataOps cycle contributes to the code location."""

from __future__ import annotations

from alpha_assets.defs.dataops.assets import candidates, candidates_validated, features_matrix, ingest_ohlcv
from alpha_assets.defs.dataops.jobs import DATAOPS_JOBS
from alpha_assets.defs.dataops.sensors import DATAOPS_SENSORS

DATAOPS_ASSETS = [candidates, ingest_ohlcv, candidates_validated, features_matrix]

__all__ = ["DATAOPS_ASSETS", "DATAOPS_JOBS", "DATAOPS_SENSORS"]
