"""Hierarchical Risk Parity (López de Prado, 2016) with per-asset bounds and per-cluster caps that hold.

The algorithm, in the order of the original paper and of PyPortfolioOpt's ``HRPOpt``:

1. Distance ``sqrt(0.5 * (1 - rho))`` from the correlation implied by the covariance (clipped to [0, 1]).
2. Hierarchical linkage of that distance (``single`` by default, as PyPortfolioOpt; configurable).
3. Quasi-diagonalisation: assets ordered as the leaves of the dendrogram, left to right.
4. Recursive bisection of the *ordered list* (each segment split at ``len // 2``, not along the tree), the
   parent's weight split between the halves in inverse proportion to each half's variance, a half's variance
   being that of its inverse-variance portfolio.

Constraints enter in step 4. At each split the left half's share is clipped into the range that keeps both
halves able to meet their members' bounds (``[max(lo_L, W - hi_R), min(hi_L, W - lo_R)]``, ``lo``/``hi``
summed over the half), so the excess goes to the other side and every leaf ends inside its bounds. Cluster
caps couple assets scattered over the tree, so they are enforced by iterating: a cluster above its cap gets
its members' upper bounds lowered to their current weights scaled onto the cap, and the bisection is re-run,
which hands the excess to the neighbouring halves. A capped cluster stays capped, so at most ``n_clusters``
rounds are needed. Uncapped and with bounds [0, 1] nothing is ever clipped and the weights are exactly
PyPortfolioOpt's ``HRPOpt.optimize``.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from alpha_assets.alpha.weights import cluster_totals, infeasibility_reason
from alpha_assets.typing import FloatArray, IntArray


class Linkage(StrEnum):
    """Hierarchical linkage used by HRP to order the assets (SciPy method names)."""

    SINGLE = "single"
    COMPLETE = "complete"
    AVERAGE = "average"
    WARD = "ward"


# A cluster counts as over its cap above this; smaller excesses are floating-point noise, and the final
# validation of the caller uses 1e-6.
_CAP_SLACK = 1e-12


def hrp_order(cov: FloatArray, linkage: Linkage = Linkage.SINGLE) -> IntArray:
    """Order assets by the leaves of the correlation-distance dendrogram (quasi-diagonalisation).

    Parameters
    ----------
    cov : ndarray of shape (n_assets, n_assets), float64
        Covariance, any units; positive diagonal.
    linkage : Linkage, default SINGLE
        SciPy linkage method.

    Returns
    -------
    ndarray of shape (n_assets,), int64
        Asset indices, left to right along the dendrogram.
    """
    n_assets = cov.shape[0]
    if n_assets == 1:
        return np.zeros(1, dtype=np.int64)
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    distance = np.sqrt(np.clip((1.0 - corr) / 2.0, 0.0, 1.0))
    from scipy.cluster import hierarchy  # deferred: ~0.25 s of import in every run process
    from scipy.spatial.distance import squareform

    tree = hierarchy.linkage(squareform(distance, checks=False), method=linkage.value)
    return hierarchy.leaves_list(tree).astype(np.int64)


def _bisection_levels(ordered_cov: FloatArray) -> list[tuple[IntArray, IntArray, IntArray, FloatArray]]:
    """Split segments level by level; per level the (start, mid, end, raw left share) of each split."""
    inv_var = 1.0 / np.diag(ordered_cov)
    levels = []
    starts = np.array([0])
    ends = np.array([ordered_cov.shape[0]])
    while starts.size:
        keep = ends - starts > 1
        starts, ends = starts[keep], ends[keep]
        if not starts.size:
            break
        mids = starts + (ends - starts) // 2
        variances = np.empty((starts.size, 2))
        # One small quadratic form per segment: about 2 * n_assets in all, O(n_assets^2) flops in total.
        for k, (a, m, b) in enumerate(zip(starts, mids, ends, strict=True)):
            for side, (lo, hi) in enumerate(((a, m), (m, b))):
                iv = inv_var[lo:hi] / inv_var[lo:hi].sum()
                variances[k, side] = iv @ ordered_cov[lo:hi, lo:hi] @ iv
        alpha = 1.0 - variances[:, 0] / variances.sum(axis=1)
        levels.append((starts, mids, ends, alpha))
        starts = np.concatenate([starts, mids])
        ends = np.concatenate([mids, ends])
    return levels


def _allocate(
    levels: list[tuple[IntArray, IntArray, IntArray, FloatArray]], lower: FloatArray, upper: FloatArray
) -> FloatArray:
    """Top-down bisection with each left share clipped so both halves can meet their bounds."""
    cum_lo = np.concatenate([[0.0], np.cumsum(lower)])
    cum_hi = np.concatenate([[0.0], np.cumsum(upper)])
    # A segment's weight lives at its start index; a split keeps the left at `start`, the right at `mid`.
    segment_weight = np.zeros(lower.size)
    segment_weight[0] = 1.0
    for starts, mids, ends, alpha in levels:
        parent = segment_weight[starts]
        lo_left, hi_left = cum_lo[mids] - cum_lo[starts], cum_hi[mids] - cum_hi[starts]
        lo_right, hi_right = cum_lo[ends] - cum_lo[mids], cum_hi[ends] - cum_hi[mids]
        left = np.clip(alpha * parent, np.maximum(lo_left, parent - hi_right), np.minimum(hi_left, parent - lo_right))
        segment_weight[starts] = left
        segment_weight[mids] = parent - left
    # Every index ends as the start of a one-asset segment, so this is the leaf weights.
    return segment_weight


def hrp_weights(
    cov: FloatArray,
    clusters: IntArray,
    *,
    linkage: Linkage = Linkage.SINGLE,
    min_weight: float = 0.0,
    max_weight: float = 1.0,
    cap: float | None = None,
) -> FloatArray:
    """Hierarchical Risk Parity weights under per-asset bounds and per-cluster caps.

    See the module docstring for the algorithm and how the constraints are enforced.

    Parameters
    ----------
    cov : ndarray of shape (n_assets, n_assets), float64
        Covariance of the assets, any units (weights do not depend on scale); positive diagonal, no NaN.
    clusters : ndarray of shape (n_assets,), int
        Cluster label of each asset, the groups whose total weight ``cap`` limits (not HRP's own tree).
    linkage : Linkage, default SINGLE
        Linkage of the HRP tree.
    min_weight, max_weight : float, default 0.0 and 1.0
        Bounds of every asset's weight (fractions).
    cap : float or None, default None
        Maximum total weight of each cluster; None for no cap.

    Returns
    -------
    ndarray of shape (n_assets,), float64
        Long-only weights summing to 1, inside the bounds and under the caps (up to floating-point error).

    Raises
    ------
    ValueError
        If ``cov`` is not square, not finite or has a non-positive diagonal, if ``clusters`` has the wrong
        shape, or if the bounds and caps admit no fully invested portfolio (the reason is in the message).
    """
    cov = np.asarray(cov, dtype=np.float64)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1] or cov.shape[0] == 0:
        raise ValueError(f"`cov` must be square 2-D (n_assets, n_assets), got shape {cov.shape}")
    if not np.isfinite(cov).all() or (np.diag(cov) <= 0).any():
        raise ValueError("`cov` must be finite with a positive diagonal (no zero-variance asset)")
    clusters = np.asarray(clusters)
    if clusters.shape != (cov.shape[0],):
        raise ValueError(f"`clusters` must have shape (n_assets,) = ({cov.shape[0]},), got {clusters.shape}")
    reason = infeasibility_reason(clusters, cap=cap, min_weight=min_weight, max_weight=max_weight)
    if reason is not None:
        raise ValueError(reason)

    order = hrp_order(cov, linkage)
    levels = _bisection_levels(cov[np.ix_(order, order)])
    ordered_clusters = clusters[order]
    lower = np.full(order.size, float(min_weight))
    upper = np.full(order.size, float(max_weight))
    labels, inverse = np.unique(ordered_clusters, return_inverse=True)
    for _ in range(labels.size + 1):
        weights = _allocate(levels, lower, upper)
        if cap is None:
            break
        _, totals = cluster_totals(weights, ordered_clusters)
        over = totals > cap + _CAP_SLACK
        if not over.any():
            break
        lows = np.bincount(inverse, weights=lower, minlength=labels.size)
        # Members of an over-cap cluster keep their lower bound and share (cap - lows) pro rata to excess.
        scale = np.where(over, (cap - lows) / np.maximum(totals - lows, np.finfo(float).tiny), 1.0)
        members = over[inverse]
        upper[members] = lower[members] + (weights[members] - lower[members]) * scale[inverse][members]
    result = np.empty_like(weights)
    result[order] = weights
    return result
