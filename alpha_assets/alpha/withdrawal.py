"""Withdrawing a RUN_ID's weights when a later freeze of it fails the gate, without losing them.

A ``--refreeze`` re-reads the lakehouse for an existing RUN_ID. When the new inputs fail the foundation gate,
the selection and the portfolio computed from the old inputs no longer stand for that RUN_ID: they are moved,
with the reports drawn from them, out of ``runs/<RUN_ID>/data/`` and ``reports/`` into
``runs/<RUN_ID>/withdrawn/<N>/`` (same relative layout, plus ``withdrawal.json`` saying why). Every view reads
``data/`` (the DuckDB views, the report, the export), so nothing serves them any more; a refreeze whose gate
passes writes new ones in their place, and the withdrawn copies stay for the record.

Each file moves with ``os.replace`` into a hidden staging folder, which is then renamed to ``<N>`` in one step:
a crash leaves the files either in ``data/`` or in the staging folder, never half written and never lost, and
the next failed gate withdraws what is left. In a bucket (no rename) each object is copied into ``<N>/`` and
then deleted from ``data/``, ``withdrawal.json`` last.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from alpha_assets.lakehouse.jsonio import write_json_atomic
from alpha_assets.lakehouse.paths import WITHDRAWAL_RECORD_FILE, LakehousePaths, RunDataFile, RunReportFile
from alpha_assets.lakehouse.storage import DataPath, make_folder, move

#: The ``data/`` artifacts downstream of the gate, the weights first (the views read those).
DOWNSTREAM_DATA_FILES = (RunDataFile.PORTFOLIO, RunDataFile.OPTIMIZATION, RunDataFile.SELECTION)


@dataclass(frozen=True)
class Withdrawal:
    """Artifacts taken out of a RUN_ID's views.

    Attributes
    ----------
    folder : Path or UPath
        ``runs/<RUN_ID>/withdrawn/<N>/``, holding the files under their paths relative to the run folder.
    files : tuple of str
        Those relative paths (``data/portfolio_flattened.json``, ``reports/report.html``, ...), in move order.
    """

    folder: DataPath
    files: tuple[str, ...]


def withdraw_downstream(paths: LakehousePaths, run_id: str, reason: str) -> Withdrawal | None:
    """Move the RUN_ID's selection, portfolio and reports out of every view into a numbered withdrawn folder.

    Parameters
    ----------
    paths : LakehousePaths
        The data folder.
    run_id : str
        The RUN_ID whose gate just failed (validated before it becomes a path).
    reason : str
        Why, recorded in ``withdrawal.json`` (the failed gate checks and what they saw).

    Returns
    -------
    Withdrawal or None
        What moved where; None when the RUN_ID had nothing downstream of the gate.
    """
    run_dir = paths.run_dir(run_id)
    sources = [paths.run_data_file(run_id, name) for name in DOWNSTREAM_DATA_FILES]
    sources += [paths.run_report_file(run_id, name) for name in sorted(RunReportFile)]
    present = [path for path in sources if path.exists()]
    if not present:
        return None
    root = paths.run_withdrawn_dir(run_id)
    make_folder(root)
    number = 1 + max((int(p.name) for p in root.iterdir() if p.name.isdigit()), default=0) if root.is_dir() else 1
    folder = paths.run_withdrawal_dir(run_id, number)
    if paths.in_object_store:
        # No folder rename in a bucket: the files move straight into <N>/, withdrawal.json last, so a crash
        # leaves each file in data/ or in <N>/ (or both, copied before deleted), never in neither.
        return _move_files(run_dir, present, folder, run_id, reason)
    staging = Path(tempfile.mkdtemp(prefix=f".{number}-", dir=root))
    withdrawal = _move_files(run_dir, present, staging, run_id, reason)
    os.replace(staging, folder)
    return Withdrawal(folder=folder, files=withdrawal.files)


def _move_files(run_dir: DataPath, present: list[DataPath], folder: DataPath, run_id: str, reason: str) -> Withdrawal:
    """Move ``present`` under ``folder`` at their paths relative to ``run_dir``, then write ``withdrawal.json``."""
    moved = []
    for source in present:
        relative = source.relative_to(run_dir)
        target = folder / str(relative)
        make_folder(target.parent)
        move(source, target)
        moved.append(str(relative))
    write_json_atomic({"run_id": run_id, "reason": reason, "files": moved}, folder / WITHDRAWAL_RECORD_FILE)
    return Withdrawal(folder=folder, files=tuple(moved))
