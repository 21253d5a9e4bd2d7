"""OTLP/HTTP trace requests: decoding (protobuf or JSON) and turning spans into stored rows.

Decoding uses the ``opentelemetry-proto`` messages. Every span is kept as a technical span; a span
with ``threadline.correlation_id`` is also a business event (README, "From any OpenTelemetry SDK";
docs/architecture.md, "The path of an event"), validated by the same rules as the JSON endpoint. A
span whose business attributes are invalid is still kept as a technical span and reported in the
response's ``partial_success``. What log records share with spans (decoding, the fields from the
``threadline.*`` attributes, the error, the words of a refusal) is here too, for ``otlp_logs.py``.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

import orjson
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from opentelemetry.semconv.attributes.exception_attributes import (
    EXCEPTION_MESSAGE,
    EXCEPTION_STACKTRACE,
    EXCEPTION_TYPE,
)
from pydantic import ValidationError

from threadline.contract.attributes import (
    ALIAS_PREFIX,
    AMOUNT,
    ATTEMPT,
    CORRELATION_ID,
    CORRELATION_KIND,
    CURRENCY,
    DURATION_MS,
    ERROR_KIND,
    ERROR_MESSAGE,
    EVENT_ID,
    PREFIX,
    STATUS,
    STEP,
    SYSTEM,
    WORKFLOW,
)
from threadline.contract.event import (
    DEFAULT_ERROR_KIND,
    MAX_ERROR_MESSAGE,
    MAX_ERROR_TYPE,
    MAX_EVENTS_PER_BATCH,
    MAX_STACKTRACE,
    is_timeout_type,
)
from threadline.contract.redaction import Redactor

from ..schema import (
    BusinessEvent,
    Problem,
    not_json,
    problems_of,
    validate_event,
)
from . import otlp_json

if TYPE_CHECKING:
    from ..storage.writes import KeyRules

# The attributes that map onto fields of the event; any other attribute is kept in `attributes`.
_FIELDS = {
    CORRELATION_KIND: "correlation_kind",
    WORKFLOW: "workflow",
    STEP: "step",
    SYSTEM: "system",
    STATUS: "status",
    EVENT_ID: "event_id",
    ATTEMPT: "attempt",
    AMOUNT: "amount",
    CURRENCY: "currency",
    DURATION_MS: "duration_ms",
}
# The span event OpenTelemetry SDKs record for an exception (`span.record_exception`), per the
# semantic conventions; its attributes are EXCEPTION_TYPE, EXCEPTION_MESSAGE, EXCEPTION_STACKTRACE.
EXCEPTION_EVENT = "exception"
# What a refusal names for each field of the event: the span's own words, not the JSON contract's.
WIRE_NAMES = {
    **{name: attribute for attribute, name in _FIELDS.items()},
    "correlation_id": CORRELATION_ID,
    "step": "threadline.step (default: the span name)",
    "system": "threadline.system (default: the resource's service.name)",
    "timestamp": "the span's start time (startTimeUnixNano)",
    "duration_ms": "the span's end time (endTimeUnixNano)",
    "error.kind": ERROR_KIND,
    "error.message": ERROR_MESSAGE + " (default: the status message or exception.message)",
    "error.type": EXCEPTION_TYPE,
    "error.stacktrace": EXCEPTION_STACKTRACE,
    "aliases": ALIAS_PREFIX + "*",
}
_KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_STATUS = {Status.STATUS_CODE_UNSET: "unset", Status.STATUS_CODE_OK: "ok", Status.STATUS_CODE_ERROR: "error"}
BAD_IDS = "traceId must be 16 bytes (32 hex digits) and spanId 8 (16)"
MAX_TIME_NS = 2**63 - 1  # DateTime64(9) ends in 2262
# One request is one write to the store, as a batch of JSON events is: the same bound. OpenTelemetry
# SDKs export 512 spans per request by default, the Collector's batch processor 8192.
MAX_SPANS_PER_REQUEST = MAX_EVENTS_PER_BATCH


RequestT = TypeVar("RequestT", bound=Message)
logger = logging.getLogger("threadline.collector")


class InvalidPayload(ValueError):
    """The body is no OTLP export request: ``field`` says where (``body`` when it is no request at all)."""

    def __init__(self, reason: str, field: str = "body") -> None:
        super().__init__(reason)
        self.field = field


def decode(body: bytes, is_json: bool) -> ExportTraceServiceRequest:
    """The trace request in ``body``; ``InvalidPayload`` names what is wrong, in the sender's field names."""
    return decode_into(ExportTraceServiceRequest(), body, is_json)


