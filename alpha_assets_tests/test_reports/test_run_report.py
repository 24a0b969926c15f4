"""The Markdown run report and its HTML rendering (``reports.run_report``) on a real pipeline run's documents.

Exercises the header, the gate and drops tables, the selection summary and vetoes, the per-profile summary
(holdings, largest weight, the failed profile's reason) and weight tables, the image lines, the report of a
run whose gate failed, determinism, the HTML page (tables, images inlined or relative, escaping, nothing
external) and every documented input error. Writing the files is the wiring's job and is not tested here.
"""

from __future__ import annotations

import copy
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from alpha_assets.alpha.foundation_gate import run_gate
from alpha_assets.alpha.pipeline import gate_document
from alpha_assets.alpha.selection_params import FEATURE_COLUMNS, GateParams
from alpha_assets.reports.plots import plot_weights
from alpha_assets.reports.run_report import build_run_report, render_html
from alpha_assets_tests.test_reports.conftest import REP_FAILED_PROFILE, REP_RUN_ID, REP_SHA

PLOTS = {
    "weights": "weights.png",
    "cluster_correlation": "cluster_correlation.png",
    "equity_curves": "plots/equity_curves.png",
}


def _report(rep_run, **overrides) -> str:
    arguments = {
        "portfolio_doc": rep_run.portfolio_doc,
        "selection_doc": rep_run.selection_doc,
        "gate_doc": rep_run.gate_doc,
        "drops": rep_run.drops,
        "plots": PLOTS,
        **overrides,
    }
    return build_run_report(**arguments)


def _table_after(markdown: str, heading: str) -> list[list[str]]:
    """The body rows of the first table after ``heading``."""
    lines = markdown.splitlines()
    start = lines.index(heading)
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
        elif rows:
            break
    return rows[2:] if rows and set(rows[1]) == {"---"} else rows[1:]


def test_build_run_report_header_names_run_as_of_and_manifest(rep_run):
    markdown = _report(rep_run)
    assert markdown.startswith(f"# Run report: {REP_RUN_ID}\n")
    header = dict(_table_after(markdown, f"# Run report: {REP_RUN_ID}"))
    assert header == {
        "run id": REP_RUN_ID,
        "as of": rep_run.portfolio_doc["metadata"]["as_of"],
        "manifest sha256": f"`{REP_SHA}`",
        "foundation gate": "passed",
    }


def test_build_run_report_gate_and_drops_tables_list_every_check_and_drop(rep_run):
    markdown = _report(rep_run)
    checks = _table_after(markdown, "## Foundation gate: passed")
    assert [row[0] for row in checks] == sorted(rep_run.gate_doc["checks"])
    assert all(row[1] == "yes" for row in checks)
    drops = _table_after(markdown, f"### Returns drops ({len(rep_run.drops)})")
    assert [(row[0], row[1], row[2]) for row in drops] == [(d["axis"], d["key"], d["stage"]) for d in rep_run.drops]


def test_build_run_report_selection_summary_atoms_and_vetoes(rep_run):
    markdown = _report(rep_run)
    sel = rep_run.selection_doc
    summary = _table_after(markdown, "## Selection")
    assert summary == [
        [
            sel["method"],
            str(sel["n_assets"]),
            str(sel["n_clusters"]),
            str(sel["stage_reached"]),
            "yes" if sel["met_minimum"] else "no",
            str(len(sel["atoms"])),
        ]
    ]
    atoms = _table_after(markdown, f"### Atoms ({len(sel['atoms'])})")
    assert sorted(row[0] for row in atoms) == sorted(a["symbol"] for a in sel["atoms"])
    vetoes = _table_after(markdown, f"### Vetoes ({len(sel['vetoes'])})")
    assert len(vetoes) == len(sel["vetoes"]) > 0
    assert {row[2] for row in vetoes} == {v["reason"] for v in sel["vetoes"]}


