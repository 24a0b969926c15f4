"""Everything the DataOps cycle contributes to the code location, as one ``Definitions``."""

from __future__ import annotations

from dagster import Definitions

from alpha_assets.defs.dataops.assets import candidates, candidates_validated, features_matrix, ohlcv, symbols
from alpha_assets.defs.dataops.jobs import DATAOPS_JOBS
from alpha_assets.defs.dataops.sensors import DATAOPS_SENSORS


def dataops_definitions() -> Definitions:
    """The DataOps assets (discovery, ingestion with features, validation), their jobs and chain sensors.

    Resources are bound where both cycles are merged (:func:`alpha_assets.definitions.build_definitions`).
    """
    return Definitions(
        assets=[candidates, ohlcv, candidates_validated, symbols, features_matrix],
        jobs=DATAOPS_JOBS,
        sensors=DATAOPS_SENSORS,
    )
