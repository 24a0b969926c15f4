"""Tests of alpha.clustering: multi-window correlation distance, Ward/HDBSCAN sector recovery, bounds, labels.

Sector recovery is measured with the adjusted Rand index on the simulated fat-tailed sector market.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from alpha_assets.alpha.clustering import ClusterMethod, cluster_assets, correlation_distance, ward_linkage


@pytest.fixture(scope="module")
def sel_distance(sel_market):
    returns = sel_market.returns[sorted(sel_market.returns.columns)]
    return correlation_distance(returns, (60, 120, 0)), sel_market.sectors[returns.columns].to_numpy()


def test_correlation_distance_full_window_matches_corrcoef(sel_market):
    returns = sel_market.returns
    distance = correlation_distance(returns, [0])
    expected = np.sqrt(0.5 * (1.0 - np.corrcoef(returns.to_numpy(), rowvar=False)))
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(distance, expected, atol=1e-12)


def test_correlation_distance_averages_windows_and_clips_long_ones(sel_market):
    returns = sel_market.returns
    averaged = correlation_distance(returns, [60, 0])
    np.testing.assert_allclose(
        averaged, 0.5 * (correlation_distance(returns, [60]) + correlation_distance(returns, [0]))
    )
    np.testing.assert_array_equal(correlation_distance(returns, [10_000]), correlation_distance(returns, [0]))
    assert np.array_equal(averaged, averaged.T) and np.all(np.diag(averaged) == 0.0)
    assert averaged.min() >= 0.0 and averaged.max() <= 1.0


def test_correlation_distance_constant_symbol_in_window_is_uncorrelated(sel_market):
    values = sel_market.returns.to_numpy().copy()
    values[-60:, 0] = 0.0
    distance = correlation_distance(values, [60])
    np.testing.assert_allclose(distance[0, 1:], np.sqrt(0.5))


@pytest.mark.parametrize("method", list(ClusterMethod), ids=lambda m: m.value)
def test_cluster_assets_sector_market_recovers_sectors(sel_distance, method):
    distance, sectors = sel_distance
    labels = cluster_assets(distance, method, min_clusters=2, max_clusters=25)
    assert adjusted_rand_score(sectors, labels) >= 0.9
    assert labels.dtype == np.int64


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cluster_assets_ward_other_seeds_recover_sectors(sel_simulate, seed):
    market = sel_simulate(seed, sector_sizes=(15, 9, 12), n_days=400)
    returns = market.returns[sorted(market.returns.columns)]
    labels = cluster_assets(correlation_distance(returns, (60, 120, 0)), ClusterMethod.WARD, 2, 20)
    assert adjusted_rand_score(market.sectors[returns.columns], labels) >= 0.9


@pytest.mark.parametrize(
    ("method", "lo", "hi"),
    [
        (ClusterMethod.WARD, 6, 10),
        (ClusterMethod.WARD, 6, 6),
        (ClusterMethod.WARD, 2, 2),
        (ClusterMethod.WARD, 1, 1),
        (ClusterMethod.HDBSCAN, 1, 2),
        (ClusterMethod.HDBSCAN, 7, 9),
    ],
    ids=["ward-6-10", "ward-6", "ward-2", "ward-1", "hdbscan-1-2", "hdbscan-7-9"],
)
def test_cluster_assets_bounds_hold(sel_distance, method, lo, hi):
    distance, _ = sel_distance
    n_clusters = len(np.unique(cluster_assets(distance, method, lo, hi)))
    assert lo <= n_clusters <= hi


def test_cluster_assets_ward_picks_largest_gap_within_bounds(sel_distance):
    distance, _ = sel_distance
    heights = ward_linkage(distance)[:, 2]
    n_assets = distance.shape[0]
    # The cut to k clusters lies between merge n-k-1 and merge n-k.
    gaps = {k: heights[n_assets - k] - heights[n_assets - k - 1] for k in range(6, 11)}
    labels = cluster_assets(distance, ClusterMethod.WARD, 6, 10)
    assert len(np.unique(labels)) == max(gaps, key=gaps.get)


def test_cluster_assets_ward_tied_merge_heights_still_gives_exact_count():
    # Two pairs at distance 1 merge at the same height: a plain maxclust cut cannot give 3 clusters.
    points = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 1.0]])
    distance = np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1))
    np.testing.assert_array_equal(cluster_assets(distance, ClusterMethod.WARD, 3, 3), [0, 0, 1, 2])


def test_cluster_assets_labels_are_canonical_and_deterministic(sel_distance):
    distance, _ = sel_distance
    labels = cluster_assets(distance, ClusterMethod.WARD, 2, 25)
    ids, first_member = np.unique(labels, return_index=True)
    # Label k is the k-th cluster met when walking the assets in (symbol) order.
    assert list(ids) == list(range(len(ids))) and np.all(np.diff(first_member) > 0)
    np.testing.assert_array_equal(labels, cluster_assets(distance.copy(), ClusterMethod.WARD, 2, 25))


def test_cluster_assets_hdbscan_noise_points_become_singletons(sel_simulate):
    market = sel_simulate(4, sector_sizes=(8, 8, 8), n_days=400)
    returns = market.returns.copy()
    rng = np.random.default_rng(9)
    returns["BINANCE_ZZ1USDT"] = rng.standard_t(4, len(returns)) * 0.02
    returns["BINANCE_ZZ2USDT"] = rng.standard_t(4, len(returns)) * 0.02
    returns = returns[sorted(returns.columns)]
    labels = cluster_assets(correlation_distance(returns, (0,)), ClusterMethod.HDBSCAN, 2, 25)
    loners = [list(returns.columns).index(s) for s in ("BINANCE_ZZ1USDT", "BINANCE_ZZ2USDT")]
    assert all(np.sum(labels == labels[i]) == 1 for i in loners)
    assert len(np.unique(labels)) == 5


def test_ward_linkage_shape_and_single_asset(sel_distance):
    distance, _ = sel_distance
    link = ward_linkage(distance)
    assert link.shape == (distance.shape[0] - 1, 4)
    assert np.all(np.diff(link[:, 2]) >= 0)
    assert ward_linkage(np.zeros((1, 1))).shape == (0, 4)
    np.testing.assert_array_equal(cluster_assets(np.zeros((1, 1)), ClusterMethod.WARD, 1, 3), [0])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda r, d: correlation_distance(r[:, 0], [0]),
            ValueError,
            "must be 2-D \\(n_observations, n_assets\\)",
        ),
        (lambda r, d: correlation_distance(np.where(r > 0.05, np.nan, r), [0]), ValueError, "must be finite"),
        (lambda r, d: correlation_distance(r, []), ValueError, "at least one window"),
        (lambda r, d: correlation_distance(r, [1]), ValueError, "0 \\(full sample\\) or >= 2"),
        (lambda r, d: cluster_assets(d[:, :-1], ClusterMethod.WARD, 2, 5), ValueError, "square"),
        (lambda r, d: cluster_assets(d + np.triu(d), ClusterMethod.WARD, 2, 5), ValueError, "symmetric"),
        (lambda r, d: cluster_assets(d, ClusterMethod.WARD, 5, 2), ValueError, "1 <= min <= max"),
        (lambda r, d: cluster_assets(d, "ward", 2, 5), TypeError, "must be a ClusterMethod"),
        (lambda r, d: cluster_assets(d, ClusterMethod.HDBSCAN, 2, 5, min_cluster_size=1), ValueError, ">= 2"),
    ],
    ids=["1-d", "nan", "no-window", "window-1", "not-square", "asymmetric", "bounds", "string-method", "mcs"],
)
def test_clustering_bad_arguments_raise(sel_market, sel_distance, call, error, match):
    with pytest.raises(error, match=match):
        call(sel_market.returns.to_numpy(), sel_distance[0])


def test_cluster_assets_ward_far_apart_assets_do_not_become_singletons():
    # Every pair is at least 0.5 apart (sectors only 0.1 closer), so the step from 0 to the first merge is the
    # largest of all; it
    # must not count as a cut, or every asset would be its own cluster and cluster caps would mean nothing.
    rng = np.random.default_rng(11)
    n_assets = 20
    sector = np.repeat([0, 1, 2, 3], 5)
    distance = np.where(sector[:, None] == sector[None, :], 0.5, 0.6) + rng.uniform(0, 0.05, (n_assets, n_assets))
    distance = (distance + distance.T) / 2
    np.fill_diagonal(distance, 0.0)
    labels = cluster_assets(distance, ClusterMethod.WARD, min_clusters=2, max_clusters=25)
    assert len(np.unique(labels)) == 4
    assert adjusted_rand_score(sector, labels) == 1.0