def test_build_run_report_profile_summary_has_every_profile_and_the_failed_reason(rep_run):
    markdown = _report(rep_run)
    profiles = rep_run.portfolio_doc["profiles"]
    summary = {row[0]: row for row in _table_after(markdown, "## Optimisation")}
    assert sorted(summary) == sorted(profiles)
    failed = summary[REP_FAILED_PROFILE]
    assert failed[1] == "failed" and failed[4] == "0" and failed[5] == ""
    assert failed[6] == profiles[REP_FAILED_PROFILE]["reason"] and "max_weight" in failed[6]
    for name, entry in profiles.items():
        if entry["status"] != "optimal":
            continue
        weights = np.array([r["Weight"] for r in entry["rows"]])
        assert summary[name][2] == entry["report"]["solver"]
        assert summary[name][4] == str(int((np.abs(weights) >= 1e-9).sum()))
        assert summary[name][5] == f"{100 * weights.max():.2f}%"
    assert f"### Weights: {REP_FAILED_PROFILE}\n\nFailed: {profiles[REP_FAILED_PROFILE]['reason']}\n" in markdown


def test_build_run_report_weight_tables_largest_first_in_percent(rep_run):
    markdown = _report(rep_run)
    rows = _table_after(markdown, "### Weights: hrp")
    expected = sorted(rep_run.portfolio_doc["profiles"]["hrp"]["rows"], key=lambda r: (-r["Weight"], r["Symbol"]))
    assert [row[0] for row in rows] == [r["Symbol"] for r in expected]
    assert [row[2] for row in rows] == [f"{100 * r['Weight']:.2f}%" for r in expected]
    short = [row for row in rows if row[1] == "SHORT"]
    assert short and all(row[3].startswith("-") for row in short)


def test_build_run_report_images_by_relative_path_in_name_order(rep_run):
    markdown = _report(rep_run)
    images = re.findall(r"^!\[([^\]]+)\]\(([^)]+)\)$", markdown, flags=re.MULTILINE)
    assert images == sorted(PLOTS.items())


def test_build_run_report_same_documents_same_text(rep_run):
    assert _report(rep_run) == _report(copy.deepcopy(rep_run))
    assert _report(rep_run).endswith("\n") and not _report(rep_run).endswith("\n\n")


def _features_frame(rep_run) -> pd.DataFrame:
    """As-of feature rows of every symbol, dated at the last return: the features check passes."""
    frame = pd.DataFrame({"symbol": list(rep_run.returns.columns), "date": rep_run.returns.index[-1]})
    for name in FEATURE_COLUMNS:
        frame[name] = 0.5
    return frame


def test_build_run_report_failed_gate_without_downstream_documents(rep_run):
    returns = rep_run.returns.copy()
    returns.iloc[10, 2] = np.nan
    verdicts = run_gate(returns, _features_frame(rep_run), GateParams(), required_columns=FEATURE_COLUMNS)
    gate = gate_document(REP_RUN_ID, verdicts)
    markdown = build_run_report(portfolio_doc=None, selection_doc=None, gate_doc=gate, drops=[], plots={})
    assert "## Foundation gate: FAILED" in markdown
    assert dict(_table_after(markdown, f"# Run report: {REP_RUN_ID}"))["foundation gate"] == "FAILED"
    no_nan = {row[0]: row for row in _table_after(markdown, "## Foundation gate: FAILED")}["no_nan"]
    assert no_nan[1] == "no" and no_nan[2] == gate["checks"]["no_nan"]["message"]
    assert "No symbol or date was dropped" in markdown
    assert "## Selection\n\nNot computed" in markdown and "## Optimisation\n\nNot computed" in markdown
    assert "## Plots" not in markdown


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"gate_doc": []}, TypeError, "`gate_doc` must be a mapping"),
        (
            {"gate_doc": {"run_id": REP_RUN_ID}},
            ValueError,
            r"`gate_doc` must have keys .* missing \['passed', 'checks'\]",
        ),
        ({"selection_doc": {"run_id": REP_RUN_ID}}, ValueError, "`selection_doc` must have keys"),
        (
            {"portfolio_doc": {"profiles": {}}},
            ValueError,
            r"`portfolio_doc` must have keys .* missing \['metadata'\]",
        ),
        (
            {"gate_doc": {"run_id": "other", "passed": True, "checks": {}}},
            ValueError,
            "must belong to one run",
        ),
        ({"drops": {"axis": "symbol"}}, TypeError, "`drops` must be a list of mappings"),
        ({"plots": ["weights.png"]}, TypeError, "`plots` must be a mapping"),
        ({"plots": {"w": "/tmp/w.png"}}, ValueError, r"`plots\['w'\]` must be a relative file name"),
        ({"plots": {"w": "../w.png"}}, ValueError, r"without '\.\.'"),
        ({"plots": {"w": "my plot.png"}}, ValueError, "must be a relative file name"),
    ],
    ids=[
        "gate-not-mapping",
        "gate-keys",
        "selection-keys",
        "portfolio-keys",
        "run-ids-differ",
        "drops-dict",
        "plots-list",
        "plot-absolute",
        "plot-parent",
        "plot-space",
    ],
)
def test_build_run_report_bad_input_raises(rep_run, overrides, error, match):
    with pytest.raises(error, match=match):
        _report(rep_run, **overrides)


