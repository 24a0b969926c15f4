"""Both cycles end to end through Dagster on an on-disk instance: flow_data on the simulated exchange, then
flow_production; the planted defects rejected, the contract files written, the gate blocking within and across
runs, the offline guard, and a byte-identical re-run after the lakehouse changed. Every test runs on both
data-directory backends (``[local]``: a folder; ``[s3]``: a bucket on the tests' moto server on 127.0.0.1), each
with a cycle of its own; files are read through the lakehouse's paths (pathlib or UPath), never as local files.

Leaves to other modules: the ccxt source through Dagster (test_flow_ccxt.py), the UI/daemon (test_e2e).
"""

from __future__ import annotations

import io
import socket

import pandas as pd
import pytest
from dagster import AssetKey, materialize

from alpha_assets import netguard
from alpha_assets.alpha import pipeline
from alpha_assets.defs import names
from alpha_assets.defs.alpha.assets import selection as selection_asset
from alpha_assets.lakehouse import duckdb_views, features_store
from alpha_assets.lakehouse.features_store import (
    features_table_version,
    maintain_features_table,
    read_features,
    read_features_asof,
    stored_features,
)
from alpha_assets.lakehouse.hashing import file_sha256
from alpha_assets.lakehouse.jsonio import read_json
from alpha_assets.lakehouse.parquet import read_table
from alpha_assets.lakehouse.schemas import OHLCV_SCHEMA
from alpha_assets.orchestration.runner import FlowFailedError, ensure_run_partition, run_flow_data, run_link
from alpha_assets_tests.conftest import copy_file, remove_tree
from alpha_assets_tests.test_defs.conftest import NEXT_DAY_CLOCK, clone_run

RUN_ID = "RUN_TEST_1"


@pytest.fixture(scope="module")
def first_run(flow_env):
    defs = flow_env.defs()
    links = run_flow_data(defs, flow_env.instance, flow_env.paths, RUN_ID, progress=lambda _: None)
    production = run_link(defs, flow_env.instance, names.PRODUCTION_JOB, partition_key=RUN_ID)
    return links, production


def _portfolio_path(env, run_id):
    return env.paths.run_data_file(run_id, "portfolio_flattened.json")


def test_flow_data_rejects_the_planted_defects_with_reasons(flow_env, first_run):
    validated = read_json(flow_env.paths.candidates_validated_file(RUN_ID))
    rejected = validated["rejected"]
    assert rejected["SIM_PUMPUSDT"]["verdict"] == "TOXIC"
    assert "daily return" in rejected["SIM_PUMPUSDT"]["reasons"][0]
    assert rejected["SIM_FRZNUSDT"]["verdict"] == "TOXIC"
    assert "close unchanged" in " ".join(rejected["SIM_FRZNUSDT"]["reasons"])
    assert rejected["SIM_HOLEUSDT"]["verdict"] == "DEGRADED"
    assert "SIM_BTCUSDT" in validated["symbols"]
    assert not set(validated["symbols"]) & set(rejected)


def test_flow_data_writes_every_contract_file(flow_env, first_run):
    paths = flow_env.paths
    candidates = read_json(paths.candidates_file(RUN_ID))
    assert {"SIM_PUMPUSDT", "SIM_FRZNUSDT", "SIM_HOLEUSDT", "SIM_NEWBUSDT"} <= {
        c["symbol_key"] for c in candidates["candidates"]
    }
    assert "SIM_GONEUSDT" in candidates["excluded"], "the delisted pair is inactive and excluded by discovery"
    assert read_json(paths.audit_report_file(RUN_ID))["run_id"] == RUN_ID
    for key in (c["symbol_key"] for c in candidates["candidates"]):
        table = read_table(paths.ohlcv_file(key))
        assert table.schema.equals(OHLCV_SCHEMA, check_metadata=False), key
        assert paths.symbol_metadata_file(key).exists()
    validated = read_json(paths.candidates_validated_file(RUN_ID))["symbols"]
    assert set(read_features(paths, validated)["symbol"]) == set(validated)


