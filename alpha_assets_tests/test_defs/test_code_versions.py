"""Asset code versions change exactly when the code they version changes (alpha_assets.defs.versions)."""

from __future__ import annotations

import sys

import pytest

from alpha_assets.definitions import defs
from alpha_assets.defs.versions import ASSET_CODE_MODULES, asset_code_version, code_version


def test_code_versions_every_asset_carries_the_hash_of_its_modules():
    specs = {spec.key: spec for spec in defs.resolve_all_asset_specs()}
    assert set(specs) == set(ASSET_CODE_MODULES)
    for key, spec in specs.items():
        assert spec.code_version == asset_code_version(key)
    assert len({spec.code_version for spec in specs.values()}) == len(specs)


def test_code_versions_change_with_the_source_and_only_with_it(tmp_path, monkeypatch):
    package = tmp_path / "versioned_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    module = package / "compute.py"
    module.write_text("def double(x):\n    return 2 * x\n")
    (package / "other.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "versioned_pkg", raising=False)
    names = ("versioned_pkg.compute", "versioned_pkg.other")
    first = code_version(*names)
    assert code_version(*names) == first
    assert code_version(*reversed(names)) == first
    module.write_text("def double(x):\n    return x + x\n")
    assert code_version(*names) != first
    module.write_text("def double(x):\n    return 2 * x\n")
    assert code_version(*names) == first
    assert code_version("versioned_pkg.compute") != first


def test_code_versions_name_a_missing_module():
    with pytest.raises(ModuleNotFoundError, match="alpha_assets.no_such_module"):
        code_version("alpha_assets.no_such_module")