# --- html ------------------------------------------------------------------------------------------------
class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.opened: dict[str, int] = {}
        self.closed: dict[str, int] = {}
        self.images: list[dict[str, str | None]] = []
        self.cells: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        self.opened[tag] = self.opened.get(tag, 0) + 1
        if tag == "img":
            self.images.append(dict(attrs))
        self._in_cell = tag == "td"

    def handle_endtag(self, tag):
        self.closed[tag] = self.closed.get(tag, 0) + 1
        self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.cells.append(data)


def _parse(page: str) -> _Tags:
    tags = _Tags()
    tags.feed(page)
    return tags


def test_render_html_has_every_table_and_relative_images(rep_run):
    markdown = _report(rep_run)
    page = render_html(markdown, f"Run {REP_RUN_ID}")
    tags = _parse(page)
    n_tables = sum(1 for line in markdown.splitlines() if line.startswith("| ---"))
    assert tags.opened["table"] == tags.closed["table"] == n_tables
    assert [i["src"] for i in tags.images] == [PLOTS[name] for name in sorted(PLOTS)]
    assert page.startswith("<!DOCTYPE html>") and f"<title>Run {REP_RUN_ID}</title>" in page
    assert "max |return|" in "".join(tags.cells)  # the escaped pipe of a message comes back as a pipe
    assert not re.search(r"https?://|<script|<link", page)


def test_render_html_inlines_given_images_as_data_urls(rep_run):
    png = plot_weights(rep_run.portfolio_doc)
    page = render_html(_report(rep_run), "run", images={"weights.png": png})
    sources = {i["alt"]: i["src"] for i in _parse(page).images}
    assert sources["weights"].startswith("data:image/png;base64,")
    assert sources["cluster_correlation"] == "cluster_correlation.png"


def test_render_html_escapes_markup_from_the_documents(rep_run):
    doc = copy.deepcopy(rep_run.portfolio_doc)
    doc["profiles"][REP_FAILED_PROFILE]["reason"] = "<script>alert(1)</script> & more"
    page = render_html(_report(rep_run, portfolio_doc=doc), "a <b> title")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
    assert "<title>a &lt;b&gt; title</title>" in page


def test_render_html_same_text_same_page(rep_run):
    markdown = _report(rep_run)
    assert render_html(markdown, "t") == render_html(markdown, "t")


def test_render_html_subset_headers_paragraphs_and_code():
    page = render_html("## Hello\n\nline one\nline `two`\n\n| not a table", "t")
    assert "<h2>Hello</h2>" in page
    assert "<p>line one line <code>two</code></p>" in page
    assert "<p>| not a table</p>" in page


@pytest.mark.parametrize(
    ("markdown", "title", "images", "error", "match"),
    [
        (b"# x", "t", None, TypeError, "`markdown_text` must be a str"),
        ("# x", None, None, TypeError, "`title` must be a str"),
        ("# x", "t", [b"png"], TypeError, "`images` must be a mapping"),
        ("# x", "t", {"a.png": b"not a png"}, ValueError, "PNG signature"),
    ],
    ids=["markdown-bytes", "title-none", "images-list", "image-not-png"],
)
def test_render_html_bad_input_raises(markdown, title, images, error, match):
    with pytest.raises(error, match=match):
        render_html(markdown, title, images=images)


def test_run_report_header_names_the_returns_grid_and_its_annualisation(rep_run):
    assert "returns grid" not in _report(rep_run)
    equities = _report(rep_run, annualisation={"grid": "XNYS", "periods_per_year": 252})
    assert "| returns grid | XNYS sessions |" in equities
    assert "| periods per year | 252 (annualised mean, covariance and Sharpe) |" in equities
    crypto = _report(rep_run, annualisation={"grid": "24/7", "periods_per_year": 365})
    assert "| returns grid | every day (24/7) |" in crypto
