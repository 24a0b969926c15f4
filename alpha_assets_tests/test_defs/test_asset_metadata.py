"""What the UI shows about the assets before anything ran, and the lakehouse-wide row count of ``ohlcv``.

Exercises the loaded code location: every parquet asset's definition-time column schema (names and types equal
to the schemas the writers use, a description on every column), the freshness policies of the daily assets, the
ohlcv check descriptions built from the manifest's thresholds, and one real ingestion of two symbol sets on a
temporary instance whose second materialisation counts the bars of both. Leaves the rendering in a browser to
test_e2e/test_ui_page.py.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from dagster import AssetKey, DagsterInstance, materialize
from dagster._serdes import serialize_value

from alpha_assets.dataops.audit.engine import AuditParams
from alpha_assets.definitions import defs
from alpha_assets.defs import names
from alpha_assets.defs.dataops.assets import OHLCV_CHECK_DESCRIPTIONS, ohlcv, ohlcv_check_descriptions
from alpha_assets.defs.dataops.checks import feature_check_outcomes
from alpha_assets.defs.resources import ManifestResource
from alpha_assets.features.matrix import FEATURE_COLUMNS
from alpha_assets.lakehouse.features_store import features_schema
from alpha_assets.lakehouse.schemas import OHLCV_SCHEMA, RETURNS_MATRIX_LAYOUT, SYMBOLS_SCHEMA
from alpha_assets.sources.simulated import SimulatedExchange
from alpha_assets_tests.test_defs.conftest import SIM_SYMBOLS, make_flow_env

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SPECS = {spec.key: spec for spec in defs.resolve_all_asset_specs()}
#: Every parquet asset (plain files or a Delta table) and the arrow schema its files are written with.
PARQUET_SCHEMAS = {
    names.OHLCV: OHLCV_SCHEMA,
    names.SYMBOLS: SYMBOLS_SCHEMA,
    names.FEATURES_MATRIX: features_schema(FEATURE_COLUMNS),
    names.RETURNS_MATRIX: RETURNS_MATRIX_LAYOUT,
}


def test_parquet_assets_are_exactly_those_with_a_schema_in_code():
    assert {key for key, spec in SPECS.items() if spec.kinds & {"parquet", "deltalake"}} == set(PARQUET_SCHEMAS)


@pytest.mark.parametrize("key", sorted(PARQUET_SCHEMAS, key=str), ids=lambda k: k.to_user_string())
def test_parquet_asset_column_schema_matches_the_written_schema_with_a_description_per_column(key):
    schema = SPECS[key].metadata["dagster/column_schema"].schema
    arrow = PARQUET_SCHEMAS[key]
    assert [(c.name, c.type) for c in schema.columns] == [(f.name, str(f.type)) for f in arrow]
    assert [c.constraints.nullable for c in schema.columns] == [f.nullable for f in arrow]
    missing = [c.name for c in schema.columns if not (c.description and len(c.description) > 10)]
    assert missing == []


def test_ohlcv_column_schema_is_the_one_the_files_carry(tmp_path):
    path = tmp_path / "bars.parquet"
    pq.write_table(OHLCV_SCHEMA.empty_table(), path)
    written = pq.read_schema(path)
    ui = {c.name: c.description for c in SPECS[names.OHLCV].metadata["dagster/column_schema"].schema.columns}
    assert {f.name: f.metadata[b"description"].decode() for f in written} == ui


@pytest.mark.parametrize("key", [names.OHLCV, names.FEATURES_MATRIX], ids=lambda k: k.to_user_string())
def test_daily_assets_have_a_freshness_policy_of_one_daily_cycle(key):
    policy = SPECS[key].freshness_policy
    assert policy.warn_window.to_timedelta() == timedelta(hours=25)
    assert policy.fail_window.to_timedelta() == timedelta(hours=49)


def test_ohlcv_check_descriptions_state_the_default_profile_thresholds_and_their_keys():
    audit = ManifestResource().resolve({"audit": AuditParams}).sections["audit"]
    toxic = OHLCV_CHECK_DESCRIPTIONS[names.OHLCV_IS_NOT_TOXIC]
    assert f"`audit.max_daily_return` ({audit.max_daily_return:.0%})" in toxic
    assert f"`audit.max_volume_zscore` ({audit.max_volume_zscore:g})" in toxic
    graph = defs.resolve_asset_graph()
    described = {
        k.name: graph.get_check_spec(k).description for k in graph.asset_check_keys if k.asset_key == names.OHLCV
    }
    assert described == OHLCV_CHECK_DESCRIPTIONS


def test_ohlcv_check_descriptions_follow_the_parameters():
    texts = ohlcv_check_descriptions(AuditParams(max_daily_return=2.0, max_staleness_sessions=3))
    assert "`audit.max_daily_return` (200%)" in texts[names.OHLCV_IS_NOT_TOXIC]
    assert "`audit.max_staleness_sessions` (3)" in texts[names.OHLCV_IS_FRESH]


def test_ohlcv_row_count_covers_the_whole_lakehouse_not_the_last_run(tmp_path):
    env = make_flow_env(tmp_path)
    resources = env.defs().resources
    universe = ["SIM_BTCUSDT", "SIM_ETHUSDT", "SIM_SOLUSDT"]
    env.instance.add_dynamic_partitions("symbols", universe)
    try:
        for part in (universe[:2], universe[2:]):
            result = materialize(
                [ohlcv],
                instance=env.instance,
                resources=resources,
                partition_key=part[0] if len(part) == 1 else None,
                tags=None
                if len(part) == 1
                else {"dagster/asset_partition_range_start": part[0], "dagster/asset_partition_range_end": part[-1]},
                selection=[names.OHLCV],
            )
            assert result.success
        last = result.asset_materializations_for_node("ohlcv")[-1].metadata
        stored = sum(pq.read_metadata(env.paths.ohlcv_file(k)).num_rows for k in universe)
        assert last["dagster/row_count"].value == stored
        assert last["run_bars"].value == pq.read_metadata(env.paths.ohlcv_file(universe[2])).num_rows < stored
        assert env.instance.get_latest_materialization_event(AssetKey("ohlcv")) is not None
    finally:
        env.instance.dispose()


def _ingest_range(env, universe: list[str], n_listed: int) -> list:
    """One ``ohlcv`` run over the partition range ``universe`` of a simulated exchange listing ``n_listed``."""
    env.instance.add_dynamic_partitions("symbols", universe)
    result = materialize(
        [ohlcv],
        instance=env.instance,
        resources=env.defs(n_symbols=n_listed).resources,
        tags={"dagster/asset_partition_range_start": universe[0], "dagster/asset_partition_range_end": universe[-1]},
        selection=[names.OHLCV],
    )
    materialisations = result.asset_materializations_for_node("ohlcv")
    assert sorted(m.partition for m in materialisations) == universe
    return materialisations


def test_ohlcv_metadata_of_a_long_run_lists_the_symbols_to_note_and_stays_small(tmp_path):
    """Dagster copies a range run's metadata into each partition's materialisation: no table of every symbol."""
    env = make_flow_env(tmp_path)
    n_listed = 40
    universe = sorted(m.symbol_key for m in SimulatedExchange(n_symbols=n_listed).load_markets() if m.active)[:30]
    assert "SIM_HOLEUSDT" in universe, "the pair whose planted gaps every ingest finds"
    try:
        materialisations = _ingest_range(env, universe, n_listed)
        table = materialisations[0].metadata["per_symbol"].value
        listed = [line.split(" | ")[0].strip("| ") for line in table.splitlines()[2:] if line.startswith("| SIM_")]
        assert listed == ["SIM_HOLEUSDT"]
        assert f"{len(universe) - 1} of {len(universe)} symbols had nothing to note" in table
        largest = max(len(serialize_value(m)) for m in materialisations)
        assert largest < 4_000, f"a partition's materialisation carries {largest} bytes"
    finally:
        env.instance.dispose()


def test_ohlcv_metadata_of_a_short_run_lists_every_symbol(tmp_path):
    env = make_flow_env(tmp_path)
    universe = ["SIM_BTCUSDT", "SIM_ETHUSDT"]
    try:
        table = _ingest_range(env, universe, SIM_SYMBOLS)[0].metadata["per_symbol"].value
        assert [k for k in universe if f"| {k} | ok |" in table] == universe
        assert "nothing to note" not in table
    finally:
        env.instance.dispose()


def test_feature_checks_name_a_symbol_without_features_instead_of_failing(tmp_path):
    """A symbol whose backfill wrote nothing (e.g. a full disk) is reported uncovered; no KeyError 'date'."""
    env = make_flow_env(tmp_path)
    try:
        keys_ = ["SIM_BTCUSDT", "SIM_ETHUSDT"]
        env.instance.add_dynamic_partitions("symbols", keys_)
        assert materialize(
            [ohlcv], instance=env.instance, resources=env.defs().resources, partition_key=keys_[0]
        ).success
        outcomes = feature_check_outcomes(env.paths, keys_[:1])
        passed, description, _ = outcomes[names.FEATURES_COVER_LAST_BAR][keys_[0]]
        assert passed is False and keys_[0] in description
        assert outcomes[names.FEATURES_ARE_POINT_IN_TIME] == {}, "nothing to compare without features"
    finally:
        env.instance.dispose()


@pytest.mark.parametrize("config", ["dagster.yaml", "deploy/dagster.yaml"])
def test_instance_configs_run_the_freshness_daemon(config):
    """Dagster evaluates freshness policies only in a daemon that an instance must enable."""
    settings = yaml.safe_load((PROJECT_ROOT / config).read_text())
    assert settings["freshness"] == {"enabled": True}


def test_project_instance_requires_the_freshness_daemon(tmp_path, monkeypatch):
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    instance = DagsterInstance.from_config(str(tmp_path))
    try:
        assert "FRESHNESS_DAEMON" in instance.get_required_daemon_types()
    finally:
        instance.dispose()
