"""Every parameter class of both cycles, declared with ``param`` and validated in one place from Python and JSON.

The bounds are read from the generated JSON Schema (what editors and docs/manifest.md show) and each one is
crossed from Python and from a manifest section: both must refuse the value, naming the key and the bound.
No Dagster run; the real parameter classes of every manifest section.
"""

from __future__ import annotations

import dataclasses
import json
import typing

import pytest

from alpha_assets.alpha.clustering import ClusterMethod
from alpha_assets.alpha.optimization_params import OptimizationParams, Profile
from alpha_assets.alpha.selection_params import ClusteringParams, SelectionParams
from alpha_assets.dataops.audit.engine import AuditParams
from alpha_assets.defs.resources import MANIFEST_SECTIONS
from alpha_assets.errors import ManifestError, ParameterError
from alpha_assets.lakehouse.calendars import ExchangeMarket
from alpha_assets.manifest import manifest_schema
from alpha_assets.parameters import params_to_json, parse_section
from alpha_assets.sources.params import DiscoveryParams, MarketParams

SCHEMA = manifest_schema(MANIFEST_SECTIONS)


def _parameter_classes() -> dict[str, type]:
    """Manifest key -> parameter class, for every section and every nested class."""
    found: dict[str, type] = {}
    pending = list(MANIFEST_SECTIONS.items())
    while pending:
        where, cls = pending.pop()
        found[where] = cls
        hints = typing.get_type_hints(cls)
        pending += [(f"{where}.{f.name}", hints[f.name]) for f in dataclasses.fields(cls)]
        pending = [(w, c) for w, c in pending if dataclasses.is_dataclass(c)]
    return found


PARAMETER_CLASSES = _parameter_classes()


def _bounded_fields() -> list[tuple[str, type, str, str, float]]:
    """(section key, class, field, JSON Schema keyword, bound) of every bound of a number field."""
    cases = []
    for where, cls in PARAMETER_CLASSES.items():
        for name, node in SCHEMA["$defs"][cls.__name__]["properties"].items():
            options = [node, *node.get("anyOf", [])]
            for option in options:
                for keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                    if keyword in option:
                        cases.append((where, cls, name, keyword, option[keyword]))
    return cases


BOUNDED = _bounded_fields()


def test_every_field_of_every_parameter_class_is_documented():
    assert len(PARAMETER_CLASSES) == 12
    for where, cls in PARAMETER_CLASSES.items():
        for name, node in SCHEMA["$defs"][cls.__name__]["properties"].items():
            assert node.get("description", "").strip(), f"{where}.{name} has no doc"


def test_bounds_cover_the_documented_ranges():
    # Every bound the classes declare is found (a field with no bound would silently accept anything).
    assert len(BOUNDED) >= 40
    assert ("audit", AuditParams, "max_staleness_sessions", "minimum", 0) in BOUNDED
    assert ("optimization", OptimizationParams, "max_weight", "exclusiveMinimum", 0.0) in BOUNDED


@pytest.mark.parametrize(
    ("where", "cls", "name", "keyword", "bound"), BOUNDED, ids=[f"{c[0]}.{c[2]}-{c[3]}" for c in BOUNDED]
)
def test_a_value_past_a_bound_is_refused_from_python_and_from_the_manifest_alike(where, cls, name, keyword, bound):
    kind = typing.get_type_hints(cls)[name]
    step = 1 if int in typing.get_args(kind) or kind is int else 0.5
    outside = bound - step if keyword == "minimum" else bound + step if keyword == "maximum" else bound
    symbol = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[keyword]
    reason = f"must be {symbol} {bound}, got {outside!r}"
    with pytest.raises(ParameterError) as from_python:
        cls(**{name: outside})
    assert str(from_python.value) == f"{cls.__name__}.{name} {reason}"
    with pytest.raises(ManifestError) as from_manifest:
        parse_section(cls, {name: outside}, where=where)
    assert str(from_manifest.value) == f"manifest key '{where}.{name}' {reason}"
    # The bound itself is allowed where it is inclusive.
    if keyword in ("minimum", "maximum"):
        assert getattr(cls(**{name: bound}), name) == bound


