"""The one Definitions object of the alpha_assets code location: both cycles and their resources."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import Definitions

from alpha_assets.defs.alpha.definitions import ALPHA_ASSETS, ALPHA_JOBS
from alpha_assets.defs.dataops.definitions import DATAOPS_ASSETS, DATAOPS_JOBS, DATAOPS_SENSORS
from alpha_assets.defs.dataops.resources import MarketSourceResource
from alpha_assets.defs.resources import LakehouseResource, ManifestResource, OfflineGuardResource


def default_resources() -> dict[str, Any]:
    """Resources of a local deployment: ./data (or $ALPHA_ASSETS_DATA_DIR), the simulated exchange."""
    return {
        "lakehouse": LakehouseResource(),
        "manifest": ManifestResource(),
        "market_source": MarketSourceResource(),
        "offline_guard": OfflineGuardResource(),
    }


def build_definitions(resources: Mapping[str, Any] | None = None) -> Definitions:
    """Both cycles, with ``resources`` replacing the defaults by name (tests, other deployments)."""
    return Definitions(
        assets=[*DATAOPS_ASSETS, *ALPHA_ASSETS],
        jobs=[*DATAOPS_JOBS, *ALPHA_JOBS],
        sensors=[*DATAOPS_SENSORS],
        resources={**default_resources(), **(resources or {})},
    )


defs = build_definitions()
