"""The manifest loader: profiles laid over defaults, every section validated against its parameter dataclass,
and each kind of bad input refused with a message naming the key and what is allowed.

Uses the real parameter classes of both cycles and the packaged manifest; no Dagster.
"""

from __future__ import annotations

import json

import pytest

from alpha_assets.alpha.clustering import ClusterMethod
from alpha_assets.alpha.optimization_params import OptimizationParams, Profile
from alpha_assets.alpha.pipeline import ALPHA_SECTIONS, alpha_params
from alpha_assets.alpha.selection_params import SelectionParams
from alpha_assets.defs.resources import MANIFEST_SECTIONS, ManifestResource
from alpha_assets.errors import ManifestError
from alpha_assets.manifest import DEFAULT_MANIFEST, load_profile, read_manifest


def _write(tmp_path, document):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(document))
    return path


def test_packaged_manifest_every_profile_validates_for_both_cycles():
    for profile in read_manifest(DEFAULT_MANIFEST, MANIFEST_SECTIONS)["profiles"]:
        load_profile(DEFAULT_MANIFEST, profile, sections=MANIFEST_SECTIONS)


def test_load_profile_lays_profile_over_defaults_key_by_key(tmp_path):
    path = _write(
        tmp_path,
        {
            "defaults": {"optimization": {"periods_per_year": 252, "max_weight": 0.5}},
            "profiles": {"crypto": {"optimization": {"periods_per_year": 365}}},
        },
    )
    resolved = load_profile(path, "crypto", sections=ALPHA_SECTIONS)
    params = resolved.sections["optimization"]
    assert isinstance(params, OptimizationParams)
    assert (params.periods_per_year, params.max_weight) == (365, 0.5)
    assert resolved.document["sections"]["optimization"]["profiles"] == [p.value for p in Profile]


def test_load_profile_without_name_takes_default_profile(tmp_path):
    path = _write(
        tmp_path,
        {"default_profile": "fast", "defaults": {}, "profiles": {"fast": {"returns": {"min_history": 30}}}},
    )
    resolved = load_profile(path, None, sections=ALPHA_SECTIONS)
    assert resolved.name == "fast" and resolved.sections["returns"].min_history == 30


def test_load_profile_nested_enum_and_mapping_round_trip_through_the_frozen_document(tmp_path):
    path = _write(
        tmp_path,
        {
            "defaults": {
                "selection": {
                    "clustering": {"method": "hdbscan", "windows": [30, 90]},
                    "inference": {"feature_weights": {"recommend_all": 2.0, "volatility_60d": -1.0}},
                }
            }
        },
    )
    resolved = load_profile(path, None, sections=ALPHA_SECTIONS)
    selection = resolved.sections["selection"]
    assert isinstance(selection, SelectionParams)
    assert selection.clustering.method is ClusterMethod.HDBSCAN and selection.clustering.windows == (30, 90)
    again = alpha_params(json.loads(json.dumps(resolved.document)))["selection"]
    assert again.clustering == selection.clustering
    assert dict(again.inference.feature_weights) == {"recommend_all": 2.0, "volatility_60d": -1.0}


def test_load_profile_hash_changes_with_any_value_and_not_with_key_order(tmp_path):
    a = load_profile(
        _write(tmp_path, {"defaults": {"gate": {"min_assets": 5, "min_observations": 60}}}),
        None,
        sections=ALPHA_SECTIONS,
    ).sha256
    b = load_profile(
        _write(tmp_path, {"defaults": {"gate": {"min_observations": 60, "min_assets": 5}}}),
        None,
        sections=ALPHA_SECTIONS,
    ).sha256
    c = load_profile(
        _write(tmp_path, {"defaults": {"gate": {"min_assets": 6, "min_observations": 60}}}),
        None,
        sections=ALPHA_SECTIONS,
    ).sha256
    assert a == b != c


