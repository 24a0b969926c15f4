"""The market-data source resource: one interface, a simulated, a ccxt and a files implementation."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path

import pandas as pd
from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from alpha_assets.sources.base import MarketSource
from alpha_assets.sources.files import FileSource
from alpha_assets.sources.params import SourceParams
from alpha_assets.sources.simulated import SimulatedExchange
from alpha_assets.validation import parse_utc_clock

#: Credentials come from these variables through ``dagster.EnvVar``, never from run config or files.
API_KEY_ENV = "ALPHA_ASSETS_EXCHANGE_API_KEY"
API_SECRET_ENV = "ALPHA_ASSETS_EXCHANGE_SECRET"
#: The ccxt exchange when none is named.
DEFAULT_CCXT_EXCHANGE = "binance"
#: The passphrase some exchanges add to key and secret (okx, kucoin, bitget); the first name set is read.
API_PASSWORD_ENVS = ("ALPHA_ASSETS_EXCHANGE_PASSWORD", "ALPHA_ASSETS_EXCHANGE_PASSPHRASE")


class ExchangeCredentialsResource(ConfigurableResource):
    """The exchange's API credentials, each an ``EnvVar``: Dagster shows the variable's name, never its value.

    A resource of its own, apart from ``market_source``: a run config of ``market_source`` (the command line's,
    the chain's) replaces that resource's configured values, and would drop the credentials with them.
    """

    api_key: str | None = Field(default=None, description=f"API key: EnvVar({API_KEY_ENV!r}) when it is set.")
    secret: str | None = Field(default=None, description=f"API secret: EnvVar({API_SECRET_ENV!r}) when it is set.")
    password: str | None = Field(
        default=None, description=f"Passphrase: EnvVar of the first of {list(API_PASSWORD_ENVS)} that is set."
    )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> ExchangeCredentialsResource:
        """An ``EnvVar`` for each credential whose variable is set and non-empty in ``environ``.

        Dagster fails a run whose ``EnvVar`` names an unset variable, so an unset credential stays empty
        (the public endpoints need none).
        """
        password = next((name for name in API_PASSWORD_ENVS if environ.get(name)), None)
        return cls(
            api_key=EnvVar(API_KEY_ENV) if environ.get(API_KEY_ENV) else None,
            secret=EnvVar(API_SECRET_ENV) if environ.get(API_SECRET_ENV) else None,
            password=EnvVar(password) if password else None,
        )

    def for_ccxt(self) -> dict[str, str]:
        """``apiKey`` / ``secret`` / ``password``, only those set and non-empty."""
        values = {"apiKey": self.api_key, "secret": self.secret, "password": self.password}
        return {name: value for name, value in values.items() if value}


class SourceKind(StrEnum):
    """Which implementation serves the bars."""

    SIMULATED = "simulated"
    CCXT = "ccxt"
    FILES = "files"


class MarketSourceResource(ConfigurableResource):
    """Where DataOps gets markets, tickers and daily bars; the clock it treats as now."""

    source: SourceKind = Field(default=SourceKind.SIMULATED, description="simulated (default), ccxt or files.")
    exchange: str = Field(default=DEFAULT_CCXT_EXCHANGE, description="ccxt exchange id (source=ccxt).")
    base_url: str | None = Field(
        default=None,
        description="Override every API URL of the exchange (tests, proxies); empty: the manifest's source.base_url.",
    )
    timeout_ms: int | None = Field(
        default=None, description="Per-request timeout of the ccxt source; empty: the manifest's source.timeout_ms."
    )
    max_retries: int | None = Field(
        default=None,
        description="Retries after a transient error (timeout, 429, 5xx, HTML); empty: the manifest's value.",
    )
    files_dir: str | None = Field(
        default=None, description="Folder of <EXCHANGE>_<SYMBOL>_1d.csv|parquet (source=files)."
    )
    files_exchange: str | None = Field(
        default=None,
        description="Keep only the files of this exchange prefix, e.g. BINANCE (source=files); empty: every file.",
    )
    seed: int = Field(default=7, description="Seed of the simulated exchange.")
    simulated_exchange: str = Field(
        default="SIM",
        description="Key prefix of the simulated exchange's symbols; another one simulates another venue.",
    )
    n_symbols: int = Field(default=60, description="Pairs listed by the simulated exchange.")
    clock: str | None = Field(
        default=None,
        description="ISO-8601 UTC time treated as now (reproducible demos, tests); empty: wall clock.",
    )

    def now(self) -> pd.Timestamp:
        """The current UTC time, or the configured clock."""
        return parse_utc_clock(self.clock) if self.clock else pd.Timestamp.now(tz="UTC")

    def build(
        self, params: SourceParams | None = None, credentials: ExchangeCredentialsResource | None = None
    ) -> MarketSource:
        """A fresh source instance for one step, with the manifest's ``source`` settings (``params``).

        ``credentials`` reach the ccxt source only; without them it uses the public endpoints.
        """
        params = params if params is not None else SourceParams()
        if self.source is SourceKind.SIMULATED:
            return SimulatedExchange(
                seed=self.seed, now=self.now(), n_symbols=self.n_symbols, exchange_key=self.simulated_exchange
            )
        if self.source is SourceKind.FILES:
            if not self.files_dir:
                raise ValueError("market_source.files_dir must name a folder when source is 'files'")
            return FileSource(Path(self.files_dir), self.files_exchange or None, now=self.now() if self.clock else None)
        # Imported here: ccxt takes ~1-3 s to import, which every run process of the code location would pay
        # (each link of a chain is one) while only ccxt runs use it.
        from alpha_assets.sources.exchange import CcxtSource

        return CcxtSource(
            self.exchange,
            market_type=params.market_type.value,
            base_url=self.base_url or params.base_url,
            timeout_ms=self.timeout_ms if self.timeout_ms is not None else params.timeout_ms,
            max_retries=self.max_retries if self.max_retries is not None else params.max_retries,
            retry_budget_s=params.retry_budget_s,
            page_limit=params.page_limit,
            rate_limit_ms=params.rate_limit_ms,
            now=self.now if self.clock else None,
            credentials=credentials.for_ccxt() if credentials is not None else {},
        )
