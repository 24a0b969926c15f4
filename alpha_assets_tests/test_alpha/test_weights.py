"""Weight validation and feasibility of ``alpha.weights``: each violated constraint named with its numbers.

Exercises ``validate_weights`` on a valid portfolio and on each violation, ``cluster_totals``, and
``infeasibility_reason`` on each way bounds and caps can exclude full investment.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from alpha_assets.alpha.weights import cluster_totals, infeasibility_reason, validate_weights

CLUSTERS = np.array([0, 0, 1, 1, 2])


def test_validate_weights_valid_portfolio_passes():
    validate_weights(np.array([0.2, 0.2, 0.25, 0.15, 0.2]), clusters=CLUSTERS, cap=0.4, min_weight=0.1, max_weight=0.25)
    # Inside the tolerance: a sum off by 5e-7 passes.
    validate_weights(
        np.array([0.2, 0.2, 0.25, 0.15, 0.2000005]),
        clusters=CLUSTERS,
        cap=None,
        min_weight=0.0,
        max_weight=1.0,
    )


@pytest.mark.parametrize(
    ("weights", "kwargs", "match"),
    [
        ([0.2, 0.2, 0.2, 0.2, 0.1], {}, r"weights must sum to 1 \(fully invested\): sum is 0.9"),
        ([0.3, 0.2, 0.2, 0.2, 0.1], {"min_weight": 0.15}, r"min_weight violated: asset 4 has 0.1 < 0.15"),
        ([0.3, 0.2, 0.2, 0.2, 0.1], {"max_weight": 0.25}, r"max_weight violated: asset 0 has 0.3 > 0.25"),
        ([0.3, 0.2, 0.2, 0.2, 0.1], {"cap": 0.45}, r"cluster cap violated: cluster 0 sums to 0.5 > 0.45"),
        ([0.3, 0.2, np.nan, 0.2, 0.1], {}, "weights must be finite: 1 NaN or inf"),
        ([[0.5, 0.5]], {}, r"`weights` must be 1-D \(n_assets,\)"),
        ([0.5, 0.5], {}, r"`clusters` must have shape \(n_assets,\)"),
    ],
    ids=["sum", "min", "max", "cap", "nan", "2d", "clusters-shape"],
)
def test_validate_weights_violation_raises_naming_constraint(weights, kwargs, match):
    arguments = {"clusters": CLUSTERS, "cap": None, "min_weight": 0.0, "max_weight": 1.0} | kwargs
    with pytest.raises(ValueError, match=match):
        validate_weights(np.array(weights), **arguments)


def test_cluster_totals_sums_per_label_in_label_order():
    labels, totals = cluster_totals(np.array([0.1, 0.2, 0.3, 0.4]), np.array([7, 3, 7, 3]))
    np.testing.assert_array_equal(labels, [3, 7])
    np.testing.assert_allclose(totals, [0.6, 0.4])


@pytest.mark.parametrize(
    ("clusters", "kwargs", "match"),
    [
        (
            np.zeros(4, dtype=int),
            {"cap": None, "min_weight": 0.0, "max_weight": 0.2},
            r"n_assets \* max_weight",
        ),
        (
            np.zeros(4, dtype=int),
            {"cap": None, "min_weight": 0.3, "max_weight": 1.0},
            r"n_assets \* min_weight",
        ),
        (
            np.array([0, 0, 0, 1]),
            {"cap": 0.5, "min_weight": 0.2, "max_weight": 1.0},
            "below the smallest weight",
        ),
        (
            np.array([0, 0, 1, 1]),
            {"cap": 0.45, "min_weight": 0.0, "max_weight": 1.0},
            "cluster caps too tight",
        ),
        (np.array([0, 0, 0, 1, 2]), {"cap": 0.5, "min_weight": 0.0, "max_weight": 0.2}, "at most 0.9 < 1"),
    ],
    ids=["max-weight", "min-weight", "cap-below-min", "caps", "caps-and-max-weight"],
)
def test_infeasibility_reason_names_the_obstacle(clusters, kwargs, match):
    assert infeasibility_reason(clusters, **kwargs) is not None
    assert re.search(match, infeasibility_reason(clusters, **kwargs))


def test_infeasibility_reason_feasible_edge_is_none():
    # Capacity exactly 1: 0.5 + 0.5 with two clusters of two at cap 0.5.
    assert infeasibility_reason(np.array([0, 0, 1, 1]), cap=0.5, min_weight=0.0, max_weight=1.0) is None
    assert infeasibility_reason(np.arange(4), cap=None, min_weight=0.25, max_weight=0.25) is None
