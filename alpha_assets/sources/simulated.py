"""A deterministic, seeded exchange of daily bars: the embedded default source of the demo.

Every series is generated from ``history_start`` with generators seeded by ``(seed, stream, symbol index,
chunk of 1,024 days)``, then cut at ``now``: the bar of a given date never depends on ``now`` (except for
the defect windows that are anchored on ``now`` on purpose, see :data:`PLANTED_DEFECTS`), so advancing
``now`` by one day appends one bar and leaves the older ones unchanged.

Model (log returns, per symbol ``i`` and day ``t``)::

    z[t, i]  = beta_m[i] * market[t] + beta_s[i] * sector[t, s(i)] + sqrt(1 - beta_m² - beta_s²) * eps[t, i]
    h[t, i]  = 0.7 * H_market[t] + 0.7 * H_own[t, i]          (AR(1) log-volatilities, phi = 0.97)
    r[t, i]  = drift[i] + sigma[i] * exp(h[t, i]) * z[t, i],  clipped to [-0.4, 0.4]

with unit-variance Student-t (4 degrees of freedom) factors and noise: fat tails, volatility clustering
(a stochastic-volatility model filtered with :func:`scipy.signal.lfilter`, no loop over days) and six
correlated sectors. ``docs/simulated_exchange.md`` lists the symbols and the planted defects.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pandas as pd

from alpha_assets.errors import SourceError, UnsafeKeyError
from alpha_assets.lakehouse.keys import make_symbol_key, normalize_exchange_id
from alpha_assets.lakehouse.ohlcv import DAY_MS, VALUE_COLUMNS, BarArrays
from alpha_assets.sources.base import Market, Ticker
from alpha_assets.typing import BoolArray, FloatArray
from alpha_assets.validation import check_utc_timestamp

SIM_EXCHANGE_KEY = "SIM"
SECTORS: tuple[str, ...] = ("L1", "DeFi", "Meme", "AI", "Exchange", "Payments")
MIN_SYMBOLS = 10
MAX_SYMBOLS = 5000
#: Days drawn per seeded generator: the series of a date never depends on how far the series goes.
CHUNK_DAYS = 1024
T_DOF = 4.0
_T_SCALE = float(np.sqrt(T_DOF / (T_DOF - 2.0)))  # standard deviation of a Student-t with T_DOF dof
_VOL_PHI = 0.97
_VOL_SD = 0.5
_VALUE_PHI = 0.9
_VALUE_SD = 0.15
_MAX_ABS_LOG_RETURN = 0.4
_MIN_NOTIONAL_USDT = 5.0
_MIN_NOTIONAL_BTC = 0.0001
_CACHE_SYMBOLS = 1024
# Seed streams, so that factors, per-symbol noise and per-symbol constants never share a generator.
_FACTOR_STREAM, _SYMBOL_STREAM, _STATIC_STREAM = 1, 2, 3
_DAY = pd.Timedelta(days=1)

# Planted defects, anchored on the start of the current UTC day (``today``): see docs/simulated_exchange.md.
PUMP_DAYS_BEFORE_TODAY = 40
PUMP_FACTOR = 7.0
FROZEN_BARS = 30
HOLE_PERIOD_DAYS = 211
HOLE_MISSING_OFFSETS = (100, 101, 102)
NEW_LISTING_BARS = 60
DELISTED_DAYS_BEFORE_TODAY = 20

#: Symbol key -> the defect planted in it and what the cycle does about it.
PLANTED_DEFECTS: Mapping[str, str] = MappingProxyType(
    {
        "SIM_PUMPUSDT": f"one-day close-to-close return of +{PUMP_FACTOR - 1:.0%} on the bar "
        f"{PUMP_DAYS_BEFORE_TODAY} days before today (TOXIC)",
        "SIM_FRZNUSDT": f"close frozen (open = high = low = close) on the last {FROZEN_BARS} bars (TOXIC)",
        "SIM_HOLEUSDT": f"days {list(HOLE_MISSING_OFFSETS)} of every {HOLE_PERIOD_DAYS}-day period since "
        "history_start are missing at the exchange too, so repair cannot fill them (DEGRADED)",
        "SIM_NEWBUSDT": f"listed {NEW_LISTING_BARS} days before today: short history",
        "SIM_GONEUSDT": f"delisted: last bar {DELISTED_DAYS_BEFORE_TODAY} days before today, inactive in "
        "markets (excluded by discovery; STALE when ingested anyway)",
    }
)


@dataclass(frozen=True)
class _Spec:
    """One listed pair and the constants of its generator."""

    base: str
    quote: str
    sector: str | None
    kind: str  # "spot", "stable", "leveraged" (3x of `of`), "cross" (`of` / `over`)
    price: float  # price on history_start, in the quote currency
    sigma: float  # typical daily log-return volatility
    log10_value: float  # log10 of the typical daily traded value, in USDT
    of: str = ""
    over: str = ""


# base, sector, price on 2021-01-01 (USDT), daily volatility, log10 daily traded value (USDT).
# The first ten come first so that every universe of at least MIN_SYMBOLS holds the five planted defects.
_NAMED: tuple[tuple[str, str, float, float, float], ...] = (
    ("BTC", "L1", 30000.0, 0.030, 9.9),
    ("ETH", "L1", 2000.0, 0.036, 9.6),
    ("SOL", "L1", 25.0, 0.055, 9.2),
    ("BNB", "Exchange", 300.0, 0.035, 8.9),
    ("XRP", "Payments", 0.5, 0.045, 9.0),
    ("PUMP", "Meme", 0.01, 0.080, 8.0),
    ("FRZN", "AI", 0.8, 0.060, 7.9),
    ("HOLE", "DeFi", 3.0, 0.055, 7.8),
    ("NEWB", "AI", 1.2, 0.070, 7.7),
    ("GONE", "Payments", 0.2, 0.050, 7.6),
    ("DOGE", "Meme", 0.08, 0.060, 8.9),
    ("ADA", "L1", 0.3, 0.050, 8.5),
    ("AVAX", "L1", 15.0, 0.055, 8.4),
    ("DOT", "L1", 6.0, 0.050, 8.2),
    ("LINK", "DeFi", 7.0, 0.050, 8.5),
    ("TRX", "L1", 0.06, 0.035, 8.3),
    ("SHIB", "Meme", 1e-5, 0.065, 8.4),
    ("LTC", "Payments", 70.0, 0.045, 8.5),
    ("BCH", "Payments", 120.0, 0.050, 8.3),
    ("NEAR", "L1", 1.5, 0.060, 8.2),
    ("UNI", "DeFi", 5.0, 0.055, 8.1),
    ("ATOM", "L1", 10.0, 0.050, 8.0),
    ("APT", "L1", 8.0, 0.060, 8.1),
    ("SUI", "L1", 1.0, 0.065, 8.3),
    ("PEPE", "Meme", 1e-6, 0.075, 8.6),
    ("XLM", "Payments", 0.1, 0.045, 7.8),
    ("FET", "AI", 0.5, 0.070, 8.2),
    ("RNDR", "AI", 2.0, 0.070, 8.0),
    ("TAO", "AI", 200.0, 0.065, 7.9),
    ("WLD", "AI", 2.0, 0.075, 8.0),
    ("AAVE", "DeFi", 80.0, 0.055, 7.9),
    ("MKR", "DeFi", 1200.0, 0.050, 7.6),
    ("OKB", "Exchange", 40.0, 0.035, 7.4),
    ("CRO", "Exchange", 0.07, 0.045, 7.5),
    ("ALGO", "L1", 0.15, 0.050, 7.5),
    ("LDO", "DeFi", 2.0, 0.060, 7.7),
    ("CRV", "DeFi", 0.6, 0.065, 7.7),
    ("FLOKI", "Meme", 3e-5, 0.080, 7.8),
    ("BONK", "Meme", 1e-5, 0.085, 7.9),
    ("WIF", "Meme", 1.5, 0.090, 8.0),
    ("XMR", "Payments", 150.0, 0.045, 7.3),
    ("ZEC", "Payments", 30.0, 0.055, 7.2),
    ("DASH", "Payments", 30.0, 0.055, 7.0),
    ("PENDLE", "DeFi", 3.0, 0.070, 7.4),
    ("COMP", "DeFi", 50.0, 0.060, 7.1),
    ("SNX", "DeFi", 2.5, 0.065, 7.0),
    ("SUSHI", "DeFi", 1.0, 0.065, 6.9),
    ("DYDX", "DeFi", 2.0, 0.070, 7.2),
    ("AGIX", "AI", 0.3, 0.075, 7.1),
    ("OCEAN", "AI", 0.4, 0.070, 6.9),
    ("ARKM", "AI", 0.5, 0.080, 6.8),
    ("KCS", "Exchange", 8.0, 0.040, 6.6),
    ("GT", "Exchange", 5.0, 0.040, 6.5),
    ("LEO", "Exchange", 4.0, 0.025, 6.3),
)

# Pairs the discovery filters must exclude, listed after the n_symbols USDT pairs.
_EXTRAS: tuple[_Spec, ...] = (
    _Spec("USDC", "USDT", None, "stable", 1.0, 0.0005, 9.3),
    _Spec("FDUSD", "USDT", None, "stable", 1.0, 0.0008, 9.0),
    _Spec("BTCUP", "USDT", None, "leveraged", 10.0, 0.09, 7.0, of="BTC"),
    _Spec("ETH", "BTC", "L1", "cross", 2000.0 / 30000.0, 0.03, 8.4, of="ETH", over="BTC"),
    _Spec("SOL", "BTC", "L1", "cross", 25.0 / 30000.0, 0.05, 7.6, of="SOL", over="BTC"),
)


class SimulatedExchange:
    """A seeded exchange listing ``n_symbols`` USDT pairs plus five pairs that discovery must exclude.

    Parameters
    ----------
    seed : int, default 7
        Seed of every generator; the same seed gives the same bar for the same date.
    now : Timestamp, optional
        The exchange's clock (timezone-aware). ``None`` reads the current UTC time at each call. Bars opening
        before the start of ``now``'s UTC day are closed and served.
    n_symbols : int, default 60
        USDT pairs of ordinary tokens, in ``[10, 5000]``: the named catalogue (BTC, ETH, SOL, ..., the five
        planted defects first after the majors), then synthetic ``S0001`` ... Two stablecoin pairs (USDC,
        FDUSD), a leveraged token (BTCUP) and two BTC-quoted pairs (ETH/BTC, SOL/BTC) are listed on top.
    history_start : str or Timestamp, default "2021-01-01"
        UTC midnight of the first bar of every series.
    exchange_key : str, default "SIM"
        Key prefix of every symbol (``[A-Z0-9]``, 1 to 32 characters). Another key simulates another venue
        listing the same pairs with the same bars (``SIMB_BTCUSDT`` next to ``SIM_BTCUSDT``).

    Attributes
    ----------
    exchange_key : str
        The key prefix of every symbol.
    requests_made : int
        One per :meth:`load_markets`, :meth:`fetch_tickers` and :meth:`fetch_daily_bars` call (the simulated
        exchange answers any range in one call).

    Raises
    ------
    ValueError
        When ``seed`` is negative, ``n_symbols`` is out of range, ``now`` is naive, or ``history_start`` is
        not a UTC midnight.
    UnsafeKeyError
        When ``exchange_key`` is not 1 to 32 characters in ``[A-Z0-9]``.
    TypeError
        When ``seed`` or ``n_symbols`` is not an int.
    """

    #: Served from this process's memory: forked workers may each ingest their own symbols.
    fork_safe = True

    def __init__(
        self,
        seed: int = 7,
        now: pd.Timestamp | None = None,
        n_symbols: int = 60,
        history_start: str | pd.Timestamp = "2021-01-01",
        exchange_key: str = SIM_EXCHANGE_KEY,
    ) -> None:
        for name, value in (("seed", seed), ("n_symbols", n_symbols)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise TypeError(f"`{name}` must be an int, got {type(value).__name__}")
        if seed < 0:
            raise ValueError(f"`seed` must be >= 0, got {seed}")
        if not MIN_SYMBOLS <= n_symbols <= MAX_SYMBOLS:
            raise ValueError(f"`n_symbols` must be in [{MIN_SYMBOLS}, {MAX_SYMBOLS}], got {n_symbols}")
        if now is not None:
            now = check_utc_timestamp(now, "now")
        start = pd.Timestamp(history_start)
        start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
        if start != start.floor("D"):
            raise ValueError(f"`history_start` must be a UTC midnight, got {start.isoformat()}")
        if normalize_exchange_id(exchange_key) != exchange_key:
            raise UnsafeKeyError(f"`exchange_key` must be 1 to 32 characters in [A-Z0-9], got {exchange_key!r}")
        self.exchange_key = exchange_key
        self.requests_made = 0
        self.seed = int(seed)
        self.n_symbols = int(n_symbols)
        self.history_start = start
        self._start_ms = int(start.value) // 1_000_000
        self._now = now
        self._today = None if now is None else now.floor("D")  # a fixed clock: floored once, not per call
        self._specs = _catalogue(self.seed, self.n_symbols) + _EXTRAS
        self._keys = [make_symbol_key(exchange_key, s.base, s.quote) for s in self._specs]
        self._listed = {key: i for i, key in enumerate(self._keys)}
        # The planted defects and the derived pairs are named by their SIM keys, whatever the venue's prefix.
        self._catalogue_keys = [make_symbol_key(SIM_EXCHANGE_KEY, s.base, s.quote) for s in self._specs]
        self._index = {key: i for i, key in enumerate(self._catalogue_keys)}
        self._factors: dict[str, FloatArray] = {}
        self._factor_days = 0
        self._series: OrderedDict[tuple[int, int], dict[str, FloatArray]] = OrderedDict()

    # --- MarketSource -------------------------------------------------------------------------------------
    def load_markets(self) -> list[Market]:
        """Every listed pair, in catalogue order; the delisted one has ``active=False``."""
        self.requests_made += 1
        return [self._market(i) for i in range(len(self._specs))]

    def fetch_tickers(self) -> dict[str, Ticker]:
        """Tickers from each pair's last closed bar: ``quote_volume = close * volume`` of that bar.

        A pair with no closed bar yet (``now`` before its listing) has no ticker.
        """
        self.requests_made += 1
        today = self.today()
        tickers = {}
        for i, key in enumerate(self._keys):
            bars = self._bars(i, today)
            if len(bars["close"]):
                close, volume = float(bars["close"][-1]), float(bars["volume"][-1])
                tickers[key] = Ticker(symbol_key=key, last=close, quote_volume=close * volume)
        return tickers

    def fetch_daily_bars(self, market: Market, *, since: pd.Timestamp, until: pd.Timestamp) -> pd.DataFrame:
        """Closed daily bars of ``market`` opening in ``[since, until)``.

        Parameters
        ----------
        market : Market
            A market of this exchange (from :meth:`load_markets`).
        since, until : Timestamp
            Timezone-aware bounds of the bar open times.

        Returns
        -------
        DataFrame of shape (n_observations, 6)
            ``timestamp`` (``datetime64[ms, UTC]``, bar open time, sorted, unique), ``open``, ``high``,
            ``low``, ``close`` (quote currency per base unit) and ``volume`` (base units), float64, no NaN.
            Days the exchange lacks (the planted gaps, before listing, after delisting) have no row.

        Raises
        ------
        SourceError
            When ``market`` is not listed by this exchange.
        ValueError
            When ``since`` or ``until`` is naive.
        """
        self.requests_made += 1
        since, until = check_utc_timestamp(since, "since"), check_utc_timestamp(until, "until")
        index = self._listed.get(getattr(market, "symbol_key", None))
        if index is None:
            raise SourceError(f"{self.exchange_key} does not list market {getattr(market, 'symbol_key', market)!r}")
        bars = self._bars(index, self.today())
        # Bar ``day`` opens at history_start + day: keep since <= open < until.
        start = np.searchsorted(bars["day"], np.ceil((since - self.history_start) / _DAY))
        stop = np.searchsorted(bars["day"], np.ceil((until - self.history_start) / _DAY))
        # Built from arrays in one go: column-by-column assignment costs more than the bars themselves.
        open_ms = self._start_ms + bars["day"][start:stop].astype(np.int64) * DAY_MS
        values = np.column_stack([bars[column][start:stop] for column in VALUE_COLUMNS])
        return BarArrays(open_ms, values.reshape(len(open_ms), len(VALUE_COLUMNS))).to_frame()

    # --- clock ----------------------------------------------------------------------------------------------
    def now(self) -> pd.Timestamp:
        """The exchange's clock: the ``now`` given at construction, else the current UTC time."""
        return self._now if self._now is not None else pd.Timestamp.now(tz="UTC")

    def today(self) -> pd.Timestamp:
        """Start of the current UTC day: the open time of the still-forming bar, never served."""
        if self._today is not None:
            return self._today
        return self.now().floor("D")

    # --- generation -------------------------------------------------------------------------------------
    def _market(self, i: int) -> Market:
        spec = self._specs[i]
        magnitude = np.floor(np.log10(spec.price))
        delisted = self._catalogue_keys[i] == "SIM_GONEUSDT"
        return Market(
            symbol_key=self._keys[i],
            ccxt_symbol=f"{spec.base}/{spec.quote}",
            base=spec.base,
            quote=spec.quote,
            market_type="spot",
            active=not delisted,
            sector=spec.sector,
            tick_size=float(10.0 ** (magnitude - 5)),
            lot_size=float(10.0 ** min(-magnitude - 1, 0.0)),
            min_notional=_MIN_NOTIONAL_BTC if spec.quote == "BTC" else _MIN_NOTIONAL_USDT,
        )

    def _bars(self, i: int, today: pd.Timestamp) -> dict[str, FloatArray]:
        """Closed bars of pair ``i`` at ``today``: arrays of shape (n_observations,), ``day`` offsets."""
        n_days = max(int((today - self.history_start) / _DAY), 0)
        series = self._raw_series(i, n_days)
        log_returns = series["log_return"][:n_days].copy()
        spec, key = self._specs[i], self._catalogue_keys[i]
        if key == "SIM_PUMPUSDT" and n_days > PUMP_DAYS_BEFORE_TODAY:
            log_returns[n_days - PUMP_DAYS_BEFORE_TODAY] = np.log(PUMP_FACTOR)
        close = spec.price * np.exp(np.cumsum(log_returns))
        previous = np.concatenate([[spec.price], close[:-1]])
        open_ = previous * np.exp(series["gap"][:n_days])
        high = np.maximum(open_, close) * np.exp(series["wick_high"][:n_days])
        low = np.minimum(open_, close) / np.exp(series["wick_low"][:n_days])
        volume = series["value"][:n_days] / close
        if spec.quote == "BTC":
            volume = (
                series["value"][:n_days]
                / self._raw_series(self._index[f"SIM_{spec.of}USDT"], n_days)["usdt_close"][:n_days]
            )
        if key == "SIM_FRZNUSDT" and n_days > FROZEN_BARS:
            frozen = slice(n_days - FROZEN_BARS, n_days)
            open_[frozen] = high[frozen] = low[frozen] = close[frozen] = close[n_days - FROZEN_BARS - 1]
        exists = self._exists(key, n_days)
        day = np.flatnonzero(exists).astype(np.float64)
        return {
            "day": day,
            "open": open_[exists],
            "high": high[exists],
            "low": low[exists],
            "close": close[exists],
            "volume": volume[exists],
        }

    def _exists(self, key: str, n_days: int) -> BoolArray:
        """Shape (n_days,): whether the exchange has the bar of each day."""
        day = np.arange(n_days)
        if key == "SIM_HOLEUSDT":
            return ~np.isin(day % HOLE_PERIOD_DAYS, HOLE_MISSING_OFFSETS)
        if key == "SIM_NEWBUSDT":
            return day >= n_days - NEW_LISTING_BARS
        if key == "SIM_GONEUSDT":
            return day <= n_days - DELISTED_DAYS_BEFORE_TODAY
        return np.ones(n_days, dtype=bool)

    def _raw_series(self, i: int, n_days: int) -> dict[str, FloatArray]:
        """The defect-free series of pair ``i`` over at least ``n_days`` days, cached (LRU)."""
        n_chunks = max(-(-n_days // CHUNK_DAYS), 1)
        cache_key = (i, n_chunks)
        if cache_key in self._series:
            self._series.move_to_end(cache_key)
            return self._series[cache_key]
        spec = self._specs[i]
        if spec.kind in ("leveraged", "cross"):
            series = self._derived_series(spec, n_days)
        else:
            series = self._spot_series(i, n_chunks)
        self._series[cache_key] = series
        if len(self._series) > _CACHE_SYMBOLS:
            self._series.popitem(last=False)
        return series

    def _spot_series(self, i: int, n_chunks: int) -> dict[str, FloatArray]:
        """Factor-model series of one pair; arrays of shape (n_chunks * CHUNK_DAYS,)."""
        spec = self._specs[i]
        n = n_chunks * CHUNK_DAYS
        t_noise = np.empty(n)
        normals = np.empty((5, n))
        for chunk in range(n_chunks):
            rng = np.random.default_rng([self.seed, _SYMBOL_STREAM, i, chunk])
            window = slice(chunk * CHUNK_DAYS, (chunk + 1) * CHUNK_DAYS)
            t_noise[window] = rng.standard_t(T_DOF, CHUNK_DAYS) / _T_SCALE
            normals[:, window] = rng.standard_normal((5, CHUNK_DAYS))
        vol_noise, value_noise, gap_noise, wick_high, wick_low = normals
        static = np.random.default_rng([self.seed, _STATIC_STREAM, i])
        beta_market, beta_sector, drift = (
            static.uniform(0.45, 0.62),
            static.uniform(0.45, 0.6),
            static.normal(0, 4e-4),
        )
        if spec.kind == "stable":
            # A peg: small noise around 1, never a random walk away from it.
            log_close = spec.sigma * t_noise.clip(-3, 3)
            log_return = np.diff(log_close, prepend=0.0)
            sigma_t = np.full(n, spec.sigma)
            shock = np.abs(t_noise)
        else:
            factors = self._factor_series(n_chunks)
            sector = factors["sectors"][:, SECTORS.index(spec.sector)]
            idio = np.sqrt(1.0 - beta_market**2 - beta_sector**2)
            shock = beta_market * factors["market"] + beta_sector * sector + idio * t_noise
            sigma_t = spec.sigma * np.exp(0.7 * factors["market_vol"] + 0.7 * _ar1(vol_noise, _VOL_PHI, _VOL_SD))
            log_return = np.clip(drift + sigma_t * shock, -_MAX_ABS_LOG_RETURN, _MAX_ABS_LOG_RETURN)
        # Traded value in USDT: persistent level plus a bounded response to the size of the move.
        log_value = (
            spec.log10_value * np.log(10)
            + _ar1(value_noise, _VALUE_PHI, _VALUE_SD)
            + 0.2 * np.minimum(np.abs(shock), 2.0)
            - 0.16
        )
        return {
            "log_return": log_return,
            "usdt_close": spec.price * np.exp(np.cumsum(log_return)),
            "gap": 0.05 * sigma_t * gap_noise,
            "wick_high": 0.3 * sigma_t * np.abs(wick_high),
            "wick_low": 0.3 * sigma_t * np.abs(wick_low),
            "value": np.exp(log_value),
        }

    def _derived_series(self, spec: _Spec, n_days: int) -> dict[str, FloatArray]:
        """A leveraged token (3x daily of ``spec.of``) or a cross pair (``spec.of`` / ``spec.over``)."""
        underlying = self._raw_series(self._index[f"SIM_{spec.of}USDT"], n_days)
        if spec.kind == "leveraged":
            simple = np.maximum(3.0 * np.expm1(underlying["log_return"]), -0.9)
            log_return = np.log1p(simple)
        else:
            log_return = (
                underlying["log_return"] - self._raw_series(self._index[f"SIM_{spec.over}USDT"], n_days)["log_return"]
            )
        scale = np.abs(log_return) + 1e-4
        return {
            "log_return": log_return,
            "gap": np.zeros_like(log_return),
            "wick_high": 0.3 * scale,
            "wick_low": 0.3 * scale,
            "value": underlying["value"] * 10.0 ** (spec.log10_value - 9.0),
        }

    def _factor_series(self, n_chunks: int) -> dict[str, FloatArray]:
        """Factors, shapes (n_days,) and (n_days, n_sectors), n_days = n_chunks * CHUNK_DAYS."""
        n = n_chunks * CHUNK_DAYS
        if self._factor_days < n:
            noise = np.empty((n, 2 + len(SECTORS)))
            for chunk in range(n_chunks):
                window = slice(chunk * CHUNK_DAYS, (chunk + 1) * CHUNK_DAYS)
                for j in range(noise.shape[1]):
                    rng = np.random.default_rng([self.seed, _FACTOR_STREAM, j, chunk])
                    draw = rng.standard_t(T_DOF, CHUNK_DAYS) / _T_SCALE if j != 1 else rng.standard_normal(CHUNK_DAYS)
                    noise[window, j] = draw
            self._factors = {
                "market": noise[:, 0],
                "market_vol": _ar1(noise[:, 1], _VOL_PHI, _VOL_SD),
                "sectors": noise[:, 2:],
            }
            self._factor_days = n
        return self._factors


def _ar1(noise: FloatArray, phi: float, sd: float) -> FloatArray:
    """AR(1) with coefficient ``phi`` and stationary standard deviation ``sd``, started at zero."""
    from scipy.signal import lfilter  # deferred: ~0.7 s of import in every run process

    return lfilter([sd * np.sqrt(1.0 - phi**2)], [1.0, -phi], noise)


def _catalogue(seed: int, n_symbols: int) -> tuple[_Spec, ...]:
    """The USDT pairs: named ones first, then synthetic ``S0001`` ... with seeded constants."""
    named = [
        _Spec(base, "USDT", sector, "spot", price, sigma, value)
        for base, sector, price, sigma, value in _NAMED[:n_symbols]
    ]
    synthetic = []
    for number in range(1, n_symbols - len(named) + 1):
        rng = np.random.default_rng([seed, _STATIC_STREAM, 10**6 + number])
        synthetic.append(
            _Spec(
                f"S{number:04d}",
                "USDT",
                SECTORS[number % len(SECTORS)],
                "spot",
                price=float(10.0 ** rng.uniform(-3, 2)),
                sigma=float(rng.uniform(0.04, 0.09)),
                log10_value=float(rng.uniform(5.0, 7.5)),
            )
        )
    return tuple(named + synthetic)
