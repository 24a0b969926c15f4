"""docs/manifest.md and docs/manifest.schema.json against the parameter dataclasses they are generated from.

The tests read the checked-in files and never write them: when one fails, run ``make docs`` and commit.
The schema is checked with ``jsonschema`` (the standard Python validator) against the shipped manifest and
against the same refusals the manifest parser makes.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from alpha_assets.definitions import MANIFEST_SECTIONS
from alpha_assets.errors import ManifestError
from alpha_assets.manifest import (
    DEFAULT_MANIFEST,
    REFERENCE_MARKDOWN,
    REFERENCE_SCHEMA,
    load_profile,
    manifest_reference,
    manifest_schema,
    write_reference,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STALE = "is stale: run `make docs` and commit the regenerated docs/manifest.md and docs/manifest.schema.json"


def test_manifest_reference_markdown_is_current():
    assert (PROJECT_ROOT / REFERENCE_MARKDOWN).read_text() == manifest_reference(MANIFEST_SECTIONS), (
        f"{REFERENCE_MARKDOWN} {STALE}"
    )


def test_manifest_schema_is_current():
    assert json.loads((PROJECT_ROOT / REFERENCE_SCHEMA).read_text()) == manifest_schema(MANIFEST_SECTIONS), (
        f"{REFERENCE_SCHEMA} {STALE}"
    )


def test_manifest_reference_names_every_key_of_every_section_with_its_default():
    text = manifest_reference(MANIFEST_SECTIONS)
    assert "| `max_daily_return` | number | `5.0` | >= 0.0 |" in text
    assert "| `periods_per_year` | integer or null | `null` | [1, 366] |" in text
    assert '| `covariance` | one of `sample`, `ledoit_wolf` | `"ledoit_wolf"` |' in text
    assert "## `selection.policy`" in text and "| `max_kurtosis` | number or null | `20.0` | >= 0.0 |" in text


def test_write_reference_writes_what_the_check_compares(tmp_path):
    (tmp_path / "docs").mkdir()
    written = write_reference(MANIFEST_SECTIONS, tmp_path)
    assert written == [tmp_path / REFERENCE_MARKDOWN, tmp_path / REFERENCE_SCHEMA]
    assert written[0].read_text() == manifest_reference(MANIFEST_SECTIONS)
    assert json.loads(written[1].read_text()) == manifest_schema(MANIFEST_SECTIONS)


@pytest.fixture(scope="module")
def validator():
    schema = manifest_schema(MANIFEST_SECTIONS)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_manifest_schema_accepts_the_shipped_manifest(validator):
    assert list(validator.iter_errors(json.loads(DEFAULT_MANIFEST.read_text()))) == []


def _with(path: tuple[str, ...], value: object) -> dict:
    manifest = copy.deepcopy(json.loads(DEFAULT_MANIFEST.read_text()))
    node = manifest
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return manifest


@pytest.mark.parametrize(
    "path, value",
    [
        (("defaults", "audit", "max_daily_return"), -1.0),
        (("defaults", "optimization", "risk_free_rate"), 2.0),
        (("defaults", "optimization", "covariance"), "shrunk"),
        (("defaults", "discovery", "top_n"), "fifty"),
        (("defaults", "discovery", "exclude_leveraged"), 1),
        (("defaults", "audit", "max_daily_retrun"), 5.0),
        (("defaults", "audti"), {}),
        (("profiles", "crypto", "selection", "policy", "min_efficiency"), 1.5),
        (("defaults", "selection", "clustering", "windows"), [60, -1]),
    ],
    ids=[
        "below-min",
        "above-max",
        "enum",
        "type",
        "bool-for-bool",
        "unknown-key",
        "unknown-section",
        "nested",
        "list-item",
    ],
)
def test_manifest_schema_refuses_what_the_parser_refuses(validator, tmp_path, path, value):
    manifest = _with(path, value)
    assert list(validator.iter_errors(manifest)), f"the schema accepts {path}={value!r}"
    file = tmp_path / "manifest.json"
    file.write_text(json.dumps(manifest))
    profile = path[1] if path[0] == "profiles" else None
    with pytest.raises(ManifestError):
        load_profile(file, profile, sections=MANIFEST_SECTIONS)
