"""Sparklines for the asset overview: under the installed Dagster UI's inline limit, drawing the curve they name.

Reads the limit and the image rule from the installed ``dagster-webserver`` bundle's own sources (its source
maps), decodes the SVG of random walks of every length and parses it with the standard XML parser. Leaves to
test_flows.py the metadata of a real portfolio_flattened materialisation; no browser draws the SVG here.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote

import dagster_webserver
import numpy as np
import pytest

from alpha_assets.reports.sparklines import (
    INLINE_MARKDOWN_LIMIT,
    SPARKLINE_POINTS,
    SPARKLINE_SIZE_PX,
    growth_sparkline_markdown,
)

_IMAGE = re.compile(r"^!\[(?P<label>[^\]]+)\]\(data:image/svg\+xml,(?P<svg>[^)\s]+)\) (?P<text>.+)$")


def _ui_source(name: str) -> str:
    """A source file of the installed UI, from the source maps shipped in its bundle."""
    chunks = Path(dagster_webserver.__file__).parent / "webapp" / "build" / "_next" / "static" / "chunks"
    for source_map in chunks.glob("*.js.map"):
        text = source_map.read_text()
        if name not in text:
            continue
        bundle = json.loads(text)
        for path, content in zip(bundle["sources"], bundle.get("sourcesContent", []), strict=False):
            if path.endswith(name) and content:
                return content
    raise AssertionError(f"{name} is not in the installed dagster-webserver bundle")


def test_installed_ui_renders_markdown_inline_below_the_limit_and_lets_data_images_through():
    entry = _ui_source("metadata/MetadataEntry.tsx")
    assert f"entry.mdStr.length < {INLINE_MARKDOWN_LIMIT}" in entry
    markdown = _ui_source("ui/MarkdownWithPlugins.tsx")
    assert re.search(r"src: \[\.\.\.\(defaultSchema\.protocols\?\.src \?\? \[\]\), 'data'\]", markdown)


def _walk(n_observations: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumprod(1.0 + rng.normal(0.0005, 0.03, n_observations))


def _svg(markdown: str) -> tuple[str, ET.Element, str]:
    match = _IMAGE.match(markdown)
    assert match, markdown
    return match["label"], ET.fromstring(unquote(match["svg"])), match["text"]


def _points(path: str) -> list[tuple[int, int]]:
    numbers = [int(v) for v in path.removeprefix("M").split(",")]
    return list(zip(numbers[::2], numbers[1::2], strict=True))


@pytest.mark.parametrize("n_observations", [2, 30, 61, 365, 5000], ids=lambda n: f"{n}_days")
def test_growth_sparkline_fits_the_limit_and_draws_the_sampled_curve(n_observations):
    growth = _walk(n_observations, seed=n_observations)
    markdown = growth_sparkline_markdown(growth, "x" * 99)
    assert len(markdown) < INLINE_MARKDOWN_LIMIT
    label, svg, text = _svg(markdown)
    assert label == "x" * 99
    assert text == f"x{growth[-1]:.2f} (low x{growth.min():.2f}, high x{growth.max():.2f})"
    width, height = SPARKLINE_SIZE_PX
    assert (svg.get("width"), svg.get("height")) == (str(width), str(height))
    curve = _points(svg.findall("{http://www.w3.org/2000/svg}path")[-1].get("d"))
    sampled = growth[np.unique(np.linspace(0, n_observations - 1, SPARKLINE_POINTS).round().astype(int))]
    assert len(curve) == len(sampled) == min(n_observations, SPARKLINE_POINTS)
    xs, ys = np.array(curve).T
    assert xs[0] == 0 and xs[-1] == width - 1 and np.all(np.diff(xs) > 0)
    # Higher growth is drawn higher (smaller y); the extremes touch the margins.
    assert ys[np.argmax(sampled)] == ys.min() == 2 and ys[np.argmin(sampled)] == ys.max() == height - 2
    assert np.all(np.diff(ys)[np.diff(sampled) > 1e-9 * sampled.max()] <= 0)


def test_growth_sparkline_draws_the_start_line_only_when_the_curve_crosses_it():
    crossing = _svg(growth_sparkline_markdown(np.array([1.0, 0.8, 1.3]), "crossing"))[1]
    rising = _svg(growth_sparkline_markdown(np.array([1.1, 1.2, 1.5]), "rising"))[1]
    baseline, _ = crossing.findall("{http://www.w3.org/2000/svg}path")
    assert baseline.get("d") == f"M0,{round(2 + 0.3 / 0.5 * 36)}H{SPARKLINE_SIZE_PX[0]}"
    assert len(rising.findall("{http://www.w3.org/2000/svg}path")) == 1


def test_growth_sparkline_flat_curve_is_one_horizontal_line():
    _, svg, text = _svg(growth_sparkline_markdown(np.ones(10), "flat"))
    assert {y for _, y in _points(svg.findall("{http://www.w3.org/2000/svg}path")[-1].get("d"))} == {2}
    assert text == "x1.00 (low x1.00, high x1.00)"


@pytest.mark.parametrize(
    ("growth", "label", "error", "match"),
    [
        (np.ones((3, 2)), "a", ValueError, r"`growth` must be 1-D \(n_observations,\)"),
        (np.ones(1), "a", ValueError, "n_observations >= 2, got shape"),
        (np.array([1.0, np.nan]), "a", ValueError, "finite positive"),
        (np.array([1.0, 0.0]), "a", ValueError, "finite positive"),
        (np.ones(3), 5, TypeError, "`label` must be a str, got int"),
        (np.ones(3), "", ValueError, "`label` must be 1 to 99 characters"),
        (np.ones(3), "a]b", ValueError, "without"),
    ],
    ids=["2d", "one_value", "nan", "zero", "label_not_str", "label_empty", "label_bracket"],
)
def test_growth_sparkline_bad_input_raises(growth, label, error, match):
    with pytest.raises(error, match=match):
        growth_sparkline_markdown(growth, label)
