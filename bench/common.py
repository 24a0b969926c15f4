"""Shared by the benchmarks: machine facts, a timer, peak memory and the JSON result file."""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
LIBRARIES = (
    "dagster",
    "numpy",
    "pandas",
    "pyarrow",
    "duckdb",
    "cvxpy",
    "clarabel",
    "ta-lib",
    "ccxt",
    "pyportfolioopt",
    "skfolio",
    "scikit-learn",
)


def machine_info() -> dict[str, Any]:
    """The machine and library versions, recorded with every result."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "processor": platform.processor(),
        "libraries": versions,
    }


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    """Wall seconds of one call, and its result."""
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its children that ended (e.g. forked workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_results(name: str, size: str, figures: dict[str, Any]) -> Path:
    """Write ``results/<name>_<size>.json`` with the machine facts and print where it went."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}_{size}.json"
    path.write_text(
        json.dumps(
            {"benchmark": name, "size": size, "machine": machine_info(), **figures},
            indent=2,
            sort_keys=True,
            default=str,
        )
        + "\n"
    )
    print(f"results: {path}")
    return path
