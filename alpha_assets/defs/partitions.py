"""The two dynamic partitionings: symbols (lakehouse files) and runs (RUN_IDs)."""

from __future__ import annotations

from dagster import DynamicPartitionsDefinition

#: One partition per symbol key (``BINANCE_BTCUSDT``), added by discovery.
symbols_partitions = DynamicPartitionsDefinition(name="symbols")
#: One partition per RUN_ID, added by discovery (or by the export sensor for a dropped export).
runs_partitions = DynamicPartitionsDefinition(name="runs")
