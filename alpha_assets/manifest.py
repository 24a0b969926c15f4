"""The run manifest: profiles of parameters, validated against the parameter dataclasses of each package.

A manifest is JSON::

    {"defaults": {"<section>": {...}, ...}, "profiles": {"<name>": {"<section>": {...}}, ...}}

A profile is the defaults with the profile's values laid over them, key by key. Every section is validated
against a frozen dataclass whose fields carry their documentation and bounds in ``field(metadata=...)``
(``doc``, ``min``, ``max``); Enum-typed fields take their members' values. Each cycle validates the sections it
owns (``load_profile(..., sections=...)``); section names it does not own must still be known, so a typo in a
section name is caught by either cycle.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alpha_assets.errors import ManifestError
from alpha_assets.lakehouse.hashing import bytes_sha256
from alpha_assets.lakehouse.jsonio import encode_json

#: Every section a manifest may hold, whichever cycle owns it.
KNOWN_SECTIONS = (
    "source",
    "discovery",
    "ingestion",
    "audit",
    "markets",
    "returns",
    "gate",
    "selection",
    "optimization",
)
DEFAULT_MANIFEST = Path(__file__).parent / "configs" / "manifest.json"
TOP_LEVEL_KEYS = frozenset({"description", "default_profile", "defaults", "profiles"})


@dataclasses.dataclass(frozen=True)
class ResolvedProfile:
    """One profile with its owned sections validated.

    Attributes
    ----------
    name : str
        The profile's name (``defaults`` when none was chosen).
    sections : dict
        Section name -> validated parameter dataclass, for the sections the caller owns.
    document : dict
        The whole resolved profile as plain JSON (owned sections with every default filled in), as written
        into the run folder.
    sha256 : str
        Hash of ``document``'s canonical JSON: the manifest fingerprint of a run.
    """

    name: str
    sections: dict[str, Any]
    document: dict[str, Any]
    sha256: str


def read_manifest(path: Path) -> dict[str, Any]:
    """Read and structurally check a manifest file.

    Raises
    ------
    ManifestError
        When the file is missing or not JSON, or lacks ``defaults``, or names an unknown section.
    """
    try:
        manifest = json.loads(Path(path).read_text())
    except FileNotFoundError as err:
        raise ManifestError(f"manifest {path} does not exist") from err
    except OSError as err:
        raise ManifestError(f"manifest {path} cannot be read: {err.strerror or err}") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ManifestError(f"manifest {path} is not valid JSON: {err}") from err
    if not isinstance(manifest, dict) or set(manifest) - TOP_LEVEL_KEYS:
        keys = sorted(manifest) if isinstance(manifest, dict) else type(manifest).__name__
        raise ManifestError(
            f"manifest {path}: top level must be an object with keys {sorted(TOP_LEVEL_KEYS)}, got {keys}"
        )
    default_profile = manifest.get("default_profile")
    if default_profile is not None and default_profile not in manifest.get("profiles", {}):
        raise ManifestError(
            f"manifest {path}: default_profile {default_profile!r} is not among the profiles "
            f"{sorted(manifest.get('profiles', {}))}"
        )
    for where, body in [("defaults", manifest.get("defaults", {})), *_profile_items(manifest, path)]:
        if not isinstance(body, dict):
            raise ManifestError(f"manifest {path}: '{where}' must be an object, got {type(body).__name__}")
        unknown = sorted(set(body) - set(KNOWN_SECTIONS))
        if unknown:
            raise ManifestError(
                f"manifest {path}: unknown section {unknown[0]!r} in '{where}'; allowed sections: "
                f"{list(KNOWN_SECTIONS)}"
            )
    return manifest


def profile_names(manifest: Mapping[str, Any]) -> list[str]:
    """The profiles a manifest defines, sorted."""
    return sorted(manifest.get("profiles", {}))


def load_profile(path: Path, profile: str | None, *, sections: Mapping[str, type]) -> ResolvedProfile:
    """Resolve ``profile`` of the manifest at ``path`` and validate the ``sections`` the caller owns.

    Parameters
    ----------
    path : Path
        The manifest file.
    profile : str or None
        A profile name; None takes the manifest's ``default_profile``, or the defaults alone without one.
    sections : Mapping[str, type]
        Section name -> parameter dataclass, e.g. ``{"selection": SelectionParams}``.

    Raises
    ------
    ManifestError
        For an unknown profile, section or key, a value of the wrong type, out of range, or not among an
        Enum's values; the message names the key and what is allowed.
    """
    manifest = read_manifest(path)
    profiles = manifest.get("profiles", {})
    profile = profile if profile is not None else manifest.get("default_profile")
    if profile is not None and profile not in profiles:
        raise ManifestError(
            f"manifest {path}: unknown profile {profile!r}; allowed profiles: {profile_names(manifest)}"
        )
    merged = _deep_merge(manifest.get("defaults", {}), profiles.get(profile, {}) if profile else {})
    validated = {name: parse_params(cls, merged.get(name, {}), where=name) for name, cls in sections.items()}
    document = dict(merged)
    document.update({name: params_to_json(params) for name, params in validated.items()})
    document = {"profile": profile or "defaults", "sections": dict(sorted(document.items()))}
    return ResolvedProfile(
        name=profile or "defaults",
        sections=validated,
        document=document,
        sha256=bytes_sha256(encode_json(document)),
    )


def parse_params(cls: type, data: object, *, where: str) -> Any:
    """Build the parameter dataclass ``cls`` from JSON ``data``, naming ``where`` in every error.

    Raises
    ------
    ManifestError
        For an unknown key, a wrong type, a value out of ``min``/``max``, or not an allowed Enum value.
    """
    if not isinstance(data, Mapping):
        raise ManifestError(f"manifest key '{where}' must be an object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ManifestError(f"manifest key '{where}.{unknown[0]}' is unknown; allowed keys: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    values = {
        name: _parse_value(hints[name], data[name], where=f"{where}.{name}", meta=fields[name].metadata)
        for name in data
    }
    return cls(**values)


def params_to_json(params: Any) -> Any:
    """Plain JSON of a parameter dataclass (Enums by value, tuples as lists), every field included."""
    if dataclasses.is_dataclass(params) and not isinstance(params, type):
        return {f.name: params_to_json(getattr(params, f.name)) for f in dataclasses.fields(params)}
    if isinstance(params, enum.Enum):
        return params.value
    if isinstance(params, tuple | list):
        return [params_to_json(v) for v in params]
    if isinstance(params, Mapping):
        return {str(k): params_to_json(v) for k, v in sorted(params.items())}
    return params


def _parse_value(hint: Any, value: object, *, where: str, meta: Mapping[str, Any]) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _parse_value(inner, value, where=where, meta=meta)
    if dataclasses.is_dataclass(hint):
        return parse_params(hint, value, where=where)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        allowed = [m.value for m in hint]
        if value not in allowed:
            raise ManifestError(f"manifest key '{where}' must be one of {allowed}, got {value!r}")
        return hint(value)
    if origin is tuple:
        if not isinstance(value, list):
            raise ManifestError(f"manifest key '{where}' must be a list, got {type(value).__name__}")
        return tuple(_parse_value(args[0], v, where=f"{where}[{i}]", meta=meta) for i, v in enumerate(value))
    if origin in (dict, Mapping, typing.Mapping) or hint is dict:
        if not isinstance(value, Mapping):
            raise ManifestError(f"manifest key '{where}' must be an object, got {type(value).__name__}")
        value_hint = args[1] if args else Any
        return {str(k): _parse_value(value_hint, v, where=f"{where}.{k}", meta=meta) for k, v in value.items()}
    return _parse_scalar(hint, value, where=where, meta=meta)


def _parse_scalar(hint: Any, value: object, *, where: str, meta: Mapping[str, Any]) -> Any:
    expected = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    if hint is Any:
        return value
    if hint not in expected:
        raise TypeError(f"parameter field '{where}' has a type the manifest cannot hold: {hint!r}")
    is_bool = isinstance(value, bool)
    ok = (
        is_bool
        if hint is bool
        else isinstance(value, int) and not is_bool
        if hint is int
        else isinstance(value, int | float) and not is_bool
        if hint is float
        else isinstance(value, str)
    )
    if not ok:
        raise ManifestError(f"manifest key '{where}' must be {expected[hint]}, got {value!r} ({type(value).__name__})")
    value = float(value) if hint is float else value
    if "min" in meta and meta["min"] is not None and value < meta["min"]:
        raise ManifestError(f"manifest key '{where}' must be >= {meta['min']}, got {value!r}")
    if "max" in meta and meta["max"] is not None and value > meta["max"]:
        raise ManifestError(f"manifest key '{where}' must be <= {meta['max']}, got {value!r}")
    return value


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _profile_items(manifest: Mapping[str, Any], path: Path) -> list[tuple[str, Any]]:
    profiles = manifest.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ManifestError(f"manifest {path}: 'profiles' must be an object, got {type(profiles).__name__}")
    return [(f"profiles.{name}", body) for name, body in profiles.items()]


# ------------------------------------------------------------------------------------------- reference docs
#: The reference documents generated from the parameter dataclasses, relative to the project root.
REFERENCE_MARKDOWN = Path("docs") / "manifest.md"
REFERENCE_SCHEMA = Path("docs") / "manifest.schema.json"
_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def manifest_schema(sections: Mapping[str, type]) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a manifest whose sections are the dataclasses ``sections``.

    It accepts what :func:`read_manifest` and :func:`parse_params` accept: the top-level keys, sections
    and keys by name (unknown ones refused), JSON types, ``min``/``max`` of numbers (inclusive) and Enum values;
    every key is optional since each has a default. Each key's ``description`` is its ``doc`` and ``default``
    its default. Editors that read JSON Schema complete and check a manifest with it.

    Parameters
    ----------
    sections : Mapping[str, type]
        Section name -> parameter dataclass, every section a manifest may hold.
    """
    definitions: dict[str, Any] = {}
    section_refs = {name: _class_schema(cls, definitions) for name, cls in sections.items()}
    definitions["Sections"] = {
        "type": "object",
        "description": "Manifest sections; a key left out takes its default.",
        "properties": section_refs,
        "additionalProperties": False,
    }
    sections_ref = {"$ref": "#/$defs/Sections"}
    return {
        "$schema": _SCHEMA_DIALECT,
        "title": "alpha_assets run manifest",
        "description": f"Generated from the parameter dataclasses by `{_REGENERATE}`; see docs/manifest.md.",
        "type": "object",
        "properties": {
            "description": {"type": "string"},
            "default_profile": {"type": "string", "description": "Profile used when none is named."},
            "defaults": sections_ref,
            "profiles": {
                "type": "object",
                "description": "Profile name -> sections laid over the defaults, key by key.",
                "additionalProperties": sections_ref,
            },
        },
        "required": ["defaults"],
        "additionalProperties": False,
        "$defs": dict(sorted(definitions.items())),
    }


