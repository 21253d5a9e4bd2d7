"""The dashboard's mirror of the API (dashboard/schema.py) says what the collector's OpenAPI schema says.

The dashboard reads the API over HTTP and cannot import its models, so each response model is
written twice. Every TypedDict of the mirror names a response model (its own name, or with ``View``
appended) and must agree with it field by field: the same names, the same required-ness and the same
JSON types (null, boolean, integer, number, string, a Literal's values, arrays, objects, and nested
models by name).
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any, Literal, NotRequired, TypedDict, get_args, get_origin

import pytest

from threadline.collector.app import create_app
from threadline.collector.config import CollectorSettings
from threadline.dashboard import schema as mirror

Kind = tuple[Any, ...]  # one JSON type a value may take: ("string",), ("array", items), ...
JsonType = frozenset[Kind]
ANY: JsonType = frozenset({("any",)})
REF = "#/components/schemas/"


def mirrors() -> list[type]:
    """Every TypedDict of the mirror but a private base several share (its fields are held to the
    models through theirs)."""
    return [
        value
        for name, value in vars(mirror).items()
        if inspect.isclass(value)
        and typing.is_typeddict(value)
        and value.__module__ == mirror.__name__
        and not name.startswith("_")
    ]


@pytest.fixture(scope="module")
def models() -> dict[str, Any]:
    return dict(create_app(CollectorSettings()).openapi()["components"]["schemas"])


def model_name(typed: type, models: dict[str, Any]) -> str:
    """The response model a TypedDict mirrors: ``Overview`` mirrors Overview, ``Event`` EventView."""
    for name in (typed.__name__, typed.__name__ + "View"):
        if name in models:
            return name
    raise AssertionError(f"dashboard.schema.{typed.__name__} mirrors no response model of the API")


def of_schema(schema: dict[str, Any] | bool) -> JsonType:
    """The JSON types a piece of JSON Schema allows, as pydantic writes them."""
    if schema is True or schema == {} or schema == {"$ref": REF + "JsonValue"}:
        return ANY
    assert isinstance(schema, dict)
    if "anyOf" in schema:
        return frozenset().union(*(of_schema(option) for option in schema["anyOf"]))
    if "$ref" in schema:
        return frozenset({("model", schema["$ref"].removeprefix(REF))})
    if "enum" in schema:
        return frozenset({("enum", frozenset(schema["enum"]))})
    if "const" in schema:
        return frozenset({("enum", frozenset({schema["const"]}))})
    kind = schema["type"]
    if kind == "array":
        return frozenset({("array", of_schema(schema["items"]))})
    if kind == "object":
        return frozenset({("object", of_schema(schema.get("additionalProperties", True)))})
    return frozenset({(kind,)})


def of_annotation(annotation: Any, models: dict[str, Any]) -> JsonType:
    """The JSON types a TypedDict field's annotation allows."""
    origin, arguments = get_origin(annotation), get_args(annotation)
    if annotation is Any:
        return ANY
    if origin in (typing.Union, types.UnionType):
        return frozenset().union(*(of_annotation(argument, models) for argument in arguments))
    if origin is Literal:
        return frozenset({("enum", frozenset(arguments))})
    if origin is list:
        return frozenset({("array", of_annotation(arguments[0], models))})
    if origin is dict:
        assert arguments[0] is str, f"JSON object keys are strings, not {arguments[0]}"
        return frozenset({("object", of_annotation(arguments[1], models))})
    if typing.is_typeddict(annotation):
        return frozenset({("model", model_name(annotation, models))})
    scalars: dict[Any, str] = {
        type(None): "null",
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
    }
    assert annotation in scalars, f"no JSON type for {annotation!r}"
    return frozenset({(scalars[annotation],)})


def describe(json_type: JsonType) -> str:
    """``string | null``, ``array of (model EventView)``, ``one of 'a', 'b'``: for the failure message."""

    def kind(one: Kind) -> str:
        if one[0] in ("array", "object"):
            return f"{one[0]} of ({describe(one[1])})"
        if one[0] == "enum":
            return "one of " + ", ".join(sorted(map(repr, one[1])))
        return " ".join(one)

    return " | ".join(sorted(map(kind, json_type)))


def fields(typed: type) -> dict[str, tuple[bool, Any]]:
    """Each field of a TypedDict: (required, annotation). (``__required_keys__`` cannot tell under
    ``from __future__ import annotations`` on Python 3.11: the annotations are strings then.)"""
    result = {}
    for name, hint in typing.get_type_hints(typed, include_extras=True).items():
        optional = get_origin(hint) is NotRequired
        result[name] = (not optional, get_args(hint)[0] if optional else hint)
    return result


def disagreements(typed: type, models: dict[str, Any]) -> list[str]:
    """How a TypedDict differs from the response model it mirrors, one line per field."""
    model = models[model_name(typed, models)]
    required = set(model.get("required", ()))
    mirrored = fields(typed)
    found = [f"{name}: in the API, not in the mirror" for name in model["properties"] if name not in mirrored]
    for name, (is_required, annotation) in mirrored.items():
        if name not in model["properties"]:
            found.append(f"{name}: in the mirror, not in the API")
            continue
        if is_required != (name in required):
            found.append(f"{name}: {'required' if name in required else 'optional'} in the API")
        expected, actual = of_schema(model["properties"][name]), of_annotation(annotation, models)
        if expected != actual:
            found.append(f"{name}: {describe(expected)} in the API, {describe(actual)} in the mirror")
    return found


@pytest.mark.parametrize("typed", mirrors(), ids=lambda typed: typed.__name__)
def test_the_mirror_agrees_with_the_response_model(typed: type, models: dict[str, Any]) -> None:
    assert disagreements(typed, models) == []


def test_a_field_added_to_a_response_model_is_a_disagreement(models: dict[str, Any]) -> None:
    grown = {**models["KeyView"]}
    grown["properties"] = {**grown["properties"], "expires_at": {"type": "string", "format": "date-time"}}
    grown["required"] = [*grown["required"], "expires_at"]
    assert disagreements(mirror.KeyView, {**models, "KeyView": grown}) == [
        "expires_at: in the API, not in the mirror"
    ]


def test_a_type_or_required_ness_that_differs_is_a_disagreement() -> None:
    class Key(TypedDict):
        name: int
        tenant: NotRequired[str]
        roles: list[str] | None

    key = {
        "properties": {
            "name": {"type": "string"},
            "tenant": {"type": "string"},
            "roles": {"items": {"type": "string"}, "type": "array"},
        },
        "required": ["name", "tenant", "roles"],
    }
    assert disagreements(Key, {"Key": key}) == [
        "name: string in the API, integer in the mirror",
        "tenant: required in the API",
        "roles: array of (string) in the API, array of (string) | null in the mirror",
    ]