def decode_into(request: RequestT, body: bytes, is_json: bool) -> RequestT:
    """``request`` (an empty OTLP export request) read from ``body``, protobuf or OTLP/JSON."""
    # The stubs type a generic message's descriptor as the pure-Python or the upb one: the same API.
    descriptor = cast(Descriptor, request.DESCRIPTOR)
    name = descriptor.name
    if not is_json:
        try:
            request.ParseFromString(body)
        except DecodeError as error:
            if "depth" in str(error).lower():  # upb: "Exceeded upb_DecodeOptions_MaxDepth"
                raise InvalidPayload(
                    f"is not a protobuf {name} within protobuf's nesting limit: an attribute value "
                    f"{otlp_json.too_deep()}"
                ) from None
            raise InvalidPayload(f"is not a protobuf {name} (it does not decode)") from None
        return request
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidPayload(not_json(error)) from None
    try:
        otlp_json.prepare(document, descriptor)
    except otlp_json.MalformedJson as error:
        raise InvalidPayload(error.reason, error.field) from None
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except json_format.ParseError as error:  # what the check above does not foresee: words for the log only
        logger.info("threadline: an OTLP/JSON body passed the checks but not ParseDict: %s", error)
        raise InvalidPayload(f"does not parse as an OTLP/JSON {name}") from None
    return request


def span_count(request: ExportTraceServiceRequest) -> int:
    return sum(
        len(scope_spans.spans)
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
    )


def encode_response(rejected: int, message: str, as_json: bool) -> bytes:
    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.CopyFrom(
            ExportTracePartialSuccess(rejected_spans=rejected, error_message=message)
        )
    return encoded(response, as_json)


def encoded(response: Message, as_json: bool) -> bytes:
    """An export response in the request's encoding: OTLP/JSON or protobuf."""
    if as_json:
        return json_format.MessageToJson(response, indent=None).encode()
    return response.SerializeToString()


class _TooDeep(ValueError):
    pass


