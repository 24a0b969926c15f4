"""Plots of a run as PNG bytes: target weights per profile, cluster correlation, in-sample equity curves.

Rendering uses matplotlib's object API on an Agg canvas (``matplotlib.figure.Figure``), never ``pyplot``: no
display is needed, no global figure registry grows in a long-lived process, and the backend of a program
importing this module is left alone. Every figure has a documented pixel size at :data:`DPI`, is drawn under
matplotlib's default style (a user's ``matplotlibrc`` cannot change the bytes) and is saved without the
``Software`` PNG text chunk (which names the matplotlib version), so the same inputs give the same bytes on
the same installation. Inputs are sorted (profiles by name, symbols ascending) before drawing.
"""

from __future__ import annotations

import base64
import contextlib
import io
import math
import textwrap
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from alpha_assets.validation import check_returns_frame

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Resolution of every PNG (pixels per inch); sizes below are in pixels.
DPI = 100
#: Bar colour per ``Direction`` of a portfolio row.
DIRECTION_COLOURS = {"LONG": "#1f77b4", "SHORT": "#d62728", "FLAT": "#9e9e9e"}
#: (width, height) of :func:`plot_cluster_correlation`'s image.
CORRELATION_SIZE_PX = (900, 900)
#: (width, height) of :func:`plot_equity_curves`'s image.
EQUITY_SIZE_PX = (1000, 550)
#: Above this many symbols the symbol names are left off the axes (they would overlap) and
#: :func:`plot_weights` stops growing taller.
MAX_LABELLED_SYMBOLS = 80
#: Column of :func:`compute_equity_curves` holding the 1/n portfolio of the same atoms.
EQUAL_WEIGHT_BENCHMARK = "equal_weight_benchmark"

_STYLE = ["default", {"font.size": 9.0, "axes.titlesize": 10.0, "figure.facecolor": "white"}]
# rcParams are process-global: rendering one figure at a time keeps the style context (and so the bytes)
# stable when assets render in threads.
_RENDER_LOCK = threading.Lock()
# scipy's dendrogram puts leaf i at x = 5 + 10 i; the heatmap uses the same coordinates to line up.
_LEAF_STEP = 10.0


@contextlib.contextmanager
def _rendering() -> Iterator[None]:
    # matplotlib (and scipy.cluster below) are imported where a figure is drawn: ~0.55 s of CPU that every process
    # loading the code location (each Dagster run, whatever it materialises) would otherwise pay.
    import matplotlib.style

    with _RENDER_LOCK, matplotlib.style.context(_STYLE):
        yield


def _new_figure(width_px: int, height_px: int) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # deferred, see _rendering
    from matplotlib.figure import Figure

    # Sizes are whole pixels; / DPI then * DPI is exact for the multiples of 25 px used here.
    figure = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def png_data_url(png: bytes) -> str:
    """Encode PNG bytes as a ``data:`` URL, to inline an image in a self-contained HTML page.

    Parameters
    ----------
    png : bytes
        A PNG file's bytes.

    Returns
    -------
    str
        ``data:image/png;base64,...``.

    Raises
    ------
    TypeError
        If ``png`` is not bytes.
    ValueError
        If ``png`` does not start with the PNG signature.
    """
    if not isinstance(png, bytes | bytearray):
        raise TypeError(f"`png` must be bytes, got {type(png).__name__}")
    if not bytes(png[:8]) == b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"`png` must start with the PNG signature, got {bytes(png[:8])!r}")
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# --- weights -------------------------------------------------------------------------------------------
def _check_portfolio_doc(portfolio_doc: object) -> Mapping[str, Mapping[str, Any]]:
    if not isinstance(portfolio_doc, Mapping):
        raise TypeError(
            f"`portfolio_doc` must be a mapping (portfolio_flattened.json), got {type(portfolio_doc).__name__}"
        )
    profiles = portfolio_doc.get("profiles")
    if not isinstance(profiles, Mapping) or not profiles:
        raise ValueError(
            f"`portfolio_doc['profiles']` must be a non-empty mapping of profile -> entry, got {profiles!r}"
        )
    for name, entry in profiles.items():
        if not isinstance(entry, Mapping) or "status" not in entry or not isinstance(entry.get("rows"), list):
            raise ValueError(f"`portfolio_doc['profiles'][{name!r}]` must hold `status` and a `rows` list")
        for row in entry["rows"]:
            missing = [k for k in ("Symbol", "Weight", "Net_Weight", "Direction") if k not in row]
            if missing:
                raise ValueError(f"`portfolio_doc['profiles'][{name!r}]['rows']` has a row missing {missing}: {row!r}")
            if not (math.isfinite(float(row["Weight"])) and math.isfinite(float(row["Net_Weight"]))):
                raise ValueError(f"`portfolio_doc['profiles'][{name!r}]` has a non-finite weight for {row['Symbol']}")
    return profiles