def test_flow_data_links_are_recorded_on_the_instance(flow_env, first_run):
    links, production = first_run
    assert [link.job_name for link in links] == [
        names.DISCOVERY_JOB,
        names.INGEST_JOB,
        names.VALIDATION_JOB,
    ]
    for link in [*links, production]:
        assert flow_env.instance.get_run_by_id(link.dagster_run_id).is_success
    assert flow_env.instance.has_dynamic_partition("symbols", "SIM_BTCUSDT")
    materialized = flow_env.instance.get_latest_materialization_event(AssetKey("portfolio_flattened"))
    assert materialized is not None


def test_flow_production_weights_are_fully_invested_within_caps(flow_env, first_run):
    document = read_json(_portfolio_path(flow_env, RUN_ID))
    assert set(document["profiles"]) == {"equal_weight", "min_variance", "max_sharpe", "risk_parity", "hrp"}
    for name, body in document["profiles"].items():
        assert body["status"] == "optimal", (name, body["reason"])
        weights = [row["Weight"] for row in body["rows"]]
        assert sum(weights) == pytest.approx(1.0, abs=1e-6), name
        cap = body["report"]["cluster_cap"]
        per_cluster = {}
        for row in body["rows"]:
            per_cluster[row["Cluster_ID"]] = per_cluster.get(row["Cluster_ID"], 0.0) + row["Weight"]
        assert max(per_cluster.values()) <= cap + 1e-6, name
        for row in body["rows"]:
            sign = {"LONG": 1.0, "SHORT": -1.0}.get(row["Direction"])
            if sign is None:
                assert row["Direction"] == "FLAT" and abs(row["Weight"]) < 1e-9
            else:
                assert row["Net_Weight"] == pytest.approx(sign * row["Weight"])


def test_flow_production_writes_the_run_report_with_plots(flow_env, first_run):
    from PIL import Image

    paths = flow_env.paths
    html = paths.run_report_file(RUN_ID, "report.html").read_text()
    for profile in ("equal_weight", "min_variance", "max_sharpe", "risk_parity", "hrp"):
        assert profile in html
    assert html.count("<img") == 3
    for name in ("weights.png", "cluster_correlation.png", "equity_curves.png"):
        with Image.open(io.BytesIO(paths.run_report_file(RUN_ID, name).read_bytes())) as image:
            assert image.size[0] >= 600, name


def test_flow_production_puts_the_plots_inline_on_the_asset_page(flow_env, first_run):
    """The UI renders an event's description as Markdown, with no size limit: the plots show inline there."""
    import base64
    import re

    observations = flow_env.instance.fetch_observations(AssetKey("portfolio_flattened"), limit=10).records
    [description] = [r.asset_observation.description for r in observations if r.asset_observation.partition == RUN_ID]
    images = dict(re.findall(r"!\[([\w.]+)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", description))
    assert list(images) == ["weights.png", "equity_curves.png", "cluster_correlation.png"]
    for name, encoded in images.items():
        assert base64.b64decode(encoded) == flow_env.paths.run_report_file(RUN_ID, name).read_bytes(), name
    assert f"**Run {RUN_ID}**" in description


def test_flow_production_overview_metadata_draws_each_curve_under_the_ui_inline_limit(flow_env, first_run):
    """The overview renders Markdown metadata in place under the limit: a sparkline per profile and the 1/n."""
    from dagster import AssetRecordsFilter, MarkdownMetadataValue

    from alpha_assets.reports.sparklines import INLINE_MARKDOWN_LIMIT

    [record] = flow_env.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=names.PORTFOLIO_FLATTENED, asset_partitions=[RUN_ID]), limit=1
    ).records
    metadata = record.asset_materialization.metadata
    profiles = read_json(_portfolio_path(flow_env, RUN_ID))["profiles"]
    growth = {name: value for name, value in metadata.items() if name.startswith("growth_")}
    assert set(growth) == {f"growth_{p}" for p in profiles} | {"growth_equal_weight_benchmark"}
    for name, value in growth.items():
        assert isinstance(value, MarkdownMetadataValue) and len(value.value) < INLINE_MARKDOWN_LIMIT, name
        assert value.value.startswith(f"![{name.removeprefix('growth_')} in-sample growth](data:image/svg+xml,")
    assert len(metadata["profiles"].value) < INLINE_MARKDOWN_LIMIT, "the profiles table shows in place too"
    assert len(metadata["plots"].value) >= INLINE_MARKDOWN_LIMIT, "the full plots are behind the button there"


