"""Fixtures of the source tests: a fixed clock, the default simulated exchange and a tmp_path lakehouse."""

from __future__ import annotations

import pandas as pd
import pytest

from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.sources.simulated import SimulatedExchange

SRC_NOW = pd.Timestamp("2026-11-25T21:07:00Z")


@pytest.fixture
def src_now() -> pd.Timestamp:
    """A fixed UTC clock in the evening, so the bar of the day is still forming."""
    return SRC_NOW


@pytest.fixture(scope="module")
def src_exchange() -> SimulatedExchange:
    """The default simulated exchange (seed 7, 60 USDT pairs) at :data:`SRC_NOW`; shared, read-only use."""
    return SimulatedExchange(seed=7, now=SRC_NOW)


@pytest.fixture
def src_paths(tmp_path) -> LakehousePaths:
    """An empty lakehouse under ``tmp_path``."""
    return LakehousePaths(tmp_path / "data")
