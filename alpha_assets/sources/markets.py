"""Asset class, trading calendar and currency of each market, from its exchange key prefix."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from alpha_assets.lakehouse.calendars import CONTINUOUS, AssetClass, exchange_market
from alpha_assets.lakehouse.keys import split_symbol_key
from alpha_assets.sources.base import Market
from alpha_assets.sources.params import MarketParams


def classify_markets(markets: Sequence[Market], params: MarketParams) -> list[Market]:
    """Set each market's asset class, calendar and (where the symbol names none) quote currency.

    The exchange is the key prefix of each market (a folder of files may hold several exchanges); an entry of
    ``params.symbols`` for the market's key wins over its exchange's. A market
    on an exchange trading in one currency (an equity of ``XNYS``) is the whole symbol quoted in that
    currency: ``NYSE_AAPL`` -> base ``AAPL``, quote ``USD``, whatever letters the ticker ends with. Markets
    of crypto exchanges (any prefix the table does not know) are returned unchanged.

    Parameters
    ----------
    markets : Sequence of Market
        As the source listed them.
    params : MarketParams
        The manifest's exchange table (over the built-in one).

    Returns
    -------
    list of Market
        In the order of ``markets``.

    Raises
    ------
    TypeError
        When ``params`` is not a MarketParams or an element of ``markets`` is not a Market.
    """
    if not isinstance(params, MarketParams):
        raise TypeError(f"`params` must be a MarketParams, got {type(params).__name__}")
    classified = []
    for market in markets:
        if not isinstance(market, Market):
            raise TypeError(f"`markets` must hold Market records, got {type(market).__name__}")
        exchange, symbol = split_symbol_key(market.symbol_key)
        traded = params.symbols.get(market.symbol_key) or exchange_market(exchange, params.exchanges)
        if traded.asset_class is AssetClass.CRYPTO and traded.calendar == CONTINUOUS:
            classified.append(market)
            continue
        changes = {"asset_class": traded.asset_class.value, "calendar": traded.calendar}
        if traded.currency is not None:
            changes.update(base=symbol, quote=traded.currency, ccxt_symbol=symbol)
        classified.append(dataclasses.replace(market, **changes))
    return classified