def test_flow_data_refreshes_duckdb_views_queryable_by_name(flow_env, first_run):
    with duckdb_views.connect(flow_env.paths) as db:
        bars = db.execute("select count(*) from ohlcv where symbol_key = 'SIM_BTCUSDT'").fetchone()[0]
        weights = db.execute(
            "select sum(Weight) from weights where run_id = ? and profile = 'min_variance'", [RUN_ID]
        ).fetchone()[0]
        features = db.execute("select count(distinct symbol) from features").fetchone()[0]
    assert bars == len(read_table(flow_env.paths.ohlcv_file("SIM_BTCUSDT")))
    assert weights == pytest.approx(1.0, abs=1e-6)
    validated = read_json(flow_env.paths.candidates_validated_file(RUN_ID))["symbols"]
    featured = stored_features(
        flow_env.paths, [p.name.removesuffix("_1d.parquet") for p in flow_env.paths.lakehouse_dir.glob("*_1d.parquet")]
    )
    assert features == len(featured) >= len(validated)


def test_flow_production_rerun_after_lakehouse_changed_is_byte_identical(flow_env, first_run):
    before = _portfolio_path(flow_env, RUN_ID).read_bytes()
    btc_file = flow_env.paths.ohlcv_file("SIM_BTCUSDT")
    btc_before = file_sha256(btc_file)
    run_flow_data(
        flow_env.defs(clock=NEXT_DAY_CLOCK),
        flow_env.instance,
        flow_env.paths,
        "RUN_TEST_NEXT_DAY",
        progress=lambda _: None,
    )
    assert file_sha256(btc_file) != btc_before, "the next day's ingest must append a bar"
    run_link(flow_env.defs(), flow_env.instance, names.PRODUCTION_JOB, partition_key=RUN_ID)
    assert _portfolio_path(flow_env, RUN_ID).read_bytes() == before
    fingerprints = read_json(_portfolio_path(flow_env, RUN_ID))["metadata"]["input_fingerprints"]
    assert fingerprints["lakehouse/SIM_BTCUSDT_1d.parquet"] == btc_before


def test_rerun_after_the_features_table_advanced_and_was_vacuumed_reads_the_recorded_version(
    flow_env, first_run, monkeypatch
):
    """The RUN_ID recorded the table version it froze; later commits, a compaction and a vacuum keep it readable."""
    paths = flow_env.paths
    snapshot = read_json(paths.run_data_file(RUN_ID, "snapshot.json"))
    recorded = snapshot["features_table_version"]
    before = _portfolio_path(flow_env, RUN_ID).read_bytes()
    frozen = read_table(paths.run_data_file(RUN_ID, "features_asof.parquet")).to_pandas()
    clock = pd.Timestamp(NEXT_DAY_CLOCK) + pd.Timedelta(days=1)
    run_flow_data(
        flow_env.defs(clock=clock.isoformat()), flow_env.instance, paths, "RUN_TEST_ADVANCED", progress=lambda _: None
    )
    monkeypatch.setattr(features_store, "VACUUM_RETENTION_HOURS", 0)
    maintained = maintain_features_table(paths, force=True)
    assert recorded in maintained["kept_versions"] and features_table_version(paths) > recorded
    as_of = pd.Timestamp(frozen["date"].max())
    rows, version = read_features_asof(
        paths, frozen["symbol"].tolist(), as_of, columns=list(frozen.columns), version=recorded
    )
    assert version == recorded
    pd.testing.assert_frame_equal(rows.to_pandas().sort_values("symbol", ignore_index=True), frozen)
    run_link(flow_env.defs(), flow_env.instance, names.PRODUCTION_JOB, partition_key=RUN_ID)
    assert _portfolio_path(flow_env, RUN_ID).read_bytes() == before


