"""Everything the Alpha cycle contributes to the code location, as one ``Definitions``."""

from __future__ import annotations

from dagster import Definitions

from alpha_assets.defs.alpha.assets import portfolio_flattened, returns_matrix, selection
from alpha_assets.defs.alpha.jobs import ALPHA_JOBS
from alpha_assets.defs.alpha.sensors import ALPHA_SENSORS


def alpha_definitions() -> Definitions:
    """The Alpha assets (returns and gate, selection, portfolio), flow_production and its sensors.

    Resources are bound where both cycles are merged (:func:`alpha_assets.definitions.build_definitions`).
    """
    return Definitions(assets=[returns_matrix, selection, portfolio_flattened], jobs=ALPHA_JOBS, sensors=ALPHA_SENSORS)
