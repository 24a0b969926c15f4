"""Covariance estimators of ``alpha.covariance``: sample and Ledoit-Wolf against references, and shrinkage.

Exercises ``estimate_covariance`` against ``np.cov`` and PyPortfolioOpt's Ledoit-Wolf, ``shrink``'s end points
and trace, and the documented input errors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pypfopt.risk_models import CovarianceShrinkage

from alpha_assets.alpha.covariance import CovarianceMethod, estimate_covariance, shrink


@pytest.fixture(scope="module")
def opt_cov_returns() -> np.ndarray:
    rng = np.random.default_rng(7)
    market = rng.normal(3e-4, 0.012, size=(250, 1))
    return market * rng.uniform(0.5, 1.5, 15) + rng.normal(0.0, 0.02, size=(250, 15))


def test_estimate_covariance_sample_equals_np_cov_ddof1(opt_cov_returns):
    cov = estimate_covariance(opt_cov_returns, CovarianceMethod.SAMPLE)
    np.testing.assert_allclose(cov, np.cov(opt_cov_returns, rowvar=False, ddof=1), rtol=1e-12)
    np.testing.assert_array_equal(cov, cov.T)


def test_estimate_covariance_ledoit_wolf_equals_pypfopt(opt_cov_returns):
    cov = estimate_covariance(opt_cov_returns, CovarianceMethod.LEDOIT_WOLF)
    frame = pd.DataFrame(opt_cov_returns)
    reference = CovarianceShrinkage(frame, returns_data=True, frequency=1).ledoit_wolf()
    np.testing.assert_allclose(cov, reference.to_numpy(), rtol=1e-10)
    sample = np.cov(opt_cov_returns, rowvar=False, ddof=0)
    # Shrunk toward mean(diag) * I: off-diagonals shrink, the trace is kept.
    assert np.trace(cov) == pytest.approx(np.trace(sample))
    assert np.abs(cov - np.diag(np.diag(cov))).sum() < np.abs(sample - np.diag(np.diag(sample))).sum()


def test_estimate_covariance_single_asset_is_1x1(opt_cov_returns):
    cov = estimate_covariance(opt_cov_returns[:, :1], CovarianceMethod.SAMPLE)
    assert cov.shape == (1, 1)
    assert cov[0, 0] == pytest.approx(opt_cov_returns[:, 0].var(ddof=1))


@pytest.mark.parametrize(
    ("returns", "method", "error", "match"),
    [
        (
            np.zeros(10),
            CovarianceMethod.SAMPLE,
            ValueError,
            r"`returns` must be 2-D \(n_observations, n_assets\)",
        ),
        (np.zeros((1, 3)), CovarianceMethod.SAMPLE, ValueError, "needs >= 2 observations"),
        (np.full((5, 2), np.nan), CovarianceMethod.SAMPLE, ValueError, "`returns` must be finite"),
        ([[0.1, 0.2], [0.0, 0.1]], CovarianceMethod.SAMPLE, TypeError, "`returns` must be a numpy ndarray"),
        (np.ones((5, 2)), "sample", TypeError, "`method` must be a CovarianceMethod"),
    ],
    ids=["1d", "one-row", "nan", "list", "method-str"],
)
def test_estimate_covariance_bad_input_raises(returns, method, error, match):
    with pytest.raises(error, match=match):
        estimate_covariance(returns, method)


def test_shrink_end_points_and_trace(opt_cov_returns):
    cov = np.cov(opt_cov_returns, rowvar=False)
    np.testing.assert_array_equal(shrink(cov, 0.0), cov)
    target = np.trace(cov) / cov.shape[0]
    np.testing.assert_allclose(shrink(cov, 1.0), target * np.eye(cov.shape[0]), atol=1e-18)
    half = shrink(cov, 0.5)
    assert np.trace(half) == pytest.approx(np.trace(cov))
    assert np.linalg.cond(half) < np.linalg.cond(cov)


@pytest.mark.parametrize(
    ("cov", "intensity", "match"),
    [
        (np.ones((2, 3)), 0.1, "`cov` must be square 2-D"),
        (np.array([[np.inf]]), 0.1, "`cov` must be finite"),
        (np.eye(2), 1.5, r"`intensity` must be in \[0, 1\]"),
    ],
    ids=["not-square", "inf", "intensity"],
)
def test_shrink_bad_input_raises(cov, intensity, match):
    with pytest.raises(ValueError, match=match):
        shrink(cov, intensity)
