"""An OTLP/JSON body checked against the protobuf schema, before protobuf's JSON parser reads it.

``json_format`` refuses a value of the wrong type in Python's words (``invalid literal for int()``,
``'int' object is not iterable``) or not at all (a bare string parses as an empty request). This walk
follows the message descriptors of ``opentelemetry-proto`` instead, so a refusal names where the
value is, in the sender's JSON names (``resourceSpans[0].scopeSpans[0].spans[2] (name 'erp.order.created')
.startTimeUnixNano``), and what it should be. Unknown fields are left alone: an OTLP receiver must
ignore them (newer senders), as ``ParseDict(ignore_unknown_fields=True)`` then does.
"""

from __future__ import annotations

import base64
import binascii
import math

from google.protobuf.descriptor import Descriptor, FieldDescriptor

_INTEGER_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_ENUM: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
_FLOATS = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)
_FLOAT_WORDS = frozenset({"NaN", "Infinity", "-Infinity"})
# OTLP/JSON writes these ids in hex, unlike protobuf's JSON mapping of bytes (base64).
HEX_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId"})
# How deep an attribute value may nest arrays and key-value lists (`[[1]]` is 2 levels): deeper is
# no business attribute, and it bounds the recursion of every reader (a body 1,000 levels deep made
# a RecursionError of this walk). Protobuf's own decoder stops at 100 message levels, about 31.
MAX_VALUE_DEPTH = 16
_NESTING = frozenset({"ArrayValue", "KeyValueList"})
# What names an element of a list, to point the sender at it: a span by name, an attribute by key.
_LABELS = {"Span": "name", "KeyValue": "key", "Event": "name", "LogRecord": "eventName"}


class MalformedJson(ValueError):
    """The body is JSON, but not an OTLP request: ``field`` is where, ``reason`` why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}")
        self.field = field
        self.reason = reason


def prepare(document: object, descriptor: Descriptor) -> None:
    """Check ``document`` against ``descriptor`` and turn its hex ids into the base64 that protobuf's
    JSON mapping reads; ``MalformedJson`` at the first value that is not what the schema says."""
    if not isinstance(document, dict):
        raise MalformedJson("body", f"must be a JSON object (an {descriptor.name}), not {_kind(document)}")
    _message(document, descriptor, "", 0)


def too_deep() -> str:
    return f"nests arrays and key-value lists more than {MAX_VALUE_DEPTH} levels deep"


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return f"the number {value!r}"


def _message(node: object, descriptor: Descriptor, path: str, depth: int) -> None:
    if not isinstance(node, dict):
        raise MalformedJson(path, f"must be a JSON object ({descriptor.name}), not {_kind(node)}")
    if descriptor.name in _NESTING:
        depth += 1
        if depth > MAX_VALUE_DEPTH:
            raise MalformedJson(path, too_deep())
    oneofs: dict[str, str] = {}
    for key, value in node.items():
        field = descriptor.fields_by_camelcase_name.get(key) or descriptor.fields_by_name.get(key)
        if field is None or value is None:  # unknown: ignored; null: the field's default
            continue
        where = f"{path}.{key}" if path else key
        if field.containing_oneof is not None:
            other = oneofs.setdefault(field.containing_oneof.name, key)
            if other != key:
                raise MalformedJson(path, f"has both {other} and {key}; it holds one value")
        if not _repeated(field):
            node[key] = _value(value, field, where, depth)
            continue
        if not isinstance(value, list):
            raise MalformedJson(where, f"must be a JSON array, not {_kind(value)}")
        for index, item in enumerate(value):
            value[index] = _value(item, field, _element(where, index, item, field), depth)


def _repeated(field: FieldDescriptor) -> bool:
    # `is_repeated` since protobuf 6.31, where `label` is deprecated; `label` before.
    if hasattr(field, "is_repeated"):
        return bool(field.is_repeated)
    return bool(field.label == FieldDescriptor.LABEL_REPEATED)  # type: ignore[attr-defined]  # stubs: 6.31+ only


def _element(where: str, index: int, item: object, field: FieldDescriptor) -> str:
    label = _LABELS.get(field.message_type.name) if field.message_type is not None else None
    name = item.get(label) if label and isinstance(item, dict) else None
    return f"{where}[{index}]" + (f" ({label} {name[:80]!r})" if isinstance(name, str) else "")


def _value(value: object, field: FieldDescriptor, where: str, depth: int) -> object:
    """``value`` as protobuf's JSON parser reads it (the same, but for hex ids)."""
    if value is None:
        raise MalformedJson(where, "must not be null")
    kind = field.type
    if kind == FieldDescriptor.TYPE_MESSAGE:
        assert field.message_type is not None  # a message field always names its message type
        _message(value, field.message_type, where, depth)
    elif kind == FieldDescriptor.TYPE_ENUM and isinstance(value, str):
        return value  # a name; one this version does not know is ignored, as unknown fields are
    elif kind in _INTEGER_RANGES:
        _integer(value, _INTEGER_RANGES[kind], where)
    elif kind in _FLOATS:
        _float(value, where)
    elif kind == FieldDescriptor.TYPE_BOOL:
        if not isinstance(value, bool):
            raise MalformedJson(where, f"must be true or false, not {_kind(value)}")
    elif not isinstance(value, str):  # string and bytes
        raise MalformedJson(where, f"must be a string, not {_kind(value)}")
    elif kind == FieldDescriptor.TYPE_BYTES and field.json_name in HEX_ID_FIELDS:
        return _hex_to_base64(value, where)
    elif kind == FieldDescriptor.TYPE_BYTES:
        _base64(value, where)
    return value


def _integer(value: object, bounds: tuple[int, int], where: str) -> None:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif (isinstance(value, float) and value.is_integer()) or (isinstance(value, str) and _digits(value)):
        number = int(value)
    if number is None:
        raise MalformedJson(
            where, f"must be a whole number (a JSON number or a string of digits), not {_kind(value)}"
        )
    low, high = bounds
    if not low <= number <= high:
        raise MalformedJson(where, f"must be between {low} and {high}, not {number}")


def _digits(text: str) -> bool:
    return text.removeprefix("-").isdigit() and text.isascii()


def _float(value: object, where: str) -> None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return
    if isinstance(value, str) and (value in _FLOAT_WORDS or _finite(value)):
        return
    raise MalformedJson(where, f"must be a number, not {_kind(value)}")


def _finite(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _base64(value: str, where: str) -> None:
    encoded = value.encode()
    try:  # as protobuf's JSON parser reads bytes: URL-safe or not, padding optional
        base64.urlsafe_b64decode(encoded + b"=" * (4 - len(encoded) % 4))
    except (binascii.Error, ValueError):
        raise MalformedJson(where, f"must be base64, not {_kind(value)}") from None


def _hex_to_base64(value: str, where: str) -> str:
    try:
        return base64.b64encode(bytes.fromhex(value)).decode()
    except ValueError:
        raise MalformedJson(where, f"must be hex digits, not {_kind(value)}") from None
