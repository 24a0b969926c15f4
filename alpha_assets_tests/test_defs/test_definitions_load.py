"""The code location loads, and its jobs, sensors and checks exist by name with the right blocking flags.

Exercises alpha_assets.definitions as `dagster dev` would load it; runs nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey, Definitions, in_process_executor

from alpha_assets.definitions import defs
from alpha_assets.defs import names

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_definitions_validate_loadable():
    Definitions.validate_loadable(defs)


def test_definitions_jobs_exist_by_name():
    for name in (
        names.DISCOVERY_JOB,
        names.INGEST_JOB,
        names.VALIDATION_JOB,
        names.PRODUCTION_JOB,
    ):
        assert defs.resolve_job_def(name).name == name


def test_definitions_sensors_exist_and_run_by_default():
    sensors_by_name = {s.name: s for s in defs.sensors}
    for name in (
        "discovery_succeeded_sensor",
        "ingest_succeeded_sensor",
        "validation_succeeded_sensor",
        "export_sensor",
    ):
        assert sensors_by_name[name].default_status.value == "RUNNING"


def test_definitions_gate_checks_are_blocking_and_audit_checks_are_not():
    graph = defs.resolve_asset_graph()
    checks = {key.name: graph.get_check_spec(key) for key in graph.asset_check_keys}
    gate = [
        names.GATE_NO_NAN,
        names.GATE_MAX_ABS_RETURN,
        names.GATE_INDEX_UTC_INCREASING,
        names.GATE_DENSITY,
        names.GATE_FEATURES_PRESENT,
    ]
    for name in gate:
        assert checks[name].blocking, name
        assert checks[name].asset_key == names.RETURNS_MATRIX
    assert not checks[names.OHLCV_IS_NOT_TOXIC].blocking
    assert checks[names.FEATURES_ARE_POINT_IN_TIME].asset_key == names.FEATURES_MATRIX


def test_definitions_asset_keys_are_unique_and_grouped_by_cycle():
    specs = list(defs.resolve_all_asset_specs())
    assert len({s.key for s in specs}) == len(specs)
    groups = {s.key: s.group_name for s in specs}
    assert groups[AssetKey("ohlcv")] == names.DATAOPS_GROUP
    assert groups[AssetKey("portfolio_flattened")] == names.ALPHA_GROUP


def test_definitions_cli_validate_passes(tmp_path):
    result = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_job_runs_its_steps_in_the_run_process_ui_backfills_included():
    # A UI backfill or materialisation runs Dagster's implicit asset job, which takes the location's executor.
    jobs = [defs.get_implicit_global_asset_job_def(), *(defs.resolve_job_def(job.name) for job in defs.jobs)]
    assert {job.name: job.executor_def for job in jobs} == {job.name: in_process_executor for job in jobs}


#: Libraries only some assets compute with. Every run process loads the code location, so importing one at load
#: would cost every run (a one-symbol backfill run included) its import time: ~0.25-0.85 s of CPU each.
COMPUTE_ONLY_LIBRARIES = ("cvxpy", "sklearn", "matplotlib", "scipy", "hdbscan")


def test_loading_the_code_location_imports_no_compute_only_library():
    probe = (
        "import sys, alpha_assets.definitions\n"
        f"print(' '.join(m for m in {COMPUTE_ONLY_LIBRARIES!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.split() == [], "imported when the code location loads"