def test_manifest_json_maps_arrays_to_tuples_strings_to_enums_and_integers_to_numbers():
    params = parse_section(
        OptimizationParams,
        {"profiles": ["hrp", "min_variance"], "max_weight": 1, "shrinkage_steps": [0.5, 1]},
        where="optimization",
    )
    assert params.profiles == (Profile.HRP, Profile.MIN_VARIANCE)
    assert params.max_weight == 1.0 and isinstance(params.max_weight, float)
    assert params.shrinkage_steps == (0.5, 1.0)
    assert params == OptimizationParams(
        profiles=(Profile.HRP, Profile.MIN_VARIANCE), max_weight=1, shrinkage_steps=(0.5, 1)
    )


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (True, "must be an integer, got True (bool)"),
        (60.0, "must be an integer, got 60.0 (float)"),
        ("60", "must be an integer, got '60' (str)"),
    ],
    ids=["bool", "float", "string"],
)
def test_types_are_not_coerced_from_python_or_from_the_manifest(value, reason):
    with pytest.raises(ParameterError) as from_python:
        AuditParams(volume_window=value)
    assert str(from_python.value) == f"AuditParams.volume_window {reason}"
    with pytest.raises(ManifestError) as from_manifest:
        parse_section(AuditParams, {"volume_window": value}, where="audit")
    assert str(from_manifest.value) == f"manifest key 'audit.volume_window' {reason}"


def test_python_wants_members_and_tuples_where_the_manifest_takes_values_and_lists():
    with pytest.raises(ParameterError, match=r"^ClusteringParams\.method must be a ClusterMethod member, got 'ward'$"):
        ClusteringParams(method="ward")
    with pytest.raises(ParameterError, match=r"^ClusteringParams\.windows must be a tuple, got \[60\] \(list\)$"):
        ClusteringParams(windows=[60])
    with pytest.raises(ManifestError, match=r"'selection\.clustering\.windows' must be a list, got 60 \(int\)$"):
        parse_section(SelectionParams, {"clustering": {"windows": 60}}, where="selection")
    parsed = parse_section(SelectionParams, {"clustering": {"method": "hdbscan", "windows": [30]}}, where="selection")
    assert parsed.clustering == ClusteringParams(method=ClusterMethod.HDBSCAN, windows=(30,))


def test_nested_keys_and_items_are_named_in_full():
    with pytest.raises(
        ManifestError, match=r"^manifest key 'selection\.clustering\.windows\[1\]' must be >= 0, got -1$"
    ):
        parse_section(SelectionParams, {"clustering": {"windows": [60, -1]}}, where="selection")
    with pytest.raises(
        ManifestError,
        match=r"^manifest key 'selection\.policy\.max_kurtos' is unknown; allowed keys: \['max_kurtosis', ",
    ):
        parse_section(SelectionParams, {"policy": {"max_kurtos": 3}}, where="selection")
    with pytest.raises(
        ManifestError, match=r"^manifest key 'markets\.exchanges\.NYSE\.asset_class' must be one of \['crypto', "
    ):
        parse_section(MarketParams, {"exchanges": {"NYSE": {"asset_class": "bond"}}}, where="markets")


def test_cross_field_rules_run_from_python_and_from_the_manifest():
    reason = r"is refused: min_weight \(0\.6\) must not exceed max_weight \(0\.5\)$"
    with pytest.raises(ParameterError, match=f"^OptimizationParams {reason}"):
        OptimizationParams(min_weight=0.6, max_weight=0.5)
    with pytest.raises(ManifestError, match=f"^manifest key 'optimization' {reason}"):
        parse_section(OptimizationParams, {"min_weight": 0.6, "max_weight": 0.5}, where="optimization")
    with pytest.raises(ManifestError, match=r"^manifest key 'markets' is refused: exchanges key 'nyse' does not match"):
        parse_section(MarketParams, {"exchanges": {"nyse": {}}}, where="markets")


def test_parameter_classes_stay_frozen_comparable_dataclasses_and_replace_validates():
    params = AuditParams(volume_window=30)
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.volume_window = 40  # type: ignore[misc]
    assert params == AuditParams(volume_window=30) and hash(params) == hash(AuditParams(volume_window=30))
    assert dataclasses.replace(params, volume_window=40).volume_window == 40
    with pytest.raises(ParameterError, match=r"^AuditParams\.volume_window must be >= 2, got 1$"):
        dataclasses.replace(params, volume_window=1)
    assert dataclasses.asdict(DiscoveryParams())["top_n"] == 50
    assert (
        MarketParams(exchanges={"NYSE": ExchangeMarket("equity", "XNYS", "USD")}).exchanges["NYSE"].calendar == "XNYS"
    )


@pytest.mark.parametrize("where", sorted(MANIFEST_SECTIONS))
def test_an_empty_section_gives_the_defaults_and_the_defaults_round_trip_through_json(where):
    cls = MANIFEST_SECTIONS[where]
    assert parse_section(cls, {}, where=where) == cls()
    document = json.loads(json.dumps(params_to_json(cls())))
    assert parse_section(cls, document, where=where) == cls()
