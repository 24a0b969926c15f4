"""The PNG plots of ``reports.plots`` on documents of a real pipeline run.

Exercises the documented pixel sizes, byte-identical output of two calls, the absence of the matplotlib
version in the file, the LONG/SHORT/failed colours of the weights plot, the cluster ordering behind the
correlation heatmap (with and without a dendrogram), the equity-curve numbers against hand-computed values,
the data URL, that no ``pyplot`` is imported, and every documented input error. What the images look like
beyond colours and sizes is left to a person.
"""

from __future__ import annotations

import base64
import io
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.cluster.hierarchy import fcluster, linkage

from alpha_assets.reports.plots import (
    CORRELATION_SIZE_PX,
    DIRECTION_COLOURS,
    EQUAL_WEIGHT_BENCHMARK,
    EQUITY_SIZE_PX,
    _cluster_order,
    compute_equity_curves,
    extract_profile_weights,
    plot_cluster_correlation,
    plot_equity_curves,
    plot_weights,
    png_data_url,
)


def _image(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def _colour_pixels(png: bytes, hex_colour: str) -> int:
    rgb = np.asarray(_image(png).convert("RGB"))
    target = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((rgb == target).all(axis=-1).sum())


def _atom_returns(rep_run) -> pd.DataFrame:
    return rep_run.selection.atom_returns


# --- weights ---------------------------------------------------------------------------------------------
def test_plot_weights_real_run_has_documented_size_and_same_bytes_twice(rep_run):
    first = plot_weights(rep_run.portfolio_doc)
    second = plot_weights(rep_run.portfolio_doc)
    assert first == second
    n_profiles = len(rep_run.portfolio_doc["profiles"])
    n_symbols = len({r["Symbol"] for p in rep_run.portfolio_doc["profiles"].values() for r in p["rows"]})
    image = _image(first)
    assert image.format == "PNG"
    assert image.size == (200 + 250 * n_profiles, 175 + 25 * max(4, n_symbols))
    assert "Software" not in image.info and b"Matplotlib" not in first


def test_plot_weights_long_short_bars_and_failed_note_are_coloured(rep_run):
    png = plot_weights(rep_run.portfolio_doc)
    assert _colour_pixels(png, DIRECTION_COLOURS["LONG"]) > 500
    assert _colour_pixels(png, DIRECTION_COLOURS["SHORT"]) > 50  # one SHORT atom in this run
    assert _colour_pixels(png, "#a00000") > 0  # the failed profile's note


def test_plot_weights_profile_order_does_not_change_bytes(rep_run):
    doc = rep_run.portfolio_doc
    reordered = {**doc, "profiles": dict(reversed(list(doc["profiles"].items())))}
    assert plot_weights(reordered) == plot_weights(doc)


def test_plot_weights_every_profile_failed_still_draws_minimum_height(rep_run):
    doc = rep_run.portfolio_doc
    failed = {
        name: {**entry, "status": "failed", "reason": "solver gave up", "rows": []}
        for name, entry in doc["profiles"].items()
    }
    image = _image(plot_weights({**doc, "profiles": failed}))
    assert image.size == (200 + 250 * len(failed), 175 + 25 * 4)


@pytest.mark.parametrize(
    ("doc", "error", "match"),
    [
        ([], TypeError, "`portfolio_doc` must be a mapping"),
        ({"profiles": {}}, ValueError, "non-empty mapping"),
        ({"profiles": {"hrp": {"rows": []}}}, ValueError, "must hold `status` and a `rows` list"),
        (
            {"profiles": {"hrp": {"status": "optimal", "rows": [{"Symbol": "A_B", "Weight": 1.0}]}}},
            ValueError,
            r"row missing \['Net_Weight', 'Direction'\]",
        ),
        (
            {
                "profiles": {
                    "hrp": {
                        "status": "optimal",
                        "rows": [{"Symbol": "A_B", "Weight": float("nan"), "Net_Weight": 1.0, "Direction": "LONG"}],
                    }
                }
            },
            ValueError,
            "non-finite weight for A_B",
        ),
    ],
    ids=["not-mapping", "no-profiles", "no-rows", "missing-column", "nan-weight"],
)
def test_plot_weights_bad_document_raises(doc, error, match):
    with pytest.raises(error, match=match):
        plot_weights(doc)


def test_extract_profile_weights_optimal_sum_to_one_and_failed_is_empty(rep_run):
    weights = extract_profile_weights(rep_run.portfolio_doc)
    assert list(weights) == sorted(rep_run.portfolio_doc["profiles"])
    assert weights["max_sharpe"] == {}
    for name in ("equal_weight", "hrp", "min_variance", "risk_parity"):
        assert sum(weights[name].values()) == pytest.approx(1.0, abs=1e-9)
        assert list(weights[name]) == sorted(weights[name])


# --- cluster correlation ---------------------------------------------------------------------------------
def test_plot_cluster_correlation_real_selection_size_and_same_bytes(rep_run):
    sel = rep_run.selection_doc
    link = np.asarray(sel["linkage"])
    with_tree = plot_cluster_correlation(rep_run.returns, sel["clusters"], link)
    assert with_tree == plot_cluster_correlation(rep_run.returns, sel["clusters"], link)
    without_tree = plot_cluster_correlation(rep_run.returns, sel["clusters"])
    assert _image(with_tree).size == _image(without_tree).size == CORRELATION_SIZE_PX
    assert with_tree != without_tree


def test_plot_cluster_correlation_column_order_does_not_change_bytes(rep_run):
    sel = rep_run.selection_doc
    shuffled = rep_run.returns[list(reversed(rep_run.returns.columns))]
    assert plot_cluster_correlation(shuffled, sel["clusters"]) == plot_cluster_correlation(
        rep_run.returns, sel["clusters"]
    )


def test_cluster_order_ward_cut_is_contiguous_and_keeps_the_tree():
    rng = np.random.default_rng(3)
    points = np.concatenate([rng.normal(c, 0.3, size=(6, 2)) for c in (0.0, 4.0, 9.0)])
    link = linkage(points, method="ward")
    labels = fcluster(link, 3, criterion="maxclust").astype(np.int64)
    order, tree = _cluster_order(labels, link)
    assert tree is not None and list(order) == tree["leaves"]
    assert (np.diff(labels[order]) != 0).sum() == 2  # three contiguous blocks


def test_cluster_order_labels_not_from_the_tree_drop_the_dendrogram():
    rng = np.random.default_rng(4)
    link = linkage(rng.normal(size=(8, 3)), method="ward")
    leaves = np.asarray(_cluster_order(np.zeros(8, dtype=np.int64), link)[0])
    labels = np.empty(8, dtype=np.int64)
    labels[leaves] = [0, 1, 0, 1, 0, 1, 0, 1]  # alternating along the leaves: never contiguous
    order, tree = _cluster_order(labels, link)
    assert tree is None
    assert (np.diff(labels[order]) != 0).sum() == 1


def test_cluster_order_without_linkage_sorts_by_label_then_symbol():
    order, tree = _cluster_order(np.array([2, 0, 2, 1, 0]), None)
    assert tree is None and list(order) == [1, 4, 3, 0, 2]


def test_plot_cluster_correlation_constant_column_is_drawn_as_undefined(rep_run):
    returns = rep_run.returns.copy()
    returns.iloc[:, 0] = 0.0  # correlation undefined -> grey cells
    png = plot_cluster_correlation(returns, rep_run.selection_doc["clusters"])
    assert _colour_pixels(png, "#d9d9d9") > 0


def _small_returns() -> pd.DataFrame:
    rng = np.random.default_rng(9)
    index = pd.date_range("2024-01-01", periods=30, freq="D", tz="UTC")
    return pd.DataFrame(rng.normal(0, 0.02, (30, 3)), index=index, columns=["X_A", "X_B", "X_C"])


@pytest.mark.parametrize(
    ("returns", "labels", "link", "error", "match"),
    [
        (np.zeros((5, 3)), {}, None, TypeError, "`returns` must be a pandas DataFrame"),
        (_small_returns().iloc[:1], {"X_A": 0, "X_B": 0, "X_C": 1}, None, ValueError, ">= 2 observations"),
        (_small_returns(), [0, 0, 1], None, TypeError, "`labels` must be a mapping"),
        (
            _small_returns(),
            {"X_A": 0, "X_B": 0, "X_D": 1},
            None,
            ValueError,
            r"missing \['X_C'\], extra \['X_D'\]",
        ),
        (
            _small_returns(),
            {"X_A": 0, "X_B": 0, "X_C": 1},
            np.zeros((3, 4)),
            ValueError,
            r"shape \(n_assets - 1, 4\) = \(2, 4\), got \(3, 4\)",
        ),
        (
            _small_returns(),
            {"X_A": 0, "X_B": 0, "X_C": 1},
            np.full((2, 4), -1.0),
            ValueError,
            "valid scipy linkage",
        ),
    ],
    ids=["not-frame", "one-row", "labels-list", "labels-mismatch", "linkage-shape", "linkage-invalid"],
)
def test_plot_cluster_correlation_bad_input_raises(returns, labels, link, error, match):
    with pytest.raises(error, match=match):
        plot_cluster_correlation(returns, labels, link)


# --- equity curves ---------------------------------------------------------------------------------------
def test_compute_equity_curves_hand_computed_values():
    index = pd.date_range("2024-01-01", periods=2, freq="D", tz="UTC")
    returns = pd.DataFrame({"X_B": [-0.1, 0.2], "X_A": [0.1, 0.0]}, index=index)
    curves = compute_equity_curves(returns, {"p": {"X_A": 0.75, "X_B": 0.25}, "only_a": {"X_A": 1.0}, "failed": {}})
    assert list(curves.columns) == ["only_a", "p", EQUAL_WEIGHT_BENCHMARK]
    np.testing.assert_allclose(curves["p"], [1.05, 1.05 * 1.05])
    np.testing.assert_allclose(curves["only_a"], [1.1, 1.1])
    np.testing.assert_allclose(curves[EQUAL_WEIGHT_BENCHMARK], [1.0, 1.1])
    assert curves.index.equals(index)


def test_compute_equity_curves_real_run_matches_weighted_sum(rep_run):
    atom_returns = _atom_returns(rep_run)
    weights = extract_profile_weights(rep_run.portfolio_doc)
    curves = compute_equity_curves(atom_returns, weights)
    assert "max_sharpe" not in curves.columns  # failed profile left out
    hrp = pd.Series(weights["hrp"]).reindex(atom_returns.columns).fillna(0.0)
    np.testing.assert_allclose(curves["hrp"], np.cumprod(1.0 + atom_returns.to_numpy() @ hrp.to_numpy()), rtol=1e-12)
    np.testing.assert_allclose(curves[EQUAL_WEIGHT_BENCHMARK], np.cumprod(1.0 + atom_returns.mean(axis=1)), rtol=1e-12)


def test_plot_equity_curves_size_same_bytes_and_log_scale_differs(rep_run):
    atom_returns = _atom_returns(rep_run)
    weights = extract_profile_weights(rep_run.portfolio_doc)
    linear = plot_equity_curves(atom_returns, weights)
    assert linear == plot_equity_curves(atom_returns, weights)
    logarithmic = plot_equity_curves(atom_returns, weights, log_scale=True)
    assert _image(linear).size == _image(logarithmic).size == EQUITY_SIZE_PX
    assert linear != logarithmic


def test_plot_equity_curves_integer_index_and_no_profile_still_draw(rep_run):
    atom_returns = _atom_returns(rep_run).reset_index(drop=True)
    assert _image(plot_equity_curves(atom_returns, {"hrp": {}})).size == EQUITY_SIZE_PX


@pytest.mark.parametrize(
    ("returns", "weights", "error", "match"),
    [
        ([[0.1]], {}, TypeError, "`atom_returns` must be a pandas DataFrame"),
        (pd.DataFrame({"X_A": []}, dtype=float), {}, ValueError, ">= 1 observation and >= 1 atom"),
        (pd.DataFrame({"X_A": [0.1, np.nan]}), {}, ValueError, "must be finite"),
        (pd.DataFrame({"X_A": [0.1, 0.2]}), [("p", {})], TypeError, "`weights_by_profile` must be a mapping"),
        (
            pd.DataFrame({"X_A": [0.1, 0.2]}),
            {"p": [1.0]},
            TypeError,
            r"`weights_by_profile\['p'\]` must be a mapping",
        ),
        (
            pd.DataFrame({"X_A": [0.1, 0.2]}),
            {"p": {"X_Z": 1.0}},
            ValueError,
            r"absent from `atom_returns`: \['X_Z'\]",
        ),
        (pd.DataFrame({"X_A": [0.1, 0.2]}), {"p": {"X_A": np.inf}}, ValueError, "must hold finite weights"),
    ],
    ids=[
        "not-frame",
        "empty",
        "nan",
        "weights-not-mapping",
        "profile-not-mapping",
        "unknown-symbol",
        "inf-weight",
    ],
)
def test_compute_equity_curves_bad_input_raises(returns, weights, error, match):
    with pytest.raises(error, match=match):
        compute_equity_curves(returns, weights)


# --- data url, imports -----------------------------------------------------------------------------------
def test_png_data_url_round_trips_the_bytes(rep_run):
    png = plot_weights(rep_run.portfolio_doc)
    url = png_data_url(png)
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == png


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [("abc", TypeError, "`png` must be bytes"), (b"GIF89a..", ValueError, "PNG signature")],
    ids=["str", "not-png"],
)
def test_png_data_url_bad_input_raises(value, error, match):
    with pytest.raises(error, match=match):
        png_data_url(value)


def test_plots_module_never_imports_pyplot():
    code = "import sys, alpha_assets.reports.plots; print('matplotlib.pyplot' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "False"
