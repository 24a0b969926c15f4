"""From a source's markets and 24 h tickers to the ranked candidate list of a RUN_ID."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from alpha_assets.errors import EmptyUniverseError
from alpha_assets.sources.base import Market, Ticker
from alpha_assets.sources.params import DiscoveryParams

_LEVERAGED_BASE = re.compile(r"^(?P<underlying>[A-Z0-9]+?)(UP|DOWN|BULL|BEAR|\d+[LS])$")


@dataclass(frozen=True)
class Candidate:
    """A market kept by discovery; ``rank`` 1 is the largest 24 h traded value."""

    symbol_key: str
    ccxt_symbol: str
    base: str
    quote: str
    sector: str | None
    quote_volume_24h: float
    rank: int
    asset_class: str = "crypto"
    calendar: str = "24/7"

    def to_json_dict(self) -> dict[str, object]:
        """JSON-ready form, as written in ``candidates.json``."""
        return asdict(self)


@dataclass(frozen=True)
class Discovery:
    """The outcome of discovery: candidates by traded value descending, and why every other market left.

    Attributes
    ----------
    candidates : tuple of Candidate
        Ordered by ``quote_volume_24h`` descending, ties by ``symbol_key``.
    excluded : Mapping of str to str
        Symbol key -> the first filter that removed it.
    params : DiscoveryParams
        The filters applied.
    n_markets : int
        Markets considered.
    """

    candidates: tuple[Candidate, ...]
    excluded: Mapping[str, str]
    params: DiscoveryParams
    n_markets: int

    def to_json_dict(self) -> dict[str, object]:
        """Deterministic JSON-ready form: candidates in rank order, exclusions sorted by key."""
        return {
            "params": {
                name: list(value) if isinstance(value, tuple) else value for name, value in asdict(self.params).items()
            },
            "n_markets": self.n_markets,
            "candidates": [candidate.to_json_dict() for candidate in self.candidates],
            "excluded": dict(sorted(self.excluded.items())),
        }


def is_leveraged_base(base: str, listed_bases: frozenset[str]) -> bool:
    r"""Whether ``base`` is a leveraged token: a listed base then UP, DOWN, BULL, BEAR or ``\d+[LS]``.

    Requiring the underlying to be listed keeps real tokens such as JUP or SYRUP.
    """
    match = _LEVERAGED_BASE.fullmatch(base)
    return match is not None and match.group("underlying") in listed_bases


def discover_candidates(markets: Sequence[Market], tickers: Mapping[str, Ticker], params: DiscoveryParams) -> Discovery:
    """Filter and rank markets into candidates.

    Filters, in order (a market is excluded by the first that fails): asset class, quote currency,
    stablecoin base, leveraged token, inactive market, no ticker, 24 h traded value below the minimum, another
    listing of the same base with a preferred quote (``one_listing_per_base``: the quote that comes first in
    ``quote_currencies`` wins, among the markets that passed the filters before), below the top N. An equity's
    quote is its exchange's currency (set by :func:`~alpha_assets.sources.markets.classify_markets`), so
    ``quote_currencies = ["USD"]`` keeps US stocks.

    Parameters
    ----------
    markets : Sequence of Market
        Every market of the source, unique symbol keys.
    tickers : Mapping of str to Ticker
        24 h tickers by symbol key; ``quote_volume`` is in the quote currency.
    params : DiscoveryParams
        The filters.

    Returns
    -------
    Discovery
        Candidates with rank and traded value, and the reason of each exclusion.

    Raises
    ------
    TypeError
        When ``markets`` holds something other than :class:`Market`, ``tickers`` is not a mapping or
        ``params`` is not a :class:`DiscoveryParams`.
    ValueError
        When two markets share a symbol key.
    EmptyUniverseError
        When no market is left, with the number removed by each filter.
    """
    if not isinstance(params, DiscoveryParams):
        raise TypeError(f"`params` must be a DiscoveryParams, got {type(params).__name__}")
    if not isinstance(tickers, Mapping):
        raise TypeError(f"`tickers` must be a mapping of symbol key to Ticker, got {type(tickers).__name__}")
    wrong = [type(m).__name__ for m in markets if not isinstance(m, Market)]
    if wrong:
        raise TypeError(f"`markets` must hold Market records, got {sorted(set(wrong))}")
    duplicated = sorted(k for k, n in Counter(m.symbol_key for m in markets).items() if n > 1)
    if duplicated:
        raise ValueError(f"`markets` must have unique symbol keys, got duplicates {duplicated[:10]}")

    listed_bases = frozenset(m.base for m in markets)
    excluded: dict[str, str] = {}
    survivors: list[tuple[Market, float]] = []
    for market in markets:
        reason = _exclusion_reason(market, tickers.get(market.symbol_key), params, listed_bases)
        if reason is None:
            survivors.append((market, float(tickers[market.symbol_key].quote_volume)))
        else:
            excluded[market.symbol_key] = reason
    if params.one_listing_per_base:
        survivors = _one_listing_per_base(survivors, params.quote_currencies, excluded)
    survivors.sort(key=lambda item: (-item[1], item[0].symbol_key))
    for rank, (market, _) in enumerate(survivors[params.top_n :], start=params.top_n + 1):
        excluded[market.symbol_key] = f"below top {params.top_n} (rank {rank} by traded value)"
    candidates = tuple(
        Candidate(
            symbol_key=m.symbol_key,
            ccxt_symbol=m.ccxt_symbol,
            base=m.base,
            quote=m.quote,
            sector=m.sector,
            quote_volume_24h=value,
            rank=rank,
            asset_class=m.asset_class,
            calendar=m.calendar,
        )
        for rank, (m, value) in enumerate(survivors[: params.top_n], start=1)
    )
    if not candidates:
        counts = Counter(_filter_name(reason) for reason in excluded.values())
        summary = ", ".join(f"{name}: {count}" for name, count in sorted(counts.items())) or "no market listed"
        raise EmptyUniverseError(f"discovery kept no candidate out of {len(markets)} markets ({summary})")
    return Discovery(candidates=candidates, excluded=excluded, params=params, n_markets=len(markets))


def _one_listing_per_base(
    survivors: list[tuple[Market, float]], preference: Sequence[str], excluded: dict[str, str]
) -> list[tuple[Market, float]]:
    """The survivors with one market per base: the quote earliest in ``preference``; the rest go to ``excluded``."""
    rank = {quote: i for i, quote in enumerate(preference)}
    kept: dict[str, Market] = {}
    for market, _ in sorted(survivors, key=lambda item: (rank[item[0].quote], item[0].symbol_key)):
        if market.base in kept:
            chosen = kept[market.base]
            excluded[market.symbol_key] = (
                f"same asset as {chosen.symbol_key} ({chosen.ccxt_symbol}), kept because its quote {chosen.quote} "
                f"comes before {market.quote} in quote_currencies"
            )
        else:
            kept[market.base] = market
    chosen_keys = {m.symbol_key for m in kept.values()}
    return [item for item in survivors if item[0].symbol_key in chosen_keys]


def _exclusion_reason(
    market: Market, ticker: Ticker | None, params: DiscoveryParams, listed_bases: frozenset[str]
) -> str | None:
    """The first filter ``market`` fails, in words, or ``None`` when it passes them all (top N aside)."""
    if market.asset_class not in params.asset_classes:
        return f"asset class {market.asset_class} not in {[c.value for c in params.asset_classes]}"
    if not market.quote:
        return f"quote currency unknown (no known quote suffix, and exchange of {market.symbol_key} has no currency)"
    if market.quote not in params.quote_currencies:
        return f"quote {market.quote} not in {list(params.quote_currencies)}"
    if market.base in params.exclude_bases:
        return f"stablecoin base {market.base}"
    if params.exclude_leveraged and is_leveraged_base(market.base, listed_bases):
        return f"leveraged token {market.base}"
    if not market.active and not params.include_inactive:
        return "inactive market"
    if ticker is None or not math.isfinite(ticker.quote_volume):
        return "no 24 h ticker"
    if ticker.quote_volume < params.min_traded_value_24h:
        return f"traded value {ticker.quote_volume:,.0f} {market.quote} below {params.min_traded_value_24h:,.0f}"
    return None


def _filter_name(reason: str) -> str:
    """The filter behind an exclusion reason, for the summary of an empty universe."""
    for prefix, name in (
        ("asset class", "asset class"),
        ("quote", "quote"),
        ("stablecoin", "stablecoin base"),
        ("leveraged", "leveraged token"),
        ("inactive", "inactive"),
        ("no 24 h", "no ticker"),
        ("traded value", "traded value"),
        ("same asset", "one listing per base"),
        ("below top", "top N"),
    ):
        if reason.startswith(prefix):
            return name
    return reason
