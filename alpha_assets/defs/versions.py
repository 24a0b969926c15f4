"""Code versions of the assets: a hash of the code that computes each one.

Dagster marks an asset stale when its ``code_version`` differs from the one its last materialisation
recorded. A constant never changes, so a change to the indicators would leave every stored feature looking
current. Each asset's version here is the SHA-256 of the source files of the pure modules that compute it, so
it changes whenever that code changes, with no number for anyone to remember to bump. The bytes are hashed as
they are: an edit of a docstring or a comment changes the version too, and the asset then merely looks worth
re-materialising (which rewrites nothing that did not change); stripping them through the syntax tree costs
about a second of CPU in every run process, which loads these definitions. The parameter modules are not
listed: the parameters a run used are recorded with the run, and a changed default is a manifest change.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from dagster import AssetKey

from alpha_assets.defs import names

#: The pure modules whose code computes each asset (what its code version hashes).
ASSET_CODE_MODULES: dict[AssetKey, tuple[str, ...]] = {
    names.CANDIDATES: ("alpha_assets.sources.discovery", "alpha_assets.sources.markets"),
    names.OHLCV: (
        "alpha_assets.sources.ingest",
        "alpha_assets.sources.repair",
        "alpha_assets.lakehouse.ohlcv",
        "alpha_assets.lakehouse.quarantine",
    ),
    names.CANDIDATES_VALIDATED: (
        "alpha_assets.dataops.candidates",
        "alpha_assets.dataops.audit.engine",
        "alpha_assets.dataops.audit.records",
    ),
    names.SYMBOLS: ("alpha_assets.lakehouse.symbols",),
    names.FEATURES_MATRIX: (
        "alpha_assets.features.backfill",
        "alpha_assets.features.matrix",
        "alpha_assets.features.indicators",
        "alpha_assets.features.ratings",
        "alpha_assets.features.statistics",
    ),
    names.RETURNS_MATRIX: (
        "alpha_assets.alpha.returns",
        "alpha_assets.alpha.snapshot",
        "alpha_assets.alpha.foundation_gate",
    ),
    names.SELECTION: (
        "alpha_assets.alpha.pipeline",
        "alpha_assets.alpha.selection",
        "alpha_assets.alpha.policy",
        "alpha_assets.alpha.clustering",
        "alpha_assets.alpha.inference",
    ),
    names.PORTFOLIO_FLATTENED: (
        "alpha_assets.alpha.pipeline",
        "alpha_assets.alpha.synthesis",
        "alpha_assets.alpha.optimize",
        "alpha_assets.alpha.covariance",
        "alpha_assets.alpha.hrp",
        "alpha_assets.alpha.weights",
        "alpha_assets.alpha.portfolio",
        "alpha_assets.reports.run_folder",
        "alpha_assets.reports.run_report",
        "alpha_assets.reports.plots",
    ),
}


def asset_code_version(asset: AssetKey) -> str:
    """The code version of ``asset``: :func:`code_version` of its :data:`ASSET_CODE_MODULES`."""
    return code_version(*ASSET_CODE_MODULES[asset])


def code_version(*module_names: str) -> str:
    """The first 16 hex digits of the SHA-256 over the modules' names and source files, in name order.

    Raises
    ------
    ModuleNotFoundError
        When a name is not an importable module.
    """
    digest = hashlib.sha256()
    for name in sorted(module_names):
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(f"no module named {name!r} to version")
        digest.update(name.encode() + b"\0" + Path(spec.origin).read_bytes() + b"\0")
    return digest.hexdigest()[:16]
