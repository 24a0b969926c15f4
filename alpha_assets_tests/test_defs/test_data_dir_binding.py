"""One Dagster instance serves one data directory: ``bind_data_dir`` on real on-disk instances.

The command line's and a Dagster run's refusal of a second directory (one line, exit code, nothing written to
either directory) are in test_cli.py; here the binding itself: recorded once, checked without recording,
refused with a message naming both directories, and exactly one winner when first runs race.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from dagster import DagsterInstance

from alpha_assets.defs.resources import bind_data_dir, rebind_data_dir, served_data_dir
from alpha_assets.errors import DataDirMismatchError


@pytest.fixture
def instance(tmp_path: Path) -> DagsterInstance:
    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(tempdir=str(tmp_path / "home")) as instance:
        yield instance


def test_bind_data_dir_records_the_first_and_refuses_another_naming_both(instance, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    bind_data_dir(instance, second, record=False)
    assert served_data_dir(instance) is None, "a check alone records nothing"
    bind_data_dir(instance, first)
    bind_data_dir(instance, first)
    assert served_data_dir(instance) == str(first)
    with pytest.raises(DataDirMismatchError, match=f"data directory {second} refused: .* serves {first}, recorded"):
        bind_data_dir(instance, second)
    with pytest.raises(DataDirMismatchError):
        bind_data_dir(instance, second, record=False)
    rebind_data_dir(instance, second)
    bind_data_dir(instance, second)
    with pytest.raises(DataDirMismatchError, match=f"serves {second}"):
        bind_data_dir(instance, first)


def test_bind_data_dir_first_runs_at_once_record_exactly_one(instance, tmp_path):
    folders = [tmp_path / f"data_{i}" for i in range(6)]
    start = threading.Barrier(len(folders))
    outcomes: dict[Path, str] = {}

    def claim(folder: Path) -> None:
        start.wait()
        try:
            bind_data_dir(instance, folder)
            outcomes[folder] = "bound"
        except DataDirMismatchError:
            outcomes[folder] = "refused"

    threads = [threading.Thread(target=claim, args=(folder,)) for folder in folders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [folder for folder, outcome in outcomes.items() if outcome == "bound"]
    assert len(outcomes) == len(folders) and len(winners) == 1, outcomes
    assert served_data_dir(instance) == str(winners[0])
