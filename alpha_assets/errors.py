"""The few exceptions that callers handle differently from a plain ``ValueError``."""

from __future__ import annotations

from enum import IntEnum


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


class DiskFullError(AlphaAssetsError, OSError):
    """No space (or quota) left on the file system a file was being written to; the old file is intact.

    Parameters
    ----------
    path : str
        The file that could not be written.
    """

    def __init__(self, path: str) -> None:
        super().__init__(
            f"disk full: no space left on the file system holding {path}; nothing was replaced, "
            "free some space and run again"
        )
        self.path = path

    def __reduce__(self) -> tuple[type[DiskFullError], tuple[str]]:
        # Raised in backfill worker processes: pickled back with the path, not the formatted message.
        return (type(self), (self.path,))


class UnusableEnvironmentError(AlphaAssetsError):
    """The environment cannot host a run: ``DAGSTER_HOME`` unusable, a data directory that cannot be written."""


class DataDirMismatchError(UnusableEnvironmentError):
    """A run asked for another data directory than the one its Dagster instance serves (recorded on first use)."""


class SourceError(AlphaAssetsError):
    """A market-data source failed after its retries (network, rate limit, malformed answer)."""


class ManifestError(AlphaAssetsError, ValueError):
    """A manifest key that is unknown, of the wrong type or out of range."""


class ParameterError(AlphaAssetsError, ValueError):
    """A parameter class built in Python with a value of the wrong type or out of its bounds."""


class GateFailedError(AlphaAssetsError):
    """The foundation gate of a RUN_ID failed; nothing downstream may run for it."""


class NoPortfolioError(AlphaAssetsError):
    """Every optimisation profile of a RUN_ID failed: its portfolio holds no weights."""


class SolverFailedError(AlphaAssetsError):
    """Every solver and fallback failed on a convex problem."""


class EmptyUniverseError(AlphaAssetsError):
    """Discovery or validation left no symbol to work on."""


class ExportConflictError(AlphaAssetsError, ValueError):
    """A RUN_ID's stored export would be replaced by a different universe: history is never rewritten."""


class ExitCode(IntEnum):
    """Exit codes of the ``alpha-assets`` command (the README's table lists them)."""

    OK = 0
    #: A run failed for a reason not listed below; the message names the job, the Dagster run and the error.
    FAILED = 1
    #: Bad input from the user: an argument, the manifest, a key, the clock, an input file.
    BAD_INPUT = 2
    #: The flow finished but some symbols failed (ingestion or features); each is printed with its reason.
    PARTIAL = 3
    #: The RUN_ID's foundation gate failed: no selection, no portfolio.
    GATE_FAILED = 4
    #: Every optimisation profile failed: no weights.
    NO_PORTFOLIO = 5
    #: The environment: DAGSTER_HOME, the data directory, a full disk, permissions.
    ENVIRONMENT = 6
