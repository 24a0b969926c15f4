"""Array and key aliases shared by the pure packages."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: ``EXCHANGE_SYMBOL`` in ``[A-Z0-9_]``, e.g. ``BINANCE_BTCUSDT``.
SymbolKey = str
#: ``^[A-Za-z0-9_-]{1,64}$``, e.g. ``20261125T210000Z``.
RunId = str
