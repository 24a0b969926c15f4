"""The automation conditions of the dynamically partitioned assets, cheap at tens of thousands of partitions."""

from __future__ import annotations

from dagster import AssetSpec, AutomationCondition, Definitions

#: Dagster's ``eager()`` without its ``newly_missing`` branch (nor ``in_latest_time_window``, always true on
#: dynamic partitions): a partition is requested once a dependency of it updated since it was last handled,
#: when no dependency is missing or in progress and it is not in progress itself. ``newly_missing`` keeps the
#: subset of missing partitions in the sensor's cursor as a plain key list on every tick (40,000 keys: a
#: 382 KB cursor, bench/README.md); here a partition only becomes missing when discovery adds its key, before
#: any dependency of it exists, so the dependency's update requests it just the same.
ON_DEPS_UPDATED = (
    AutomationCondition.any_deps_updated().since_last_handled()
    & ~AutomationCondition.any_deps_missing()
    & ~AutomationCondition.any_deps_in_progress()
    & ~AutomationCondition.in_progress()
).with_label("on_deps_updated")


def with_dagster_eager(defs: Definitions) -> Definitions:
    """``defs`` with Dagster's ``eager()`` wherever :data:`ON_DEPS_UPDATED` stands.

    The baseline that bench/bench_partitions.py and the cursor test in test_sensors.py measure against.
    """
    return defs.map_asset_specs(func=_spec_with_dagster_eager)


def _spec_with_dagster_eager(spec: AssetSpec) -> AssetSpec:
    if spec.automation_condition is None:
        return spec
    condition = spec.automation_condition.replace(ON_DEPS_UPDATED.get_label(), AutomationCondition.eager())
    return spec.replace_attributes(automation_condition=condition)
