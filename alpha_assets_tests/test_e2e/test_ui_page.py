"""The Dagster UI served by ``dagster dev``, rendered in headless Debian Chromium: the global asset lineage
page shows every asset of the code location, and its screenshot is kept in test-artifacts/ui_asset_graph.png.

Leaves to test_dagster_dev.py: anything the daemon runs.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from alpha_assets.definitions import defs
from alpha_assets_tests.test_e2e.conftest import PROJECT_ROOT, DagsterDev

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
