"""Symbol keys and RUN_IDs: validated here before any of them becomes part of a path."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from alpha_assets.errors import UnsafeKeyError

#: ``EXCHANGE_SYMBOL``: an exchange id, an underscore, then the pair, all in ``[A-Z0-9_]``.
SYMBOL_KEY_PATTERN = re.compile(r"^[A-Z0-9]{1,32}_[A-Z0-9_]{1,64}$")
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_NON_KEY_CHARACTERS = re.compile(r"[^A-Z0-9]")
#: What a market type adds to the pair in a symbol key.
_KEY_SUFFIXES = {"spot": "", "swap": "_PERP"}


def validate_symbol_key(key: object) -> str:
    """Return ``key`` unchanged when it is a safe symbol key.

    Parameters
    ----------
    key : object
        Candidate key, e.g. ``"BINANCE_BTCUSDT"``.

    Returns
    -------
    str
        The same key.

    Raises
    ------
    UnsafeKeyError
        When ``key`` is not a string matching ``^[A-Z0-9]{1,32}_[A-Z0-9_]{1,64}$``.
    """
    if not isinstance(key, str) or not SYMBOL_KEY_PATTERN.fullmatch(key):
        raise UnsafeKeyError(
            f"symbol key {key!r} is refused: expected EXCHANGE_SYMBOL in [A-Z0-9_] "
            f"(pattern {SYMBOL_KEY_PATTERN.pattern})"
        )
    return key


def validate_run_id(run_id: object) -> str:
    """Return ``run_id`` unchanged when it is a safe RUN_ID.

    Raises
    ------
    UnsafeKeyError
        When ``run_id`` is not a string matching ``^[A-Za-z0-9_-]{1,64}$``.
    """
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
        raise UnsafeKeyError(f"RUN_ID {run_id!r} is refused: expected 1 to 64 characters in [A-Za-z0-9_-]")
    return run_id


def normalize_exchange_id(exchange_id: str) -> str:
    """Turn a ccxt exchange id (``binance``, ``gate.io``) into the key prefix (``BINANCE``, ``GATEIO``).

    Raises
    ------
    UnsafeKeyError
        When nothing of ``exchange_id`` is left in ``[A-Z0-9]``.
    """
    prefix = _NON_KEY_CHARACTERS.sub("", str(exchange_id).upper())
    if not prefix or len(prefix) > 32:
        raise UnsafeKeyError(f"exchange id {exchange_id!r} gives no usable key prefix")
    return prefix


def make_symbol_key(exchange_id: str, base: str, quote: str, *, market_type: str = "spot") -> str:
    """Build ``EXCHANGE_BASEQUOTE`` from its parts (``binance``, ``BTC``, ``USDT`` -> ``BINANCE_BTCUSDT``).

    A linear perpetual swap (``market_type="swap"``) gets the suffix ``_PERP`` (``BYBIT_BTCUSDT_PERP``), so it
    never shares a key, a file or a partition with the spot pair of the same base and quote; base and quote
    may not hold an underscore, so no spot key can end in ``_PERP``.

    Raises
    ------
    UnsafeKeyError
        When base or quote hold an underscore, ``market_type`` is neither spot nor swap, or the result is not
        a safe symbol key (e.g. a base with characters outside ``[A-Z0-9]``).
    """
    pair = f"{base}{quote}".upper()
    if "_" in pair:
        raise UnsafeKeyError(f"symbol {base}/{quote} is refused: an underscore in base or quote would be ambiguous")
    if market_type not in _KEY_SUFFIXES:
        raise UnsafeKeyError(f"market type {market_type!r} is refused: expected one of {sorted(_KEY_SUFFIXES)}")
    return validate_symbol_key(f"{normalize_exchange_id(exchange_id)}_{pair}{_KEY_SUFFIXES[market_type]}")


def split_symbol_key(key: str) -> tuple[str, str]:
    """Split a validated key into ``(EXCHANGE, SYMBOL)``: ``BINANCE_BTCUSDT`` -> ``("BINANCE", "BTCUSDT")``."""
    exchange, symbol = validate_symbol_key(key).split("_", 1)
    return exchange, symbol


def new_run_id(now: datetime) -> str:
    """A RUN_ID from a UTC time, sortable as text: ``20261125T210700Z``.

    Raises
    ------
    ValueError
        When ``now`` is naive (no time zone), since a local clock would make ids ambiguous.
    """
    if now.tzinfo is None:
        raise ValueError(f"`now` must be timezone-aware (UTC), got naive {now.isoformat()}")
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
