"""The one Definitions object of the alpha_assets code location: both cycles, their resources and automation."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    Definitions,
    in_process_executor,
)

from alpha_assets.defs.alpha.definitions import alpha_definitions
from alpha_assets.defs.dataops.definitions import dataops_definitions
from alpha_assets.defs.dataops.resources import ExchangeCredentialsResource, MarketSourceResource
from alpha_assets.defs.dataops.schedules import DEFAULT_DAILY_CRON, build_daily_schedule
from alpha_assets.defs.resources import MANIFEST_SECTIONS, LakehouseResource, ManifestResource, OfflineGuardResource
from alpha_assets.manifest import write_reference

#: Deployment settings, read when the code location is built (not at import of any other module).
DAILY_CRON_ENV = "ALPHA_ASSETS_DAILY_CRON"
DAILY_SCHEDULE_ON_ENV = "ALPHA_ASSETS_DAILY_SCHEDULE"

automation_sensor = AutomationConditionSensorDefinition(
    "automation_sensor",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,
    description="Evaluates the assets' automation conditions: features follow ohlcv; selection and the "
    "portfolio follow returns_matrix only when its blocking checks passed.",
)


def default_resources(environ: Mapping[str, str]) -> dict[str, Any]:
    """Resources of a local deployment: ./data (or $ALPHA_ASSETS_DATA_DIR), the simulated exchange.

    The exchange credentials are ``EnvVar`` s of the variables set in ``environ``, resolved when a run starts.
    """
    return {
        "lakehouse": LakehouseResource(),
        "manifest": ManifestResource(),
        "market_source": MarketSourceResource(),
        "exchange_credentials": ExchangeCredentialsResource.from_environment(environ),
        "offline_guard": OfflineGuardResource(),
    }


def build_definitions(
    resources: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None
) -> Definitions:
    """Both cycles' ``Definitions`` merged, with ``resources`` replacing the defaults by name (tests, deployments).

    ``$ALPHA_ASSETS_DAILY_CRON`` sets the daily flow_data time (default ``15 0 * * *``, UTC) and
    ``$ALPHA_ASSETS_DAILY_SCHEDULE=on`` starts that schedule by default; it is stopped otherwise.
    """
    environ = os.environ if environ is None else environ
    daily = build_daily_schedule(
        environ.get(DAILY_CRON_ENV) or DEFAULT_DAILY_CRON,
        running=environ.get(DAILY_SCHEDULE_ON_ENV, "").lower() in {"1", "on", "true", "yes"},
    )
    location = Definitions(
        sensors=[automation_sensor],
        schedules=[daily],
        resources={**default_resources(environ), **(resources or {})},
        # The jobs without an executor of their own (Dagster's implicit asset job: UI backfills and materialisations,
        # automation runs) run their steps in the run's process, as the named jobs do: under Dagster's default
        # multiprocess executor each step starts a process that imports the code location again, so a one-symbol
        # backfill run of ohlcv + features_matrix would start three processes instead of one.
        executor=in_process_executor,
    )
    return Definitions.merge(dataops_definitions(), alpha_definitions(), location)


defs = build_definitions()


def write_manifest_reference(root: Path | None = None) -> list[Path]:
    """Regenerate ``docs/manifest.md`` and ``docs/manifest.schema.json`` under ``root`` (``make docs``).

    ``root`` defaults to the source checkout this package is installed from (editable install).
    """
    return write_reference(MANIFEST_SECTIONS, root or Path(__file__).resolve().parents[1])
