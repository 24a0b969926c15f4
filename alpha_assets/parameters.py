"""One way to declare a parameter class, and the one validator of every parameter class.

A parameter class is a frozen dataclass decorated with :func:`parameters`; each field is declared on one line with
:func:`param` (its default and bounds: inclusive ``ge``/``le``, exclusive ``gt``/``lt``) and documented by the
docstring under it.
Pydantic (the version Dagster brings) validates the fields in both places a parameter class is built:

- from Python, ``AuditParams(volume_window=1)``: strict types (no ``True`` for an int, no ``2.5`` for an int, an
  Enum member for an Enum, a tuple for a tuple) and the bounds; a bad value raises
  :class:`~alpha_assets.errors.ParameterError` naming ``AuditParams.volume_window`` and the bound;
- from a manifest section, :func:`parse_section`: the same rules over JSON (an array is a tuple, a string is an
  Enum's value, an integer is a number); a bad value raises :class:`~alpha_assets.errors.ManifestError`
  naming the manifest key, e.g. ``audit.max_staleness_sessions``, and the bound.

Cross-field rules stay in the class's ``__post_init__`` (raising ``ValueError``); they run in both places too.
The classes remain dataclasses (``dataclasses.fields``, ``replace`` and ``asdict`` work, ``replace`` validates
again), and :func:`section_json_schema` gives their JSON Schema (descriptions, defaults, bounds, Enum values).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

import pydantic
from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import ErrorDetails

from alpha_assets.errors import ManifestError, ParameterError

_Class = TypeVar("_Class", bound=type)
#: Unknown keys are refused, types are not coerced, and the docstring under a field is its description.
_CONFIG = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)


def parameters(cls: _Class) -> _Class:
    """Make ``cls`` a frozen parameter dataclass whose fields are validated whenever it is built.

    Raises
    ------
    ParameterError
        When an instance is built with a value of the wrong type, out of its bounds, or refused by the class's
        ``__post_init__``; the message names ``<Class>.<field>`` and the reason.
    """
    validated = pydantic.dataclasses.dataclass(frozen=True, config=_CONFIG)(cls)
    pydantic_init = validated.__init__

    @functools.wraps(pydantic_init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            pydantic_init(self, *args, **kwargs)
        except ValidationError as err:
            key, reason = _first_error(err, type(self), type(self).__name__, json_input=False)
            raise ParameterError(f"{key} {reason}") from err

    validated.__init__ = __init__
    return validated


def param(
    default: Any = dataclasses.MISSING,
    *,
    default_factory: Any = dataclasses.MISSING,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    min_items: int | None = None,
) -> Any:
    """Declare one field of a :func:`parameters` class: its default and its bounds.

    Its documentation is the docstring written under it, which pydantic reads as the field's description::

        volume_window: int = param(60, ge=2)
        '''Bars in the trailing window of the volume z-score.'''

    Parameters
    ----------
    default, default_factory
        The default value, or a function returning it (mutable defaults such as dicts and nested classes).
    ge, le, gt, lt : float, optional
        Bounds of a number (``>=``, ``<=``, ``>``, ``<``); None leaves that side open.
    min_items : int, optional
        Fewest items of a tuple.
    """
    defaults = {"default_factory": default_factory} if default is dataclasses.MISSING else {"default": default}
    return pydantic.Field(**defaults, ge=ge, le=le, gt=gt, lt=lt, min_length=min_items)


def bounded(kind: type, *, ge: float | None = None, le: float | None = None, gt: float | None = None) -> Any:
    """``kind`` with bounds, for the items of a tuple.

    Example: ``WindowLength = bounded(int, ge=0)``, then ``windows: tuple[WindowLength, ...] = param(...)``.
    """
    return Annotated[kind, pydantic.Field(ge=ge, le=le, gt=gt)]


def parse_section(cls: type, data: object, *, where: str) -> Any:
    """Build the parameter class ``cls`` from the JSON value ``data`` of manifest key ``where``.

    Raises
    ------
    ManifestError
        For an unknown key, a value of the wrong type, out of its bounds, not among an Enum's values, or
        refused by the class's cross-field rules; the message names the manifest key, e.g.
        ``audit.max_staleness_sessions``, and what is allowed.
    """
    try:
        return _adapter(cls).validate_json(json.dumps(data, allow_nan=True), strict=True)
    except ValidationError as err:
        key, reason = _first_error(err, cls, where, json_input=True)
        raise ManifestError(f"manifest key '{key}' {reason}") from err


def params_to_json(params: Any) -> Any:
    """Plain JSON of a parameter class (Enums by value, tuples as lists), every field included."""
    if dataclasses.is_dataclass(params) and not isinstance(params, type):
        return {f.name: params_to_json(getattr(params, f.name)) for f in dataclasses.fields(params)}
    if isinstance(params, enum.Enum):
        return params.value
    if isinstance(params, tuple | list):
        return [params_to_json(v) for v in params]
    if isinstance(params, Mapping):
        return {str(k): params_to_json(v) for k, v in sorted(params.items())}
    return params


def section_json_schema(cls: type) -> tuple[dict[str, Any], dict[str, Any]]:
    """The JSON Schema of the parameter class ``cls``, as (its schema, the definitions it refers to).

    References point into ``#/$defs/``; each class's description is the first paragraph of its docstring and
    every field that is not a nested class carries its default.
    """
    schema = _adapter(cls).json_schema(ref_template="#/$defs/{model}", schema_generator=_ParameterSchema)
    definitions = schema.pop("$defs", {})
    return schema, definitions


def docstring_summary(cls: type) -> str:
    """The first paragraph of the class docstring, on one line, in Markdown."""
    return " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split()).replace("``", "`")


class _ParameterSchema(GenerateJsonSchema):
    """Pydantic's JSON Schema, with the classes' summaries, the defaults of factories and no generated titles."""

    def field_title_should_be_set(self, schema: Any) -> bool:  # noqa: D102 - the names are the titles
        return False

    def dataclass_schema(self, schema: Any) -> dict[str, Any]:  # noqa: D102
        json_schema = super().dataclass_schema(schema)
        cls = schema["cls"]
        json_schema.pop("title", None)
        json_schema["description"] = docstring_summary(cls)
        defaults = cls()
        for name, prop in json_schema.get("properties", {}).items():
            value = getattr(defaults, name)
            if "default" not in prop and not dataclasses.is_dataclass(value):
                prop["default"] = params_to_json(value)
        return json_schema


@functools.cache
def _adapter(cls: type) -> TypeAdapter:
    return TypeAdapter(cls)


#: What a value of each pydantic type error should have been.
_EXPECTED = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "an object",
    "mapping_type": "an object",
    "dataclass_type": "an object",
    "dataclass_args_type": "an object",
}
#: The bound each pydantic bound error names, with its context key.
_BOUNDS = {
    "greater_than_equal": (">=", "ge"),
    "less_than_equal": ("<=", "le"),
    "greater_than": (">", "gt"),
    "less_than": ("<", "lt"),
}


def _first_error(err: ValidationError, cls: type, where: str, *, json_input: bool) -> tuple[str, str]:
    """The key (``where`` and the error's location) and the reason of the first error, on one line."""
    error = err.errors(include_url=False)[0]
    loc = error["loc"]
    key = where + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
    return key, _reason(error, _hint_at(cls, loc), _hint_at(cls, loc[:-1]), json_input=json_input)


def _reason(error: ErrorDetails, hint: Any, parent: Any, *, json_input: bool) -> str:
    kind, ctx, value = error["type"], error.get("ctx", {}), error["input"]
    if kind == "unexpected_keyword_argument" and dataclasses.is_dataclass(parent):
        return f"is unknown; allowed keys: {sorted(f.name for f in dataclasses.fields(parent))}"
    if kind in _BOUNDS:
        symbol, name = _BOUNDS[kind]
        return f"must be {symbol} {ctx[name]}, got {value!r}"
    if kind in ("too_short", "too_long"):
        side = "at least" if kind == "too_short" else "at most"
        count = ctx["min_length"] if kind == "too_short" else ctx["max_length"]
        return f"must hold {side} {count} item(s), got {len(value)}"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        if kind == "is_instance_of":
            return f"must be a {hint.__name__} member, got {value!r}"
        return f"must be one of {[m.value for m in hint]}, got {value!r}"
    if kind == "tuple_type":
        return f"must be {'a list' if json_input else 'a tuple'}, got {value!r} ({type(value).__name__})"
    if kind in _EXPECTED:
        return f"must be {_EXPECTED[kind]}, got {value!r} ({type(value).__name__})"
    if kind == "value_error":
        return f"is refused: {ctx['error']}"
    return f"is refused: {error['msg']}, got {value!r}"


def _hint_at(hint: Any, loc: tuple[int | str, ...]) -> Any:
    """The type annotation at location ``loc`` inside the class ``hint`` (None where it cannot be followed)."""
    for part in loc:
        hint = _without_none(hint)
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if dataclasses.is_dataclass(hint):
            hint = typing.get_type_hints(hint).get(str(part))
        elif origin is tuple:
            hint = args[0]
        elif origin in (dict, Mapping):
            hint = args[1]
        else:
            return None
    return _without_none(hint)


def _without_none(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return inner
    return hint
