"""The report of one run: Markdown from the run's documents, and a small self-contained HTML rendering of it.

:func:`build_run_report` reads only the documents the Alpha cycle already wrote (``gate_verdict.json``,
``returns_drops.json``, ``selection.json``, ``portfolio_flattened.json``) and the file names of the plots;
it writes nothing and puts no time of day in the text, so the same documents give the same report.
:func:`render_html` converts exactly the Markdown subset the report uses (headers, pipe tables, images,
paragraphs, inline code) with the standard library; it is not a general Markdown renderer.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from alpha_assets.reports.plots import png_data_url

#: Below this absolute weight an atom is FLAT (as in ``alpha_assets.alpha.portfolio``): not a holding.
HOLDING_THRESHOLD = 1e-9
_PLOT_FILE = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
_HEADER = re.compile(r"^(#{1,6}) (.*)$")
_IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)\s]+)\)$")
_SEPARATOR = re.compile(r"^\|(\s*:?-{3,}:?\s*\|)+$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_CODE = re.compile(r"`([^`]+)`")


# --- markdown building blocks ------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, Mapping | list | tuple):
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _percent(value: Any) -> str:
    return "" if value is None else f"{100.0 * float(value):.2f}%"


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


# --- input checks ----------------------------------------------------------------------------------------
def _require(doc: object, name: str, keys: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping):
        raise TypeError(f"`{name}` must be a mapping, got {type(doc).__name__}")
    missing = [k for k in keys if k not in doc]
    if missing:
        raise ValueError(f"`{name}` must have keys {list(keys)}, missing {missing}")
    return doc


def _check_inputs(portfolio_doc: object, selection_doc: object, gate_doc: object, drops: object, plots: object) -> str:
    gate = _require(gate_doc, "gate_doc", ("run_id", "passed", "checks"))
    run_ids = {"gate_doc": gate["run_id"]}
    if selection_doc is not None:
        selection = _require(
            selection_doc,
            "selection_doc",
            ("n_assets", "n_clusters", "stage_reached", "atoms", "vetoes", "scores"),
        )
        if "run_id" in selection:
            run_ids["selection_doc"] = selection["run_id"]
    if portfolio_doc is not None:
        portfolio = _require(portfolio_doc, "portfolio_doc", ("metadata", "profiles"))
        run_ids["portfolio_doc"] = _require(portfolio["metadata"], "portfolio_doc['metadata']", ("run_id",))["run_id"]
    if len(set(run_ids.values())) != 1:
        raise ValueError(f"the documents must belong to one run, got run ids {run_ids}")
    if not isinstance(drops, list) or not all(isinstance(d, Mapping) for d in drops):
        raise TypeError(f"`drops` must be a list of mappings (returns_drops.json), got {type(drops).__name__}")
    if not isinstance(plots, Mapping):
        raise TypeError(f"`plots` must be a mapping of name -> relative PNG file name, got {type(plots).__name__}")
    for name, file_name in plots.items():
        if not isinstance(file_name, str) or not _PLOT_FILE.match(file_name) or ".." in file_name.split("/"):
            raise ValueError(
                f"`plots[{name!r}]` must be a relative file name in [A-Za-z0-9_.-/] without '..', got {file_name!r}"
            )
    return str(gate["run_id"])


# --- sections --------------------------------------------------------------------------------------------
def _header(
    run_id: str,
    portfolio_doc: Mapping | None,
    selection_doc: Mapping | None,
    gate_doc: Mapping,
    annualisation: Mapping | None,
) -> list[str]:
    metadata = portfolio_doc["metadata"] if portfolio_doc is not None else {}
    as_of = metadata.get("as_of") or (selection_doc or {}).get("as_of") or "not known"
    manifest = metadata.get("manifest_sha256")
    rows = [
        ("run id", run_id),
        ("as of", as_of),
        ("manifest sha256", f"`{manifest}`" if manifest else "not known (no portfolio document)"),
        ("foundation gate", "passed" if gate_doc["passed"] else "FAILED"),
    ]
    if annualisation is not None:
        grid = annualisation["grid"]
        rows += [
            ("returns grid", "every day (24/7)" if grid == "24/7" else f"{grid} sessions"),
            ("periods per year", f"{annualisation['periods_per_year']} (annualised mean, covariance and Sharpe)"),
        ]
    return [f"# Run report: {run_id}", "", *_table(("field", "value"), rows)]


def _gate_section(gate_doc: Mapping, drops: list[Mapping[str, Any]]) -> list[str]:
    checks = gate_doc["checks"]
    lines = [f"## Foundation gate: {'passed' if gate_doc['passed'] else 'FAILED'}", ""]
    lines += _table(
        ("check", "passed", "message"),
        [(name, bool(checks[name].get("passed")), checks[name].get("message")) for name in sorted(checks)],
    )
    lines += [f"### Returns drops ({len(drops)})", ""]
    if not drops:
        return [*lines, "No symbol or date was dropped from the returns matrix.", ""]
    columns = ("axis", "key", "stage", "reason", "observed", "threshold")
    ordered = sorted(drops, key=lambda d: (str(d.get("axis")), str(d.get("key")), str(d.get("stage"))))
    return lines + _table(columns, [tuple(d.get(c) for c in columns) for d in ordered])


def _selection_section(selection_doc: Mapping | None) -> list[str]:
    lines = ["## Selection", ""]
    if selection_doc is None:
        return [*lines, "Not computed: the gate failed or the selection has not run yet.", ""]
    atoms = selection_doc["atoms"]
    lines += _table(
        ("method", "n assets", "n clusters", "stage reached", "met minimum", "atoms"),
        [
            (
                selection_doc.get("method"),
                selection_doc["n_assets"],
                selection_doc["n_clusters"],
                selection_doc["stage_reached"],
                selection_doc.get("met_minimum"),
                len(atoms),
            )
        ],
    )
    scores, admitted = selection_doc["scores"], selection_doc.get("admitted_at", {})
    lines += [f"### Atoms ({len(atoms)})", ""]
    lines += _table(
        ("symbol", "direction", "cluster", "score", "admitted at stage"),
        [
            (a["symbol"], a["direction"], a["cluster"], scores.get(a["symbol"]), admitted.get(a["symbol"]))
            for a in sorted(atoms, key=lambda a: (a["cluster"], a["symbol"]))
        ],
    )
    vetoes = selection_doc["vetoes"]
    lines += [f"### Vetoes ({len(vetoes)})", ""]
    if not vetoes:
        return [*lines, "No veto.", ""]
    columns = ("symbol", "stage", "reason", "feature", "observed", "threshold")
    ordered = sorted(vetoes, key=lambda v: (str(v.get("symbol")), int(v.get("stage") or 0), str(v.get("reason"))))
    return lines + _table(columns, [tuple(v.get(c) for c in columns) for v in ordered])


def _optimisation_section(portfolio_doc: Mapping | None) -> list[str]:
    lines = ["## Optimisation", ""]
    if portfolio_doc is None:
        return [*lines, "Not computed: the gate failed or the optimisation has not run yet.", ""]
    profiles = portfolio_doc["profiles"]
    summary = []
    for name in sorted(profiles):
        entry, report = profiles[name], profiles[name].get("report") or {}
        weights = [float(r["Weight"]) for r in entry["rows"]]
        summary.append(
            (
                name,
                entry["status"],
                report.get("solver"),
                report.get("objective"),
                sum(abs(w) >= HOLDING_THRESHOLD for w in weights),
                _percent(max(weights)) if weights else None,
                entry.get("reason"),
            )
        )
    lines += _table(("profile", "status", "solver", "objective", "holdings", "largest weight", "reason"), summary)
    for name in sorted(profiles):
        entry = profiles[name]
        lines += [f"### Weights: {name}", ""]
        if not entry["rows"]:
            lines += [f"{entry['status'].capitalize()}: {entry.get('reason') or 'no weights'}", ""]
            continue
        rows = sorted(entry["rows"], key=lambda r: (-float(r["Weight"]), r["Symbol"]))
        lines += _table(
            ("symbol", "direction", "weight", "net weight", "cluster", "sector"),
            [
                (
                    r["Symbol"],
                    r["Direction"],
                    _percent(r["Weight"]),
                    _percent(r["Net_Weight"]),
                    r.get("Cluster_ID"),
                    r.get("Sector"),
                )
                for r in rows
            ],
        )
    return lines


def _plots_section(plots: Mapping[str, str]) -> list[str]:
    if not plots:
        return []
    lines = ["## Plots", ""]
    for name in sorted(plots):
        lines += [f"### {name}", "", f"![{name}]({plots[name]})", ""]
    return lines


def build_run_report(
    *,
    portfolio_doc: Mapping[str, Any] | None,
    selection_doc: Mapping[str, Any] | None,
    gate_doc: Mapping[str, Any],
    drops: list[Mapping[str, Any]],
    plots: Mapping[str, str],
    annualisation: Mapping[str, Any] | None = None,
) -> str:
    """Write the Markdown report of one run from its documents.

    Parameters
    ----------
    portfolio_doc : mapping or None
        ``portfolio_flattened.json`` (see :mod:`alpha_assets.alpha.portfolio`); None when the optimisation
        did not run (e.g. the gate failed), which the report says.
    selection_doc : mapping or None
        ``selection.json`` (``SelectionResult.to_json_dict`` plus ``run_id`` and ``as_of``); None when the
        selection did not run.
    gate_doc : mapping
        ``gate_verdict.json``: ``run_id``, ``passed`` and ``checks`` (name -> ``passed``, ``message``, ...).
    drops : list of mapping
        ``returns_drops.json``: each symbol or date dropped from the returns (``axis``, ``key``, ``stage``,
        ``reason``, ``observed``, ``threshold``).
    plots : mapping of str to str
        Plot name -> PNG file name relative to the report's folder (``weights.png``), shown in name order.
    annualisation : mapping, optional
        ``grid`` (``24/7`` or the exchange calendars of the returns' rows, as in ``snapshot.json``) and
        ``periods_per_year`` the optimiser annualised with; shown in the header when given.

    Returns
    -------
    str
        Markdown: a header (run id, as-of date, manifest sha256, gate outcome); the gate's checks and the
        returns drops; the selection summary, atoms and vetoes; per profile its status, solver, objective,
        number of holdings (``|Weight| >= 1e-9``), largest weight and the reason of a failure, then each
        profile's weights (percent of capital, largest first); then the images. Tables are sorted, numbers
        formatted with 6 significant digits, weights in percent with 2 decimals; no timestamp, so equal
        documents give equal text. Ends with a newline.

    Raises
    ------
    TypeError
        If a document is not a mapping, ``drops`` not a list of mappings or ``plots`` not a mapping.
    ValueError
        If a document misses a key the report needs, the documents name different run ids, or a plot file
        name is absolute, contains ``..`` or characters outside ``[A-Za-z0-9_.-/]``.
    """
    run_id = _check_inputs(portfolio_doc, selection_doc, gate_doc, drops, plots)
    lines = [
        *_header(run_id, portfolio_doc, selection_doc, gate_doc, annualisation),
        *_gate_section(gate_doc, drops),
        *_selection_section(selection_doc),
        *_optimisation_section(portfolio_doc),
        *_plots_section(plots),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


# --- html ------------------------------------------------------------------------------------------------
_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #1a1a1a; line-height: 1.45; }
h1, h2, h3 { line-height: 1.2; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #d0d0d0; padding: .25rem .6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } tr:nth-child(even) td { background: #fafafa; }
code { font-family: ui-monospace, monospace; font-size: .85rem; background: #f3f3f3; padding: 0 .2rem; }
figure { margin: 1rem 0; } img { max-width: 100%; height: auto; border: 1px solid #eee; }
""".strip()


def _inline(text: str) -> str:
    return _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", html.escape(text, quote=False))


def _cells(line: str) -> list[str]:
    parts = _CELL_SPLIT.split(line.strip())
    return [p.strip().replace("\\|", "|") for p in parts[1:-1]]


def _html_table(block: list[str]) -> list[str]:
    head = "".join(f"<th>{_inline(c)}</th>" for c in _cells(block[0]))
    body = ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in _cells(row)) + "</tr>" for row in block[2:]]
    return ["<table>", f"<thead><tr>{head}</tr></thead>", "<tbody>", *body, "</tbody>", "</table>"]