def test_gate_failure_stops_selection_and_writes_no_weights(flow_env, first_run):
    # A candidate whose bars are sound but whose features were never computed: the gate must name it.
    copy_file(flow_env.paths.ohlcv_file("SIM_ETHUSDT"), flow_env.paths.ohlcv_file("SIM_NOFEATUSDT"))
    clone_run(flow_env, RUN_ID, "RUN_TEST_GATE", extra_symbols=["SIM_NOFEATUSDT"])
    with pytest.raises(FlowFailedError, match="blocking asset check failed"):
        run_link(flow_env.defs(), flow_env.instance, names.PRODUCTION_JOB, partition_key="RUN_TEST_GATE")
    verdict = read_json(flow_env.paths.run_data_file("RUN_TEST_GATE", "gate_verdict.json"))
    assert verdict["passed"] is False
    assert verdict["checks"]["features_present"]["passed"] is False
    assert "SIM_NOFEATUSDT" in verdict["checks"]["features_present"]["message"]
    assert not flow_env.paths.run_data_file("RUN_TEST_GATE", "selection.json").exists()
    assert not _portfolio_path(flow_env, "RUN_TEST_GATE").exists()


def test_gate_failure_also_refuses_a_later_launch_of_selection(flow_env, first_run):
    if not flow_env.paths.run_data_file("RUN_TEST_GATE", "gate_verdict.json").exists():
        test_gate_failure_stops_selection_and_writes_no_weights(flow_env, first_run)
    defs = flow_env.defs()
    result = materialize(
        [selection_asset],
        partition_key="RUN_TEST_GATE",
        instance=flow_env.instance,
        resources={name: defs.resources[name] for name in ("lakehouse", "offline_guard")},
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = str(failure.step_failure_data.error.cause or failure.step_failure_data.error)
    assert "features_present_at_as_of" in message and "refusing to continue" in message
    assert not flow_env.paths.run_data_file("RUN_TEST_GATE", "selection.json").exists()


def test_offline_guard_refuses_a_connection_attempt_inside_the_cycle(flow_env, first_run, monkeypatch):
    clone_run(flow_env, RUN_ID, "RUN_TEST_OFFLINE")
    seen = {}
    suite_depth = netguard.install_depth()

    def selection_that_phones_home(frozen, params):
        seen["depth"] = netguard.install_depth()
        with socket.create_connection(("198.51.100.7", 443), timeout=1):
            pass

    monkeypatch.setattr(pipeline, "run_selection", selection_that_phones_home)
    with pytest.raises(FlowFailedError, match=r"198\.51\.100\.7:443 refused: only loopback is allowed"):
        run_link(flow_env.defs(), flow_env.instance, names.PRODUCTION_JOB, partition_key="RUN_TEST_OFFLINE")
    assert seen["depth"] == suite_depth + 1, "the cycle's own guard must be installed inside the step"
    assert netguard.install_depth() == suite_depth, "the guard is lifted after the step"


def test_flow_production_unknown_run_names_the_missing_export(flow_env, first_run):
    ensure_run_partition(flow_env.instance, "RUN_TEST_NO_EXPORT")
    with pytest.raises(FlowFailedError, match=r"candidates_validated\.json.*does not exist"):
        run_link(flow_env.defs(), flow_env.instance, names.PRODUCTION_JOB, partition_key="RUN_TEST_NO_EXPORT")
    remove_tree(flow_env.paths.run_dir("RUN_TEST_NO_EXPORT"))