def manifest_reference(sections: Mapping[str, type]) -> str:
    """The Markdown reference of every manifest key: type, default, bounds and documentation, by section.

    Parameters
    ----------
    sections : Mapping[str, type]
        Section name -> parameter dataclass, every section a manifest may hold.
    """
    lines = [
        "# Manifest reference",
        "",
        f"Generated from the parameter dataclasses (`{_REGENERATE}`); do not edit by hand. A test fails when this",
        "file or `docs/manifest.schema.json` (the same keys as a JSON Schema editors can use) is stale.",
        "",
        "A manifest (`alpha_assets/configs/manifest.json`, or `--manifest PATH`) holds `defaults`, optional",
        "`profiles` laid over them key by key, an optional `default_profile` and `description`. Every key below is",
        "optional: a key left out takes its default. Bounds are inclusive; an unknown section or key, a value of",
        "the wrong type, out of bounds or not among the allowed values stops the run with a message naming the key.",
        "",
    ]
    for name, cls in sections.items():
        lines.extend(_reference_section(name, cls))
    return "\n".join(lines).rstrip("\n") + "\n"


def write_reference(sections: Mapping[str, type], root: Path) -> list[Path]:
    """Write :data:`REFERENCE_MARKDOWN` and :data:`REFERENCE_SCHEMA` under ``root``; return their paths."""
    markdown, schema = root / REFERENCE_MARKDOWN, root / REFERENCE_SCHEMA
    markdown.write_text(manifest_reference(sections))
    schema.write_text(json.dumps(manifest_schema(sections), indent=2) + "\n")
    return [markdown, schema]


