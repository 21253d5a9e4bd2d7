"""OTLP/HTTP trace requests: decoding (protobuf or JSON) and turning spans into stored rows.

Decoding uses the ``opentelemetry-proto`` messages. Every span is kept as a technical span; a span
with ``threadline.correlation_id`` is also a business event (DESIGN.md, "OTLP form"), validated by
the same rules as the JSON endpoint. A span whose business attributes are invalid is still kept
as a technical span and reported in the response's ``partial_success``.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from pydantic import ValidationError

from threadline.sdk._redact import Redactor

from .schema import BusinessEvent, problems_of, validate_event

PREFIX = "threadline."
CORRELATION_ID = "threadline.correlation_id"
ALIAS_PREFIX = "threadline.alias."
# The attributes that map onto fields of the event; any other attribute is kept in `attributes`.
_FIELDS = {
    "threadline.correlation_kind": "correlation_kind",
    "threadline.workflow": "workflow",
    "threadline.step": "step",
    "threadline.system": "system",
    "threadline.status": "status",
    "threadline.event_id": "event_id",
    "threadline.attempt": "attempt",
    "threadline.amount": "amount",
    "threadline.currency": "currency",
    "threadline.duration_ms": "duration_ms",
}
_KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_STATUS = {Status.STATUS_CODE_UNSET: "unset", Status.STATUS_CODE_OK: "ok", Status.STATUS_CODE_ERROR: "error"}
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")
MAX_TIME_NS = 2**63 - 1  # DateTime64(9) ends in 2262


class InvalidPayload(ValueError):
    """The body is not an OTLP trace request."""


def _hex_ids_to_base64(node: Any) -> None:
    """OTLP/JSON writes trace and span ids in hex; protobuf's JSON mapping expects base64."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str) and value:
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    raise InvalidPayload(f"{key} {value[:40]!r} is not hex") from None
            else:
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)


def decode(body: bytes, is_json: bool) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    try:
        if is_json:
            document = orjson.loads(body)
            _hex_ids_to_base64(document)
            json_format.ParseDict(document, request, ignore_unknown_fields=True)
        else:
            request.ParseFromString(body)
    except (orjson.JSONDecodeError, json_format.ParseError, DecodeError, TypeError, ValueError) as error:
        if isinstance(error, InvalidPayload):
            raise
        raise InvalidPayload(f"not an OTLP ExportTraceServiceRequest: {error}") from None
    return request


def encode_response(rejected: int, message: str, as_json: bool) -> bytes:
    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.CopyFrom(
            ExportTracePartialSuccess(rejected_spans=rejected, error_message=message)
        )
    if as_json:
        return json_format.MessageToJson(response, indent=None).encode()
    return response.SerializeToString()


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: _value(item.value) for item in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode() if isinstance(value, list | dict) else str(value)


def _attributes(key_values: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in key_values}


