"""Fixtures that run the real cycles through Dagster: an on-disk instance, a data directory, a fixed clock.

``flow_env`` (test_flows.py) runs once per data-directory backend (a local folder, a bucket on the tests' S3
server: see ``data_backend`` in the suite's conftest); ``make_flow_env`` without a data directory uses a local one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import DagsterInstance, Definitions

from alpha_assets.cli import PROJECT_DAGSTER_YAML
from alpha_assets.definitions import build_definitions
from alpha_assets.defs.dataops.resources import MarketSourceResource
from alpha_assets.defs.resources import LakehouseResource, ManifestResource
from alpha_assets.lakehouse.jsonio import read_json, write_json_atomic
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.orchestration.runner import ensure_run_partition

CLOCK = "2026-11-25T12:00:00+00:00"
NEXT_DAY_CLOCK = "2026-11-26T12:00:00+00:00"

#: Pairs listed by the simulated exchange in these tests: any universe of 10 or more holds the five defects.
SIM_SYMBOLS = 24
#: Short histories for a quick suite; every candidate of the simulated exchange is taken.
TEST_MANIFEST = {
    "default_profile": "test",
    "defaults": {},
    "profiles": {
        "test": {
            "discovery": {"top_n": 50, "min_traded_value_24h": 0},
            "ingestion": {"history_days": 420, "warmup_days": 280},
            "returns": {"min_history": 90},
            "optimization": {"periods_per_year": 365},
        }
    },
}


@dataclass
class FlowEnv:
    """A data directory, an instance and the settings to build the code location over them.

    ``root`` is a local folder for the instance and the manifest; ``data_dir`` is ``<root>/data`` or an
    ``s3://`` location.
    """

    root: Path
    instance: DagsterInstance
    manifest_path: Path
    data_dir: str

    @property
    def paths(self) -> LakehousePaths:
        return LakehousePaths(self.data_dir)

    def defs(self, *, clock: str = CLOCK, **source: Any) -> Definitions:
        return build_definitions(
            {
                "lakehouse": LakehouseResource(data_dir=self.data_dir),
                "manifest": ManifestResource(path=str(self.manifest_path)),
                "market_source": MarketSourceResource(clock=clock, **{"n_symbols": SIM_SYMBOLS, **source}),
            }
        )


def make_flow_env(root: Path, data_dir: str | None = None, *, project_instance: bool = False) -> FlowEnv:
    """A data directory and an on-disk instance under the local folder ``root``.

    The data is in ``data_dir`` (default ``<root>/data``; a local folder or ``s3://``). The instance is Dagster's
    default one, or with ``project_instance`` the project's ``dagster.yaml`` (the storage the CLI and ``make ui``
    use), its event log under the instance's folder.
    """
    root.mkdir(parents=True, exist_ok=True)
    manifest_path = root / "manifest.json"
    manifest_path.write_text(json.dumps(TEST_MANIFEST))
    home = root / "dagster_home"
    home.mkdir(exist_ok=True)
    if project_instance:
        config = yaml.safe_load(PROJECT_DAGSTER_YAML.read_text())
        config["event_log_storage"]["config"] = {"base_dir": str(home / "history" / "runs")}
        (home / "dagster.yaml").write_text(yaml.safe_dump(config))
        instance = DagsterInstance.from_config(str(home))
    else:
        instance = DagsterInstance.local_temp(tempdir=str(home))
    return FlowEnv(root=root, instance=instance, manifest_path=manifest_path, data_dir=data_dir or str(root / "data"))


@pytest.fixture(scope="module")
def flow_env(tmp_path_factory, data_backend) -> FlowEnv:
    env = make_flow_env(tmp_path_factory.mktemp("flow"), data_backend.fresh())
    yield env
    env.instance.dispose()


def clone_run(
    env: FlowEnv, source_run_id: str, new_run_id: str, extra_symbols: tuple[str, ...] | list[str] = ()
) -> None:
    """A new RUN_ID over the same export, optionally naming extra symbols as validated."""
    document = read_json(env.paths.candidates_validated_file(source_run_id))
    document["run_id"] = new_run_id
    document["symbols"] = sorted({*document["symbols"], *extra_symbols})
    document["candidates"] += [{"symbol_key": key, "sector": "unknown"} for key in extra_symbols]
    write_json_atomic(document, env.paths.candidates_validated_file(new_run_id))
    ensure_run_partition(env.instance, new_run_id)
