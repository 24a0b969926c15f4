"""The audit of stored daily bars (alpha_assets.dataops.audit).

Exercises every check on a seeded geometric random walk with planted defects, asserting the verdict and
the exact reason; the precedence of verdicts; the file reader's MISSING / TOXIC mapping; the summary helpers;
input validation. Leaves the Dagster checks that publish these verdicts to test_defs.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from alpha_assets.dataops.audit.engine import AuditParams, audit_bars, audit_symbol_file, expected_last_bar
from alpha_assets.dataops.audit.records import (
    CHECK_BARS_PRESENT,
    CHECK_CLOSED_BARS,
    CHECK_DAILY_RETURN,
    CHECK_FROZEN_CLOSE,
    CHECK_GAPS,
    CHECK_NAMES,
    CHECK_OHLC_SANITY,
    CHECK_SCHEMA,
    CHECK_SORTED_UNIQUE,
    CHECK_STALENESS,
    CHECK_UTC_TIMESTAMPS,
    CHECK_VOLUME_ZSCORE,
    AuditVerdict,
    Verdict,
)
from alpha_assets.errors import ParameterError, UnsafeKeyError
from alpha_assets.lakehouse.jsonio import encode_json
from alpha_assets.lakehouse.ohlcv import Gap, write_ohlcv
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.parameters import parse_section

KEY = "SIM_AUDUSDT"
N_BARS = 400
LAST_DAY = pd.Timestamp("2024-06-30", tz="UTC")
#: Six hours into the day after the last bar: the last bar is exactly the expected one.
AS_OF = pd.Timestamp("2024-07-01T06:00", tz="UTC")


def _random_walk_bars(seed: int, n_bars: int = N_BARS, last_day: pd.Timestamp = LAST_DAY) -> pd.DataFrame:
    """Daily bars of a geometric random walk (3 % daily volatility) with log-normal volumes."""
    rng = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.03, n_bars)))
    open_ = np.concatenate(([50.0], close[:-1]))
    high = np.maximum(open_, close) * (1.0 + np.abs(rng.normal(0.0, 0.01, n_bars)))
    low = np.minimum(open_, close) * (1.0 - np.abs(rng.normal(0.0, 0.01, n_bars)))
    volume = np.exp(rng.normal(12.0, 0.35, n_bars))
    timestamps = pd.date_range(end=last_day, periods=n_bars, freq="D").astype("datetime64[ms, UTC]")
    return pd.DataFrame(
        {"timestamp": timestamps, "open": open_, "high": high, "low": low, "close": close, "volume": volume}
    )


@pytest.fixture
def aud_bars() -> pd.DataFrame:
    return _random_walk_bars(seed=7)


@pytest.fixture
def aud_params() -> AuditParams:
    return AuditParams()


def _audit(bars: pd.DataFrame | None, params: AuditParams | None = None, **kwargs) -> AuditVerdict:
    return audit_bars(bars, symbol_key=KEY, as_of=kwargs.pop("as_of", AS_OF), params=params or AuditParams(), **kwargs)


def _failed(verdict: AuditVerdict) -> list[str]:
    return [name for name, check in verdict.checks.items() if not check.passed]


# --- healthy data ------------------------------------------------------------------------------------------


def test_audit_bars_clean_random_walk_is_ok(aud_bars: pd.DataFrame) -> None:
    verdict = _audit(aud_bars)
    assert verdict.verdict is Verdict.OK
    assert verdict.passed
    assert verdict.reasons == ()
    assert list(verdict.checks) == list(CHECK_NAMES)
    assert all(check.passed and check.verdict is Verdict.OK for check in verdict.checks.values())
    assert verdict.n_bars == N_BARS
    assert verdict.first_bar == LAST_DAY - pd.Timedelta(days=N_BARS - 1)
    assert verdict.last_bar == LAST_DAY
    assert verdict.checks[CHECK_STALENESS].observed["sessions_behind"] == 0


@pytest.mark.parametrize("seed", range(5))
def test_audit_bars_any_seeded_random_walk_is_ok(seed: int) -> None:
    assert _audit(_random_walk_bars(seed=100 + seed)).verdict is Verdict.OK


def test_audit_bars_volume_zscore_matches_pandas_rolling_reference(aud_bars: pd.DataFrame) -> None:
    params = AuditParams()
    logs = np.log1p(aud_bars["volume"])
    trailing = logs.rolling(params.volume_window)
    mean = trailing.mean().shift(1)
    std = trailing.std(ddof=0).shift(1).clip(lower=params.volume_std_floor)
    reference = ((logs - mean) / std).max()
    observed = _audit(aud_bars).checks[CHECK_VOLUME_ZSCORE].observed
    assert observed["max_zscore"] == pytest.approx(reference, rel=1e-9)
    assert observed["bars_scored"] == N_BARS - params.volume_window


# --- TOXIC: toxicity ---------------------------------------------------------------------------------------


def test_audit_bars_return_above_limit_is_toxic_with_return_and_date(aud_bars: pd.DataFrame) -> None:
    bars = aud_bars.copy()
    bars.loc[200, ["close", "high"]] *= 7.0
    jump = bars["close"].iat[200] / bars["close"].iat[199] - 1.0
    verdict = _audit(bars)
    assert verdict.verdict is Verdict.TOXIC
    day = bars["timestamp"].iat[200].strftime("%Y-%m-%d")
    assert verdict.reasons == (f"daily return {jump:.2f} on {day} above 5.00",)
    assert _failed(verdict) == [CHECK_DAILY_RETURN]
    assert verdict.checks[CHECK_DAILY_RETURN].observed == {
        "max_return": pytest.approx(jump),
        "on": day,
        "bars_above": 1,
    }


def test_audit_bars_return_just_below_limit_is_ok(aud_bars: pd.DataFrame) -> None:
    bars = aud_bars.copy()
    ratio = 5.9 * bars["close"].iat[199] / bars["close"].iat[200]
    bars.loc[200:, ["open", "high", "low", "close"]] *= ratio  # a level shift: +490 % once, no way back
    bars.loc[200, "open"] = bars["close"].iat[199]
    bars.loc[200, "low"] = bars["open"].iat[200]
    verdict = _audit(bars)
    assert verdict.checks[CHECK_DAILY_RETURN].observed["max_return"] == pytest.approx(4.9)
    assert verdict.verdict is Verdict.OK


def test_audit_bars_volume_spike_is_toxic_with_zscore(aud_bars: pd.DataFrame) -> None:
    bars = aud_bars.copy()
    bars.loc[300, "volume"] *= 1000.0
    verdict = _audit(bars)
    observed = verdict.checks[CHECK_VOLUME_ZSCORE].observed
    day = bars["timestamp"].iat[300].strftime("%Y-%m-%d")
    assert verdict.verdict is Verdict.TOXIC
    assert observed["on"] == day and observed["bars_above"] == 1 and observed["max_zscore"] > 10.0
    assert verdict.reasons == (f"volume z-score {observed['max_zscore']:.2f} on {day} above 10.00",)


def test_audit_bars_flat_volume_window_gives_finite_zscore(aud_bars: pd.DataFrame) -> None:
    bars = aud_bars.copy()
    bars["volume"] = 1000.0
    bars.loc[N_BARS - 1, "volume"] = 1000.0 * np.e  # +1 in log units against a zero deviation
    verdict = _audit(bars)
    observed = verdict.checks[CHECK_VOLUME_ZSCORE].observed
    expected = (np.log1p(1000.0 * np.e) - np.log1p(1000.0)) / 0.05
    assert observed["max_zscore"] == pytest.approx(expected)
    assert verdict.verdict is Verdict.TOXIC
    json.dumps(verdict.to_json_dict(), allow_nan=False)


def test_audit_bars_frozen_close_is_toxic_with_run_and_range(aud_bars: pd.DataFrame) -> None:
    bars = aud_bars.copy()
    frozen = bars["close"].iat[N_BARS - 17]
    # 12 bars set to the close of the bar before them: a run of 13 identical closes.
    bars.loc[N_BARS - 16 : N_BARS - 5, ["open", "high", "low", "close"]] = frozen
    verdict = _audit(bars)
    first = bars["timestamp"].iat[N_BARS - 17].strftime("%Y-%m-%d")
    last = bars["timestamp"].iat[N_BARS - 5].strftime("%Y-%m-%d")
    assert verdict.verdict is Verdict.TOXIC
    assert verdict.reasons == (f"close unchanged at {frozen:g} for 13 bars from {first} to {last}, at least 10",)
    assert verdict.checks[CHECK_FROZEN_CLOSE].observed["longest_run_bars"] == 13


def test_audit_bars_frozen_run_one_short_of_limit_is_ok(aud_bars: pd.DataFrame) -> None:
    bars = aud_bars.copy()
    bars.loc[N_BARS - 11 : N_BARS - 4, ["open", "high", "low", "close"]] = bars["close"].iat[N_BARS - 12]
    verdict = _audit(bars)
    assert verdict.checks[CHECK_FROZEN_CLOSE].observed["longest_run_bars"] == 9
    assert verdict.verdict is Verdict.OK


def test_audit_bars_frozen_run_before_lookback_is_ignored(aud_bars: pd.DataFrame) -> None:
    bars = aud_bars.copy()
    bars.loc[100:130, ["open", "high", "low", "close"]] = bars["close"].iat[99]
    assert _audit(bars).verdict is Verdict.OK
    assert _audit(bars, AuditParams(frozen_lookback_bars=N_BARS)).verdict is Verdict.TOXIC


# --- TOXIC: contract breaches ------------------------------------------------------------------------------


def test_audit_bars_ohlc_violations_are_toxic_with_counts_and_first_date(aud_bars: pd.DataFrame) -> None:
    bars = aud_bars.copy()
    bars.loc[10, "low"] = bars["high"].iat[10] * 1.1  # high < low, and open/close below low
    bars.loc[20, "volume"] = -5.0
    bars.loc[30, ["open", "low"]] = 0.0
    bars.loc[40, "close"] = np.nan
    verdict = _audit(bars)
    day = {i: bars["timestamp"].iat[i].strftime("%Y-%m-%d") for i in (10, 20, 30, 40)}
    assert verdict.verdict is Verdict.TOXIC
    assert verdict.checks[CHECK_OHLC_SANITY].observed == {
        "non_finite": 1,
        "price_not_positive": 1,
        "negative_volume": 1,
        "high_below_low": 1,
        "open_close_outside_range": 1,
    }
    assert verdict.reasons[0] == (
        f"OHLC sanity: 1 bars with null, NaN or infinite values (first {day[40]}); "
        f"1 bars with a price <= 0 (first {day[30]}); 1 bars with volume < 0 (first {day[20]}); "
        f"1 bars with high < low (first {day[10]}); 1 bars with open or close outside [low, high] "
        f"(first {day[10]})"
    )


def test_audit_bars_missing_column_is_toxic_and_stops(aud_bars: pd.DataFrame) -> None:
    verdict = _audit(aud_bars.drop(columns="volume"))
    assert verdict.verdict is Verdict.TOXIC
    assert list(verdict.checks) == [CHECK_BARS_PRESENT, CHECK_SCHEMA]
    assert verdict.reasons[0].startswith("schema: missing columns ['volume']; expected {")
    assert verdict.first_bar is None


def test_audit_bars_integer_volume_is_toxic_but_checked(aud_bars: pd.DataFrame) -> None:
    bars = aud_bars.assign(volume=aud_bars["volume"].round().astype("int64"))
    verdict = _audit(bars)
    assert verdict.verdict is Verdict.TOXIC
    assert _failed(verdict) == [CHECK_SCHEMA]
    assert verdict.checks[CHECK_SCHEMA].observed == {"missing_columns": [], "wrong_dtypes": {"volume": "int64"}}
    assert CHECK_FROZEN_CLOSE in verdict.checks


def test_audit_bars_naive_timestamps_are_toxic(aud_bars: pd.DataFrame) -> None:
    bars = aud_bars.assign(timestamp=aud_bars["timestamp"].dt.tz_localize(None))
    verdict = _audit(bars)
    assert verdict.verdict is Verdict.TOXIC
    assert verdict.reasons == ("timestamps: timezone-naive timestamps",)
    assert verdict.last_bar == LAST_DAY  # read as UTC for the other checks


def test_audit_bars_other_time_zone_and_off_midnight_are_toxic(aud_bars: pd.DataFrame) -> None:
    bars = aud_bars.assign(timestamp=aud_bars["timestamp"].dt.tz_convert("Asia/Tokyo"))
    bars.loc[5, "timestamp"] += pd.Timedelta(hours=1)
    verdict = _audit(bars)
    assert verdict.reasons[0] == "timestamps: time zone Asia/Tokyo, 1 bars not opening at 00:00 UTC"
    assert verdict.checks[CHECK_UTC_TIMESTAMPS].observed == {"time_zone": "Asia/Tokyo", "null": 0, "not_at_midnight": 1}


def test_audit_bars_unsorted_and_duplicated_timestamps_are_toxic(aud_bars: pd.DataFrame) -> None:
    bars = pd.concat([aud_bars.iloc[::-1], aud_bars.iloc[[3]]], ignore_index=True)
    verdict = _audit(bars)
    assert verdict.verdict is Verdict.TOXIC
    assert verdict.reasons == (f"timestamps: {N_BARS - 1} steps backwards, 1 duplicated timestamps",)
    assert verdict.checks[CHECK_SORTED_UNIQUE].observed == {"unsorted_steps": N_BARS - 1, "duplicates": 1}
    # The other checks ran on the sorted bars, so nothing else fails.
    assert _failed(verdict) == [CHECK_SORTED_UNIQUE]
    assert verdict.n_bars == N_BARS + 1


def test_audit_bars_bar_not_closed_is_toxic(aud_bars: pd.DataFrame) -> None:
    verdict = _audit(aud_bars, as_of=pd.Timestamp("2024-06-30T23:00", tz="UTC"))
    assert verdict.verdict is Verdict.TOXIC
    assert verdict.reasons == (
        "1 bars open after 2024-06-29, the last bar closed at as_of 2024-06-30T23:00:00+00:00 (first 2024-06-30)",
    )
    assert _failed(verdict) == [CHECK_CLOSED_BARS]


# --- STALE ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("as_of", "days_behind", "expected"),
    [
        ("2024-07-01T00:00", 0, Verdict.OK),
        ("2024-07-02T23:59", 1, Verdict.OK),
        ("2024-07-03T00:00", 2, Verdict.STALE),
        ("2024-07-05T12:00", 4, Verdict.STALE),
    ],
    ids=["exact", "one-day-late-tolerated", "two-days-late", "four-days-late"],
)
def test_audit_bars_staleness_boundary(aud_bars: pd.DataFrame, as_of: str, days_behind: int, expected: Verdict) -> None:
    verdict = _audit(aud_bars, as_of=pd.Timestamp(as_of, tz="UTC"))
    assert verdict.checks[CHECK_STALENESS].observed["sessions_behind"] == days_behind
    assert verdict.verdict is expected


def test_audit_bars_stale_reason_names_days_and_limit(aud_bars: pd.DataFrame) -> None:
    verdict = _audit(aud_bars, as_of=pd.Timestamp("2024-07-05T12:00", tz="UTC"))
    assert verdict.reasons == ("last bar 2024-06-30 is 4 days behind the expected 2024-07-04, above 1",)


def test_audit_bars_as_of_in_other_zone_uses_its_utc_day(aud_bars: pd.DataFrame) -> None:
    # 2024-07-01 01:00 in Paris is 2024-06-30 23:00 UTC: the last closed bar is 2024-06-29.
    as_of = pd.Timestamp("2024-07-01T01:00", tz="Europe/Paris")
    assert expected_last_bar(as_of) == pd.Timestamp("2024-06-29", tz="UTC")


# --- DEGRADED: gaps -----------------------------------------------------------------------------------------


def test_audit_bars_small_gap_is_degraded_and_labelled_when_unrepaired(aud_bars: pd.DataFrame) -> None:
    bars = aud_bars.drop(index=[100, 101, 102, 250]).reset_index(drop=True)
    first = aud_bars["timestamp"].iat[100]
    unrepaired = [Gap(first, first + pd.Timedelta(days=2))]
    verdict = _audit(bars, unrepaired_gaps=unrepaired)
    day = {i: aud_bars["timestamp"].iat[i].strftime("%Y-%m-%d") for i in (100, 102, 250)}
    assert verdict.verdict is Verdict.DEGRADED
    assert verdict.reasons == (
        f"2 gaps missing 4 bars: {day[100]}..{day[102]} (repair could not fill it), {day[250]}..{day[250]}",
    )
    observed = verdict.checks[CHECK_GAPS].observed
    assert (observed["n_gaps"], observed["missing_bars"], observed["span_bars"], observed["unrepaired"]) == (
        2,
        4,
        N_BARS,
        1,
    )
    assert observed["missing_fraction"] == pytest.approx(4 / N_BARS)


def test_audit_bars_gaps_over_fraction_are_toxic(aud_bars: pd.DataFrame) -> None:
    bars = aud_bars.drop(index=range(100, 130)).reset_index(drop=True)
    verdict = _audit(bars)
    start, end = (aud_bars["timestamp"].iat[i].strftime("%Y-%m-%d") for i in (100, 129))
    assert verdict.verdict is Verdict.TOXIC
    assert verdict.reasons == (
        f"1 gap missing 30 bars: {start}..{end}; they miss 7.5% of the 400-bar span, above 5.0%",
    )


def test_audit_bars_many_gaps_list_five_then_count(aud_bars: pd.DataFrame) -> None:
    verdict = _audit(aud_bars.drop(index=range(10, 80, 10)).reset_index(drop=True))
    assert verdict.reasons[0].startswith("7 gaps missing 7 bars: ")
    assert verdict.reasons[0].endswith(" and 2 more")
    assert verdict.reasons[0].count("..") == 5


# --- precedence and MISSING ---------------------------------------------------------------------------------


def test_audit_bars_stale_outranks_degraded_and_keeps_both_reasons(aud_bars: pd.DataFrame) -> None:
    bars = aud_bars.drop(index=[50]).reset_index(drop=True)
    verdict = _audit(bars, as_of=pd.Timestamp("2024-07-10", tz="UTC"))
    assert verdict.verdict is Verdict.STALE
    assert _failed(verdict) == [CHECK_GAPS, CHECK_STALENESS]
    assert len(verdict.reasons) == 2


def test_audit_bars_toxic_outranks_stale(aud_bars: pd.DataFrame) -> None:
    bars = aud_bars.copy()
    bars.loc[200, ["close", "high"]] *= 10.0
    verdict = _audit(bars, as_of=pd.Timestamp("2024-07-10", tz="UTC"))
    assert verdict.verdict is Verdict.TOXIC
    assert _failed(verdict) == [CHECK_STALENESS, CHECK_DAILY_RETURN]


@pytest.mark.parametrize("bars", [None, "empty"], ids=["none", "empty-frame"])
def test_audit_bars_no_bars_is_missing(aud_bars: pd.DataFrame, bars: object) -> None:
    verdict = _audit(aud_bars.iloc[:0] if bars == "empty" else None)
    assert verdict.verdict is Verdict.MISSING
    assert verdict.reasons == ("no bars stored",)
    assert verdict.n_bars == 0 and verdict.first_bar is None


# --- the file reader -------------------------------------------------------------------------------------


def test_audit_symbol_file_stored_bars_match_frame_audit(tmp_path, aud_bars: pd.DataFrame) -> None:
    paths = LakehousePaths(tmp_path)
    write_ohlcv(paths, KEY, aud_bars)
    from_file = audit_symbol_file(paths, KEY, as_of=AS_OF, params=AuditParams())
    assert from_file.to_json_dict() == _audit(aud_bars).to_json_dict()


def test_audit_symbol_file_absent_is_missing(tmp_path) -> None:
    verdict = audit_symbol_file(LakehousePaths(tmp_path), KEY, as_of=AS_OF, params=AuditParams())
    assert verdict.verdict is Verdict.MISSING
    assert verdict.reasons == (f"no file {KEY}_1d.parquet",)


def test_audit_symbol_file_truncated_is_missing(tmp_path, aud_bars: pd.DataFrame) -> None:
    paths = LakehousePaths(tmp_path)
    write_ohlcv(paths, KEY, aud_bars)
    path = paths.ohlcv_file(KEY)
    path.write_bytes(path.read_bytes()[:100])
    verdict = audit_symbol_file(paths, KEY, as_of=AS_OF, params=AuditParams())
    assert verdict.verdict is Verdict.MISSING
    assert verdict.reasons[0].startswith(f"unreadable file {KEY}_1d.parquet: not a readable parquet file")


def test_audit_symbol_file_wrong_schema_is_toxic(tmp_path, aud_bars: pd.DataFrame) -> None:
    paths = LakehousePaths(tmp_path)
    paths.lakehouse_dir.mkdir(parents=True)
    aud_bars.assign(timestamp=aud_bars["timestamp"].astype("int64")).to_parquet(paths.ohlcv_file(KEY))
    verdict = audit_symbol_file(paths, KEY, as_of=AS_OF, params=AuditParams())
    assert verdict.verdict is Verdict.TOXIC
    assert verdict.checks[CHECK_SCHEMA].observed["wrong_dtypes"] == {"timestamp": "int64"}


def test_audit_symbol_file_bad_key_is_refused(tmp_path) -> None:
    with pytest.raises(UnsafeKeyError, match=r"'\.\./x' is refused"):
        audit_symbol_file(LakehousePaths(tmp_path), "../x", as_of=AS_OF, params=AuditParams())


# --- serialisation and summaries ----------------------------------------------------------------------------


def test_verdict_to_json_dict_is_deterministic_and_strict_json(aud_bars: pd.DataFrame) -> None:
    bars = aud_bars.copy()
    bars.loc[300, "volume"] *= 1000.0
    first, second = _audit(bars).to_json_dict(), _audit(bars.copy()).to_json_dict()
    assert encode_json(first) == encode_json(second)
    assert list(first["checks"]) == list(CHECK_NAMES)
    assert first["verdict"] == "TOXIC" and first["last_bar"] == "2024-06-30T00:00:00+00:00"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda bars: bars, "OK"),
        (lambda bars: bars.drop(index=[9]).reset_index(drop=True), "DEGRADED"),
        (
            lambda bars: bars.assign(
                close=bars["close"].where(bars.index != 200, bars["close"] * 7.0),
                high=bars["high"].where(bars.index != 200, bars["high"] * 7.0),
            ),
            "TOXIC",
        ),
        (lambda bars: None, "MISSING"),
    ],
    ids=["clean", "gap", "spike", "no-file"],
)
def test_audit_bars_verdict_of_each_kind_of_history_is_json_ready(aud_bars: pd.DataFrame, change, expected) -> None:
    verdict = audit_bars(change(aud_bars), symbol_key=KEY, as_of=AS_OF, params=AuditParams())
    assert verdict.verdict == expected
    assert encode_json(verdict.to_json_dict())


# --- parameters and validation -------------------------------------------------------------------------


def test_audit_params_from_manifest_section_uses_bounds() -> None:
    params = parse_section(AuditParams, {"max_daily_return": 3, "frozen_close_bars": 5}, where="audit")
    assert params == AuditParams(max_daily_return=3.0, frozen_close_bars=5)
    assert set(params.to_json_dict()) == {
        "max_daily_return",
        "max_volume_zscore",
        "volume_window",
        "volume_std_floor",
        "frozen_close_bars",
        "frozen_lookback_bars",
        "max_staleness_sessions",
        "max_gap_fraction",
    }


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_gap_fraction": 1.5}, ParameterError, r"AuditParams\.max_gap_fraction must be <= 1\.0, got 1\.5"),
        ({"volume_window": 1}, ParameterError, r"AuditParams\.volume_window must be >= 2, got 1"),
        ({"volume_window": 2.5}, ParameterError, r"AuditParams\.volume_window must be an integer, got 2\.5"),
        ({"max_daily_return": True}, ParameterError, r"AuditParams\.max_daily_return must be a number, got True"),
    ],
    ids=["fraction-above-one", "window-too-short", "window-not-int", "bool-for-float"],
)
def test_audit_params_invalid_value_raises(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        AuditParams(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"symbol_key": "sim_btc"}, UnsafeKeyError, r"symbol key 'sim_btc' is refused"),
        ({"as_of": pd.Timestamp("2024-07-01")}, ValueError, r"`as_of` must be timezone-aware \(UTC\), got naive"),
        ({"as_of": "2024-07-01"}, TypeError, r"`as_of` must be a timezone-aware timestamp, got str"),
        ({"params": {"max_daily_return": 5.0}}, TypeError, r"`params` must be an AuditParams, got dict"),
        ({"bars": [1, 2, 3]}, TypeError, r"`bars` must be a pandas DataFrame or None, got list"),
        (
            {"unrepaired_gaps": [("2024-01-01", "2024-01-02")]},
            TypeError,
            r"`unrepaired_gaps` must hold Gap records, got tuple",
        ),
    ],
    ids=["bad-key", "naive-as-of", "string-as-of", "params-dict", "bars-list", "gaps-tuples"],
)
def test_audit_bars_invalid_argument_raises(aud_bars: pd.DataFrame, kwargs: dict, error: type, match: str) -> None:
    arguments = {"bars": aud_bars, "symbol_key": KEY, "as_of": AS_OF, "params": AuditParams(), **kwargs}
    bars = arguments.pop("bars")
    with pytest.raises(error, match=match):
        audit_bars(bars, **arguments)
