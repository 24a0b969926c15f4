"""alpha_assets: market data to portfolio target weights, as Dagster software-defined assets."""