def _time(nanoseconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(nanoseconds / 1e9, dt.UTC)


@dataclass
class Converted:
    spans: list[dict[str, Any]] = field(default_factory=list)  # by column of the spans table
    events: list[BusinessEvent] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # one reason per span whose business event is invalid


def _spans(
    request: ExportTraceServiceRequest, redactor: Redactor | None
) -> Iterator[tuple[dict[str, Any], dict[str, Any], Span]]:
    """Each span with its resource's attributes and the columns it shares with its resource and scope."""
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        stored_resource = _stored(resource, redactor)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            origin = {
                "resource": stored_resource,
                "scope_name": scope.name,
                "scope_version": scope.version,
                "scope_attributes": _stored(_attributes(scope.attributes), redactor),
            }
            for span in scope_spans.spans:
                yield resource, origin, span


def business_event_fields(span: Span, attributes: dict[str, Any], resource: dict[str, Any]) -> dict[str, Any]:
    """The JSON-contract fields of a span that carries ``threadline.correlation_id``."""
    fields: dict[str, Any] = {
        "correlation_id": attributes.get(CORRELATION_ID),
        "workflow": attributes.get("threadline.workflow"),
        "step": span.name,
        "system": resource.get("service.name"),
        "status": "error" if span.status.code == Status.STATUS_CODE_ERROR else "ok",
        "event_id": span.trace_id.hex() + span.span_id.hex() if span.trace_id else None,
        "timestamp": _time(span.start_time_unix_nano) if span.start_time_unix_nano else None,
    }
    if span.end_time_unix_nano > span.start_time_unix_nano:
        fields["duration_ms"] = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6
    for key, name in _FIELDS.items():
        if key in attributes:
            fields[name] = attributes[key]
    if "threadline.error.kind" in attributes:
        fields["error"] = {
            "kind": attributes["threadline.error.kind"],
            "message": _text(attributes.get("threadline.error.message", span.status.message)),
        }
    aliases = {
        key[len(ALIAS_PREFIX) :]: _text(value)
        for key, value in attributes.items()
        if key.startswith(ALIAS_PREFIX)
    }
    if aliases:
        fields["aliases"] = aliases
    extra = {
        key: _text(value)
        for key, value in attributes.items()
        if not key.startswith(PREFIX) and value is not None
    }
    if extra:
        fields["attributes"] = extra
    if len(span.trace_id) == 16:
        fields["trace_id"] = span.trace_id.hex()
    if len(span.span_id) == 8:
        fields["span_id"] = span.span_id.hex()
    # An absent attribute is a missing field ("is required"), not a field of the wrong type.
    return {name: value for name, value in fields.items() if value is not None}


def _redacted(attributes: dict[str, Any], redactor: Redactor | None) -> dict[str, Any]:
    return redactor.redact(attributes) if redactor is not None else attributes


def _stored(attributes: dict[str, Any], redactor: Redactor | None) -> dict[str, str]:
    """An attribute map as the spans table keeps it: each value as its JSON, sensitive ones hashed."""
    return {key: orjson.dumps(value).decode() for key, value in _redacted(attributes, redactor).items()}


def _span_events(span: Span, redactor: Redactor | None) -> str:
    return orjson.dumps(
        [
            {
                "name": event.name,
                "time_unix_nano": event.time_unix_nano,
                "attributes": _redacted(_attributes(event.attributes), redactor),
            }
            for event in span.events
        ]
    ).decode()


def _span_links(span: Span, redactor: Redactor | None) -> str:
    return orjson.dumps(
        [
            {
                "trace_id": link.trace_id.hex(),
                "span_id": link.span_id.hex(),
                "attributes": _redacted(_attributes(link.attributes), redactor),
            }
            for link in span.links
        ]
    ).decode()


def convert(request: ExportTraceServiceRequest, tenant: str, redactor: Redactor | None = None) -> Converted:
    """Rows of technical spans and validated business events; sensitive attributes hashed by ``redactor``.

    A technical span keeps what was sent, typed: its attributes, events (exceptions among them),
    links, resource and instrumentation scope. Every attribute map of it goes through the same
    redaction.
    """
    converted = Converted()
    received_at = dt.datetime.now(dt.UTC)
    for resource, origin, span in _spans(request, redactor):
        attributes = _attributes(span.attributes)
        if len(span.trace_id) != 16 or len(span.span_id) != 8:
            converted.rejected.append(f"span {span.name!r}: trace_id must be 16 bytes and span_id 8")
            continue
        if max(span.start_time_unix_nano, span.end_time_unix_nano) > MAX_TIME_NS:
            converted.rejected.append(f"span {span.name!r}: start and end times must be before 2262")
            continue
        converted.spans.append(
            {
                "tenant": tenant,
                "trace_id": span.trace_id.hex(),
                "span_id": span.span_id.hex(),
                "parent_span_id": span.parent_span_id.hex(),
                "name": span.name,
                "service": _text(resource.get("service.name", "")),
                "kind": _KINDS.get(span.kind, "unspecified"),
                "start_time": _time(span.start_time_unix_nano),
                "end_time": _time(span.end_time_unix_nano),
                "duration_ms": max(span.end_time_unix_nano - span.start_time_unix_nano, 0) / 1e6,
                "status_code": _STATUS.get(span.status.code, "unset"),
                "status_message": span.status.message,
                "attributes": _stored(attributes, redactor),
                "events": _span_events(span, redactor),
                "links": _span_links(span, redactor),
                **origin,
                "typed_values": True,
                "received_at": received_at,
            }
        )
        if CORRELATION_ID not in attributes:
            continue
        try:
            converted.events.append(validate_event(business_event_fields(span, attributes, resource)))
        except ValidationError as error:
            reasons = "; ".join(f"{problem.field} {problem.reason}" for problem in problems_of(error))
            converted.rejected.append(f"span {span.name!r} ({span.span_id.hex()}): {reasons}")
    return converted
