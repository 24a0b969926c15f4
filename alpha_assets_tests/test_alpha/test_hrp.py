"""HRP of ``alpha.hrp``: exact parity with PyPortfolioOpt's HRPOpt, and bounds and cluster caps that hold.

Exercises the quasi-diagonal order, the bisection weights for every linkage, random bounds and caps (the
constraints peers violate), a binding cap moving weight to other clusters, and input validation. The wiring
into ``optimize_profile`` is covered in ``test_optimize.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pypfopt import HRPOpt

from alpha_assets.alpha.hrp import Linkage, hrp_order, hrp_weights


def opt_hrp_cov(seed: int, n_assets: int = 40, n_observations: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Sample covariance of a 4-factor model with sector structure, and the returns it came from."""
    rng = np.random.default_rng(seed)
    sectors = rng.integers(0, 4, n_assets)
    factors = rng.normal(0.0, 0.012, size=(n_observations, 4))
    loadings = np.eye(4)[sectors] * rng.uniform(0.5, 1.5, n_assets)[:, None]
    returns = factors @ loadings.T + rng.normal(0.0, 0.015, size=(n_observations, n_assets)) * rng.uniform(
        0.5, 2.0, n_assets
    )
    return np.cov(returns, rowvar=False), returns


@pytest.mark.parametrize("linkage", list(Linkage), ids=[m.value for m in Linkage])
def test_hrp_weights_uncapped_equals_pypfopt_hrpopt(linkage):
    cov, returns = opt_hrp_cov(1)
    names = [f"A{i:02d}" for i in range(cov.shape[0])]
    reference = HRPOpt(returns=pd.DataFrame(returns, columns=names)).optimize(linkage_method=linkage.value)
    weights = hrp_weights(cov, np.zeros(cov.shape[0], dtype=np.int64), linkage=linkage)
    np.testing.assert_allclose(weights, pd.Series(reference)[names].to_numpy(), atol=1e-12)


def test_hrp_order_is_a_permutation_grouping_correlated_assets():
    cov, _ = opt_hrp_cov(2, n_assets=12)
    order = hrp_order(cov)
    assert sorted(order) == list(range(12))
    corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    ordered = corr[np.ix_(order, order)]
    # Quasi-diagonal: neighbours in the order are more correlated on average than a random pair.
    assert np.mean(np.diag(ordered, 1)) > np.mean(corr[np.triu_indices(12, 1)])


@pytest.mark.parametrize("seed", range(12))
def test_hrp_weights_random_bounds_and_caps_hold(seed):
    rng = np.random.default_rng(100 + seed)
    n_assets = int(rng.integers(5, 60))
    cov, _ = opt_hrp_cov(seed, n_assets=n_assets, n_observations=300)
    clusters = rng.integers(0, int(rng.integers(2, 7)), n_assets)
    sizes = np.bincount(clusters)[np.bincount(clusters) > 0]
    min_weight = float(rng.choice([0.0, rng.uniform(0.0, 0.8 / n_assets)]))
    max_weight = float(rng.uniform(1.2 / n_assets, 0.5))
    cap = float(rng.uniform(1.0 / sizes.size, 0.6))
    if np.minimum(cap, sizes * max_weight).sum() < 1.0 or sizes.max() * min_weight > cap:
        cap = 1.0  # infeasible draw: keep the bounds, drop the cap
    weights = hrp_weights(cov, clusters, min_weight=min_weight, max_weight=max_weight, cap=cap)
    assert np.isfinite(weights).all()
    assert weights.sum() == pytest.approx(1.0, abs=1e-12)
    assert weights.min() >= min_weight - 1e-9
    assert weights.max() <= max_weight + 1e-9
    assert np.bincount(clusters, weights=weights).max() <= cap + 1e-9


def test_hrp_weights_binding_cap_moves_excess_to_other_clusters_only():
    cov, _ = opt_hrp_cov(3, n_assets=20)
    clusters = np.arange(20) % 4
    free = hrp_weights(cov, clusters)
    totals = np.bincount(clusters, weights=free)
    heaviest = int(np.argmax(totals))
    cap = float(totals[heaviest]) - 0.05
    capped = hrp_weights(cov, clusters, cap=cap)
    capped_totals = np.bincount(clusters, weights=capped)
    assert capped_totals[heaviest] == pytest.approx(cap, abs=1e-12)
    others = np.arange(4) != heaviest
    assert (capped_totals[others] >= totals[others] - 1e-12).all()
    # Inside the capped cluster the HRP proportions are kept (pro-rata scaling onto the cap).
    members = clusters == heaviest
    np.testing.assert_allclose(capped[members] / cap, free[members] / totals[heaviest], rtol=1e-9)


def test_hrp_weights_max_weight_clips_and_redistributes():
    cov, _ = opt_hrp_cov(4, n_assets=10)
    free = hrp_weights(cov, np.zeros(10, dtype=np.int64))
    limit = float(np.sort(free)[-3])  # the two largest weights must be cut
    weights = hrp_weights(cov, np.zeros(10, dtype=np.int64), max_weight=limit)
    assert weights.max() <= limit + 1e-12
    assert weights.sum() == pytest.approx(1.0)
    assert (weights[free < limit] >= free[free < limit] - 1e-12).all()


def test_hrp_weights_single_asset_is_fully_invested():
    np.testing.assert_array_equal(hrp_weights(np.array([[0.04]]), np.array([0])), [1.0])


@pytest.mark.parametrize(
    ("cov", "clusters", "kwargs", "match"),
    [
        (np.ones((2, 3)), np.zeros(2, dtype=int), {}, r"`cov` must be square 2-D \(n_assets, n_assets\)"),
        (np.diag([0.04, 0.0]), np.zeros(2, dtype=int), {}, "positive diagonal"),
        (np.diag([0.04, np.nan]), np.zeros(2, dtype=int), {}, "finite"),
        (np.eye(3), np.zeros(2, dtype=int), {}, r"`clusters` must have shape \(n_assets,\)"),
        (np.eye(3), np.zeros(3, dtype=int), {"max_weight": 0.3}, "n_assets \\* max_weight"),
        (np.eye(4), np.array([0, 0, 1, 1]), {"cap": 0.4}, "cluster caps too tight"),
    ],
    ids=["not-square", "zero-variance", "nan", "clusters-shape", "max-weight", "cap"],
)
def test_hrp_weights_bad_input_raises(cov, clusters, kwargs, match):
    with pytest.raises(ValueError, match=match):
        hrp_weights(cov, clusters, **kwargs)
