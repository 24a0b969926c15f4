"""The flattened portfolio document of ``alpha.portfolio`` and its byte-deterministic JSON encoding.

Exercises rows (signed Net_Weight for SHORT atoms, FLAT below 1e-9), failed profiles with a reason and no
rows, the report per profile, metadata, the cluster registry, byte-identical output of two independent runs
on the same inputs, float rounding, and the documented input errors. Writing the file is the wiring's job.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from alpha_assets.alpha.optimization_params import OptimizationParams, Profile
from alpha_assets.alpha.optimize import optimize_all
from alpha_assets.alpha.portfolio import build_portfolio_document, encode_portfolio_json

SHA = hashlib.sha256(b"manifest").hexdigest()
FINGERPRINTS = {"returns_matrix.parquet": hashlib.sha256(b"returns").hexdigest()}


@pytest.fixture(scope="module")
def opt_run() -> tuple[np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(42)
    n_assets = 12
    market = rng.normal(5e-4, 0.015, size=(400, 1))
    returns = market * rng.uniform(0.6, 1.4, n_assets) + rng.normal(2e-4, 0.02, size=(400, n_assets))
    atoms = pd.DataFrame(
        {
            "symbol": [f"BINANCE_C{i:02d}USDT" for i in range(n_assets)],
            "direction": ["SHORT" if i % 4 == 0 else "LONG" for i in range(n_assets)],
            "cluster": np.arange(n_assets) % 3,
            "market": "crypto",
            "sector": [["L1", "DeFi", "Meme"][i % 3] for i in range(n_assets)],
        }
    )
    return returns, atoms


def _document(returns: np.ndarray, atoms: pd.DataFrame, params: OptimizationParams, registry=None) -> dict:
    results = optimize_all(returns, atoms["cluster"].to_numpy(), params, symbols=atoms["symbol"].tolist())
    return build_portfolio_document(
        run_id="20261125T210000Z",
        as_of="2026-11-25",
        manifest_sha256=SHA,
        input_fingerprints=FINGERPRINTS,
        atoms=atoms,
        results=results,
        cluster_registry=registry,
    )


def test_encode_portfolio_json_two_independent_runs_are_byte_identical(opt_run):
    returns, atoms = opt_run
    first = encode_portfolio_json(_document(returns.copy(), atoms.copy(), OptimizationParams(periods_per_year=365)))
    second = encode_portfolio_json(_document(returns.copy(), atoms.copy(), OptimizationParams(periods_per_year=365)))
    assert first == second
    decoded = json.loads(first)
    assert list(decoded) == sorted(decoded)
    assert set(decoded["profiles"]) == {p.value for p in Profile}


def test_build_portfolio_document_rows_sign_short_atoms_and_sum_to_one(opt_run):
    returns, atoms = opt_run
    doc = _document(returns, atoms, OptimizationParams(periods_per_year=365))
    rows = doc["profiles"]["equal_weight"]["rows"]
    assert [r["Symbol"] for r in rows] == sorted(atoms["symbol"])
    assert sum(r["Weight"] for r in rows) == pytest.approx(1.0)
    assert sum(r["Gross_Weight"] for r in rows) == pytest.approx(1.0)
    short = {r["Symbol"]: r for r in rows}["BINANCE_C00USDT"]
    assert short["Direction"] == "SHORT" and short["Net_Weight"] == -short["Weight"] < 0
    assert short["Cluster_ID"] == 0 and short["Market"] == "crypto" and short["Sector"] == "L1"
    assert set(rows[0]) == {
        "Symbol",
        "Weight",
        "Net_Weight",
        "Gross_Weight",
        "Direction",
        "Cluster_ID",
        "Market",
        "Sector",
    }
    assert doc["metadata"] == {
        "run_id": "20261125T210000Z",
        "as_of": "2026-11-25",
        "manifest_sha256": SHA,
        "input_fingerprints": FINGERPRINTS,
    }
    report = doc["profiles"]["min_variance"]["report"]
    assert report["solver"] == "OSQP" and report["status"] == "optimal"
    assert report["attempts"][0] == {
        "solver": "OSQP",
        "shrinkage": 0.0,
        "outcome": "optimal",
        "message": "",
    }
    assert sum(report["risk_contributions"].values()) == pytest.approx(1.0)


def test_build_portfolio_document_zero_weight_is_flat(opt_run):
    returns, atoms = opt_run
    results = optimize_all(
        returns,
        atoms["cluster"].to_numpy(),
        OptimizationParams(periods_per_year=365, profiles=(Profile.MIN_VARIANCE,)),
        symbols=atoms["symbol"].tolist(),
    )
    weights = np.full(12, 0.1)
    weights[[1, 2]] = [0.2, 0.0]
    results = {Profile.MIN_VARIANCE: dataclasses.replace(results[Profile.MIN_VARIANCE], weights=weights)}
    doc = build_portfolio_document(
        run_id="r1",
        as_of="2026-11-25",
        manifest_sha256=SHA,
        input_fingerprints={},
        atoms=atoms,
        results=results,
        cluster_registry=None,
    )
    flat = {r["Symbol"]: r for r in doc["profiles"]["min_variance"]["rows"]}["BINANCE_C02USDT"]
    assert flat["Direction"] == "FLAT" and flat["Net_Weight"] == 0.0


def test_build_portfolio_document_failed_profile_has_reason_and_no_rows(opt_run):
    returns, atoms = opt_run
    doc = _document(
        returns, atoms, OptimizationParams(periods_per_year=365, cap_clusters=False, max_weight=0.05)
    )  # 12 * 0.05 < 1
    for entry in doc["profiles"].values():
        assert entry["status"] == "failed" and entry["rows"] == []
        assert "n_assets * max_weight" in entry["reason"] and entry["report"]["reason"] == entry["reason"]
    encode_portfolio_json(doc)  # a failed document still encodes


def test_build_portfolio_document_registry_default_and_given(opt_run):
    returns, atoms = opt_run
    doc = _document(returns, atoms, OptimizationParams(periods_per_year=365, profiles=(Profile.HRP,)))
    assert doc["clusters"]["0"]["n_assets"] == 4 and "BINANCE_C03USDT" in doc["clusters"]["0"]["symbols"]
    registry = {c: {"label": f"cluster {c}"} for c in range(3)}
    doc = _document(
        returns, atoms, OptimizationParams(periods_per_year=365, profiles=(Profile.HRP,)), registry=registry
    )
    assert doc["clusters"] == {
        "0": {"label": "cluster 0"},
        "1": {"label": "cluster 1"},
        "2": {"label": "cluster 2"},
    }
    with pytest.raises(ValueError, match=r"`cluster_registry` misses clusters \[2\]"):
        _document(
            returns, atoms, OptimizationParams(periods_per_year=365, profiles=(Profile.HRP,)), registry={0: {}, 1: {}}
        )


def test_encode_portfolio_json_rounds_floats_and_normalises_types():
    doc = {"b": np.float64(0.1 + 0.2), "a": [np.int64(3), -0.0, (1.0 / 3.0,)], "c": None, "d": np.bool_(True)}
    assert encode_portfolio_json(doc) == (
        b'{\n  "a": [\n    3,\n    0.0,\n    [\n      0.333333333333\n    ]\n  ],\n'
        b'  "b": 0.3,\n  "c": null,\n'
        b'  "d": true\n}\n'
    )


@pytest.mark.parametrize(
    ("doc", "error", "match"),
    [({"x": float("nan")}, ValueError, "finite numbers"), ({"x": object()}, TypeError, "JSON values")],
    ids=["nan", "object"],
)
def test_encode_portfolio_json_bad_value_raises(doc, error, match):
    with pytest.raises(error, match=match):
        encode_portfolio_json(doc)


@pytest.mark.parametrize(
    ("override", "error", "match"),
    [
        ({"as_of": "2026-11-25T21:00:00Z"}, ValueError, "`as_of` must be a date YYYY-MM-DD"),
        ({"as_of": "25/11/2026"}, ValueError, "`as_of` must be a date YYYY-MM-DD"),
        ({"manifest_sha256": "abc"}, ValueError, "`manifest_sha256` must be a lowercase sha256"),
        ({"input_fingerprints": {"f": "XYZ"}}, ValueError, "`f` must be a lowercase sha256"),
        ({"run_id": ""}, ValueError, "`run_id` must be a non-empty str"),
        ({"atoms": "atoms"}, TypeError, "`atoms` must be a pandas DataFrame"),
        ({"results": {Profile.HRP: "w"}}, TypeError, "must be an OptimizationResult"),
    ],
    ids=["as-of-time", "as-of-format", "sha", "fingerprint", "run-id", "atoms-type", "results-type"],
)
def test_build_portfolio_document_bad_argument_raises(opt_run, override, error, match):
    _, atoms = opt_run
    arguments = {
        "run_id": "r1",
        "as_of": "2026-11-25",
        "manifest_sha256": SHA,
        "input_fingerprints": {},
        "atoms": atoms,
        "results": {},
        "cluster_registry": None,
    } | override
    with pytest.raises(error, match=match):
        build_portfolio_document(**arguments)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda a: a.drop(columns="sector"), r"missing \['sector'\]"),
        (lambda a: a.assign(direction="BUY"), "must be LONG or SHORT"),
        (lambda a: pd.concat([a, a.iloc[:1]]), "`atoms.symbol` must be unique"),
        (lambda a: a.iloc[1:], "names symbols absent from `atoms`"),
    ],
    ids=["missing-column", "direction", "duplicate", "absent-symbol"],
)
def test_build_portfolio_document_bad_atoms_raise(opt_run, mutate, match):
    returns, atoms = opt_run
    results = optimize_all(
        returns,
        atoms["cluster"].to_numpy(),
        OptimizationParams(periods_per_year=365, profiles=(Profile.EQUAL_WEIGHT,)),
        symbols=atoms["symbol"].tolist(),
    )
    with pytest.raises(ValueError, match=match):
        build_portfolio_document(
            run_id="r1",
            as_of="2026-11-25",
            manifest_sha256=SHA,
            input_fingerprints={},
            atoms=mutate(atoms),
            results=results,
            cluster_registry=None,
        )
