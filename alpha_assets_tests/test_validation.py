"""The shared input check for returns matrices: accepted frames come back unchanged, each refusal names why."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alpha_assets.validation import check_returns_frame


def test_check_returns_frame_valid_frame_is_returned_unchanged():
    frame = pd.DataFrame(np.zeros((3, 2)), columns=["SIM_AUSDT", "SIM_BUSDT"])
    assert check_returns_frame(frame) is frame


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (
            np.zeros((3, 2)),
            TypeError,
            r"`returns` must be a pandas DataFrame \(n_observations, n_assets\), got ndarray",
        ),
        (pd.DataFrame({"SIM_AUSDT": [0.1]}), ValueError, r"needs >= 2 observations and >= 1 asset, got shape \(1, 1\)"),
        (pd.DataFrame(index=range(3)), ValueError, r"got shape \(3, 0\)"),
        (pd.DataFrame(np.zeros((3, 2)), columns=["SIM_AUSDT"] * 2), ValueError, r"columns must be unique symbol keys"),
    ],
    ids=["not-a-frame", "one-row", "no-column", "duplicate-columns"],
)
def test_check_returns_frame_refusal_names_the_reason(value, error, message):
    with pytest.raises(error, match=message):
        check_returns_frame(value)


def test_check_returns_frame_names_the_argument_it_is_given():
    with pytest.raises(TypeError, match=r"`atom_returns` must be a pandas DataFrame"):
        check_returns_frame([1, 2], name="atom_returns")
