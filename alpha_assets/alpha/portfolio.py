"""The flattened portfolio document (``portfolio_flattened.json``) and its deterministic encoding.

Document layout (keys sorted on encoding)::

    {
      "schema_version": 1,
      "metadata": {"run_id", "as_of" (YYYY-MM-DD), "manifest_sha256", "input_fingerprints": {name: sha256}},
      "clusters": {"<cluster id>": {... registry entry ...}},
      "profiles": {
        "<profile>": {
          "status": "optimal" | "failed",
          "reason": str | null,
          "rows": [{"Symbol", "Weight", "Net_Weight", "Gross_Weight", "Direction", "Cluster_ID", "Market",
                    "Sector"}, ...],          # by Symbol; empty when failed
          "report": {"solver", "status", "objective", "cluster_cap", "reason",
                     "risk_contributions": {symbol: fraction},
                     "attempts": [{"solver", "shrinkage", "outcome", "message"}, ...]}
        }
      }
    }

Nothing in it depends on the time of day: the same inputs give the same bytes.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from alpha_assets.alpha.optimization_params import Profile
from alpha_assets.alpha.optimize import OptimizationResult

SCHEMA_VERSION = 1
#: Below this absolute weight an atom is FLAT.
FLAT_THRESHOLD = 1e-9
#: Floats are written with this many significant digits, so last-bit noise does not change the bytes.
SIGNIFICANT_DIGITS = 12
_ATOM_COLUMNS = ("symbol", "direction", "cluster", "market", "sector")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _check_atoms(atoms: object) -> pd.DataFrame:
    if not isinstance(atoms, pd.DataFrame):
        raise TypeError(f"`atoms` must be a pandas DataFrame, got {type(atoms).__name__}")
    missing = [c for c in _ATOM_COLUMNS if c not in atoms.columns]
    if missing:
        raise ValueError(f"`atoms` must have columns {list(_ATOM_COLUMNS)}, missing {missing}")
    if atoms["symbol"].duplicated().any():
        raise ValueError(
            f"`atoms.symbol` must be unique, got duplicates {sorted(atoms['symbol'][atoms['symbol'].duplicated()])}"
        )
    bad = sorted(set(atoms["direction"]) - {"LONG", "SHORT"})
    if bad:
        raise ValueError(f"`atoms.direction` must be LONG or SHORT, got {bad}")
    return atoms.set_index("symbol", drop=False)


def _rows(result: OptimizationResult, atoms: pd.DataFrame) -> list[dict[str, Any]]:
    if result.weights is None:
        return []
    frame = atoms.loc[list(result.symbols)]
    weight = np.asarray(result.weights, dtype=np.float64)
    sign = np.where(frame["direction"].to_numpy() == "SHORT", -1.0, 1.0)
    direction = np.where(np.abs(weight) < FLAT_THRESHOLD, "FLAT", frame["direction"].to_numpy())
    rows = [
        {
            "Symbol": symbol,
            "Weight": float(w),
            "Net_Weight": float(s * w),
            "Gross_Weight": float(abs(w)),
            "Direction": str(d),
            "Cluster_ID": int(c),
            "Market": str(m),
            "Sector": str(sec),
        }
        for symbol, w, s, d, c, m, sec in zip(
            result.symbols,
            weight,
            sign,
            direction,
            frame["cluster"],
            frame["market"],
            frame["sector"],
            strict=True,
        )
    ]
    return sorted(rows, key=lambda row: row["Symbol"])


def _report(result: OptimizationResult) -> dict[str, Any]:
    contributions = None
    if result.risk_contributions is not None:
        contributions = dict(zip(result.symbols, map(float, result.risk_contributions), strict=True))
    return {
        "solver": result.solver,
        "status": result.status,
        "objective": result.objective,
        "cluster_cap": result.cluster_cap,
        "reason": result.reason,
        "risk_contributions": contributions,
        "attempts": [
            {"solver": a.solver, "shrinkage": a.shrinkage, "outcome": a.outcome, "message": a.message}
            for a in result.attempts
        ],
    }


def build_portfolio_document(
    *,
    run_id: str,
    as_of: str,
    manifest_sha256: str,
    input_fingerprints: Mapping[str, str],
    atoms: pd.DataFrame,
    results: Mapping[Profile, OptimizationResult],
    cluster_registry: Mapping[int, Mapping[str, Any]] | None,
) -> dict[str, Any]:
    """Assemble the flattened portfolio document of one run.

    Parameters
    ----------
    run_id : str
        The RUN_ID.
    as_of : str
        As-of date, ``YYYY-MM-DD`` (UTC). No time of day, so re-runs give identical documents.
    manifest_sha256 : str
        Lowercase hex sha256 of the resolved manifest.
    input_fingerprints : mapping of str to str
        Name of each frozen input (returns matrix, feature rows, lakehouse files) to its sha256.
    atoms : DataFrame of shape (n_assets, >= 5)
        One row per atom with columns ``symbol`` (unique str), ``direction`` (``LONG`` or ``SHORT``),
        ``cluster`` (int), ``market`` (str), ``sector`` (str); every symbol of every result must be here.
    results : mapping of Profile to OptimizationResult
        Outcome per profile. Failed profiles get ``status="failed"``, their reason and no rows.
    cluster_registry : mapping of int to mapping, or None
        JSON-serialisable description of each cluster, stored as is under its id. None builds
        ``{"n_assets", "symbols"}`` per cluster from ``atoms``.

    Returns
    -------
    dict
        The document described in the module docstring. ``Weight`` and ``Gross_Weight`` are the optimiser's
        long-only weight of the atom; ``Net_Weight`` is that weight signed by the direction (negative for
        SHORT); ``Direction`` is FLAT when ``|Weight| < 1e-9``.

    Raises
    ------
    TypeError
        If ``atoms`` is not a DataFrame or ``results`` holds something other than OptimizationResult.
    ValueError
        If ``as_of`` is not ``YYYY-MM-DD``, ``manifest_sha256`` or a fingerprint is not a sha256 hex digest,
        ``atoms`` misses a column, repeats a symbol or has another direction, or a result names a symbol
        absent from ``atoms``, or ``cluster_registry`` misses a cluster of ``atoms``.
    """
    if not isinstance(run_id, str) or not run_id:
        raise ValueError(f"`run_id` must be a non-empty str, got {run_id!r}")
    try:
        dt.date.fromisoformat(as_of)
    except (TypeError, ValueError) as err:
        raise ValueError(f"`as_of` must be a date YYYY-MM-DD, got {as_of!r}") from err
    if len(as_of) != 10:
        raise ValueError(f"`as_of` must be a date YYYY-MM-DD, got {as_of!r}")
    for name, digest in {"manifest_sha256": manifest_sha256, **dict(input_fingerprints)}.items():
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise ValueError(f"`{name}` must be a lowercase sha256 hex digest (64 chars), got {digest!r}")
    frame = _check_atoms(atoms)
    for profile, result in results.items():
        if not isinstance(result, OptimizationResult):
            raise TypeError(f"`results[{profile!r}]` must be an OptimizationResult, got {type(result).__name__}")
        unknown = sorted(set(result.symbols) - set(frame.index))
        if unknown:
            raise ValueError(f"`results[{profile.value}]` names symbols absent from `atoms`: {unknown}")
    if cluster_registry is None:
        cluster_registry = {
            int(c): {"n_assets": int(len(g)), "symbols": sorted(g["symbol"])} for c, g in frame.groupby("cluster")
        }
    missing = sorted(set(map(int, frame["cluster"])) - set(map(int, cluster_registry)))
    if missing:
        raise ValueError(f"`cluster_registry` misses clusters {missing} of `atoms`")
    return {
        "schema_version": SCHEMA_VERSION,
        "metadata": {
            "run_id": run_id,
            "as_of": as_of,
            "manifest_sha256": manifest_sha256,
            "input_fingerprints": dict(input_fingerprints),
        },
        "clusters": {str(int(c)): dict(entry) for c, entry in cluster_registry.items()},
        "profiles": {
            Profile(p).value: {
                "status": r.status,
                "reason": r.reason,
                "rows": _rows(r, frame),
                "report": _report(r),
            }
            for p, r in results.items()
        },
    }


def _normalise(value: Any) -> Any:
    """Turn numpy and tuple values into JSON types and round floats to SIGNIFICANT_DIGITS."""
    if isinstance(value, Mapping):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_normalise(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"the portfolio document must hold finite numbers, got {number}")
        rounded = float(f"{number:.{SIGNIFICANT_DIGITS}g}")
        return rounded + 0.0  # -0.0 becomes 0.0
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"the portfolio document must hold JSON values, got {type(value).__name__}")


def encode_portfolio_json(doc: Mapping[str, Any]) -> bytes:
    """Encode the document deterministically: sorted keys, floats to 12 significant digits, UTF-8.

    Parameters
    ----------
    doc : mapping
        A document from :func:`build_portfolio_document` (numpy scalars and arrays are accepted).

    Returns
    -------
    bytes
        Indented JSON ending in a newline; identical inputs give identical bytes.

    Raises
    ------
    ValueError
        If a number is NaN or infinite.
    TypeError
        If a value has no JSON form.
    """
    text = json.dumps(_normalise(doc), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")
