"""Plots and the per-run report: PNG bytes and Markdown/HTML text built from a run's documents (no I/O)."""

from __future__ import annotations

from alpha_assets.reports.plots import (
    compute_equity_curves,
    extract_profile_weights,
    plot_cluster_correlation,
    plot_equity_curves,
    plot_weights,
    png_data_url,
)
from alpha_assets.reports.run_report import build_run_report, render_html

__all__ = [
    "build_run_report",
    "compute_equity_curves",
    "extract_profile_weights",
    "plot_cluster_correlation",
    "plot_equity_curves",
    "plot_weights",
    "png_data_url",
    "render_html",
]
