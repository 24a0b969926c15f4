"""Every file of a run's ``reports/`` folder, rendered from the run's documents (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from alpha_assets.lakehouse.paths import RunReportFile
from alpha_assets.reports.plots import (
    compute_equity_curves,
    extract_profile_weights,
    plot_cluster_correlation,
    plot_equity_curves,
    plot_weights,
    png_data_url,
)
from alpha_assets.reports.run_report import build_run_report, render_html
from alpha_assets.reports.sparklines import growth_sparkline_markdown

#: The plots in the order a reader wants them: what is held, how it did, how the clusters relate.
PLOT_ORDER = (RunReportFile.WEIGHTS_PNG, RunReportFile.EQUITY_PNG, RunReportFile.CORRELATION_PNG)
_PLOT_TITLES = {
    RunReportFile.WEIGHTS_PNG: "Weights per profile",
    RunReportFile.EQUITY_PNG: "In-sample equity curves",
    RunReportFile.CORRELATION_PNG: "Cluster correlation",
}


def render_run_reports(
    *,
    returns: pd.DataFrame,
    atom_returns: pd.DataFrame,
    selection_doc: Mapping[str, Any],
    portfolio_doc: Mapping[str, Any],
    gate_doc: Mapping[str, Any],
    drops: list[Mapping[str, Any]],
    annualisation: Mapping[str, Any] | None = None,
) -> dict[str, bytes]:
    """File name -> bytes of the run's plots and its Markdown and self-contained HTML report.

    Parameters
    ----------
    returns : DataFrame of shape (n_observations, n_assets)
        The frozen returns matrix (for the cluster correlation heatmap).
    atom_returns : DataFrame of shape (n_observations, n_atoms)
        The atoms' return streams, SHORT streams already negated (for the in-sample equity curves).
    selection_doc, portfolio_doc, gate_doc : Mapping
        ``selection.json``, ``portfolio_flattened.json`` and ``gate_verdict.json`` of the run.
    drops : list of Mapping
        ``returns_drops.json`` of the run.
    annualisation : Mapping, optional
        ``grid`` and ``periods_per_year`` of the run's returns, shown in the report's header.
    """
    linkage = selection_doc.get("linkage")
    plots = {
        RunReportFile.WEIGHTS_PNG: plot_weights(portfolio_doc),
        RunReportFile.CORRELATION_PNG: plot_cluster_correlation(
            returns, selection_doc["clusters"], None if linkage is None else np.asarray(linkage, dtype=float)
        ),
        RunReportFile.EQUITY_PNG: plot_equity_curves(atom_returns, extract_profile_weights(portfolio_doc)),
    }
    markdown = build_run_report(
        portfolio_doc=portfolio_doc,
        selection_doc=selection_doc,
        gate_doc=gate_doc,
        drops=drops,
        plots={name.removesuffix(".png"): name for name in plots},
        annualisation=annualisation,
    )
    html = render_html(markdown, f"alpha_assets run {portfolio_doc['metadata']['run_id']}", images=plots)
    return {**plots, RunReportFile.REPORT_MD: markdown.encode(), RunReportFile.REPORT_HTML: html.encode()}


def plots_markdown(reports: Mapping[str, bytes], run_id: str) -> str:
    """Markdown showing the run's three plots inline (PNG data URLs), each under its title.

    Parameters
    ----------
    reports : Mapping of str to bytes
        :func:`render_run_reports`' files (only the PNGs are used).
    run_id : str
        The RUN_ID, named in the heading.
    """
    sections = [f"**Run {run_id}**: the plots of `reports/{RunReportFile.REPORT_HTML}`."]
    sections += [f"#### {_PLOT_TITLES[name]}\n\n![{name}]({png_data_url(reports[name])})" for name in PLOT_ORDER]
    return "\n\n".join(sections)


def growth_sparklines(atom_returns: pd.DataFrame, portfolio_doc: Mapping[str, Any]) -> dict[str, str]:
    """Curve -> one line of Markdown with its sparkline: the equity-curves plot, small enough for the UI overview.

    Parameters
    ----------
    atom_returns : DataFrame of shape (n_observations, n_atoms)
        The atoms' return streams, SHORT streams already negated.
    portfolio_doc : Mapping
        ``portfolio_flattened.json`` of the run.

    Returns
    -------
    dict of str to str
        The columns of :func:`~alpha_assets.reports.plots.compute_equity_curves` (each profile with weights,
        then the 1/n benchmark) -> :func:`~alpha_assets.reports.sparklines.growth_sparkline_markdown`.
    """
    curves = compute_equity_curves(atom_returns, extract_profile_weights(portfolio_doc))
    return {
        name: growth_sparkline_markdown(curves[name].to_numpy(), f"{name} in-sample growth") for name in curves.columns
    }
