"""The few exceptions that callers handle differently from a plain ``ValueError``."""

from __future__ import annotations


class AlphaAssetsError(Exception):
    """Base class of every error this project raises on purpose."""


class UnsafeKeyError(AlphaAssetsError, ValueError):
    """A symbol key or RUN_ID that must not become a path; the run stops and nothing is written."""


class LakehouseReadError(AlphaAssetsError):
    """A lakehouse file that is missing, unreadable or of the wrong schema.

    Parameters
    ----------
    path : str
        The file that could not be read.
    reason : str
        Why, in words a user can act on.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot read lakehouse file {path}: {reason}")
        self.path = path
        self.reason = reason


class SourceError(AlphaAssetsError):
    """A market-data source failed after its retries (network, rate limit, malformed answer)."""


class ManifestError(AlphaAssetsError, ValueError):
    """A manifest key that is unknown, of the wrong type or out of range."""


class GateFailedError(AlphaAssetsError):
    """The foundation gate of a RUN_ID failed; nothing downstream may run for it."""


class SolverFailedError(AlphaAssetsError):
    """Every solver and fallback failed on a convex problem."""


class EmptyUniverseError(AlphaAssetsError):
    """Discovery or validation left no symbol to work on."""