def extract_profile_weights(portfolio_doc: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Collect the atom weights of each profile, as :func:`plot_equity_curves` takes them.

    Parameters
    ----------
    portfolio_doc : mapping
        The ``portfolio_flattened.json`` document (see :mod:`alpha_assets.alpha.portfolio`).

    Returns
    -------
    dict of str to dict of str to float
        Profile -> {symbol: ``Weight``}, profiles and symbols sorted; ``Weight`` is the long-only weight of
        the atom (fraction), to be paired with atom returns whose SHORT streams are already negated. A
        failed profile maps to an empty dict.

    Raises
    ------
    TypeError
        If ``portfolio_doc`` is not a mapping.
    ValueError
        If it has no profiles, a profile lacks ``status`` or ``rows``, or a row lacks a column or has a
        non-finite weight.
    """
    profiles = _check_portfolio_doc(portfolio_doc)
    return {
        name: {row["Symbol"]: float(row["Weight"]) for row in sorted(profiles[name]["rows"], key=lambda r: r["Symbol"])}
        for name in sorted(profiles)
    }


def plot_weights(portfolio_doc: Mapping[str, Any]) -> bytes:
    """Draw the target weights of every optimisation profile, one horizontal bar panel per profile.

    Parameters
    ----------
    portfolio_doc : mapping
        The ``portfolio_flattened.json`` document (see :mod:`alpha_assets.alpha.portfolio`): ``profiles``
        maps each profile to ``status``, ``reason`` and ``rows`` (``Symbol``, ``Weight``, ``Net_Weight``,
        ``Direction``). ``metadata.run_id`` and ``metadata.as_of`` go into the title when present.

    Returns
    -------
    bytes
        A PNG of width ``200 + 250 * n_profiles`` px and height ``175 + 25 * max(4, min(n_symbols, 80))``
        px, where ``n_symbols`` counts the symbols of all profiles. Panels are ordered by profile name and
        share the symbol axis (ascending, top to bottom). Bars show ``Net_Weight`` (fraction of capital,
        negative for SHORT), coloured by ``Direction`` (:data:`DIRECTION_COLOURS`), on one x scale for
        all panels. A profile without rows (failed) shows its status and reason instead of bars.

    Raises
    ------
    TypeError
        If ``portfolio_doc`` is not a mapping.
    ValueError
        If it has no profiles, a profile lacks ``status`` or ``rows``, or a row lacks a column or has a
        non-finite weight.
    """
    from matplotlib.patches import Patch  # deferred, see _rendering
    from matplotlib.ticker import PercentFormatter

    profiles = _check_portfolio_doc(portfolio_doc)
    names = sorted(profiles)
    symbols = sorted({row["Symbol"] for entry in profiles.values() for row in entry["rows"]})
    position = {symbol: i for i, symbol in enumerate(symbols)}
    net = np.array([float(r["Net_Weight"]) for e in profiles.values() for r in e["rows"]], dtype=np.float64)
    low, high = (min(0.0, net.min()), max(0.0, net.max())) if net.size else (-1.0, 1.0)
    pad = 0.08 * (high - low) if high > low else 0.05
    width_px, height_px = 200 + 250 * len(names), 175 + 25 * max(4, min(len(symbols), MAX_LABELLED_SYMBOLS))
    metadata = portfolio_doc.get("metadata") or {}
    with _rendering():
        figure = _new_figure(width_px, height_px)
        figure.subplots_adjust(
            left=150 / width_px,
            right=1 - 25 / width_px,
            bottom=80 / height_px,
            top=1 - 60 / height_px,
            wspace=0.08,
        )
        axes = figure.subplots(1, len(names), sharey=True, squeeze=False)[0]
        for ax, name in zip(axes, names, strict=True):
            entry = profiles[name]
            ax.set_title(f"{name} ({entry['status']})")
            ax.set_xlim(low - pad, high + pad)
            ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
            if not entry["rows"]:
                note = f"{entry['status']}: {entry.get('reason') or 'no weights'}"
                ax.text(
                    0.5,
                    0.5,
                    textwrap.fill(note, 32),
                    transform=ax.transAxes,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="#a00000",
                )
                ax.set_xticks([])
                continue
            rows = sorted(entry["rows"], key=lambda r: r["Symbol"])
            ax.barh(
                [position[r["Symbol"]] for r in rows],
                [float(r["Net_Weight"]) for r in rows],
                height=0.7,
                color=[DIRECTION_COLOURS.get(str(r["Direction"]), DIRECTION_COLOURS["FLAT"]) for r in rows],
            )
            ax.axvline(0.0, color="black", linewidth=0.6)
            ax.grid(axis="x", linewidth=0.4, alpha=0.5)
        labelled = len(symbols) <= MAX_LABELLED_SYMBOLS
        axes[0].set_yticks(range(len(symbols)), symbols if labelled else [""] * len(symbols), fontsize=8)
        axes[0].set_ylim(max(len(symbols), 1) - 0.5, -0.5)
        title = "Target weights by profile (net, fraction of capital)"
        if metadata.get("run_id"):
            title += f": run {metadata['run_id']}, as of {metadata.get('as_of', '?')}"
        figure.suptitle(title)
        figure.legend(
            handles=[Patch(color=c, label=d) for d, c in DIRECTION_COLOURS.items()],
            loc="lower center",
            ncol=3,
            frameon=False,
        )
        return _png(figure)


# --- cluster correlation ----------------------------------------------------------------------------------
def _check_correlation_inputs(
    returns: object, labels: object, linkage: object
) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    returns = check_returns_frame(returns)
    if not isinstance(labels, Mapping):
        raise TypeError(f"`labels` must be a mapping of symbol -> cluster label, got {type(labels).__name__}")
    symbols = sorted(str(c) for c in returns.columns)
    if set(map(str, labels)) != set(symbols):
        missing, extra = (
            sorted(set(symbols) - set(map(str, labels))),
            sorted(set(map(str, labels)) - set(symbols)),
        )
        raise ValueError(f"`labels` must name exactly the columns of `returns`; missing {missing}, extra {extra}")
    as_str = {str(k): v for k, v in labels.items()}
    label_array = np.array([int(as_str[s]) for s in symbols], dtype=np.int64)
    if linkage is None:
        return symbols, label_array, None
    link = np.asarray(linkage, dtype=np.float64)
    expected = (len(symbols) - 1, 4)
    if link.shape != expected:
        raise ValueError(f"`linkage` must have shape (n_assets - 1, 4) = {expected}, got {link.shape}")
    from scipy.cluster.hierarchy import is_valid_linkage  # deferred, see _rendering

    if len(symbols) < 2 or not is_valid_linkage(link):
        raise ValueError("`linkage` must be a valid scipy linkage matrix over the n_assets columns of `returns`")
    return symbols, label_array, link


def _cluster_order(labels: np.ndarray, link: np.ndarray | None) -> tuple[np.ndarray, dict[str, Any] | None]:
    """Display order (clusters contiguous) and, when it matches the tree's leaf order, the dendrogram."""
    n_assets = len(labels)
    if link is None:
        return np.lexsort((np.arange(n_assets), labels)), None
    from scipy.cluster.hierarchy import dendrogram  # deferred, see _rendering

    tree = dendrogram(link, no_plot=True)
    leaves = np.asarray(tree["leaves"], dtype=np.int64)
    leaf_position = np.empty(n_assets, dtype=np.int64)
    leaf_position[leaves] = np.arange(n_assets)
    # Clusters in the order of their first leaf, assets inside a cluster in leaf order.
    first_leaf = pd.Series(leaf_position).groupby(labels).transform("min").to_numpy()
    order = np.lexsort((leaf_position, first_leaf))
    return order, (tree if np.array_equal(order, leaves) else None)


def plot_cluster_correlation(
    returns: pd.DataFrame, labels: Mapping[str, int], linkage: np.ndarray | None = None
) -> bytes:
    """Draw the correlation heatmap of the assets ordered by cluster, with the dendrogram when given.

    Parameters
    ----------
    returns : pandas.DataFrame of shape (n_observations, n_assets)
        Daily simple returns (fractions), float64, one column per symbol key (unique). NaN allowed: each
        pair's correlation uses the observations where both are present (pandas' pairwise ``corr``); a pair
        without enough of them, or a constant column, gives a grey (undefined) cell.
    labels : mapping of str to int
        Cluster label of every column of ``returns``, and of no other symbol (``selection.json``'s
        ``clusters``).
    linkage : ndarray of shape (n_assets - 1, 4) or None
        A scipy linkage matrix whose leaf ``i`` is the ``i``-th symbol in ascending order
        (``selection.json``'s ``linkage``); None draws no dendrogram.

    Returns
    -------
    bytes
        A PNG of :data:`CORRELATION_SIZE_PX` pixels. Clusters form contiguous blocks outlined in black,
        with a colour strip per cluster along the symbol axis; colours run from -1 (blue) to +1 (red).
        Without ``linkage`` clusters are ordered by label and symbols ascending inside each; with it,
        clusters and symbols follow the tree's leaf order, and the dendrogram is drawn above the heatmap
        when the clusters are contiguous in that order (always true for a cut of that tree); otherwise a
        note replaces it.

    Raises
    ------
    TypeError
        If ``returns`` is not a DataFrame or ``labels`` not a mapping.
    ValueError
        If ``returns`` has fewer than 2 observations or no column, or repeated columns; if ``labels`` does
        not name exactly the columns; if ``linkage`` does not have shape (n_assets - 1, 4) or is not a valid
        linkage.
    """
    symbols, label_array, link = _check_correlation_inputs(returns, labels, linkage)
    frame = returns.set_axis([str(c) for c in returns.columns], axis=1)[symbols].astype(np.float64)
    correlation = frame.corr().to_numpy()
    order, tree = _cluster_order(label_array, link)
    n_assets, span = len(symbols), _LEAF_STEP * len(symbols)
    ordered_labels = label_array[order]
    width_px, height_px = CORRELATION_SIZE_PX
    import matplotlib  # deferred, see _rendering
    from matplotlib.collections import LineCollection

    with _rendering():
        figure = _new_figure(width_px, height_px)
        heat_ax = figure.add_axes((0.17, 0.13, 0.62, 0.62))
        strip_ax = figure.add_axes((0.145, 0.13, 0.02, 0.62))
        bar_ax = figure.add_axes((0.81, 0.13, 0.02, 0.62))
        cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#d9d9d9")
        image = heat_ax.imshow(
            correlation[np.ix_(order, order)],
            cmap=cmap,
            vmin=-1.0,
            vmax=1.0,
            interpolation="nearest",
            extent=(0.0, span, span, 0.0),
            aspect="auto",
        )
        edges = _LEAF_STEP * (np.flatnonzero(np.diff(ordered_labels) != 0) + 1)
        heat_ax.hlines(edges, 0.0, span, colors="black", linewidth=0.8)
        heat_ax.vlines(edges, 0.0, span, colors="black", linewidth=0.8)
        ticks = _LEAF_STEP * np.arange(n_assets) + _LEAF_STEP / 2
        names = [symbols[i] for i in order] if n_assets <= MAX_LABELLED_SYMBOLS else [""] * n_assets
        font = 7.0 if n_assets <= 40 else 5.5
        heat_ax.set_xticks(ticks, names, rotation=90, fontsize=font)
        heat_ax.set_yticks([])
        strip_ax.imshow(
            (ordered_labels % 20)[:, None],
            cmap="tab20",
            vmin=0,
            vmax=19,
            interpolation="nearest",
            extent=(0.0, 1.0, span, 0.0),
            aspect="auto",
        )
        strip_ax.set_xticks([])
        strip_ax.set_yticks(ticks, names, fontsize=font)
        figure.colorbar(image, cax=bar_ax, label="correlation of daily returns")
        if tree is not None:
            tree_ax = figure.add_axes((0.17, 0.76, 0.62, 0.14))
            segments = np.stack([np.asarray(tree["icoord"]), np.asarray(tree["dcoord"])], axis=-1)
            tree_ax.add_collection(LineCollection(segments, colors="#444444", linewidths=0.8))
            tree_ax.set_xlim(0.0, span)
            tree_ax.set_ylim(0.0, float(segments[..., 1].max()) * 1.05 or 1.0)
            tree_ax.set_xticks([])
            tree_ax.set_ylabel("Ward distance", fontsize=8)
            for side in ("top", "right", "bottom"):
                tree_ax.spines[side].set_visible(False)
        elif link is not None:
            figure.text(
                0.48,
                0.83,
                "dendrogram omitted: the clusters are not contiguous in the linkage tree",
                ha="center",
                fontsize=8,
                color="#a00000",
            )
        n_clusters = len(np.unique(label_array))
        figure.suptitle(
            f"Correlation of daily returns by cluster: {n_assets} assets, {n_clusters} clusters, "
            f"{frame.shape[0]} observations"
        )
        return _png(figure)


# --- equity curves ---------------------------------------------------------------------------------------
def _check_equity_inputs(atom_returns: object, weights_by_profile: object) -> list[str]:
    if not isinstance(atom_returns, pd.DataFrame):
        raise TypeError(
            f"`atom_returns` must be a pandas DataFrame (n_observations, n_atoms), got {type(atom_returns).__name__}"
        )
    if atom_returns.shape[0] < 1 or atom_returns.shape[1] < 1:
        raise ValueError(f"`atom_returns` needs >= 1 observation and >= 1 atom, got shape {atom_returns.shape}")
    if not atom_returns.columns.is_unique:
        raise ValueError("`atom_returns` columns must be unique symbol keys")
    if not np.isfinite(atom_returns.to_numpy(dtype=np.float64)).all():
        raise ValueError("`atom_returns` must be finite (no NaN, no inf)")
    if not isinstance(weights_by_profile, Mapping):
        raise TypeError(
            "`weights_by_profile` must be a mapping of profile -> {symbol: weight}, "
            f"got {type(weights_by_profile).__name__}"
        )
    columns = {str(c) for c in atom_returns.columns}
    for profile, weights in weights_by_profile.items():
        if not isinstance(weights, Mapping):
            raise TypeError(f"`weights_by_profile[{profile!r}]` must be a mapping of symbol -> weight")
        unknown = sorted(set(map(str, weights)) - columns)
        if unknown:
            raise ValueError(f"`weights_by_profile[{profile!r}]` names symbols absent from `atom_returns`: {unknown}")
        if not all(math.isfinite(float(w)) for w in weights.values()):
            raise ValueError(f"`weights_by_profile[{profile!r}]` must hold finite weights")
    return sorted(columns)


def compute_equity_curves(
    atom_returns: pd.DataFrame, weights_by_profile: Mapping[str, Mapping[str, float]]
) -> pd.DataFrame:
    """In-sample growth of one unit invested at fixed weights, per profile and for the 1/n portfolio.

    Parameters
    ----------
    atom_returns : pandas.DataFrame of shape (n_observations, n_atoms)
        Daily simple returns (fractions) of the atoms, SHORT streams already negated (``SelectionResult``'s
        ``atom_returns``), float64, no NaN; index the dates (UTC), kept as is.
    weights_by_profile : mapping of str to mapping of str to float
        Profile -> {symbol: atom weight (fraction, ``Weight`` of ``portfolio_flattened.json``)}; an atom
        absent from a profile weighs 0. A profile with no weights (failed) is left out.

    Returns
    -------
    pandas.DataFrame of shape (n_observations, n_profiles + 1)
        ``prod_{s <= t} (1 + sum_i w_i r_{s,i})``, float64: the profiles with weights, sorted by name, then
        :data:`EQUAL_WEIGHT_BENCHMARK` (every atom at ``1 / n_atoms``). Same index as ``atom_returns``.

    Raises
    ------
    TypeError
        If ``atom_returns`` is not a DataFrame or ``weights_by_profile`` (or one of its values) not a mapping.
    ValueError
        If ``atom_returns`` is empty, has repeated columns or a non-finite value, or a profile names a
        symbol absent from ``atom_returns`` or has a non-finite weight.

    Notes
    -----
    In sample: the weights chosen at the as-of date are applied to the very returns they were estimated
    on, so the curves flatter every profile. The weights are held fixed (the portfolio is rebalanced to them
    every day) and trading costs, slippage and funding are ignored.
    """
    atoms = _check_equity_inputs(atom_returns, weights_by_profile)
    profiles = sorted(p for p, w in weights_by_profile.items() if len(w) > 0)
    weights = np.zeros((len(atoms), len(profiles) + 1), dtype=np.float64)
    for j, profile in enumerate(profiles):
        given = {str(k): float(v) for k, v in weights_by_profile[profile].items()}
        weights[:, j] = [given.get(atom, 0.0) for atom in atoms]
    weights[:, -1] = 1.0 / len(atoms)
    values = atom_returns.set_axis([str(c) for c in atom_returns.columns], axis=1)[atoms].to_numpy(np.float64)
    growth = np.cumprod(1.0 + values @ weights, axis=0)
    return pd.DataFrame(growth, index=atom_returns.index, columns=[*profiles, EQUAL_WEIGHT_BENCHMARK])


def plot_equity_curves(
    atom_returns: pd.DataFrame,
    weights_by_profile: Mapping[str, Mapping[str, float]],
    *,
    log_scale: bool = False,
) -> bytes:
    """Draw the in-sample growth of each profile at fixed weights against the 1/n portfolio of the same atoms.

    Parameters
    ----------
    atom_returns : pandas.DataFrame of shape (n_observations, n_atoms)
        Daily simple returns (fractions) of the atoms, SHORT streams already negated, no NaN; a
        DatetimeIndex (UTC) puts dates on the x axis, any other index the observation number.
    weights_by_profile : mapping of str to mapping of str to float
        Profile -> {symbol: atom weight}, e.g. from :func:`extract_profile_weights`. Profiles without
        weights (failed) are named in a footnote instead of drawn.
    log_scale : bool, default False
        Logarithmic growth axis, for long histories.

    Returns
    -------
    bytes
        A PNG of :data:`EQUITY_SIZE_PX` pixels: one line per profile (sorted by name) and a dashed black
        line for the 1/n portfolio, each labelled with its final growth multiple. See
        :func:`compute_equity_curves` for the numbers and why they are in-sample only.

    Raises
    ------
    TypeError
        As :func:`compute_equity_curves`.
    ValueError
        As :func:`compute_equity_curves`.
    """
    curves = compute_equity_curves(atom_returns, weights_by_profile)
    x = curves.index if isinstance(curves.index, pd.DatetimeIndex) else np.arange(len(curves))
    failed = sorted(p for p, w in weights_by_profile.items() if len(w) == 0)
    width_px, height_px = EQUITY_SIZE_PX
    import matplotlib  # deferred, see _rendering

    with _rendering():
        figure = _new_figure(width_px, height_px)
        figure.subplots_adjust(left=0.08, right=0.97, bottom=0.15, top=0.9)
        ax = figure.add_subplot()
        palette = matplotlib.colormaps["tab10"].colors
        for j, column in enumerate(curves.columns):
            series = curves[column].to_numpy()
            benchmark = column == EQUAL_WEIGHT_BENCHMARK
            ax.plot(
                x,
                series,
                color="black" if benchmark else palette[j % len(palette)],
                linestyle="--" if benchmark else "-",
                linewidth=1.2,
                label=f"{'1/n of the atoms' if benchmark else column} (x{series[-1]:.2f})",
            )
        ax.axhline(1.0, color="#777777", linewidth=0.6)
        if log_scale:
            ax.set_yscale("log")
        ax.set_ylabel("growth of 1 (log scale)" if log_scale else "growth of 1")
        ax.grid(linewidth=0.4, alpha=0.5)
        ax.legend(loc="upper left", fontsize=8, frameon=False)
        figure.suptitle(
            f"In-sample growth at today's weights: {atom_returns.shape[1]} atoms, {len(curves)} observations"
        )
        footnote = "In sample (weights estimated on these returns), fixed weights rebalanced daily, no costs."
        if failed:
            footnote += f" No weights: {', '.join(failed)}."
        figure.text(0.08, 0.03, footnote, fontsize=8, color="#444444")
        return _png(figure)