def _value(value: AnyValue, depth: int = 0) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":  # nearly every attribute: the first question asked
        return value.string_value
    if kind is None:
        return None
    if kind in ("array_value", "kvlist_value") and depth >= otlp_json.MAX_VALUE_DEPTH:
        raise _TooDeep
    if kind == "array_value":
        return [_value(item, depth + 1) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: _value(item.value, depth + 1) for item in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


def text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode() if isinstance(value, list | dict) else str(value)


def value_of(value: AnyValue, where: str) -> Any:
    """The value as Python's; ``InvalidPayload`` naming ``where`` when it nests past MAX_VALUE_DEPTH."""
    try:
        return _value(value)
    except _TooDeep:
        raise InvalidPayload(otlp_json.too_deep(), where) from None


def attributes_of(key_values: Any) -> dict[str, Any]:
    """The attributes as Python values; ``InvalidPayload`` naming one nested past MAX_VALUE_DEPTH."""
    return {kv.key: value_of(kv.value, f"attribute {kv.key[:80]!r}") for kv in key_values}


def time_of(nanoseconds: int) -> dt.datetime:
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
        resource = attributes_of(resource_spans.resource.attributes)
        stored_resource = _stored(resource, redactor)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            origin = {
                "resource": stored_resource,
                "scope_name": scope.name,
                "scope_version": scope.version,
                "scope_attributes": _stored(attributes_of(scope.attributes), redactor),
            }
            for span in scope_spans.spans:
                yield resource, origin, span


def business_event_fields(span: Span, attributes: dict[str, Any], resource: dict[str, Any]) -> dict[str, Any]:
    """The JSON-contract fields of a span that carries ``threadline.correlation_id``."""
    fields: dict[str, Any] = {
        "step": span.name,
        "system": resource.get("service.name"),
        "status": "error" if span.status.code == Status.STATUS_CODE_ERROR else "ok",
        "event_id": span.trace_id.hex() + span.span_id.hex() if span.trace_id else None,
        "timestamp": time_of(span.start_time_unix_nano) if span.start_time_unix_nano else None,
    }
    if span.end_time_unix_nano > span.start_time_unix_nano:
        fields["duration_ms"] = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6
    failed = span.status.code == Status.STATUS_CODE_ERROR or attributes.get(STATUS) == "error"
    exception = _recorded_exception(span)
    error = error_fields(attributes, failed, exception, span.status.message, exception.get(EXCEPTION_MESSAGE))
    return attribute_fields(fields, attributes, error, span.trace_id, span.span_id)


def attribute_fields(
    defaults: dict[str, Any],
    attributes: dict[str, Any],
    error: dict[str, Any] | None,
    trace_id: bytes,
    span_id: bytes,
    kept_apart: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The event's fields: ``defaults`` from the sender's own record, overridden by the ``threadline.*``
    attributes; the other attributes (but ``kept_apart``) as the event's attributes, as texts."""
    fields = {
        "correlation_id": attributes.get(CORRELATION_ID),
        "workflow": attributes.get(WORKFLOW),
        **defaults,
    }
    for key, name in _FIELDS.items():
        if key in attributes:
            fields[name] = attributes[key]
    if error:
        fields["error"] = error
    aliases = {
        key[len(ALIAS_PREFIX) :]: text_of(value)
        for key, value in attributes.items()
        if key.startswith(ALIAS_PREFIX)
    }
    if aliases:
        fields["aliases"] = aliases
    extra = {
        key: text_of(value)
        for key, value in attributes.items()
        if not key.startswith(PREFIX) and key not in kept_apart and value is not None
    }
    if extra:
        fields["attributes"] = extra
    if len(trace_id) == 16:
        fields["trace_id"] = trace_id.hex()
    if len(span_id) == 8:
        fields["span_id"] = span_id.hex()
    # An absent attribute is a missing field ("is required"), not a field of the wrong type.
    return {name: value for name, value in fields.items() if value is not None}


def _recorded_exception(span: Span) -> dict[str, Any]:
    """The attributes of the last exception recorded on the span, or none."""
    recorded = [event for event in span.events if event.name == EXCEPTION_EVENT]
    return attributes_of(recorded[-1].attributes) if recorded else {}


def error_fields(
    attributes: dict[str, Any], failed: bool, exception: dict[str, Any], *messages: Any
) -> dict[str, Any] | None:
    """The event's error: ``threadline.error.*``, else the record's own ``exception`` attributes and
    the first of its ``messages`` that says something.

    The kind is ``threadline.error.kind``; without it, ``timeout`` for a timeout exception type (the
    SDK's rule), else the default kind. Texts are cut to their limits rather than refused: an OTel
    SDK records whole stack traces, and the event matters more than the end of its trace.
    """
    if not failed and ERROR_KIND not in attributes:
        return None
    exception_type = exception.get(EXCEPTION_TYPE)
    kind = attributes.get(ERROR_KIND)
    if kind is None:
        timeout = isinstance(exception_type, str) and is_timeout_type(exception_type)
        kind = "timeout" if timeout else DEFAULT_ERROR_KIND
    message = next((text for text in (attributes.get(ERROR_MESSAGE), *messages) if text), "")
    error: dict[str, Any] = {"kind": kind, "message": text_of(message)[:MAX_ERROR_MESSAGE]}
    if exception_type is not None:
        error["type"] = text_of(exception_type)[:MAX_ERROR_TYPE]
    if exception.get(EXCEPTION_STACKTRACE) is not None:
        error["stacktrace"] = text_of(exception[EXCEPTION_STACKTRACE])[:MAX_STACKTRACE]
    return error


def wire_name(field: str, names: Mapping[str, str] = WIRE_NAMES) -> str:
    """The attribute (or part of the record) a field of the event came from, for the sender to look at."""
    head, _, rest = field.partition(".")
    if head == "aliases" and rest:
        return ALIAS_PREFIX + rest
    if head == "attributes" and rest:
        return f"attribute {rest}"
    return names.get(field, field)


def reasons(problems: list[Problem], names: Mapping[str, str] = WIRE_NAMES) -> str:
    return "; ".join(f"{wire_name(problem.field, names)} {problem.reason}" for problem in problems)


def refusal(span: Span, problems: list[Problem]) -> str:
    """Why the span's business event was refused, naming the span and each attribute."""
    return f"span {span.name!r} ({span.span_id.hex()}): {reasons(problems)}"


def _redacted(attributes: dict[str, Any], redactor: Redactor | None) -> dict[str, Any]:
    return redactor.redact(attributes) if redactor is not None else attributes


def _stored(attributes: dict[str, Any], redactor: Redactor | None) -> dict[str, str]:
    """An attribute map as the spans table keeps it: each value as its JSON, sensitive ones hashed."""
    return {key: orjson.dumps(value).decode() for key, value in _redacted(attributes, redactor).items()}


# A span without events or links, as most are: its column without building the list.
NONE = "[]"


def _span_events(span: Span, redactor: Redactor | None) -> str:
    if not span.events:
        return NONE
    return orjson.dumps(
        [
            {
                "name": event.name,
                "time_unix_nano": event.time_unix_nano,
                "attributes": _redacted(attributes_of(event.attributes), redactor),
            }
            for event in span.events
        ]
    ).decode()


def _span_links(span: Span, redactor: Redactor | None) -> str:
    if not span.links:
        return NONE
    return orjson.dumps(
        [
            {
                "trace_id": link.trace_id.hex(),
                "span_id": link.span_id.hex(),
                "attributes": _redacted(attributes_of(link.attributes), redactor),
            }
            for link in span.links
        ]
    ).decode()


def convert(
    request: ExportTraceServiceRequest,
    tenant: str,
    redactor: Redactor | None = None,
    context: Mapping[str, Any] | None = None,
    rules: KeyRules | None = None,
) -> Converted:
    """Rows of technical spans and validated business events; sensitive attributes hashed by ``redactor``.

    A technical span keeps what was sent, typed: its attributes, events (exceptions among them),
    links, resource and instrumentation scope. Every attribute map of it goes through the same
    redaction; its correlation id too when ``rules`` say it is of a sensitive kind.

    ``context`` is the validation context of the events (``schema.clock``: no event in the future).
    """
    converted = Converted()
    received_at = dt.datetime.now(dt.UTC)
    for resource, origin, span in _spans(request, redactor):
        attributes = attributes_of(span.attributes)
        if len(span.trace_id) != 16 or len(span.span_id) != 8:
            converted.rejected.append(f"span {span.name!r}: {BAD_IDS}")
            continue
        if max(span.start_time_unix_nano, span.end_time_unix_nano) > MAX_TIME_NS:
            converted.rejected.append(f"span {span.name!r}: start and end times must be before 2262")
            continue
        stored_attributes = attributes
        if CORRELATION_ID in attributes:
            try:
                event = validate_event(business_event_fields(span, attributes, resource), context)
            except ValidationError as error:
                converted.rejected.append(refusal(span, problems_of(error)))
            else:
                converted.events.append(event)
                if rules is not None and redactor is not None:
                    stored_attributes = {**attributes, CORRELATION_ID: rules.stored_key(event, redactor)}
        converted.spans.append(
            {
                "tenant": tenant,
                "trace_id": span.trace_id.hex(),
                "span_id": span.span_id.hex(),
                "parent_span_id": span.parent_span_id.hex(),
                "name": span.name,
                "service": text_of(resource.get("service.name", "")),
                "kind": _KINDS.get(span.kind, "unspecified"),
                "start_time": time_of(span.start_time_unix_nano),
                "end_time": time_of(span.end_time_unix_nano),
                "duration_ms": max(span.end_time_unix_nano - span.start_time_unix_nano, 0) / 1e6,
                "status_code": _STATUS.get(span.status.code, "unset"),
                "status_message": span.status.message,
                "attributes": _stored(stored_attributes, redactor),
                "events": _span_events(span, redactor),
                "links": _span_links(span, redactor),
                **origin,
                "typed_values": True,
                "received_at": received_at,
            }
        )
    return converted
