"""The alignment rule of a universe mixing calendars (``alpha.returns.align_closes``) on real NYSE closes.

Exercises the grid of the returns matrix and of the gate: crypto alone keeps every day; crypto with
equities is sampled on the NYSE sessions with the crypto weekend compounded into Monday; an exchange member
on another exchange's session carries its close (return 0) and its next return runs from its last session;
a missing bar on a member's own session stays a gap. The equity closes are real (skfolio's S&P 500 stocks,
every date an XNYS session); the crypto closes are a seeded random walk on every day. Left untouched: the
trimming stages (test_returns.py) and the gate predicates (test_foundation_gate.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alpha_assets.alpha.returns import align_closes, compute_returns_matrix, last_grid_date
from alpha_assets.alpha.selection_params import ReturnsParams
from alpha_assets_tests.equity_data import stock_bars

FIRST, LAST = "2018-01-02", "2018-12-28"


def _utc(index) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(index).tz_localize("UTC").astype("datetime64[ns, UTC]")


@pytest.fixture(scope="module")
def closes() -> pd.DataFrame:
    """AAPL and JNJ (real, NYSE sessions) and a 24/7 crypto walk, on the union of their dates."""
    equities = {t: stock_bars(t)["close"].loc[FIRST:LAST] for t in ("AAPL", "JNJ")}
    days = pd.date_range(FIRST, LAST, freq="D")
    rng = np.random.default_rng(7)
    crypto = pd.Series(100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.03, len(days)))), index=days)
    frame = pd.DataFrame({"BINANCE_BTCUSDT": crypto, **{f"NYSE_{t}": s for t, s in equities.items()}}, index=days)
    frame.index = _utc(frame.index)
    frame.index.name = "date"
    return frame


CALENDARS = {"BINANCE_BTCUSDT": "24/7", "NYSE_AAPL": "XNYS", "NYSE_JNJ": "XNYS"}


def test_align_crypto_only_keeps_every_day_and_365(closes):
    crypto = closes[["BINANCE_BTCUSDT"]]
    aligned = align_closes(crypto, {"BINANCE_BTCUSDT": "24/7"})
    assert aligned.closes is crypto and aligned.grid == "24/7" and aligned.periods_per_year == 365


def test_align_mixed_rows_are_the_nyse_sessions_and_252(closes):
    aligned = align_closes(closes, CALENDARS)
    equity_dates = stock_bars("AAPL").loc[FIRST:LAST].index
    assert aligned.closes.index.equals(_utc(equity_dates))
    assert (aligned.grid, aligned.periods_per_year) == ("XNYS", 252)
    assert not aligned.closes.isna().any().any()


def test_mixed_returns_compound_crypto_over_weekend_and_keep_real_equity_returns(closes):
    aligned = align_closes(closes, CALENDARS)
    returns = compute_returns_matrix(aligned.closes, ReturnsParams(min_history=100)).returns
    monday = pd.Timestamp("2018-12-24", tz="UTC")  # the previous session is Friday 21st
    daily = closes["BINANCE_BTCUSDT"].pct_change()
    weekend = daily.loc["2018-12-22":"2018-12-24"]
    assert returns.loc[monday, "BINANCE_BTCUSDT"] == pytest.approx(np.prod(1.0 + weekend) - 1.0, rel=1e-12)
    # Christmas is no session: Wednesday's return runs from Monday's close for both classes.
    wednesday = pd.Timestamp("2018-12-26", tz="UTC")
    aapl = stock_bars("AAPL")["close"]
    assert returns.loc[wednesday, "NYSE_AAPL"] == aapl.loc["2018-12-26"] / aapl.loc["2018-12-24"] - 1.0
    # Compounding loses nothing: the sum of log returns is the log of the whole move, for every member.
    total = np.log1p(returns).sum()
    first, last = aligned.closes.iloc[0], aligned.closes.iloc[-1]
    np.testing.assert_allclose(total.to_numpy(), np.log(last / first).to_numpy(), rtol=1e-10)
    assert len(returns) == len(aligned.closes) - 1  # no weekend row, no dropped Monday


def test_align_other_exchange_session_carries_close_and_next_return_compounds():
    # 2018-07-04 is Independence Day (NYSE closed, London open); 2018-05-07 a UK bank holiday (NYSE open).
    days = pd.bdate_range("2018-05-01", "2018-07-31")
    closes = pd.DataFrame(
        {"LSE_VOD": np.linspace(200.0, 230.0, len(days)), "NYSE_AAPL": np.linspace(170.0, 190.0, len(days))},
        index=_utc(days),
    )
    closes.loc[pd.Timestamp("2018-05-07", tz="UTC"), "LSE_VOD"] = np.nan  # no London bar on its holiday
    closes.loc[pd.Timestamp("2018-07-04", tz="UTC"), "NYSE_AAPL"] = np.nan
    aligned = align_closes(closes, {"LSE_VOD": "XLON", "NYSE_AAPL": "XNYS"})
    assert aligned.grid == "XLON+XNYS" and aligned.periods_per_year == 257
    returns = compute_returns_matrix(aligned.closes, ReturnsParams(min_history=10)).returns
    holiday, after = pd.Timestamp("2018-05-07", tz="UTC"), pd.Timestamp("2018-05-08", tz="UTC")
    assert returns.loc[holiday, "LSE_VOD"] == 0.0
    vod = closes["LSE_VOD"]
    assert returns.loc[after, "LSE_VOD"] == pytest.approx(vod.loc[after] / vod.iloc[vod.index.get_loc(holiday) - 1] - 1)
    assert returns.loc[pd.Timestamp("2018-07-04", tz="UTC"), "NYSE_AAPL"] == 0.0


def test_align_missing_bar_on_own_session_stays_a_gap(closes):
    lost = pd.Timestamp("2018-07-05", tz="UTC")
    holed = closes.copy()
    holed.loc[lost, "NYSE_JNJ"] = np.nan
    aligned = align_closes(holed, CALENDARS)
    assert np.isnan(aligned.closes.loc[lost, "NYSE_JNJ"])
    matrix = compute_returns_matrix(aligned.closes, ReturnsParams(min_history=100))
    # The gap's row and the next are dropped (never a jump across it), with their reason.
    dropped = [d.key for d in matrix.drops if d.axis == "row"]
    assert dropped == [lost.isoformat(), pd.Timestamp("2018-07-06", tz="UTC").isoformat()]


def test_align_unknown_calendar_raises(closes):
    with pytest.raises(ValueError, match=r"`calendar` must be '24/7' or an exchange_calendars name"):
        align_closes(closes, {**CALENDARS, "NYSE_AAPL": "NOPE"})


def test_last_grid_date_is_the_last_session_for_mixed_and_as_of_for_crypto():
    monday = pd.Timestamp("2018-12-31", tz="UTC")
    assert last_grid_date(["24/7"], monday) == monday
    assert last_grid_date(["24/7", "XNYS"], pd.Timestamp("2018-12-30", tz="UTC")) == pd.Timestamp(
        "2018-12-28", tz="UTC"
    )