@pytest.mark.parametrize(
    ("document", "profile", "message"),
    [
        ({"defaults": {"optimisation": {}}}, None, r"unknown section 'optimisation' in 'defaults'; allowed"),
        (
            {"defaults": {}, "profiles": {"p": {"gate": {"min_asets": 3}}}},
            "p",
            r"'gate\.min_asets' is unknown; allowed keys: \['max_abs_return', 'min_assets', 'min_observations'\]",
        ),
        (
            {"defaults": {"gate": {"min_assets": "five"}}},
            None,
            r"'gate\.min_assets' must be an integer, got 'five'",
        ),
        (
            {"defaults": {"gate": {"min_assets": 2.5}}},
            None,
            r"'gate\.min_assets' must be an integer, got 2\.5",
        ),
        (
            {"defaults": {"gate": {"min_assets": True}}},
            None,
            r"'gate\.min_assets' must be an integer, got True",
        ),
        (
            {"defaults": {"returns": {"max_missing_fraction": 1.5}}},
            None,
            r"'returns\.max_missing_fraction' must be <= 1(\.0)?, got 1\.5",
        ),
        ({"defaults": {"gate": {"min_assets": -1}}}, None, r"'gate\.min_assets' must be >= \d+, got -1"),
        (
            {"defaults": {"optimization": {"covariance": "shrunk"}}},
            None,
            r"'optimization\.covariance' must be one of \['sample', 'ledoit_wolf'\], got 'shrunk'",
        ),
        (
            {"defaults": {"optimization": {"profiles": "hrp"}}},
            None,
            r"'optimization\.profiles' must be a list",
        ),
        ({"defaults": {"selection": {"clustering": []}}}, None, r"'selection\.clustering' must be an object"),
        ({"defaults": {}}, "nope", r"unknown profile 'nope'; allowed profiles: \[\]"),
        ({"defaults": {}, "default_profile": "x"}, None, r"default_profile 'x' is not among the profiles"),
        ({"defaults": {}, "extra": 1}, None, r"top level must be an object with keys"),
    ],
    ids=[
        "unknown-section",
        "unknown-key",
        "string-for-int",
        "float-for-int",
        "bool-for-int",
        "above-max",
        "below-min",
        "bad-enum",
        "scalar-for-list",
        "list-for-object",
        "unknown-profile",
        "bad-default-profile",
        "unknown-top-level",
    ],
)
def test_load_profile_bad_input_names_key_and_reason(tmp_path, document, profile, message):
    with pytest.raises(ManifestError, match=message):
        load_profile(_write(tmp_path, document), profile, sections=ALPHA_SECTIONS)


def test_read_manifest_not_json_or_missing_names_the_file(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{ not json")
    with pytest.raises(ManifestError, match=r"broken\.json is not valid JSON"):
        read_manifest(broken, MANIFEST_SECTIONS)
    with pytest.raises(ManifestError, match=r"missing\.json does not exist"):
        read_manifest(tmp_path / "missing.json", MANIFEST_SECTIONS)


def test_resource_validates_the_owned_sections_and_knows_the_other_cycles_sections(tmp_path):
    # The Alpha cycle validates its own sections only, accepts the DataOps ones by name, refuses a misspelt one.
    bad_dataops_value = {"audit": {"max_daily_return": -1.0}, "gate": {"min_assets": 7}}
    resource = ManifestResource(path=str(_write(tmp_path, {"defaults": bad_dataops_value})))
    assert resource.resolve(ALPHA_SECTIONS).sections["gate"].min_assets == 7
    with pytest.raises(ManifestError, match=r"manifest key 'audit\.max_daily_return' must be >= 0\.0, got -1\.0"):
        resource.resolve({"audit": MANIFEST_SECTIONS["audit"]})
    resource = ManifestResource(path=str(_write(tmp_path, {"defaults": {"audti": {}}})))
    with pytest.raises(ManifestError, match=r"unknown section 'audti' in 'defaults'; allowed sections: \['source'"):
        resource.resolve(ALPHA_SECTIONS)


def test_load_profile_accepts_the_schema_key_and_nothing_else_new(tmp_path):
    document = {"$schema": "../../docs/manifest.schema.json", "defaults": {"gate": {"min_assets": 6}}}
    assert load_profile(_write(tmp_path, document), None, sections=ALPHA_SECTIONS).sections["gate"].min_assets == 6
    assert "$schema" in json.loads(DEFAULT_MANIFEST.read_text())
