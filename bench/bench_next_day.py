"""The next day's ingestion of 505 symbols through Dagster, repeated on one day-1 state (issue 14's 3 s target).

``bench_ingest.py`` measures a first ingest and one next day per run, so one noisy second can decide a figure.
Here day 1 (505 simulated symbols x 1,000 days, project instance) is ingested once; each trial copies that
state (lakehouse and Dagster home, at the same path: the instance is bound to its data directory) and times
the day-2 ingest link alone, in a fresh interpreter. ``--baseline-src DIR`` does the same with another checkout
(e.g. ``git worktree add DIR <commit>``), its own day 1 included, alternating the two trees trial by trial, and
prints each trial, the medians and their ratio.

Usage: ``.venv/bin/python bench/bench_next_day.py [--trials 3] [--baseline-src DIR]``.
Results go to ``bench/results/next_day_large.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
N_LISTED = 506  # 500 ordinary pairs and the 6 the simulated exchange lists besides: 505 candidates
N_DAYS = 1000


def _worker(step: str, state: Path) -> dict:
    """In a worker interpreter: ``setup`` ingests day 1 into ``state/base``; ``trial`` times day 2 on a copy."""
    import bench_ingest  # the tree's own (its directory is first on sys.path)
    from dagster import DagsterInstance

    from alpha_assets.cli import PROJECT_DAGSTER_YAML
    from alpha_assets.lakehouse.paths import LakehousePaths

    work, manifest = state / "run", state / "manifest.json"
    shutil.rmtree(work, ignore_errors=True)
    if step == "setup":
        (work / "home").mkdir(parents=True)
        shutil.copyfile(PROJECT_DAGSTER_YAML, work / "home" / "dagster.yaml")
    else:
        shutil.copytree(state / "base", work)
        os.sync()  # the copy's writes are not the trial's
    os.environ["DAGSTER_HOME"] = str(work / "home")
    instance = DagsterInstance.get()
    try:
        day = bench_ingest.DAY_1 if step == "setup" else bench_ingest.DAY_2
        run_id = "BENCH_DAY_1" if step == "setup" else "BENCH_DAY_2"
        defs = bench_ingest._defs(work, manifest, N_LISTED, day)
        figures = bench_ingest._ingest(defs, instance, LakehousePaths(work / "data"), run_id)
    finally:
        instance.dispose()
    if step == "setup":
        shutil.move(work, state / "base")
    else:
        shutil.rmtree(work)
    return figures


def _run(tree: Path, step: str, state: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    # This script, against the tree's code and its bench_ingest (the same procedure for every tree).
    command = [sys.executable, "-W", "ignore", __file__, "--worker", step]
    command += ["--state", str(state), "--tree", str(tree)]
    answer = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(answer.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--baseline-src", type=Path, default=None, help="another checkout to alternate with")
    parser.add_argument("--worker", choices=["setup", "trial"], help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--tree", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        sys.path.insert(0, str(args.tree / "bench"))
        print(json.dumps(_worker(args.worker, args.state)))
        return
    trees = {"current": REPO}
    if args.baseline_src is not None:
        trees = {"baseline": args.baseline_src.resolve(), **trees}
    sys.path.insert(0, str(REPO / "bench"))
    from bench_ingest import write_manifest
    from common import write_results

    with tempfile.TemporaryDirectory() as tmp:
        states = {label: Path(tmp) / label for label in trees}
        for label, tree in trees.items():
            states[label].mkdir()
            # This checkout's manifest for every tree: the measured code differs, the input does not.
            write_manifest(states[label] / "manifest.json", N_DAYS)
            _run(tree, "setup", states[label])
        trials: dict[str, list[float]] = {label: [] for label in trees}
        cpu: dict[str, list[float]] = {label: [] for label in trees}
        for _ in range(args.trials):
            for label, tree in trees.items():
                figures = _run(tree, "trial", states[label])
                assert figures["new_bars"] == 505, figures
                trials[label].append(figures["ingest_s"])
                cpu[label].append(figures["ingest_cpu_s"])
                print(
                    f"{label:9s} next day {figures['ingest_s']:.2f} s, CPU {figures['ingest_cpu_s']:.2f} s "
                    f"({figures['symbols']} symbols)",
                    flush=True,
                )
    medians = {label: statistics.median(times) for label, times in trials.items()}
    cpu_medians = {label: statistics.median(times) for label, times in cpu.items()}
    for label, median in medians.items():
        print(f"{label:9s} median {median:.2f} s (target <= 3 s), CPU {cpu_medians[label]:.2f} s")
    if "baseline" in medians:
        print(f"ratio     baseline / current {medians['baseline'] / medians['current']:.2f}")
    write_results(
        "next_day", "large", {"trials_s": trials, "median_s": medians, "cpu_s": cpu, "cpu_median_s": cpu_medians}
    )


if __name__ == "__main__":
    main()
