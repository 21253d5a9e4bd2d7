"""OTLP/HTTP log requests: log records carrying ``threadline.*`` attributes become business events.

OpenTelemetry's Events are log records with an event name; a record with ``threadline.*`` attributes
is a business event as a span is (``otlp.py``: the same attribute names, the same validation), linked
to its trace through the record's trace and span ids. The differences, each because a log record is
not a span:

- its step defaults to its event name (``eventName``, or the older ``event.name`` attribute), its
  time is ``timeUnixNano`` (``observedTimeUnixNano`` when that is 0), and its event id defaults to
  one derived from its content: a span holds several records, so trace id + span id name no record;
- with no ``threadline.status``, a severity of ERROR or above means ``error``: that is how a logger
  says a step failed; its ``exception.*`` attributes and its body describe the error;
- a record with some ``threadline.*`` attribute but no correlation id is refused in the response's
  ``partial_success``: no technical copy of a log record is kept, so it would be lost unseen;
- a record with no ``threadline.*`` attribute is accepted and not stored, as a span that is no
  business event is no business event (nor counted as rejected).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, SeverityNumber
from opentelemetry.semconv.attributes.exception_attributes import (
    EXCEPTION_MESSAGE,
    EXCEPTION_STACKTRACE,
    EXCEPTION_TYPE,
)
from pydantic import ValidationError

from threadline.contract.attributes import DURATION_MS, ERROR_MESSAGE, PREFIX, STATUS
from threadline.contract.event import MAX_EVENTS_PER_BATCH

from ..schema import BusinessEvent, problems_of, validate_event
from . import otlp

# Where OpenTelemetry put an Event's name before OTLP 1.5 gave log records their own `event_name`.
EVENT_NAME_ATTRIBUTE = "event.name"
# The exception a logger records, per the semantic conventions: the event's error, not attributes.
_EXCEPTION_ATTRIBUTES = frozenset({EXCEPTION_TYPE, EXCEPTION_MESSAGE, EXCEPTION_STACKTRACE})
# Severity ERROR (17) to FATAL4 (24) is a failure when the record says nothing of its status.
FAILING_SEVERITY = SeverityNumber.SEVERITY_NUMBER_ERROR
# One request is one write to the store, as a batch of JSON events and an OTLP trace request are.
MAX_LOG_RECORDS_PER_REQUEST = MAX_EVENTS_PER_BATCH
# What a refusal names for each field of the event: the log record's own words.
WIRE_NAMES = {
    **otlp.WIRE_NAMES,
    "step": f"threadline.step (default: the record's eventName or {EVENT_NAME_ATTRIBUTE} attribute)",
    "timestamp": "the record's time (timeUnixNano, else observedTimeUnixNano)",
    "duration_ms": DURATION_MS,  # a record has no end time to derive it from
    "error.message": ERROR_MESSAGE + " (default: exception.message or the record's body)",
}


def decode(body: bytes, is_json: bool) -> ExportLogsServiceRequest:
    """The logs request in ``body``; ``otlp.InvalidPayload`` names what is wrong."""
    return otlp.decode_into(ExportLogsServiceRequest(), body, is_json)


def record_count(request: ExportLogsServiceRequest) -> int:
    return sum(
        len(scope_logs.log_records)
        for resource_logs in request.resource_logs
        for scope_logs in resource_logs.scope_logs
    )


def encode_response(rejected: int, message: str, as_json: bool) -> bytes:
    response = ExportLogsServiceResponse()
    if rejected:
        response.partial_success.CopyFrom(
            ExportLogsPartialSuccess(rejected_log_records=rejected, error_message=message)
        )
    return otlp.encoded(response, as_json)


@dataclass
class Converted:
    events: list[BusinessEvent] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # one reason per business record refused


def _records(request: ExportLogsServiceRequest) -> Iterator[tuple[str, dict[str, Any], LogRecord]]:
    """Each record with where it is in the request (its JSON path) and its resource's attributes."""
    for r, resource_logs in enumerate(request.resource_logs):
        resource = otlp.attributes_of(resource_logs.resource.attributes)
        for s, scope_logs in enumerate(resource_logs.scope_logs):
            for index, record in enumerate(scope_logs.log_records):
                yield f"resourceLogs[{r}].scopeLogs[{s}].logRecords[{index}]", resource, record


def event_name(record: LogRecord, attributes: Mapping[str, Any]) -> str | None:
    name = record.event_name or attributes.get(EVENT_NAME_ATTRIBUTE)
    return otlp.text_of(name) if name else None


def business_event_fields(
    record: LogRecord, attributes: dict[str, Any], resource: dict[str, Any], where: str
) -> dict[str, Any]:
    """The JSON-contract fields of a log record that carries ``threadline.*`` attributes."""
    nanoseconds = record.time_unix_nano or record.observed_time_unix_nano
    severe = record.severity_number >= FAILING_SEVERITY
    failed = attributes.get(STATUS, "error" if severe else "ok") == "error"
    defaults = {
        "step": event_name(record, attributes),
        "system": resource.get("service.name"),
        "status": "error" if failed else "ok",
        "timestamp": otlp.time_of(nanoseconds) if nanoseconds else None,
    }
    body = otlp.value_of(record.body, f"{where}.body") if failed else None
    error = otlp.error_fields(attributes, failed, attributes, attributes.get(EXCEPTION_MESSAGE), body)
    return otlp.attribute_fields(
        defaults, attributes, error, record.trace_id, record.span_id, kept_apart=_EXCEPTION_ATTRIBUTES
    )


def convert(request: ExportLogsServiceRequest, context: Mapping[str, Any] | None = None) -> Converted:
    """The validated business events of the request's records, and why each refused one was.

    ``context`` is the validation context of the events (``schema.clock``: no event in the future).
    """
    converted = Converted()
    for where, resource, record in _records(request):
        attributes = otlp.attributes_of(record.attributes)
        if not any(key.startswith(PREFIX) for key in attributes):
            continue
        name = event_name(record, attributes)
        label = f"log record {where}" + (f" ({name[:80]!r})" if name else "")
        # Ids are optional on a record (one logged outside any span), but a wrong one links nowhere.
        if len(record.trace_id) not in (0, 16) or len(record.span_id) not in (0, 8):
            converted.rejected.append(f"{label}: {otlp.BAD_IDS}")
            continue
        try:
            event = validate_event(business_event_fields(record, attributes, resource, where), context)
        except ValidationError as error:
            converted.rejected.append(f"{label}: {otlp.reasons(problems_of(error), WIRE_NAMES)}")
        else:
            converted.events.append(event)
    return converted
