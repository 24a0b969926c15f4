"""Input checks shared by the pure packages, one message shape each: the argument, the expectation, what came."""

from __future__ import annotations

import pandas as pd


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
    if not isinstance(returns, pd.DataFrame):
        raise TypeError(f"`{name}` must be a pandas DataFrame (n_observations, n_assets), got {type(returns).__name__}")
    if returns.shape[0] < 2 or returns.shape[1] < 1:
        raise ValueError(f"`{name}` needs >= 2 observations and >= 1 asset, got shape {returns.shape}")
    if not returns.columns.is_unique:
        raise ValueError(f"`{name}` columns must be unique symbol keys")
    return returns
