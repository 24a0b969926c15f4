"""Input checks shared by the pure packages, one message shape each: the argument, the expectation, what came.

Modelled on scikit-learn's ``sklearn.utils.validation``: each check names the argument it refuses, the shape or
type it expects and the one it received, raises ``TypeError`` for a wrong type or dtype and ``ValueError`` for a
wrong shape or value, and returns the input ready to use (C-contiguous float64 arrays, UTC timestamps).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from alpha_assets.typing import FloatArray

__all__ = [
    "check_array",
    "check_frame",
    "check_int",
    "check_returns_array",
    "check_returns_frame",
    "check_same_length",
    "check_utc_timestamp",
    "epoch_ms",
    "json_float",
    "parse_utc_clock",
]

#: The dimensions of a series and of a returns matrix, as the messages and the docstrings write them.
SERIES = ("n_observations",)
RETURNS = ("n_observations", "n_assets")


def _shape_label(dims: tuple[str, ...]) -> str:
    return f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"


def check_array(
    values: object, name: str, *, dims: tuple[str, ...] = SERIES, cast: bool = False, finite: bool = False
) -> FloatArray:
    """Return ``values`` as a C-contiguous float64 ndarray with one axis per name in ``dims``, or raise.

    Parameters
    ----------
    values : object
        Candidate ndarray.
    name : str
        The argument's name, for the messages.
    dims : tuple of str, default ("n_observations",)
        The names of the expected axes, e.g. ``("n_observations", "n_assets")``; their number is the expected
        ``ndim``.
    cast : bool, default False
        Convert another numeric dtype to float64 instead of refusing it.
    finite : bool, default False
        Refuse NaN and inf.

    Returns
    -------
    ndarray of shape ``dims``, float64
        ``values`` itself when it is already C-contiguous float64.

    Raises
    ------
    TypeError
        When ``values`` is not an ndarray, or (without ``cast``) its dtype is not float64.
    ValueError
        When its number of axes is not ``len(dims)``, or (with ``finite``) it holds NaN or inf.
    """
    # The label is built only for a message: this runs tens of thousands of times in a daily features update.
    if not isinstance(values, np.ndarray):
        raise TypeError(f"`{name}` must be a numpy ndarray of shape {_shape_label(dims)}, got {type(values).__name__}")
    if values.ndim != len(dims):
        raise ValueError(f"`{name}` must be {len(dims)}-D {_shape_label(dims)}, got shape {values.shape}")
    if cast:
        values = values.astype(np.float64, copy=False)
    elif values.dtype != np.float64:
        raise TypeError(f"`{name}` must have dtype float64, got {values.dtype}")
    if finite and not np.isfinite(values).all():
        raise ValueError(f"`{name}` must be finite, got {int((~np.isfinite(values)).sum())} NaN or inf values")
    return np.ascontiguousarray(values)


def check_int(value: object, name: str, minimum: int) -> int:
    """Return ``value`` as an int when it is an integer >= ``minimum`` (a bool is refused), or raise ValueError.

    Parameters
    ----------
    value : object
        Candidate ``int`` or numpy integer, e.g. a window length in bars.
    name : str
        The argument's name, for the messages.
    minimum : int
        The smallest value accepted.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_same_length(**arrays: FloatArray) -> None:
    """Raise unless the series given by keyword share one shape ``(n_observations,)``.

    Parameters
    ----------
    **arrays : ndarray of shape (n_observations,)
        The series by argument name, already checked by :func:`check_array`.

    Raises
    ------
    ValueError
        When the shapes differ; the message names every argument with its shape.
    """
    shapes = {name: values.shape for name, values in arrays.items()}
    if len(set(shapes.values())) > 1:
        names = [f"`{name}`" for name in shapes]
        listed = f"{', '.join(names[:-1])} and {names[-1]}"
        raise ValueError(f"{listed} must share the shape {_shape_label(SERIES)}, got {shapes}")


def check_returns_array(returns: object, name: str = "returns") -> FloatArray:
    """Return ``returns`` as a finite float64 array (n_observations, n_assets), at least 2 x 1, or raise.

    Parameters
    ----------
    returns : object
        Candidate ndarray of shape (n_observations, n_assets), any numeric dtype.
    name : str, default "returns"
        The argument's name, for the messages.

    Returns
    -------
    ndarray of shape (n_observations, n_assets), float64

    Raises
    ------
    TypeError
        When ``returns`` is not an ndarray.
    ValueError
        When it is not 2-D, has fewer than 2 observations or no asset, or holds NaN or inf.
    """
    values = check_array(returns, name, dims=RETURNS, cast=True, finite=True)
    _check_returns_shape(values.shape, name)
    return values


