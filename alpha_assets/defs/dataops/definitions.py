"""Everything the DataOps cycle contributes to the code location."""

from __future__ import annotations

from alpha_assets.defs.dataops.assets import candidates, candidates_validated, features_matrix, ohlcv, symbols
from alpha_assets.defs.dataops.jobs import DATAOPS_JOBS
from alpha_assets.defs.dataops.sensors import DATAOPS_SENSORS

DATAOPS_ASSETS = [candidates, ohlcv, candidates_validated, symbols, features_matrix]

__all__ = ["DATAOPS_ASSETS", "DATAOPS_JOBS", "DATAOPS_SENSORS"]
