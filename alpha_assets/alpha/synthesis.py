"""Synthesis: winners become LONG or SHORT atoms with their own return streams.

The selection decides the atoms once (:func:`synthesize_atoms`); every later stage rebuilds exactly those
atoms from ``selection.json`` (:func:`atoms_from_selection`) and never decides a direction again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

#: A short position loses at most 100 %: the asset's return is clipped at +1.0 before negation.
SHORT_RETURN_CLIP = 1.0


class Direction(StrEnum):
    """Side of an atom, as written in the portfolio rows."""

    LONG = "LONG"
    SHORT = "SHORT"


@dataclass(frozen=True)
class Atoms:
    """The atoms of a selection and their return streams.

    Attributes
    ----------
    table : pandas.DataFrame of shape (n_atoms, 3)
        Columns ``symbol`` (str), ``direction`` (``"LONG"`` / ``"SHORT"``), ``cluster`` (int64), in the order
        of the winners; the default RangeIndex.
    returns : pandas.DataFrame of shape (n_observations, n_atoms)
        Daily simple returns (fractions) of each atom, float64, no NaN, same index as the input returns;
        columns are the atoms' symbols.
    """

    table: pd.DataFrame
    returns: pd.DataFrame


def synthesize_atoms(
    returns: pd.DataFrame,
    winners: Sequence[str],
    ratings: Mapping[str, float] | pd.Series,
    clusters: Mapping[str, int] | pd.Series,
) -> Atoms:
    """Turn each winner into a LONG atom when its rating is >= 0, else a SHORT atom.

    Parameters
    ----------
    returns : pandas.DataFrame of shape (n_observations, n_assets)
        Daily simple returns (fractions), no NaN; columns include every winner.
    winners : sequence of str
        Selected symbols, in the order the atoms should take; unique.
    ratings : mapping or pandas.Series of str to float
        Winner -> rating (feature ``recommend_all``, in [-1, 1]). A rating of exactly 0 gives LONG: with no
        signal, the asset is held as it is.
    clusters : mapping or pandas.Series of str to int
        Winner -> cluster label.

    Returns
    -------
    Atoms

    Raises
    ------
    TypeError
        If ``returns`` is not a DataFrame.
    ValueError
        If a winner is duplicated, is not a column of ``returns``, or has no finite rating or no cluster.

    Notes
    -----
    A SHORT atom's stream is ``-clip(r, upper=1.0)``: the short gains -r, and a rise above +100 % is
    capped so the short never loses more than its stake on one day.
    """
    if not isinstance(returns, pd.DataFrame):
        raise TypeError(
            f"`returns` must be a pandas DataFrame (n_observations, n_assets), got {type(returns).__name__}"
        )
    winners = [str(w) for w in winners]
    if len(set(winners)) != len(winners):
        raise ValueError(f"`winners` must be unique, got {winners}")
    absent = [w for w in winners if w not in returns.columns]
    if absent:
        raise ValueError(f"`winners` {absent} are not columns of `returns`")
    rating = np.array([float(ratings[w]) if w in ratings else np.nan for w in winners], dtype=np.float64)
    if not np.isfinite(rating).all():
        bad = [w for w, r in zip(winners, rating, strict=True) if not np.isfinite(r)]
        raise ValueError(f"`ratings` must hold a finite rating for every winner, missing or non-finite for {bad}")
    no_cluster = [w for w in winners if w not in clusters]
    if no_cluster:
        raise ValueError(f"`clusters` must hold a label for every winner, missing for {no_cluster}")

    directions = np.where(rating < 0, Direction.SHORT.value, Direction.LONG.value)
    return _atoms(returns, winners, directions, [int(clusters[w]) for w in winners])


def atoms_from_selection(returns: pd.DataFrame, atoms: Sequence[Mapping[str, object]]) -> Atoms:
    """Rebuild the atoms a selection decided, with their return streams, deciding nothing again.

    Parameters
    ----------
    returns : pandas.DataFrame of shape (n_observations, n_assets)
        Daily simple returns (fractions), no NaN; columns include every atom's symbol.
    atoms : sequence of mapping
        The ``atoms`` of ``selection.json``: one ``{"symbol": str, "direction": "LONG" | "SHORT",
        "cluster": int}`` per atom, in the selection's order.

    Returns
    -------
    Atoms
        The same symbols, directions and clusters in the same order; SHORT streams negated and clipped as
        in :func:`synthesize_atoms`.

    Raises
    ------
    TypeError
        If ``returns`` is not a DataFrame.
    ValueError
        If an atom lacks a key, repeats a symbol, has a direction other than LONG/SHORT, a cluster that is not
        an integer, or a symbol that is not a column of ``returns``.
    """
    if not isinstance(returns, pd.DataFrame):
        raise TypeError(
            f"`returns` must be a pandas DataFrame (n_observations, n_assets), got {type(returns).__name__}"
        )
    for i, atom in enumerate(atoms):
        missing = [k for k in ("symbol", "direction", "cluster") if k not in atom]
        if missing:
            raise ValueError(f"`atoms[{i}]` must have keys symbol, direction and cluster, missing {missing}")
        if atom["direction"] not in (Direction.LONG.value, Direction.SHORT.value):
            raise ValueError(f"`atoms[{i}].direction` must be LONG or SHORT, got {atom['direction']!r}")
        if isinstance(atom["cluster"], bool) or not isinstance(atom["cluster"], (int, np.integer)):
            raise ValueError(f"`atoms[{i}].cluster` must be an integer, got {atom['cluster']!r}")
    symbols = [str(a["symbol"]) for a in atoms]
    if len(set(symbols)) != len(symbols):
        raise ValueError(f"`atoms` must name each symbol once, got {symbols}")
    absent = [s for s in symbols if s not in returns.columns]
    if absent:
        raise ValueError(f"`atoms` {absent} are not columns of `returns`")
    return _atoms(returns, symbols, [str(a["direction"]) for a in atoms], [int(a["cluster"]) for a in atoms])


def _atoms(returns: pd.DataFrame, symbols: list[str], directions: Sequence[str], clusters: Sequence[int]) -> Atoms:
    """The atoms table and streams for validated symbols, directions and clusters (same length, same order)."""
    short = np.asarray(directions, dtype=object) == Direction.SHORT.value
    values = returns[symbols].to_numpy(dtype=np.float64)
    atom_values = np.where(short, -np.minimum(values, SHORT_RETURN_CLIP), values)
    table = pd.DataFrame(
        {
            "symbol": symbols,
            "direction": np.where(short, Direction.SHORT.value, Direction.LONG.value),
            "cluster": np.asarray(clusters, dtype=np.int64),
        }
    )
    atom_returns = pd.DataFrame(atom_values, index=returns.index, columns=pd.Index(symbols))
    return Atoms(table=table, returns=atom_returns)