def check_frame(value: object, name: str, dims: tuple[str, ...] = RETURNS) -> pd.DataFrame:
    """Return ``value`` when it is a pandas DataFrame, or raise a TypeError naming its expected axes.

    Parameters
    ----------
    value : object
        Candidate DataFrame.
    name : str
        The argument's name, for the messages.
    dims : tuple of str, default ("n_observations", "n_assets")
        The names of its rows and columns, for the message.

    Raises
    ------
    TypeError
        When ``value`` is not a DataFrame.
    """
    if not isinstance(value, pd.DataFrame):
        raise TypeError(f"`{name}` must be a pandas DataFrame {_shape_label(dims)}, got {type(value).__name__}")
    return value


def check_returns_frame(returns: object, name: str = "returns") -> pd.DataFrame:
    """Return ``returns`` when it is a returns matrix: a DataFrame (n_observations, n_assets), unique columns.

    Parameters
    ----------
    returns : object
        Candidate DataFrame of shape (n_observations, n_assets), columns symbol keys.
    name : str, default "returns"
        The argument's name, for the messages.

    Raises
    ------
    TypeError
        When ``returns`` is not a DataFrame.
    ValueError
        When it has fewer than 2 observations or no asset, or duplicate columns.
    """
    check_frame(returns, name)
    _check_returns_shape(returns.shape, name)
    if not returns.columns.is_unique:
        raise ValueError(f"`{name}` columns must be unique symbol keys")
    return returns


def _check_returns_shape(shape: tuple[int, ...], name: str) -> None:
    if shape[0] < 2 or shape[1] < 1:
        raise ValueError(
            f"`{name}` {_shape_label(RETURNS)} needs >= 2 observations and >= 1 asset, got shape {tuple(shape)}"
        )


def check_utc_timestamp(value: object, name: str) -> pd.Timestamp:
    """Return ``value`` as a UTC pandas Timestamp; a naive time is refused since its zone would be a guess.

    Parameters
    ----------
    value : datetime or pandas.Timestamp
        A timezone-aware time (any zone).
    name : str
        The argument's name, for the messages.

    Raises
    ------
    TypeError
        When ``value`` is not a ``datetime`` (``pandas.Timestamp`` is one) or a ``numpy.datetime64``.
    ValueError
        When it is naive (``numpy.datetime64`` always is).
    """
    if not isinstance(value, datetime | np.datetime64):
        raise TypeError(f"`{name}` must be a timezone-aware timestamp, got {type(value).__name__}")
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        raise ValueError(f"`{name}` must be timezone-aware (UTC), got naive {stamp.isoformat()}")
    return stamp.tz_convert("UTC")


def epoch_ms(stamp: pd.Timestamp) -> int:
    """Milliseconds since the UTC epoch of a timezone-aware Timestamp (floored), whatever its unit."""
    return int(stamp.value // 1_000_000)  # ``value`` is in ns whatever the timestamp's unit


def json_float(value: float) -> float | None:
    """``value`` as a Python float for JSON, or None when it is NaN or infinite (JSON has neither)."""
    value = float(value)
    return value if np.isfinite(value) else None


def parse_utc_clock(text: str, name: str = "clock") -> pd.Timestamp:
    """The instant ``text`` names, in UTC; it must carry its time zone.

    Parameters
    ----------
    text : str
        ISO-8601 date and time with an offset or ``Z``, e.g. ``2026-11-25T12:00:00+00:00``.
    name : str, default "clock"
        The argument's name, for the messages.

    Raises
    ------
    ValueError
        When ``text`` is not an ISO-8601 time, or has no time zone: a naive time would be read in the machine's
        zone on one host and in UTC on another, so it is refused rather than guessed.
    """
    try:
        instant = pd.Timestamp(text)
    except (TypeError, ValueError) as err:
        raise ValueError(f"`{name}` must be an ISO-8601 time such as 2026-11-25T12:00:00Z, got {text!r}") from err
    if instant is pd.NaT:
        raise ValueError(f"`{name}` must be an ISO-8601 time such as 2026-11-25T12:00:00Z, got {text!r}")
    if instant.tzinfo is None:
        raise ValueError(f"`{name}` {text!r} has no time zone: add Z or an offset, e.g. {instant.isoformat()}Z for UTC")
    return instant.tz_convert("UTC")
