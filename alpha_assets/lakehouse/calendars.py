"""Asset classes and trading calendars: what a "day" of a symbol is, for gaps, staleness and annualisation.

Every symbol trades on one calendar. Crypto trades every day (``24/7``, the calendar of every market this
project started with); equities, ETFs, futures and forex trade on their exchange's sessions, taken from the
maintained `exchange_calendars <https://github.com/gerrymanoim/exchange_calendars>`_ library (``XNYS`` for the
New York Stock Exchange, ``XNAS`` for Nasdaq, ``CMES`` for CME futures, ``24/5`` for forex, ...). A daily bar is
stamped with its session's date at 00:00 UTC, so sessions are handled as *day numbers*: int64 days since
1970-01-01, one per session, sorted. Every question the lakehouse asks of a calendar (how many sessions
between two bars, the last session before a date, is this day a session) is one ``np.searchsorted`` on that
array, never a loop over bars.

The sessions of a non-continuous calendar cover :data:`CALENDAR_FIRST_DAY` to :data:`CALENDAR_LAST_DAY`; a day
outside that range is judged as if every weekday were a session (so old history is never invented gaps, and
nothing after the range is invented either). Building a calendar costs about a second, once per process.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

from alpha_assets.typing import BoolArray, IntArray

#: The calendar of markets trading every day of the year (crypto).
CONTINUOUS = "24/7"
#: The range of sessions built for an exchange calendar (inclusive); fixed so that results never depend on
#: the day they are computed.
CALENDAR_FIRST_DAY = pd.Timestamp("1980-01-01")
CALENDAR_LAST_DAY = pd.Timestamp("2035-12-31")
#: The years whose mean session count is a calendar's periods per year (2010-2019: no pandemic, no
#: half-built history).
_REFERENCE_YEARS = (2010, 2019)
_MS_PER_DAY = 86_400_000
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


class AssetClass(StrEnum):
    """What a symbol is; decides the discovery filters that make sense and, with the calendar, its days."""

    CRYPTO = "crypto"
    EQUITY = "equity"
    ETF = "etf"
    INDEX = "index"
    FUTURE = "future"
    FOREX = "forex"


@dataclass(frozen=True)
class ExchangeMarket:
    """What an exchange key prefix trades: asset class, trading calendar and the currency of its prices.

    Parameters
    ----------
    asset_class : AssetClass
        The class of its symbols.
    calendar : str
        ``24/7`` or an ``exchange_calendars`` name (``XNYS``, ``XNAS``, ``CMES``, ``24/5``, ...).
    currency : str or None
        The currency prices are quoted in when a symbol names none (an equity ``AAPL`` of ``XNYS`` is in
        ``USD``); None when every symbol names its own quote (crypto pairs, forex pairs).

    Raises
    ------
    ValueError
        When ``asset_class`` is not an :class:`AssetClass` value or ``currency`` is not 3 to 5 upper-case
        letters.
    """

    asset_class: AssetClass = AssetClass.CRYPTO
    calendar: str = CONTINUOUS
    currency: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "asset_class", AssetClass(self.asset_class))
        # The calendar name is checked where a manifest names it (it needs exchange_calendars imported).
        if self.currency is not None and not (
            isinstance(self.currency, str) and 3 <= len(self.currency) <= 5 and self.currency.isalpha()
        ):
            raise ValueError(f"`currency` must be 3 to 5 letters such as 'USD', got {self.currency!r}")
        if self.currency is not None and not self.currency.isupper():
            raise ValueError(f"`currency` must be upper case such as 'USD', got {self.currency!r}")


_USD_EQUITY = {"asset_class": AssetClass.EQUITY, "currency": "USD"}
#: Exchange key prefixes the project knows without a manifest entry; any other prefix is a crypto exchange
#: trading 24/7 (the ccxt exchanges). The manifest's ``markets.exchanges`` adds to and overrides this table.
KNOWN_EXCHANGES: dict[str, ExchangeMarket] = {
    **{name: ExchangeMarket(calendar="XNYS", **_USD_EQUITY) for name in ("XNYS", "NYSE", "AMEX", "XASE")},
    **{name: ExchangeMarket(calendar="XNAS", **_USD_EQUITY) for name in ("XNAS", "NASDAQ")},
    **{name: ExchangeMarket(AssetClass.ETF, "XNYS", "USD") for name in ("ARCA", "NYSEARCA", "ARCX")},
    **{name: ExchangeMarket(AssetClass.FUTURE, "CMES", "USD") for name in ("CME", "CMES", "CBOT", "NYMEX")},
    **{name: ExchangeMarket(AssetClass.EQUITY, "XLON", "GBP") for name in ("XLON", "LSE")},
    **{name: ExchangeMarket(AssetClass.EQUITY, "XETR", "EUR") for name in ("XETR", "XETRA")},
    **{name: ExchangeMarket(AssetClass.EQUITY, "XPAR", "EUR") for name in ("XPAR", "EURONEXT")},
    **{name: ExchangeMarket(AssetClass.EQUITY, "XTKS", "JPY") for name in ("XTKS", "TSE")},
    **{name: ExchangeMarket(AssetClass.EQUITY, "XTSE", "CAD") for name in ("XTSE", "TSX")},
    **{name: ExchangeMarket(AssetClass.FOREX, "24/5", None) for name in ("FX", "FOREX", "OANDA")},
}


def validate_calendar_name(name: object) -> str:
    """Return ``name`` when it is ``24/7`` or a calendar ``exchange_calendars`` knows.

    Raises
    ------
    ValueError
        When ``name`` is not a string naming a known calendar; the message lists a few valid names.
    """
    if name == CONTINUOUS:
        return CONTINUOUS
    names = _calendar_names()
    if not isinstance(name, str) or name not in names:
        raise ValueError(
            f"`calendar` must be '24/7' or an exchange_calendars name such as 'XNYS', 'XNAS', 'CMES', '24/5' "
            f"({len(names)} known), got {name!r}"
        )
    return name


def exchange_market(exchange_key: str, overrides: dict[str, ExchangeMarket] | None = None) -> ExchangeMarket:
    """What the exchange key prefix ``exchange_key`` trades: ``overrides``, :data:`KNOWN_EXCHANGES`, else crypto."""
    if overrides and exchange_key in overrides:
        return overrides[exchange_key]
    return KNOWN_EXCHANGES.get(exchange_key, ExchangeMarket())


@dataclass(frozen=True, eq=False)
class TradingCalendar:
    """The sessions of one calendar as sorted int64 day numbers (days since 1970-01-01, UTC dates).

    Build it with :meth:`of` (cached per name). ``days`` is None for ``24/7``: every day is a session and
    the answers are arithmetic.
    """

    name: str
    days: IntArray | None

    @classmethod
    def of(cls, name: str | None) -> TradingCalendar:
        """The calendar called ``name`` (None means ``24/7``), built once per process.

        Raises
        ------
        ValueError
            When ``name`` is not a known calendar.
        """
        return _calendar(CONTINUOUS if name is None else validate_calendar_name(name))

    @property
    def is_continuous(self) -> bool:
        """True for ``24/7``: every day is a session."""
        return self.days is None

    def is_session(self, days: IntArray) -> BoolArray:
        """Whether each day number of ``days`` (shape (n,), int64) is a session; days off the range: weekdays."""
        days = np.asarray(days, dtype=np.int64)
        if self.days is None:
            return np.ones(days.shape, dtype=bool)
        at = np.minimum(np.searchsorted(self.days, days), len(self.days) - 1)
        inside = (days >= self._first) & (days <= self._last)
        return np.where(inside, self.days[at] == days, _is_weekday(days))

    def count(self, after: IntArray, through: IntArray) -> IntArray:
        """Sessions ``s`` with ``after < s <= through``, elementwise (shapes broadcast; 0 if ``through <= after``)."""
        after, through = np.asarray(after, dtype=np.int64), np.asarray(through, dtype=np.int64)
        return np.maximum(self._rank(through) - self._rank(after), 0)

    def last_on_or_before(self, day: int) -> int:
        """The latest session on or before day number ``day``."""
        if self.days is None:
            return int(day)
        rank = int(self._rank(np.int64(day)))
        return int(self._day_of_rank(np.int64(rank)))

    def sessions(self, first: int, last: int) -> IntArray:
        """The sessions from day ``first`` to day ``last`` inclusive, as sorted int64 day numbers."""
        span = np.arange(int(first), int(last) + 1, dtype=np.int64)
        return span if self.days is None else span[self.is_session(span)]

    def nth_before(self, day: int, n: int) -> int:
        """The day of the ``n``-th session strictly before day ``day`` (``n`` = 1: the last one before it)."""
        if self.days is None:
            return int(day) - int(n)
        return int(self._day_of_rank(np.int64(self._rank(np.int64(day) - 1) - int(n) + 1)))

    def next_after(self, day: int) -> int:
        """The first session strictly after day ``day``."""
        if self.days is None:
            return int(day) + 1
        return int(self._day_of_rank(np.int64(self._rank(np.int64(day)) + 1)))

    @functools.cached_property
    def periods_per_year(self) -> int:
        """Sessions per year for annualisation: the mean count over 2010-2019, rounded.

        Computed from the calendar, never a constant: ``24/7`` gives 365, ``XNYS`` 252.
        """
        first, last = _reference_range()
        return round(len(self.sessions(first, last)) / (_REFERENCE_YEARS[1] - _REFERENCE_YEARS[0] + 1))

    # --- ranks: the number of sessions on or before a day, continuous across the calendar's range -------------
    @functools.cached_property
    def _first(self) -> int:
        return int(self.days[0]) if self.days is not None else 0

    @functools.cached_property
    def _last(self) -> int:
        return int(self.days[-1]) if self.days is not None else 0

    def _rank(self, day: IntArray) -> IntArray:
        """Sessions on or before ``day`` (up to a constant): weekdays outside the range, sessions inside."""
        if self.days is None:
            return day
        inside = np.searchsorted(self.days, np.clip(day, self._first - 1, self._last), side="right")
        before = _weekdays_through(np.minimum(day, self._first - 1)) - _weekdays_through(np.int64(self._first - 1))
        after = _weekdays_through(np.maximum(day, self._last)) - _weekdays_through(np.int64(self._last))
        return inside + before + after

    def _day_of_rank(self, rank: np.int64) -> np.int64:
        """The session whose rank is ``rank`` (inverse of :meth:`_rank` on sessions)."""
        assert self.days is not None
        n = len(self.days)
        if 1 <= rank <= n:
            return self.days[rank - 1]
        if rank < 1:
            return _weekday_of_rank(rank + _weekdays_through(np.int64(self._first - 1)))
        return _weekday_of_rank(rank - n + _weekdays_through(np.int64(self._last)))


def periods_per_year(calendars: Iterable[str]) -> int:
    """Periods per year of returns sampled on the union of ``calendars``' sessions (``24/7`` when all are).

    A universe's returns are taken on the sessions of its non-continuous calendars when it has any (see
    ``alpha.returns.align_closes``), so 24/7 members do not change the count unless every member is 24/7.
    """
    exchanges = sorted({validate_calendar_name(c) for c in calendars} - {CONTINUOUS})
    if not exchanges:
        return TradingCalendar.of(CONTINUOUS).periods_per_year
    if len(exchanges) == 1:
        return TradingCalendar.of(exchanges[0]).periods_per_year
    first, last = _reference_range()
    union = np.unique(np.concatenate([TradingCalendar.of(c).sessions(first, last) for c in exchanges]))
    return round(len(union) / (_REFERENCE_YEARS[1] - _REFERENCE_YEARS[0] + 1))


def day_numbers_ms(timestamps_ms: IntArray) -> IntArray:
    """Day numbers (days since 1970-01-01, UTC) of epoch-millisecond timestamps, shape preserved."""
    return np.floor_divide(np.asarray(timestamps_ms, dtype=np.int64), _MS_PER_DAY)


def day_to_timestamp(day: int | np.integer) -> pd.Timestamp:
    """00:00 UTC of day number ``day``."""
    return pd.Timestamp(int(day) * _MS_PER_DAY, unit="ms", tz="UTC")


def _reference_range() -> tuple[int, int]:
    """First and last day numbers of the reference years of :attr:`TradingCalendar.periods_per_year`."""
    return _day_number(pd.Timestamp(f"{_REFERENCE_YEARS[0]}-01-01")), _day_number(
        pd.Timestamp(f"{_REFERENCE_YEARS[1]}-12-31")
    )


def _day_number(stamp: pd.Timestamp) -> int:
    return int(stamp.value // (_MS_PER_DAY * 1_000_000))


def _weekdays_through(day: IntArray) -> IntArray:
    """Weekdays (Monday-Friday) from 1970-01-01 through ``day`` inclusive, up to a constant."""
    shifted = np.asarray(day, dtype=np.int64) + _EPOCH_WEEKDAY  # 0 = a Monday
    weeks, rest = np.divmod(shifted, 7)
    return weeks * 5 + np.minimum(rest + 1, 5)


def _is_weekday(days: IntArray) -> BoolArray:
    return (np.asarray(days, dtype=np.int64) + _EPOCH_WEEKDAY) % 7 < 5


def _weekday_of_rank(rank: np.int64) -> np.int64:
    """The weekday ``d`` with ``_weekdays_through(d) == rank`` (inverse of :func:`_weekdays_through`)."""
    weeks, rest = divmod(int(rank) - 1, 5)
    return np.int64(weeks * 7 + rest - _EPOCH_WEEKDAY)


@functools.cache
def _calendar(name: str) -> TradingCalendar:
    if name == CONTINUOUS:
        return TradingCalendar(CONTINUOUS, None)
    import exchange_calendars  # ~1 s to import and build: only paid when a non-crypto symbol is seen

    try:
        calendar = exchange_calendars.get_calendar(name, start=CALENDAR_FIRST_DAY, end=CALENDAR_LAST_DAY)
    except exchange_calendars.errors.DateOutOfBounds:
        # A calendar starting after CALENDAR_FIRST_DAY: its own first date (earlier days count as weekdays).
        calendar = exchange_calendars.get_calendar(name, end=CALENDAR_LAST_DAY)
    sessions = calendar.sessions
    days = np.asarray(sessions.values.astype("datetime64[D]").view(np.int64), dtype=np.int64)
    return TradingCalendar(name, days)


@functools.cache
def _calendar_names() -> frozenset[str]:
    import exchange_calendars

    return frozenset(exchange_calendars.get_calendar_names(include_aliases=True))
