"""Feature health predicates: infinities counted per symbol over a long-form frame of several symbols."""

from __future__ import annotations

import numpy as np
import pandas as pd

from alpha_assets.features.checks import infinite_cells_by_symbol
from alpha_assets.features.matrix import compute_symbol_features


def test_infinite_cells_are_counted_per_symbol_and_nan_is_not_one(make_bars):
    rows = [compute_symbol_features(make_bars(seed, 300), key) for seed, key in enumerate(("SIM_AUSDT", "SIM_BUSDT"))]
    features = pd.concat(rows, ignore_index=True)
    a = features.index[features["symbol"] == "SIM_AUSDT"]
    assert features.loc[a, "sma_200"].isna().sum() > 0, "the warm-up leaves NaN, which is allowed"
    features.loc[a[250], "rsi_14"] = np.inf
    features.loc[a[251], ["rsi_14", "macd"]] = -np.inf
    counts = infinite_cells_by_symbol(features)
    assert counts.to_dict() == {"SIM_AUSDT": 3, "SIM_BUSDT": 0}
    # Each symbol's count equals the count over its rows alone, whatever the order of the rows.
    shuffled = features.sample(frac=1.0, random_state=7)
    assert infinite_cells_by_symbol(shuffled).to_dict() == {"SIM_AUSDT": 3, "SIM_BUSDT": 0}
    assert infinite_cells_by_symbol(features.iloc[0:0]).empty
