"""The foundation gate: check names shown in the UI, and the verdict every later step verifies.

The checks are partitioned by ``runs``: each RUN_ID keeps its own status, so a RUN_ID that passes never hides
another one's failure from the UI or from automation. Blocking checks stop downstream steps within one run
only. A later launch of selection or of the portfolio for a RUN_ID whose gate failed must refuse too, so the
verdict is kept in the run folder and checked here.
"""

from __future__ import annotations

from typing import Any

from alpha_assets.alpha import foundation_gate
from alpha_assets.defs import names
from alpha_assets.errors import GateFailedError, LakehouseReadError
from alpha_assets.lakehouse.jsonio import read_json
from alpha_assets.lakehouse.paths import LakehousePaths, RunDataFile

#: Gate predicate name -> (asset check name, description).
GATE_CHECKS = {
    foundation_gate.CHECK_NO_NAN: (names.GATE_NO_NAN, "No missing return anywhere in the matrix."),
    foundation_gate.CHECK_MAX_ABS_RETURN: (
        names.GATE_MAX_ABS_RETURN,
        "Every |daily return| is below the manifest's `gate.max_abs_return` (each result names the run's limit).",
    ),
    foundation_gate.CHECK_INDEX_UTC_INCREASING: (
        names.GATE_INDEX_UTC_INCREASING,
        "Dates are tz-aware UTC and strictly increasing.",
    ),
    foundation_gate.CHECK_DENSITY: (names.GATE_DENSITY, "At least the manifest's minimum symbols and days."),
    foundation_gate.CHECK_FEATURES_PRESENT: (
        names.GATE_FEATURES_PRESENT,
        "Every symbol has its feature row at the as-of date.",
    ),
}


#: The warning on returns_matrix next to the gate: symbols the trimming dropped for a toxic daily return.
TOXIC_DROPS_CHECK_DESCRIPTION = (
    "Warns when trimming dropped a symbol for a daily |return| above the manifest's `returns.max_abs_return`; "
    "each result names the symbols, the day and the value, with the run's limit."
)


#: Asset -> (its check that the RUN_ID's latest materialisation still stands, description). It passes with each
#: materialisation and fails, on that materialisation, when a later freeze of the RUN_ID fails the gate and
#: withdraws the files: the UI then shows the old materialisation with a failed blocking check, and automation
#: does not run portfolio_flattened for it.
WITHDRAWAL_CHECKS = {
    names.SELECTION: (
        names.SELECTION_NOT_WITHDRAWN,
        "This RUN_ID's latest selection still stands: it fails when a later freeze of the RUN_ID failed the "
        "foundation gate and moved `selection.json` to `runs/<RUN_ID>/withdrawn/<N>/` (the result names the "
        "folder and the failed checks); the next materialisation, after a gate that passes, passes it again.",
    ),
    names.PORTFOLIO_FLATTENED: (
        names.PORTFOLIO_NOT_WITHDRAWN,
        "This RUN_ID's latest weights and report still stand: it fails when a later freeze of the RUN_ID failed "
        "the foundation gate and moved `portfolio_flattened.json` and the reports to "
        "`runs/<RUN_ID>/withdrawn/<N>/`, out of every view (DuckDB `weights` included); the next "
        "materialisation, after a gate that passes, passes it again.",
    ),
}


def toxic_drops_summary(toxic: list[dict[str, Any]], limit: float) -> str:
    """The warning's one-line result: the run's limit and every symbol dropped for a toxic return, or none."""
    if not toxic:
        return f"No symbol dropped: every daily |return| within the run's limit {limit:.6g} ({limit:.0%})."
    return f"{len(toxic)} symbol(s) dropped for a daily |return| above {limit:.6g} ({limit:.0%}): " + "; ".join(
        row["reason"] for row in toxic
    )


def require_gate_passed(paths: LakehousePaths, run_id: str) -> None:
    """Refuse to go on unless the RUN_ID's recorded gate verdict passed.

    Raises
    ------
    GateFailedError
        When no verdict was recorded (returns_matrix never ran) or a check failed; the message names the
        failed checks and what they saw.
    """
    path = paths.run_data_file(run_id, RunDataFile.GATE_VERDICT)
    try:
        verdict = read_json(path)
    except LakehouseReadError as err:
        raise GateFailedError(
            f"run {run_id}: no foundation-gate verdict ({err.reason}); materialise returns_matrix first"
        ) from err
    if not verdict["passed"]:
        failed = {name: check["message"] for name, check in verdict["checks"].items() if not check["passed"]}
        failed_names = ", ".join(GATE_CHECKS[name][0] for name in failed)
        raise GateFailedError(
            f"run {run_id}: the foundation gate failed ({failed_names}); refusing to continue. "
            + " | ".join(failed.values())
        )
