"""The Dagster UI served by ``dagster dev``, rendered in headless Debian Chromium: the global asset lineage
page shows every asset of the code location, and its screenshot is kept in test-artifacts/ui_asset_graph.png;
returns_matrix's overview renders its description and column schema; portfolio_flattened's overview draws the
growth sparklines of a portfolio the export sensor produced.

Leaves to test_dagster_dev.py: what the daemon runs (this module only waits for one portfolio).
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from alpha_assets.definitions import defs
from alpha_assets.lakehouse.jsonio import read_json, write_json_atomic
from alpha_assets_tests.test_e2e.conftest import (
    LOCATION_NAME,
    PREPARED_RUN_ID,
    PROJECT_ROOT,
    REPOSITORY_NAME,
    DagsterDev,
)

pytestmark = pytest.mark.e2e

CHROMIUM = "chromium"
INSTALL_HINT = "install it with `make browser` (apt-get install -y chromium)"
#: At 1600x1000 the fitted graph is zoomed out to "minimal" nodes, which cut names over 18 characters
#: (portfol…_flattened); from about 1920x1200 every node shows its full name.
WINDOW_SIZE = "1920,1200"
#: Virtual time the page gets to fetch GraphQL and lay out the graph; a slower machine retries with more.
VIRTUAL_TIME_BUDGETS_MS = (15_000, 45_000)
CHROMIUM_TIMEOUT_S = 120
ARTIFACT = PROJECT_ROOT / "test-artifacts" / "ui_asset_graph.png"

#: Flags for a root, offline, headless run (machines/python.md): no sandbox, no GPU, no background traffic.
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    f"--window-size={WINDOW_SIZE}",
)


def _asset_names_and_groups() -> tuple[list[str], list[str]]:
    specs = defs.resolve_all_asset_specs()
    return sorted(s.key.to_user_string() for s in specs), sorted({s.group_name for s in specs})


def _graph_url(server: DagsterDev, groups: list[str]) -> str:
    # Several groups start collapsed on the lineage page; `expanded` names the group nodes to open.
    return f"{server.url}/asset-groups?expanded=" + ",".join(f"global@global:{group}" for group in groups)


def _chromium(url: str, output: list[str], profile: Path, budget_ms: int) -> subprocess.CompletedProcess[str]:
    if profile.exists():
        shutil.rmtree(profile)
    profile.mkdir(parents=True)
    command = [CHROMIUM, *_FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *output, url]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as err:
        pytest.fail(
            f"`{' '.join(command)}` did not finish in {CHROMIUM_TIMEOUT_S} s: {err.stderr!r}"[-3000:], pytrace=False
        )


def _node_labels(dom: str, names: list[str]) -> set[str]:
    """The asset names that appear as the whole text of an element (a graph node's label)."""
    return {name for name in names if re.search(rf">\s*{re.escape(name)}\s*<", dom)}


def test_asset_lineage_page_shows_every_asset_and_is_screenshotted(dagster_dev, tmp_path):
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"`{CHROMIUM}` is not on PATH: {INSTALL_HINT}", pytrace=False)
    names, groups = _asset_names_and_groups()
    # The first visit from 127.0.0.1 opens a community sign-up dialog over the graph; mark it seen.
    assert dagster_dev.graphql("mutation { setNuxSeen }")["setNuxSeen"] is True
    url = _graph_url(dagster_dev, groups)

    for budget_ms in VIRTUAL_TIME_BUDGETS_MS:
        dumped = _chromium(url, ["--dump-dom"], tmp_path / "profile", budget_ms)
        dom = dumped.stdout
        (tmp_path / "ui_asset_graph.html").write_text(dom)
        shown = _node_labels(dom, names)
        if shown == set(names):
            break
    missing = sorted(set(names) - shown)
    assert not missing, (
        f"{url} rendered without {missing} (chromium exit {dumped.returncode}); DOM kept in "
        f"{tmp_path / 'ui_asset_graph.html'}; chromium stderr tail:\n{dumped.stderr[-2000:]}"
    )
    assert "Global asset lineage" in dom

    screenshot = tmp_path / "ui_asset_graph.png"
    shot = _chromium(url, [f"--screenshot={screenshot}"], tmp_path / "profile", budget_ms)
    assert screenshot.exists() and screenshot.stat().st_size > 10_000, (
        f"no screenshot of {url} (chromium exit {shot.returncode}):\n{shot.stderr[-2000:]}"
    )
    png = screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    assert f"{width},{height}" == WINDOW_SIZE
    ARTIFACT.parent.mkdir(exist_ok=True)
    shutil.copyfile(screenshot, ARTIFACT)


