"""Correlation distance over several windows, Ward or HDBSCAN clusters with bounds, canonical labels."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import numpy as np
import pandas as pd

from alpha_assets.typing import FloatArray, IntArray
from alpha_assets.validation import check_returns_array


class ClusterMethod(StrEnum):
    """How assets are grouped from their correlation distance."""

    WARD = "ward"
    HDBSCAN = "hdbscan"


def _as_returns_array(returns: pd.DataFrame | np.ndarray) -> FloatArray:
    values = returns.to_numpy(dtype=np.float64) if isinstance(returns, pd.DataFrame) else np.asarray(returns, float)
    return check_returns_array(values)


def _validate_distance(distance: np.ndarray) -> FloatArray:
    d = np.asarray(distance, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1] or d.shape[0] < 1:
        raise ValueError(f"`distance` must be a square (n_assets, n_assets) matrix, got shape {d.shape}")
    if not np.isfinite(d).all() or (d < 0).any():
        raise ValueError("`distance` must be finite and non-negative")
    if not np.allclose(d, d.T, atol=1e-12) or np.any(np.diag(d) != 0):
        raise ValueError("`distance` must be symmetric with a zero diagonal")
    return d


def correlation_distance(returns: pd.DataFrame | np.ndarray, windows: Sequence[int]) -> FloatArray:
    """Average the correlation distance sqrt(0.5 (1 - rho)) over several trailing windows.

    Parameters
    ----------
    returns : pandas.DataFrame or ndarray of shape (n_observations, n_assets)
        Daily simple returns (fractions), rows in time order, no NaN or inf.
    windows : sequence of int
        Trailing window lengths in rows; 0, or a length >= n_observations, means the full sample. A window is
        at least 2 rows. Duplicates count twice in the average.

    Returns
    -------
    ndarray of shape (n_assets, n_assets)
        float64 distances in [0, 1], symmetric, zero diagonal.

    Raises
    ------
    ValueError
        If ``returns`` is not 2-D, has fewer than 2 rows, or holds NaN/inf; if ``windows`` is empty or holds a
        negative length or a length of 1.

    Notes
    -----
    A symbol constant within a window has no correlation there; its rho is taken as 0 (distance
    sqrt(0.5)) with every other symbol in that window, so it is neither merged nor split on no evidence.
    """
    values = _as_returns_array(returns)
    windows = [int(w) for w in windows]
    if not windows:
        raise ValueError("`windows` must hold at least one window length, got an empty sequence")
    if any(w < 0 or w == 1 for w in windows):
        raise ValueError(f"`windows` lengths must be 0 (full sample) or >= 2, got {windows}")
    n_observations, n_assets = values.shape
    total = np.zeros((n_assets, n_assets))
    for w in windows:
        length = n_observations if w == 0 or w >= n_observations else w
        block = values[-length:]
        centred = block - block.mean(axis=0)
        norms = np.sqrt(np.einsum("ij,ij->j", centred, centred))
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = (centred.T @ centred) / np.outer(norms, norms)
        rho = np.clip(np.nan_to_num(rho, nan=0.0), -1.0, 1.0)
        total += np.sqrt(0.5 * (1.0 - rho))
    distance = total / len(windows)
    distance = 0.5 * (distance + distance.T)
    np.fill_diagonal(distance, 0.0)
    return distance


def ward_linkage(distance: np.ndarray) -> FloatArray:
    """Ward linkage of the condensed distance, for the cut and for a dendrogram.

    Parameters
    ----------
    distance : ndarray of shape (n_assets, n_assets)
        Symmetric, non-negative, zero diagonal (see :func:`correlation_distance`).

    Returns
    -------
    ndarray of shape (n_assets - 1, 4)
        The scipy linkage matrix (float64): merged ids, merge height, size; empty (0, 4) for one asset.

    Raises
    ------
    ValueError
        If ``distance`` is not square, finite, non-negative, symmetric with a zero diagonal.
    """
    return _ward_linkage(_validate_distance(distance))


def _ward_linkage(d: FloatArray) -> FloatArray:
    if d.shape[0] < 2:
        return np.empty((0, 4))
    from scipy.cluster.hierarchy import linkage  # deferred: ~0.25 s of import in every run process
    from scipy.spatial.distance import squareform

    return linkage(squareform(d, checks=False), method="ward")


def _canonical_labels(raw: np.ndarray) -> IntArray:
    """Renumber clusters 0..k-1 by the position of their first member (columns are sorted by symbol)."""
    _, first_index, inverse = np.unique(raw, return_index=True, return_inverse=True)
    rank_of_cluster = np.argsort(np.argsort(first_index, kind="stable"), kind="stable")
    return rank_of_cluster[inverse].astype(np.int64)


def _ward_n_clusters(link: FloatArray, n_assets: int, min_clusters: int, max_clusters: int) -> int:
    """Return the number of clusters whose cut falls in the largest merge-height gap within the bounds.

    Only gaps between two merges count: the step from zero to the first merge height reflects how far
    apart any two assets are, not a structure, and would always vote for one cluster per asset.
    """
    heights = link[:, 2]
    # Cutting to k clusters keeps the first n - k merges; its gap is heights[n-k] - heights[n-k-1].
    ks = np.arange(max(min_clusters, 2), min(max_clusters, n_assets - 1) + 1)
    if len(ks) == 0:
        return min(max_clusters, n_assets)
    gaps = heights[n_assets - ks] - heights[n_assets - ks - 1]
    return int(ks[np.argmax(gaps)])  # argmax takes the first, i.e. the fewest clusters, on ties


def _cut_ward(link: FloatArray, n_assets: int, k: int) -> IntArray:
    if k >= n_assets:
        return np.arange(n_assets, dtype=np.int64)
    from scipy.cluster.hierarchy import cut_tree, fcluster  # deferred, as in _ward_linkage

    # fcluster is ~100x faster than cut_tree but gives fewer than k clusters if merge heights tie at the cut.
    labels = fcluster(link, k, criterion="maxclust")
    return labels if len(np.unique(labels)) == k else cut_tree(link, n_clusters=k).ravel()


def cluster_assets(
    distance: np.ndarray,
    method: ClusterMethod,
    min_clusters: int,
    max_clusters: int,
    min_cluster_size: int = 3,
) -> IntArray:
    """Group assets by their distance into a bounded number of clusters, with canonical labels.

    Parameters
    ----------
    distance : ndarray of shape (n_assets, n_assets)
        Symmetric, non-negative, zero diagonal (see :func:`correlation_distance`), rows and columns in
        ascending symbol order.
    method : ClusterMethod
        ``WARD`` or ``HDBSCAN``.
    min_clusters, max_clusters : int
        Bounds on the number of clusters, 1 <= min_clusters <= max_clusters; both are clipped to n_assets.
    min_cluster_size : int, default 3
        HDBSCAN's ``min_cluster_size`` (ignored by Ward).

    Returns
    -------
    ndarray of shape (n_assets,)
        int64 labels in 0..n_clusters-1. Label 0 is the cluster of asset 0, label 1 the cluster of the first
        asset not in cluster 0, and so on, so reruns on the same input give identical labels.

    Raises
    ------
    TypeError
        If ``method`` is not a ClusterMethod.
    ValueError
        If ``distance`` is malformed, or the bounds are not 1 <= min_clusters <= max_clusters, or
        ``min_cluster_size`` < 2.

    Notes
    -----
    Ward: scipy's Ward linkage of the condensed distance (:func:`ward_linkage`). The number of clusters k is
    the one, among min_clusters..max_clusters (and at least 2 when the bounds allow), whose cut falls in the
    largest gap between consecutive merge heights; ties go to the smaller k. The tree is cut to exactly k
    clusters.

    HDBSCAN: ``hdbscan.HDBSCAN(metric="precomputed", min_cluster_size=min_cluster_size)``; every noise point
    (label -1) becomes its own singleton cluster. When the resulting count falls outside the bounds, the
    labels are those of the Ward tree cut at the count clipped into the bounds, so the bounds always hold.
    """
    if not isinstance(method, ClusterMethod):
        raise TypeError(f"`method` must be a ClusterMethod, got {method!r}")
    d = _validate_distance(distance)
    if not (1 <= int(min_clusters) <= int(max_clusters)):
        raise ValueError(
            f"`min_clusters` and `max_clusters` must satisfy 1 <= min <= max, got {min_clusters}, {max_clusters}"
        )
    if min_cluster_size < 2:
        raise ValueError(f"`min_cluster_size` must be >= 2, got {min_cluster_size}")
    n_assets = d.shape[0]
    lo, hi = min(int(min_clusters), n_assets), min(int(max_clusters), n_assets)
    if n_assets == 1:
        return np.zeros(1, dtype=np.int64)
    link = _ward_linkage(d)
    if method is ClusterMethod.WARD:
        return _canonical_labels(_cut_ward(link, n_assets, _ward_n_clusters(link, n_assets, lo, hi)))

    import hdbscan  # deferred: importing hdbscan takes ~1.4 s and only this option needs it

    raw = hdbscan.HDBSCAN(metric="precomputed", min_cluster_size=min_cluster_size).fit(d).labels_
    noise = raw < 0
    raw = np.where(noise, raw.max(initial=-1) + 1 + np.cumsum(noise), raw)
    n_found = len(np.unique(raw))
    if not lo <= n_found <= hi:
        raw = _cut_ward(link, n_assets, int(np.clip(n_found, lo, hi)))
    return _canonical_labels(raw)
