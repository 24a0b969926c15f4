"""The run manifest: profiles of parameters, validated against the parameter classes of each cycle.

A manifest is JSON::

    {"$schema": "...", "defaults": {"<section>": {...}, ...}, "profiles": {"<name>": {"<section>": {...}}, ...}}

A profile is the defaults with the profile's values laid over them, key by key. Every section is validated by
its parameter class (:mod:`alpha_assets.parameters`: each field's documentation, default and bounds declared
once with ``param``); Enum-typed fields take their members' values. Each cycle validates the sections it owns
(``load_profile(..., sections=...)``); the names of the sections it does not own (``known=``) must still
appear nowhere else, so a typo in a section name is caught by either cycle. ``$schema`` may name the JSON
Schema (``docs/manifest.schema.json``) for editors; it is not read.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from alpha_assets.errors import ManifestError
from alpha_assets.lakehouse.hashing import bytes_sha256
from alpha_assets.lakehouse.jsonio import encode_json
from alpha_assets.parameters import docstring_summary, params_to_json, parse_section, section_json_schema

DEFAULT_MANIFEST = Path(__file__).parent / "configs" / "manifest.json"
TOP_LEVEL_KEYS = frozenset({"$schema", "description", "default_profile", "defaults", "profiles"})


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


def read_manifest(path: Path, known: Collection[str]) -> dict[str, Any]:
    """Read and structurally check a manifest file whose sections may be the ``known`` ones.

    Raises
    ------
    ManifestError
        When the file is missing or not JSON, has an unknown top-level key or default profile, or names a
        section not in ``known``.
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
        unknown = sorted(set(body) - set(known))
        if unknown:
            raise ManifestError(
                f"manifest {path}: unknown section {unknown[0]!r} in '{where}'; allowed sections: {list(known)}"
            )
    return manifest


def profile_names(manifest: Mapping[str, Any]) -> list[str]:
    """The profiles a manifest defines, sorted."""
    return sorted(manifest.get("profiles", {}))


def load_profile(
    path: Path,
    profile: str | None,
    *,
    sections: Mapping[str, type],
    known: Collection[str] | None = None,
) -> ResolvedProfile:
    """Resolve ``profile`` of the manifest at ``path`` and validate the ``sections`` the caller owns.

    Parameters
    ----------
    path : Path
        The manifest file.
    profile : str or None
        A profile name; None takes the manifest's ``default_profile``, or the defaults alone without one.
    sections : Mapping[str, type]
        Section name -> parameter class, e.g. ``{"selection": SelectionParams}``: the sections validated.
    known : Collection[str], optional
        Every section name the manifest may hold (the other cycle's too); default: ``sections``.

    Raises
    ------
    ManifestError
        For an unknown profile, section or key, a value of the wrong type, out of range, or not among an
        Enum's values; the message names the key and what is allowed.
    """
    manifest = read_manifest(path, sections if known is None else known)
    profiles = manifest.get("profiles", {})
    profile = profile if profile is not None else manifest.get("default_profile")
    if profile is not None and profile not in profiles:
        raise ManifestError(
            f"manifest {path}: unknown profile {profile!r}; allowed profiles: {profile_names(manifest)}"
        )
    merged = _deep_merge(manifest.get("defaults", {}), profiles.get(profile, {}) if profile else {})
    validated = {name: parse_section(cls, merged.get(name, {}), where=name) for name, cls in sections.items()}
    document = dict(merged)
    document.update({name: params_to_json(params) for name, params in validated.items()})
    document = {"profile": profile or "defaults", "sections": dict(sorted(document.items()))}
    return ResolvedProfile(
        name=profile or "defaults",
        sections=validated,
        document=document,
        sha256=bytes_sha256(encode_json(document)),
    )


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
#: The reference documents generated from the parameter classes, relative to the project root.
REFERENCE_MARKDOWN = Path("docs") / "manifest.md"
REFERENCE_SCHEMA = Path("docs") / "manifest.schema.json"
_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_REGENERATE = "make docs"


