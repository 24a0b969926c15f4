"""Covariance estimators of a returns matrix and shrinkage toward the scaled identity."""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from alpha_assets.typing import FloatArray
from alpha_assets.validation import check_returns_array


class CovarianceMethod(StrEnum):
    """Covariance estimator applied to the returns matrix."""

    SAMPLE = "sample"
    LEDOIT_WOLF = "ledoit_wolf"


def estimate_covariance(returns: FloatArray, method: CovarianceMethod) -> FloatArray:
    """Estimate the covariance of per-period returns.

    Parameters
    ----------
    returns : ndarray of shape (n_observations, n_assets), float64
        Simple returns per period (fractions, not %), one column per asset. No NaN allowed: the returns
        matrix is trimmed of NaN rows upstream.
    method : CovarianceMethod
        ``SAMPLE``: unbiased sample covariance (``np.cov``, ddof=1). ``LEDOIT_WOLF``: Ledoit-Wolf shrinkage of
        the biased (1 / n_observations) empirical covariance toward ``mean(diag) * I``, as
        ``sklearn.covariance.ledoit_wolf`` (PyPortfolioOpt's ``CovarianceShrinkage.ledoit_wolf`` agrees).

    Returns
    -------
    ndarray of shape (n_assets, n_assets), float64
        Symmetric covariance in per-period units (returns squared), not annualised.

    Raises
    ------
    TypeError
        If ``returns`` is not an ndarray or ``method`` not a CovarianceMethod.
    ValueError
        If ``returns`` is not 2-D, has fewer than 2 observations, or holds NaN or inf.
    """
    values = check_returns_array(returns)
    if not isinstance(method, CovarianceMethod):
        raise TypeError(f"`method` must be a CovarianceMethod, got {method!r}")
    if method is CovarianceMethod.SAMPLE:
        cov = np.atleast_2d(np.cov(values, rowvar=False, ddof=1))
    else:
        from sklearn.covariance import ledoit_wolf  # deferred: ~0.85 s of import in every run process

        cov, _ = ledoit_wolf(values)
    # Symmetrise so quadratic forms and Cholesky see exactly the same matrix on both triangles.
    return np.asarray(0.5 * (cov + cov.T), dtype=np.float64)


def shrink(cov: FloatArray, intensity: float) -> FloatArray:
    """Shrink a covariance toward the scaled identity ``(trace(cov) / n_assets) * I``.

    Parameters
    ----------
    cov : ndarray of shape (n_assets, n_assets), float64
        Symmetric covariance, any units; no NaN.
    intensity : float
        Weight of the target in [0, 1]: 0 returns ``cov`` unchanged, 1 the scaled identity.

    Returns
    -------
    ndarray of shape (n_assets, n_assets), float64
        ``(1 - intensity) * cov + intensity * (trace(cov) / n_assets) * I``; same trace as ``cov``.

    Raises
    ------
    ValueError
        If ``cov`` is not square 2-D, not finite, or ``intensity`` is outside [0, 1].
    """
    cov = np.asarray(cov, dtype=np.float64)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"`cov` must be square 2-D (n_assets, n_assets), got shape {cov.shape}")
    if not np.isfinite(cov).all():
        raise ValueError("`cov` must be finite (no NaN or inf)")
    if not 0.0 <= intensity <= 1.0:
        raise ValueError(f"`intensity` must be in [0, 1], got {intensity}")
    target = np.trace(cov) / cov.shape[0]
    out = (1.0 - intensity) * cov
    out[np.diag_indices_from(out)] += intensity * target
    return out