def render_html(markdown_text: str, title: str, *, images: Mapping[str, bytes] | None = None) -> str:
    """Render the report's Markdown as one HTML page with its style sheet inline.

    Parameters
    ----------
    markdown_text : str
        Markdown from :func:`build_run_report` (or any text in the same subset: ``#`` to ``######``
        headers, pipe tables with a ``| --- |`` separator line, ``![alt](file)`` image lines, paragraphs
        with inline ``code``). Other syntax is shown as escaped text.
    title : str
        The page title.
    images : mapping of str to bytes, optional
        Image file name (as written in the Markdown) -> PNG bytes. Those images are inlined as ``data:``
        URLs, making the page self-contained; an image not given keeps its relative ``src``.

    Returns
    -------
    str
        A complete HTML5 document, no script, no external style sheet or font; deterministic.

    Raises
    ------
    TypeError
        If ``markdown_text`` or ``title`` is not a str, or ``images`` not a mapping of str to bytes.
    ValueError
        If an image given in ``images`` is not a PNG.
    """
    if not isinstance(markdown_text, str):
        raise TypeError(f"`markdown_text` must be a str, got {type(markdown_text).__name__}")
    if not isinstance(title, str):
        raise TypeError(f"`title` must be a str, got {type(title).__name__}")
    if images is not None and not isinstance(images, Mapping):
        raise TypeError(f"`images` must be a mapping of file name -> PNG bytes, got {type(images).__name__}")
    sources = {name: png_data_url(png) for name, png in (images or {}).items()}
    body: list[str] = []
    paragraph: list[str] = []
    lines = markdown_text.splitlines()

    def flush() -> None:
        if paragraph:
            body.append("<p>" + _inline(" ".join(paragraph)) + "</p>")
            paragraph.clear()

    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        if line.startswith("|"):
            flush()
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append(lines[i].rstrip())
                i += 1
            if len(block) >= 2 and _SEPARATOR.match(block[1].replace(" ", "")):
                body += _html_table(block)
            else:
                body.append("<p>" + "<br>".join(_inline(b) for b in block) + "</p>")
            continue
        header, image = _HEADER.match(line), _IMAGE.match(line)
        if not line:
            flush()
        elif header:
            flush()
            level = len(header.group(1))
            body.append(f"<h{level}>{_inline(header.group(2))}</h{level}>")
        elif image:
            flush()
            alt, src = image.group(1), image.group(2)
            body.append(
                f'<figure><img src="{html.escape(sources.get(src, src))}" alt="{html.escape(alt)}">'
                f"<figcaption>{html.escape(alt)}</figcaption></figure>"
            )
        else:
            paragraph.append(line)
        i += 1
    flush()
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{html.escape(title)}</title>",
            f"<style>\n{_CSS}\n</style>",
            "</head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )
