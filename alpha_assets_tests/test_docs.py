"""The documents against the code they describe: counts, column lists, verdict lists and links.

Every count a document states is checked here against the code it counts, so a changed feature list or a new
verdict fails a test instead of leaving a stale figure behind.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from alpha_assets.dataops.audit.records import Verdict
from alpha_assets.features import matrix

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([PROJECT_ROOT / "README.md", *(PROJECT_ROOT / "docs").glob("*.md"), PROJECT_ROOT / "bench" / "README.md"])
FEATURE_SECTIONS = {
    "Moving-average votes": matrix.MA_VOTE_COLUMNS,
    "Oscillator votes": matrix.OTHER_VOTE_COLUMNS,
    "Rating": matrix.RATING_COLUMNS,
    "Indicator values": matrix.INDICATOR_COLUMNS,
    "Statistics": matrix.STATISTIC_COLUMNS,
}


def _expand(name: str) -> list[str]:
    """``sma_{10,20}`` -> ``sma_10``, ``sma_20`` (the documents' shorthand for a family of columns)."""
    parts = re.split(r"\{([^}]*)\}", name)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def _feature_sections() -> dict[str, tuple[int, list[str]]]:
    """Heading -> (count in the heading, columns named in the first cell of its table rows), in doc order."""
    text = (PROJECT_ROOT / "docs" / "features.md").read_text()
    sections = {}
    for match in re.finditer(r"^### (.+?) \((\d+)\)\n(.*?)(?=^##)", text, re.M | re.S):
        columns = []
        for row in re.findall(r"^\| (`.+?) \|", match.group(3), re.M):
            columns += [c for name in re.findall(r"`([^`]+)`", row) for c in _expand(name)]
        sections[match.group(1)] = (int(match.group(2)), columns)
    return sections


def test_features_doc_sections_count_and_name_exactly_the_code_columns_in_order():
    sections = _feature_sections()
    assert list(sections) == list(FEATURE_SECTIONS)
    for title, code_columns in FEATURE_SECTIONS.items():
        count, documented = sections[title]
        assert count == len(code_columns), f"docs/features.md '{title} ({count})': the code has {len(code_columns)}"
        assert sorted(documented) == sorted(code_columns), f"docs/features.md '{title}' lists other columns"
    assert [c for title in FEATURE_SECTIONS for c in FEATURE_SECTIONS[title]] == list(matrix.FEATURE_COLUMNS)


@pytest.mark.parametrize(
    ("document", "pattern"),
    [
        ("README.md", r"with a verdict ((?:\w+ / )+\w+)"),
        ("docs/lakehouse.md", r"`verdict` \(((?:`\w+`,?\s+)+or\s+`\w+`)\)"),
    ],
)
def test_verdict_lists_in_docs_name_every_verdict(document, pattern):
    match = re.search(pattern, (PROJECT_ROOT / document).read_text())
    assert match, f"{document}: no verdict list found"
    assert set(re.findall(r"[A-Z_]+", match.group(1))) == {v.value for v in Verdict}


def _inside_repository(document: Path, target: str) -> bool:
    """Whether ``target`` names an existing path of the repository, from the document's folder or the root."""
    for base in (document.parent, PROJECT_ROOT):
        path = (base / target).resolve()
        if path.is_relative_to(PROJECT_ROOT) and path.exists():
            return True
    return False


@pytest.mark.parametrize("document", DOCS, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_docs_link_only_inside_the_repository(document):
    text = document.read_text()
    targets = re.findall(r"\]\(([^)#\s]+)", text) + re.findall(r"`((?:\.\./)+[^`]+)`", text)
    outside = [t for t in targets if "://" not in t and not _inside_repository(document, t)]
    assert outside == [], f"{document.name} points outside the repository or to nothing: {outside}"


def test_readme_layout_lists_exactly_the_package_tree():
    readme = (PROJECT_ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout") :].split("```")[1]
    listed = set(re.findall(r"^  ([a-z_]+(?:\.py|/))", layout, re.M))
    package = PROJECT_ROOT / "alpha_assets"
    tree = {p.name + "/" for p in package.iterdir() if p.is_dir() and p.name != "__pycache__"}
    tree |= {p.name for p in package.glob("*.py") if p.name != "__init__.py"}
    assert listed == tree
    for name in ("audit/records.py", "audit/engine.py", "candidates.py"):
        assert (package / "dataops" / name).is_file(), name
