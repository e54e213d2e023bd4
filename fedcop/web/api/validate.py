"""Request bodies checked against the same JSON Schemas the OpenAPI document publishes.

Only the keywords the API's schemas use are understood (type, properties, required,
additionalProperties, items, enum, minLength, maxLength, maxItems, minimum, format date-time,
oneOf, $ref). One schema then both documents a body and refuses the bodies it does not describe, so
the two cannot drift apart; a general validator would be a new dependency for this subset.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fedcop.errors import ValidationError

Schema = Mapping[str, Any]
_REF_PREFIX = "#/components/schemas/"
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}
_NULL = {"type": "null"}


def check(value: Any, schema: Schema, components: Mapping[str, Schema], where: str) -> None:
    """Raise ValidationError naming the first field (`where`, dotted) that does not fit."""
    if "$ref" in schema:
        schema = components[str(schema["$ref"]).removeprefix(_REF_PREFIX)]
    if "oneOf" in schema:
        _check_one_of(value, schema["oneOf"], components, where)
        return
    _check_type(value, schema, where)
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(str(choice) for choice in schema["enum"])
        raise ValidationError(f"{where}: must be one of {choices}")
    if isinstance(value, str):
        _check_string(value, schema, where)
    elif isinstance(value, list):
        _check_array(value, schema, components, where)
    elif isinstance(value, dict):
        _check_object(value, schema, components, where)
    elif isinstance(value, int) and value < schema.get("minimum", value):
        raise ValidationError(f"{where}: must be at least {schema['minimum']}")


def _check_one_of(
    value: Any, choices: list[Schema], components: Mapping[str, Schema], where: str
) -> None:
    problems: list[ValidationError] = []
    for choice in choices:
        try:
            check(value, choice, components, where)
        except ValidationError as exc:
            problems.append(exc)
    if len(problems) == len(choices):
        # The most specific reason: the first alternative that is not plain `null`.
        raise next((p for p, c in zip(problems, choices, strict=True) if c != _NULL), problems[0])


def _check_type(value: Any, schema: Schema, where: str) -> None:
    expected = schema.get("type")
    if expected is None:
        return
    names = [expected] if isinstance(expected, str) else list(expected)
    # bool is an int in Python, but `true` is not an integer in JSON.
    if isinstance(value, bool) and "boolean" not in names:
        raise ValidationError(f"{where}: must be {' or '.join(names)}")
    if not any(isinstance(value, _TYPES[name]) for name in names):
        raise ValidationError(f"{where}: must be {' or '.join(names)}")


def _check_string(value: str, schema: Schema, where: str) -> None:
    if len(value) < schema.get("minLength", 0):
        raise ValidationError(f"{where}: must not be empty")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise ValidationError(f"{where}: must be at most {schema['maxLength']} characters")
    if schema.get("format") == "date-time":
        parse_datetime(value, where)


def _check_array(
    value: list[Any], schema: Schema, components: Mapping[str, Schema], where: str
) -> None:
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        raise ValidationError(f"{where}: at most {schema['maxItems']} items")
    if "items" in schema:
        for index, item in enumerate(value):
            check(item, schema["items"], components, f"{where}[{index}]")


def _check_object(
    value: dict[str, Any], schema: Schema, components: Mapping[str, Schema], where: str
) -> None:
    properties: Mapping[str, Schema] = schema.get("properties", {})
    for name in schema.get("required", ()):
        if name not in value:
            raise ValidationError(f"{where}.{name}: is required")
    for name, item in value.items():
        if name in properties:
            check(item, properties[name], components, f"{where}.{name}")
        elif schema.get("additionalProperties") is False:
            raise ValidationError(f"{where}.{name}: is not a known field")


def parse_datetime(value: str, where: str) -> datetime:
    """An RFC 3339 timestamp with its offset; a naive one would be ambiguous."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{where}: must be a date-time like 2025-01-31T09:30:00Z") from None
    if moment.tzinfo is None:
        raise ValidationError(f"{where}: needs a time zone, e.g. a trailing Z for UTC")
    return moment