def test_asset_page_renders_placeholders_and_the_column_descriptions(dagster_dev, tmp_path):
    """The overview of returns_matrix: `<RUN_ID>` survives the Markdown of its description, and the column
    schema shows each column with its description from lakehouse/schemas.py."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"`{CHROMIUM}` is not on PATH: {INSTALL_HINT}", pytrace=False)
    assert dagster_dev.graphql("mutation { setNuxSeen }")["setNuxSeen"] is True
    url = f"{dagster_dev.url}/assets/returns_matrix"
    wanted = ("runs/&lt;RUN_ID&gt;/data/returns_matrix.parquet", "&lt;SYMBOL_KEY&gt;", "simple daily return")
    for budget_ms in VIRTUAL_TIME_BUDGETS_MS:
        dom = _chromium(url, ["--dump-dom"], tmp_path / "profile", budget_ms).stdout
        if all(text in dom for text in wanted):
            break
    (tmp_path / "ui_returns_matrix.html").write_text(dom)
    assert [text for text in wanted if text not in dom] == [], f"DOM kept in {tmp_path / 'ui_returns_matrix.html'}"
    assert re.search(r"<code>runs/&lt;RUN_ID&gt;/data/returns_matrix\.parquet</code>", dom)


#: A RUN_ID over the prepared export, produced by export_sensor, whose materialisation the overview shows.
OVERVIEW_RUN_ID = "E2E_OVERVIEW_RUN"
OVERVIEW_TIMEOUT_S = 300
_LATEST_PORTFOLIO = """
query($partitions: [String!]) {
  assetOrError(assetKey: {path: ["portfolio_flattened"]}) {
    __typename ... on Asset { assetMaterializations(partitions: $partitions, limit: 1) { runId } }
  }
}
"""
_START_EXPORT_SENSOR = """
mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) { __typename } }
"""


def test_portfolio_overview_draws_the_growth_sparklines_in_place(dagster_dev, tmp_path):
    """portfolio_flattened's overview (latest materialisation's metadata): each profile's sparkline is an
    <img> of the SVG drawn in place, and the report's full plots sit behind the "[Show Markdown]" button."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"`{CHROMIUM}` is not on PATH: {INSTALL_HINT}", pytrace=False)
    assert dagster_dev.graphql("mutation { setNuxSeen }")["setNuxSeen"] is True
    selector = {
        "repositoryName": REPOSITORY_NAME,
        "repositoryLocationName": LOCATION_NAME,
        "sensorName": "export_sensor",
    }
    dagster_dev.graphql(_START_EXPORT_SENSOR, {"s": selector})  # a no-op when it is running already
    document = read_json(dagster_dev.paths.candidates_validated_file(PREPARED_RUN_ID))
    write_json_atomic(
        {**document, "run_id": OVERVIEW_RUN_ID}, dagster_dev.paths.candidates_validated_file(OVERVIEW_RUN_ID)
    )

    def materialised() -> bool | None:
        answer = dagster_dev.graphql(_LATEST_PORTFOLIO, {"partitions": [OVERVIEW_RUN_ID]})["assetOrError"]
        return True if answer.get("assetMaterializations") else None

    dagster_dev.wait_for(materialised, timeout=OVERVIEW_TIMEOUT_S, interval=3.0, what="the overview run's portfolio")
    profiles = read_json(dagster_dev.paths.run_data_file(OVERVIEW_RUN_ID, "portfolio_flattened.json"))["profiles"]
    wanted = [f"{p} in-sample growth" for p in profiles if profiles[p]["status"] == "optimal"]
    url = f"{dagster_dev.url}/assets/portfolio_flattened"
    for budget_ms in VIRTUAL_TIME_BUDGETS_MS:
        dom = _chromium(url, ["--dump-dom"], tmp_path / "profile", budget_ms).stdout
        images = set(re.findall(r'<img [^>]*alt="([^"]+ in-sample growth)"[^>]*src="data:image/svg\+xml,', dom))
        images |= set(re.findall(r'<img [^>]*src="data:image/svg\+xml,[^"]*"[^>]*alt="([^"]+ in-sample growth)"', dom))
        if set(wanted) <= images:
            break
    (tmp_path / "ui_portfolio_flattened.html").write_text(dom)
    kept = f"DOM kept in {tmp_path / 'ui_portfolio_flattened.html'}"
    assert sorted(set(wanted) - images) == [], kept
    assert "equal_weight_benchmark in-sample growth" in images, kept
    assert "[Show Markdown]" in dom, kept