def manifest_schema(sections: Mapping[str, type]) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a manifest whose sections are the parameter classes ``sections``.

    Each section's schema is pydantic's, from the same declarations that validate it: keys by name (unknown
    ones refused), JSON types, bounds and Enum values, each key's ``description`` and ``default``; every key is
    optional since each has a default. Editors that read JSON Schema complete and check a manifest with it.

    Parameters
    ----------
    sections : Mapping[str, type]
        Section name -> parameter class, every section a manifest may hold.
    """
    definitions: dict[str, Any] = {}
    for cls in sections.values():
        schema, nested = section_json_schema(cls)
        definitions.update(nested)
        definitions[cls.__name__] = schema
    definitions["Sections"] = {
        "type": "object",
        "description": "Manifest sections; a key left out takes its default.",
        "properties": {name: {"$ref": f"#/$defs/{cls.__name__}"} for name, cls in sections.items()},
        "additionalProperties": False,
    }
    sections_ref = {"$ref": "#/$defs/Sections"}
    return {
        "$schema": _SCHEMA_DIALECT,
        "title": "alpha_assets run manifest",
        "description": f"Generated from the parameter classes by `{_REGENERATE}`; see docs/manifest.md.",
        "type": "object",
        "properties": {
            "$schema": {"type": "string", "description": "This schema (docs/manifest.schema.json), for editors."},
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

    It is read from :func:`manifest_schema`, so the two documents always agree.

    Parameters
    ----------
    sections : Mapping[str, type]
        Section name -> parameter class, every section a manifest may hold.
    """
    definitions = manifest_schema(sections)["$defs"]
    lines = [
        "# Manifest reference",
        "",
        f"Generated from the parameter classes (`{_REGENERATE}`); do not edit by hand. A test fails when this",
        "file or `docs/manifest.schema.json` (the same keys as a JSON Schema editors can use) is stale.",
        "",
        "A manifest (`alpha_assets/configs/manifest.json`, or `--manifest PATH`) holds `defaults`, optional",
        "`profiles` laid over them key by key, an optional `default_profile`, `description` and `$schema`. Every",
        "key below is optional: a key left out takes its default. An unknown section or key, a value of the wrong",
        "type, out of bounds (`[a, b]` inclusive, `(a, b]` excluding a) or not among the allowed values stops the",
        "run with a message naming the key.",
        "",
    ]
    for name, cls in sections.items():
        lines.extend(_reference_section(name, cls, definitions))
    return "\n".join(lines).rstrip("\n") + "\n"


def write_reference(sections: Mapping[str, type], root: Path) -> list[Path]:
    """Write :data:`REFERENCE_MARKDOWN` and :data:`REFERENCE_SCHEMA` under ``root``; return their paths."""
    markdown, schema = root / REFERENCE_MARKDOWN, root / REFERENCE_SCHEMA
    markdown.write_text(manifest_reference(sections))
    schema.write_text(json.dumps(manifest_schema(sections), indent=2) + "\n")
    return [markdown, schema]


def _reference_section(where: str, cls: type, definitions: Mapping[str, Any]) -> list[str]:
    lines = [f"## `{where}`", "", f"{docstring_summary(cls)} (`{cls.__module__}.{cls.__qualname__}`)", ""]
    lines += ["| key | type | default | bounds | description |", "|---|---|---|---|---|"]
    hints = typing.get_type_hints(cls)
    nested = []
    for name, node in definitions[cls.__name__]["properties"].items():
        if dataclasses.is_dataclass(hints[name]):
            nested.append((f"{where}.{name}", hints[name]))
            kind, default, bounds = "object", f"see `{where}.{name}`", ""
        else:
            kind = _type_label(node, definitions)
            default, bounds = f"`{json.dumps(node['default'])}`", _bounds_label(node)
        doc = " ".join(node.get("description", "").split()).replace("|", "\\|")
        lines.append(f"| `{name}` | {kind} | {default} | {bounds} | {doc} |")
    lines.append("")
    for nested_where, nested_cls in nested:
        lines.extend(_reference_section(nested_where, nested_cls, definitions))
    return lines


def _type_label(node: Mapping[str, Any], definitions: Mapping[str, Any]) -> str:
    if "$ref" in node:
        node = definitions[node["$ref"].rsplit("/", 1)[1]]
        if "properties" in node:
            return "{" + ", ".join(node["properties"]) + "}"
    if "anyOf" in node:
        options = [_type_label(o, definitions) for o in node["anyOf"] if o.get("type") != "null"]
        return " or ".join([*options, "null"])
    if "enum" in node:
        return "one of " + ", ".join(f"`{value}`" for value in node["enum"])
    if node.get("type") == "array":
        return f"list of {_type_label(node['items'], definitions)}"
    if node.get("type") == "object":
        values = node.get("additionalProperties")
        return f"object of {_type_label(values, definitions) if isinstance(values, Mapping) else 'any'}"
    return node.get("type", "any")


def _bounds_label(node: Mapping[str, Any]) -> str:
    """The bounds of a number (or of a list's numbers), and the fewest items of a list."""
    bounds: dict[str, Any] = {}
    for option in (node, *node.get("anyOf", []), node.get("items", {})):
        bounds.update({k: v for k, v in option.items() if k in _BOUND_KEYS})
    low = _bound(bounds, "minimum", "exclusiveMinimum")
    high = _bound(bounds, "maximum", "exclusiveMaximum")
    if low and high:
        label = f"{'[' if low[1] else '('}{low[0]}, {high[0]}{']' if high[1] else ')'}"
    elif low or high:
        value, inclusive = low or high
        label = f"{'>' if low else '<'}{'=' if inclusive else ''} {value}"
    else:
        label = ""
    if "minItems" in bounds:
        label = f"{label}; " if label else ""
        label += f"at least {bounds['minItems']} item(s)"
    return label


def _bound(bounds: Mapping[str, Any], inclusive: str, exclusive: str) -> tuple[Any, bool] | None:
    """(value, inclusive) of one side of the bounds, or None when that side is open."""
    if inclusive in bounds:
        return bounds[inclusive], True
    return (bounds[exclusive], False) if exclusive in bounds else None


_BOUND_KEYS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems"})
