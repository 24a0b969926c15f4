"""Sparklines small enough for the Dagster UI to draw on an asset's overview, as Markdown with an inline SVG.

Dagster 1.13's UI renders a Markdown metadata value in place (on the asset's overview and in the event tables)
only when it is shorter than :data:`INLINE_MARKDOWN_LIMIT` characters; a longer one (the run report's PNG plots)
shows as a "[Show Markdown]" button. Its Markdown renderer lets ``data:`` images through, so one line of SVG
path per series, in a ``data:image/svg+xml`` URL, keeps a whole chart under that limit.
"""

from __future__ import annotations

from urllib.parse import quote

import numpy as np

from alpha_assets.typing import FloatArray

#: Markdown metadata of this many characters or more is hidden behind a button by the 1.13 UI
#: (``MetadataEntry.tsx``: ``entry.mdStr.length < 1000``).
INLINE_MARKDOWN_LIMIT = 1000
#: Points drawn per sparkline: evenly spaced observations, the first and the last included.
SPARKLINE_POINTS = 60
#: (width, height) in pixels.
SPARKLINE_SIZE_PX = (240, 40)
_MARGIN_PX = 2
_LINE_COLOUR = "#1f77b4"
_BASELINE_COLOUR = "#9e9e9e"
# Characters the SVG needs that a Markdown link destination or a data URL cannot hold as they are.
_SAFE_IN_URL = ",'=/:.-"


def growth_sparkline_markdown(growth: FloatArray, label: str) -> str:
    """One line of Markdown: a sparkline of a growth curve, then its final, lowest and highest multiple.

    Parameters
    ----------
    growth : ndarray of shape (n_observations,)
        Growth of one unit invested (1.0 = the start), float64, finite and positive, n_observations >= 2.
    label : str
        What the curve is (the image's alternative text).

    Returns
    -------
    str
        ``![label](data:image/svg+xml,...) x1.23 (low x0.91, high x1.30)``, shorter than
        :data:`INLINE_MARKDOWN_LIMIT` characters for any ``n_observations`` and a label under 100 characters.
        The SVG draws :data:`SPARKLINE_POINTS` evenly spaced observations (all when fewer), scaled between
        the lowest and highest of them, with a grey dashed line at 1.0 when it lies in that range.

    Raises
    ------
    TypeError
        If ``label`` is not a str.
    ValueError
        If ``growth`` is not 1-D with at least 2 finite positive values, or ``label`` is empty, longer than
        99 characters or holds a character that would end the Markdown alternative text (``[``, ``]``).
    """
    values = np.asarray(growth, dtype=np.float64)
    if values.ndim != 1 or len(values) < 2:
        raise ValueError(f"`growth` must be 1-D (n_observations,) with n_observations >= 2, got shape {values.shape}")
    if not np.all(np.isfinite(values) & (values > 0)):
        raise ValueError("`growth` must hold finite positive values (growth of one unit), got a NaN, inf or <= 0")
    if not isinstance(label, str):
        raise TypeError(f"`label` must be a str, got {type(label).__name__}")
    if not 0 < len(label) < 100 or any(c in label for c in "[]\n"):
        raise ValueError(f"`label` must be 1 to 99 characters without '[', ']' or a newline, got {label!r}")
    sampled = values[np.unique(np.linspace(0, len(values) - 1, SPARKLINE_POINTS).round().astype(np.int64))]
    width, height = SPARKLINE_SIZE_PX
    low, high = float(sampled.min()), float(sampled.max())
    span = high - low if high > low else 1.0

    def y_of(value: float | FloatArray) -> FloatArray:
        return np.round(_MARGIN_PX + (high - np.asarray(value)) / span * (height - 2 * _MARGIN_PX)).astype(int)

    xs = np.round(np.linspace(0, width - 1, len(sampled))).astype(int)
    path = "M" + ",".join(f"{x},{y}" for x, y in zip(xs, y_of(sampled), strict=True))
    baseline = ""
    if low <= 1.0 <= high:
        y = int(y_of(1.0))
        baseline = f"<path d='M0,{y}H{width}' stroke='{_BASELINE_COLOUR}' stroke-dasharray='3'/>"
    svg = (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>{baseline}"
        f"<path d='{path}' fill='none' stroke='{_LINE_COLOUR}' stroke-width='1.5'/></svg>"
    )
    image = f"![{label}](data:image/svg+xml,{quote(svg, safe=_SAFE_IN_URL)})"
    return f"{image} x{values[-1]:.2f} (low x{values.min():.2f}, high x{values.max():.2f})"
