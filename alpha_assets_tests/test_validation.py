"""The shared input checks: accepted inputs come back ready to use, each refusal names the argument, the expected
shape or type, and what was received (the message shapes of scikit-learn's ``utils.validation``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from alpha_assets.validation import (
    check_array,
    check_frame,
    check_int,
    check_returns_array,
    check_returns_frame,
    check_same_length,
    check_utc_timestamp,
    epoch_ms,
    json_float,
)


# ------------------------------------------------------------------------------------------------ arrays
def test_check_array_contiguous_float64_series_is_returned_as_is():
    close = np.linspace(1.0, 2.0, 5)
    assert check_array(close, "close") is close


def test_check_array_strided_view_comes_back_contiguous_with_the_same_values():
    view = np.arange(10, dtype=np.float64)[::2]
    out = check_array(view, "close")
    assert out.flags.c_contiguous and not view.flags.c_contiguous
    np.testing.assert_array_equal(out, [0.0, 2.0, 4.0, 6.0, 8.0])


@pytest.mark.parametrize(
    ("values", "kwargs", "error", "message"),
    [
        ([1.0, 2.0], {}, TypeError, r"`close` must be a numpy ndarray of shape \(n_observations,\), got list"),
        (np.ones((3, 2)), {}, ValueError, r"`close` must be 1-D \(n_observations,\), got shape \(3, 2\)"),
        (np.arange(4), {}, TypeError, r"`close` must have dtype float64, got int64"),
        (np.array([1.0, np.nan, np.inf]), {"finite": True}, ValueError, r"`close` must be finite, got 2 NaN or inf"),
        (
            np.ones(4),
            {"dims": ("n_observations", "n_votes")},
            ValueError,
            r"`close` must be 2-D \(n_observations, n_votes\), got shape \(4,\)",
        ),
    ],
    ids=["list", "2d", "int-dtype", "non-finite", "not-2d"],
)
def test_check_array_refusal_names_argument_expectation_and_what_came(values, kwargs, error, message):
    with pytest.raises(error, match=message):
        check_array(values, "close", **kwargs)


def test_check_array_cast_converts_integers_to_float64():
    out = check_array(np.arange(6).reshape(3, 2), "returns", dims=("n_observations", "n_assets"), cast=True)
    assert out.dtype == np.float64 and out.shape == (3, 2)


def test_check_same_length_names_every_argument_with_its_shape():
    check_same_length(high=np.ones(3), low=np.ones(3))
    with pytest.raises(
        ValueError,
        match=r"`high`, `low` and `close` must share the shape \(n_observations,\), got "
        r"\{'high': \(3,\), 'low': \(3,\), 'close': \(2,\)\}",
    ):
        check_same_length(high=np.ones(3), low=np.ones(3), close=np.ones(2))


@pytest.mark.parametrize(
    ("value", "minimum", "message"),
    [(0, 1, r"`window` must be an integer >= 1, got 0"), (True, 0, "got True"), (2.0, 1, "got 2.0")],
    ids=["below-minimum", "bool", "float"],
)
def test_check_int_refuses_non_integers_and_values_below_the_minimum(value, minimum, message):
    with pytest.raises(ValueError, match=message):
        check_int(value, "window", minimum)


def test_check_int_returns_a_python_int_for_numpy_integers():
    out = check_int(np.int64(20), "window", 1)
    assert out == 20 and type(out) is int


def test_check_returns_array_accepts_integers_and_returns_finite_float64():
    out = check_returns_array(np.array([[1, 0], [0, 1]]))
    assert out.dtype == np.float64


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ([[0.1], [0.2]], TypeError, r"`returns` must be a numpy ndarray of shape \(n_observations, n_assets\)"),
        (np.zeros(4), ValueError, r"`returns` must be 2-D \(n_observations, n_assets\), got shape \(4,\)"),
        (np.zeros((1, 3)), ValueError, r"needs >= 2 observations and >= 1 asset, got shape \(1, 3\)"),
        (np.full((3, 2), np.nan), ValueError, r"`returns` must be finite, got 6 NaN or inf values"),
    ],
    ids=["list", "1d", "one-row", "nan"],
)
def test_check_returns_array_refusal_names_the_reason(value, error, message):
    with pytest.raises(error, match=message):
        check_returns_array(value)


# ------------------------------------------------------------------------------------------------ frames
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


def test_check_frame_names_the_expected_axes():
    with pytest.raises(TypeError, match=r"`feature_rows` must be a pandas DataFrame \(n_rows, n_columns\), got dict"):
        check_frame({}, "feature_rows", ("n_rows", "n_columns"))


# -------------------------------------------------------------------------------------------- timestamps
@pytest.mark.parametrize(
    "value",
    [
        pd.Timestamp("2026-11-25 12:00", tz="UTC"),
        pd.Timestamp("2026-11-25 13:00", tz="Europe/Paris"),
        datetime(2026, 11, 25, 7, 0, tzinfo=timezone(timedelta(hours=-5))),
    ],
    ids=["utc", "paris", "stdlib-offset"],
)
def test_check_utc_timestamp_converts_any_zone_to_utc(value):
    out = check_utc_timestamp(value, "now")
    assert out == pd.Timestamp("2026-11-25 12:00", tz="UTC") and str(out.tz) == "UTC"


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (pd.Timestamp("2026-11-25"), ValueError, r"must be timezone-aware \(UTC\), got naive 2026-11-25T00:00:00"),
        (np.datetime64("2026-11-25"), ValueError, r"`now` must be timezone-aware \(UTC\), got naive"),
        ("2026-11-25T00:00:00+00:00", TypeError, r"`now` must be a timezone-aware timestamp, got str"),
        (None, TypeError, r"`now` must be a timezone-aware timestamp, got NoneType"),
    ],
    ids=["naive-timestamp", "datetime64", "string", "none"],
)
def test_check_utc_timestamp_refuses_naive_times_and_other_types(value, error, message):
    with pytest.raises(error, match=message):
        check_utc_timestamp(value, "now")


def test_epoch_ms_floors_to_the_millisecond_whatever_the_unit():
    stamp = pd.Timestamp("2026-11-25T00:00:00.0019999", tz="UTC")
    assert epoch_ms(stamp) == int(datetime(2026, 11, 25, tzinfo=UTC).timestamp()) * 1000 + 1
    assert epoch_ms(stamp.as_unit("s")) == int(datetime(2026, 11, 25, tzinfo=UTC).timestamp()) * 1000


@pytest.mark.parametrize(
    ("value", "expected"),
    [(np.float64(0.25), 0.25), (3, 3.0), (np.nan, None), (np.inf, None), (-np.inf, None)],
)
def test_json_float_keeps_finite_values_and_turns_nan_and_inf_into_none(value, expected):
    out = json_float(value)
    assert out == expected and (out is None or type(out) is float)
