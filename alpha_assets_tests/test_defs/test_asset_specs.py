"""Pins every asset spec of the code location (keys, deps, groups, partitions, code versions, checks and
automation) so a change to the lineage a user sees is a reviewed diff: `pytest --snapshot-update`."""

from __future__ import annotations

from alpha_assets.definitions import defs
from alpha_assets.defs.versions import ASSET_CODE_MODULES


def _spec_summary(spec) -> dict:
    return {
        "deps": sorted(dep.asset_key.to_user_string() for dep in spec.deps),
        "group": spec.group_name,
        "partitions": getattr(spec.partitions_def, "name", None),
        # The version itself is a hash of this code (test_code_versions.py): the snapshot pins what it hashes.
        "code_version_of": list(ASSET_CODE_MODULES[spec.key]) if spec.code_version else None,
        "owners": sorted(spec.owners),
        "kinds": sorted(spec.kinds),
        "automation_condition": None
        if spec.automation_condition is None
        else spec.automation_condition.get_label() or type(spec.automation_condition).__name__,
        "has_description": bool(spec.description),
        "columns": [c.name for c in spec.metadata["dagster/column_schema"].schema.columns][:8]
        if "dagster/column_schema" in spec.metadata
        else None,
        "freshness": None if spec.freshness_policy is None else str(spec.freshness_policy),
    }


def test_asset_specs_sorted_keys(snapshot):
    assert sorted(s.key.to_user_string() for s in defs.resolve_all_asset_specs()) == snapshot


def test_asset_specs_each_spec(snapshot):
    summary = {s.key.to_user_string(): _spec_summary(s) for s in defs.resolve_all_asset_specs()}
    assert dict(sorted(summary.items())) == snapshot


def test_asset_specs_checks_with_blocking_flag_and_partitions(snapshot):
    graph = defs.resolve_asset_graph()
    specs = [graph.get_check_spec(key) for key in graph.asset_check_keys]
    checks = sorted(
        (spec.asset_key.to_user_string(), spec.name, spec.blocking, getattr(spec.partitions_def, "name", None))
        for spec in specs
    )
    assert checks == snapshot


def test_asset_specs_jobs(snapshot):
    jobs = sorted(job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__"))
    assert jobs == snapshot
