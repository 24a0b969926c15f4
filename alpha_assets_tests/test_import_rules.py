"""The architecture's import rules, checked by walking every module's AST (no code is imported).

Wiring (``definitions.py``, ``cli.py``, ``defs/``, ``orchestration/``) may import anything; the pure packages
may not import Dagster; only ``sources/`` imports ccxt; the Alpha side never imports the sources, the DataOps
logic (``dataops/``) or the DataOps wiring; ``features/`` and ``alpha/`` never import each other; the
lakehouse (storage only) imports no other package; nothing but the wiring imports ``defs/``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "alpha_assets"
WIRING = ("alpha_assets.definitions", "alpha_assets.cli", "alpha_assets.defs", "alpha_assets.orchestration")
PURE_SHARED = (
    "alpha_assets.lakehouse",
    "alpha_assets.errors",
    "alpha_assets.typing",
    "alpha_assets.manifest",
    "alpha_assets.parameters",
    "alpha_assets.netguard",
    "alpha_assets.validation",
    "alpha_assets.processes",
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _within(name: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(name == p or name.startswith(p + ".") for p in prefixes)


MODULES = {_module_name(p): _imports(p) for p in sorted(PACKAGE_ROOT.rglob("*.py"))}


def _violations(importer_filter, forbidden) -> list[str]:
    return sorted(
        f"{module} imports {imported}"
        for module, imports in MODULES.items()
        if importer_filter(module)
        for imported in imports
        if forbidden(imported)
    )


def test_import_rules_found_the_package():
    assert "alpha_assets.lakehouse.paths" in MODULES
    assert "alpha_assets.dataops.audit.engine" in MODULES
    assert "alpha_assets.orchestration.runner" in MODULES
    assert "alpha_assets.definitions" in MODULES


def test_import_rules_only_wiring_imports_dagster():
    assert _violations(lambda m: not _within(m, WIRING), lambda i: _within(i, "dagster")) == []


def test_import_rules_only_sources_imports_ccxt():
    assert _violations(lambda m: not _within(m, "alpha_assets.sources"), lambda i: _within(i, "ccxt")) == []


def test_import_rules_only_dataops_wiring_imports_dataops_logic():
    allowed = ("alpha_assets.dataops", "alpha_assets.defs.dataops", "alpha_assets.definitions", "alpha_assets.cli")
    assert _violations(lambda m: not _within(m, allowed), lambda i: _within(i, "alpha_assets.dataops")) == []


def test_import_rules_only_dataops_wiring_imports_sources():
    allowed = (
        "alpha_assets.sources",
        "alpha_assets.defs.dataops",
        "alpha_assets.definitions",
        "alpha_assets.cli",
    )
    assert _violations(lambda m: not _within(m, allowed), lambda i: _within(i, "alpha_assets.sources")) == []


@pytest.mark.parametrize("side", ["alpha_assets.alpha", "alpha_assets.defs.alpha", "alpha_assets.reports"])
def test_import_rules_alpha_side_never_imports_dataops(side):
    forbidden = (
        "alpha_assets.sources",
        "alpha_assets.dataops",
        "alpha_assets.defs.dataops",
        "ccxt",
        "alpha_assets.features",
    )
    assert _violations(lambda m: _within(m, side), lambda i: _within(i, forbidden)) == []


@pytest.mark.parametrize(
    ("package", "may_also_import"),
    [
        ("alpha_assets.lakehouse", ()),
        ("alpha_assets.features", ()),
        ("alpha_assets.alpha", ()),
        ("alpha_assets.sources", ()),
        ("alpha_assets.reports", ()),
        ("alpha_assets.dataops", ()),
    ],
    ids=["lakehouse", "features", "alpha", "sources", "reports", "dataops"],
)
def test_import_rules_pure_packages_import_only_shared_modules(package, may_also_import):
    own = (package, *PURE_SHARED, *may_also_import)
    assert (
        _violations(
            lambda m: _within(m, package),
            lambda i: _within(i, "alpha_assets") and not _within(i, own) and i != "alpha_assets",
        )
        == []
    )


def test_import_rules_lakehouse_imports_no_other_package():
    own = ("alpha_assets.lakehouse", "alpha_assets.errors", "alpha_assets.typing", "alpha_assets.validation")
    assert (
        _violations(
            lambda m: _within(m, "alpha_assets.lakehouse"),
            lambda i: _within(i, "alpha_assets") and not _within(i, own) and i != "alpha_assets",
        )
        == []
    )


def test_import_rules_nothing_but_wiring_imports_defs():
    assert _violations(lambda m: not _within(m, WIRING), lambda i: _within(i, "alpha_assets.defs")) == []
