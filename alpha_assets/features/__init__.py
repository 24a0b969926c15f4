"""Point-in-time features of daily bars: TA-Lib indicators, TradingView ratings, selection statistics.

Pure numpy / TA-Lib on one symbol's contiguous arrays; :mod:`alpha_assets.features.backfill` writes them into
the lakehouse's ``features_matrix``.
"""

from __future__ import annotations

from alpha_assets.features.matrix import FEATURE_COLUMNS, compute_features, compute_symbol_features

__all__ = ["FEATURE_COLUMNS", "compute_features", "compute_symbol_features"]
