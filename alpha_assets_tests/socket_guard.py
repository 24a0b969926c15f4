"""A pytest plugin that keeps the whole test suite off the network, with the project's own guard.

Loaded by ``pytest_plugins`` in the root conftest, it installs :mod:`alpha_assets.netguard` in
``pytest_configure`` (so collection is covered too) and removes it in ``pytest_unconfigure``. Child
processes (``subprocess``, Dagster run workers) start without it; the end-to-end tests that start them
point every client at 127.0.0.1.
"""

from __future__ import annotations

import pytest

from alpha_assets import netguard


def pytest_configure(config: pytest.Config) -> None:
    """Install the guard before collection, so module imports are covered too."""
    netguard.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Restore the socket functions once the session is over."""
    netguard.uninstall()
