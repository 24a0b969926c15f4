"""Validation of long-only, fully invested weights against bounds and per-cluster caps."""

from __future__ import annotations

import numpy as np

from alpha_assets.typing import FloatArray, IntArray


def cluster_totals(weights: FloatArray, clusters: IntArray) -> tuple[IntArray, FloatArray]:
    """Sum the weights of each cluster.

    Parameters
    ----------
    weights : ndarray of shape (n_assets,), float64
        Weights (fractions); no NaN.
    clusters : ndarray of shape (n_assets,), int
        Cluster label of each asset (any integers).

    Returns
    -------
    labels : ndarray of shape (n_clusters,), int64
        Sorted distinct labels.
    totals : ndarray of shape (n_clusters,), float64
        Sum of the weights of the assets of each label, in the order of ``labels``.
    """
    labels, inverse = np.unique(np.asarray(clusters), return_inverse=True)
    return labels.astype(np.int64), np.bincount(inverse, weights=weights, minlength=labels.size)


def validate_weights(
    weights: FloatArray,
    *,
    clusters: IntArray,
    cap: float | None,
    min_weight: float,
    max_weight: float,
    tol: float = 1e-6,
) -> None:
    """Check that weights are finite, sum to 1, stay inside the bounds and under the cluster cap.

    Parameters
    ----------
    weights : ndarray of shape (n_assets,), float64
        Portfolio weights (fractions). NaN or inf is a violation.
    clusters : ndarray of shape (n_assets,), int
        Cluster label of each asset.
    cap : float or None
        Maximum total weight of any cluster; None means no cluster cap.
    min_weight, max_weight : float
        Per-asset bounds (fractions).
    tol : float, default 1e-6
        Absolute tolerance of every check.

    Raises
    ------
    ValueError
        Naming the violated constraint and the numbers: wrong shape, non-finite weights, sum not 1, a weight
        below ``min_weight`` or above ``max_weight``, a cluster above ``cap``.
    """
    weights = np.asarray(weights, dtype=np.float64)
    clusters = np.asarray(clusters)
    if weights.ndim != 1 or weights.size == 0:
        raise ValueError(f"`weights` must be 1-D (n_assets,) and non-empty, got shape {weights.shape}")
    if clusters.shape != weights.shape:
        raise ValueError(f"`clusters` must have shape (n_assets,) = {weights.shape}, got {clusters.shape}")
    if not np.isfinite(weights).all():
        raise ValueError(f"weights must be finite: {int((~np.isfinite(weights)).sum())} NaN or inf")
    total = float(weights.sum())
    if abs(total - 1.0) > tol:
        raise ValueError(f"weights must sum to 1 (fully invested): sum is {total:.12g}, tolerance {tol:g}")
    low = int(np.argmin(weights))
    if weights[low] < min_weight - tol:
        raise ValueError(
            f"weight bound min_weight violated: asset {low} has {weights[low]:.12g} < {min_weight:g} - {tol:g}"
        )
    high = int(np.argmax(weights))
    if weights[high] > max_weight + tol:
        raise ValueError(
            f"weight bound max_weight violated: asset {high} has {weights[high]:.12g} > {max_weight:g} + {tol:g}"
        )
    if cap is not None:
        labels, totals = cluster_totals(weights, clusters)
        worst = int(np.argmax(totals))
        if totals[worst] > cap + tol:
            raise ValueError(
                f"cluster cap violated: cluster {labels[worst]} sums to {totals[worst]:.12g} > {cap:g} + {tol:g}"
            )


def infeasibility_reason(clusters: IntArray, *, cap: float | None, min_weight: float, max_weight: float) -> str | None:
    """Say why no long-only, fully invested portfolio meets the bounds and caps, or return None.

    The constraint set is non-empty exactly when every cluster's range ``[n_c * min_weight,
    min(cap, n_c * max_weight)]`` is non-empty and the ranges' lower ends sum to <= 1 <= their upper ends.

    Parameters
    ----------
    clusters : ndarray of shape (n_assets,), int
        Cluster label of each asset.
    cap : float or None
        Maximum total weight of any cluster; None means no cap.
    min_weight, max_weight : float
        Per-asset bounds (fractions).

    Returns
    -------
    str or None
        A sentence with the numbers when infeasible, else None.
    """
    _, sizes = np.unique(np.asarray(clusters), return_counts=True)
    n_assets = int(sizes.sum())
    eps = 1e-12
    if n_assets * max_weight < 1.0 - eps:
        return (
            f"full investment is impossible: n_assets * max_weight = {n_assets} * {max_weight:g} "
            f"= {n_assets * max_weight:.6g} < 1"
        )
    if n_assets * min_weight > 1.0 + eps:
        return (
            f"full investment is impossible: n_assets * min_weight = {n_assets} * {min_weight:g} "
            f"= {n_assets * min_weight:.6g} > 1"
        )
    if cap is None:
        return None
    largest = int(sizes.max())
    if largest * min_weight > cap + eps:
        return (
            f"cluster cap {cap:g} is below the smallest weight a cluster of {largest} assets can hold "
            f"({largest} * min_weight = {largest * min_weight:.6g})"
        )
    capacity = float(np.minimum(cap, sizes * max_weight).sum())
    if capacity < 1.0 - eps:
        return (
            f"cluster caps too tight for full investment: {sizes.size} clusters can hold at most "
            f"{capacity:.6g} < 1 with cap {cap:g} and max_weight {max_weight:g}"
        )
    return None
