"""Everything the Alpha cycle contributes to the code location."""

from __future__ import annotations

from alpha_assets.defs.alpha.assets import portfolio_flattened, returns_matrix, selection
from alpha_assets.defs.alpha.jobs import ALPHA_JOBS
from alpha_assets.defs.alpha.sensors import ALPHA_SENSORS

ALPHA_ASSETS = [returns_matrix, selection, portfolio_flattened]

__all__ = ["ALPHA_ASSETS", "ALPHA_JOBS", "ALPHA_SENSORS"]