_REGENERATE = "make docs"


def _reference_section(where: str, cls: type) -> list[str]:
    lines = [f"## `{where}`", "", f"{_summary(cls)} (`{cls.__module__}.{cls.__qualname__}`)", ""]
    lines += ["| key | type | default | bounds | description |", "|---|---|---|---|---|"]
    hints = typing.get_type_hints(cls)
    nested = []
    for spec in dataclasses.fields(cls):
        hint = hints[spec.name]
        if dataclasses.is_dataclass(hint):
            nested.append((f"{where}.{spec.name}", hint))
            kind, default, bounds = "object", f"see `{where}.{spec.name}`", ""
        else:
            kind, default, bounds = _type_label(hint), f"`{_json_default(spec)}`", _bounds_label(hint, spec.metadata)
        doc = " ".join(str(spec.metadata.get("doc", "")).split()).replace("|", "\\|")
        lines.append(f"| `{spec.name}` | {kind} | {default} | {bounds} | {doc} |")
    lines.append("")
    for nested_where, nested_cls in nested:
        lines.extend(_reference_section(nested_where, nested_cls))
    return lines


def _summary(cls: type) -> str:
    """The first paragraph of the class docstring, on one line, in Markdown."""
    return " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split()).replace("``", "`")


def _json_default(spec: dataclasses.Field) -> str:
    default = spec.default_factory() if spec.default is dataclasses.MISSING else spec.default  # type: ignore[misc]
    return json.dumps(params_to_json(default))


def _type_label(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join([_type_label(a) for a in args if a is not type(None)] + ["null"])
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "one of " + ", ".join(f"`{m.value}`" for m in hint)
    if origin is tuple:
        return f"list of {_type_label(args[0])}"
    if origin in (dict, Mapping, typing.Mapping) or hint is dict:
        return f"object of {_type_label(args[1]) if args else 'any'}"
    return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(hint, "any")


def _numeric(hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType, tuple) or origin in (dict, Mapping, typing.Mapping):
        return any(_numeric(a) for a in args if a is not type(None) and a is not Ellipsis)
    return hint in (int, float)


def _bounds_label(hint: Any, meta: Mapping[str, Any]) -> str:
    if not _numeric(hint):
        return ""
    low, high = meta.get("min"), meta.get("max")
    if low is None and high is None:
        return ""
    if high is None:
        return f">= {low}"
    return f"<= {high}" if low is None else f"[{low}, {high}]"


def _class_schema(cls: type, definitions: dict[str, Any]) -> dict[str, str]:
    """Add ``cls`` (and the dataclasses it nests) to ``definitions``; return the reference to it."""
    if cls.__name__ not in definitions:
        definitions[cls.__name__] = {}  # reserved first: a nested class may refer back
        hints = typing.get_type_hints(cls)
        properties = {}
        for spec in dataclasses.fields(cls):
            schema = _value_schema(hints[spec.name], spec.metadata, definitions)
            if "doc" in spec.metadata:
                schema["description"] = " ".join(str(spec.metadata["doc"]).split())
            if not dataclasses.is_dataclass(hints[spec.name]):
                schema["default"] = json.loads(_json_default(spec))
            properties[spec.name] = schema
        definitions[cls.__name__] = {
            "type": "object",
            "description": _summary(cls),
            "properties": properties,
            "additionalProperties": False,
        }
    return {"$ref": f"#/$defs/{cls.__name__}"}


def _value_schema(hint: Any, meta: Mapping[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [_value_schema(a, meta, definitions) for a in args if a is not type(None)]
        return {"anyOf": [*options, {"type": "null"}]}
    if dataclasses.is_dataclass(hint):
        return _class_schema(hint, definitions)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [m.value for m in hint]}
    if origin is tuple:
        return {"type": "array", "items": _value_schema(args[0], meta, definitions)}
    if origin in (dict, Mapping, typing.Mapping) or hint is dict:
        values = _value_schema(args[1], meta, definitions) if args else {}
        return {"type": "object", "additionalProperties": values}
    if hint is Any:
        return {}
    schema: dict[str, Any] = {"type": {bool: "boolean", int: "integer", float: "number", str: "string"}[hint]}
    if hint in (int, float):
        if meta.get("min") is not None:
            schema["minimum"] = meta["min"]
        if meta.get("max") is not None:
            schema["maximum"] = meta["max"]
    return schema
