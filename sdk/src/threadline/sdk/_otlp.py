"""OTLP protobuf encoding of finished spans, and back, for the on-disk spool.

A spooled batch is a standard ``ExportTraceServiceRequest``; decoding it gives ``ReadableSpan``
objects again, so that a spooled batch is sent by the same official OTLP exporter as a live one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

_PARENT_IS_REMOTE = 0x200  # SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK


def encode(spans: Sequence[ReadableSpan]) -> bytes:
    return encode_spans(spans).SerializeToString()


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(item) for item in value.array_value.values)
    if kind in ("kvlist_value", None):
        return None  # not a valid span attribute value in the Python SDK
    return getattr(value, kind)


def _attributes(key_values: Any) -> dict[str, Any]:
    decoded = {kv.key: _value(kv.value) for kv in key_values}
    return {key: value for key, value in decoded.items() if value is not None}


def _status(code: int, message: str) -> Status:
    status_code = StatusCode(code)
    # The SDK accepts a description only on ERROR.
    return Status(status_code, message or None) if status_code is StatusCode.ERROR else Status(status_code)


def decode(payload: bytes) -> list[ReadableSpan]:
    """Spans from an encoded ``ExportTraceServiceRequest``; raises ``DecodeError`` on a corrupt one."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(payload)
    spans: list[ReadableSpan] = []
    for resource_spans in request.resource_spans:
        resource = Resource(_attributes(resource_spans.resource.attributes), resource_spans.schema_url)
        for scope_spans in resource_spans.scope_spans:
            scope = InstrumentationScope(
                scope_spans.scope.name, scope_spans.scope.version or None, scope_spans.schema_url or None
            )
            for span in scope_spans.spans:
                flags = TraceFlags(span.flags & 0xFF)
                context = SpanContext(
                    int.from_bytes(span.trace_id, "big"), int.from_bytes(span.span_id, "big"), False, flags
                )
                parent = (
                    SpanContext(
                        int.from_bytes(span.trace_id, "big"),
                        int.from_bytes(span.parent_span_id, "big"),
                        bool(span.flags & _PARENT_IS_REMOTE),
                        flags,
                    )
                    if span.parent_span_id
                    else None
                )
                spans.append(
                    ReadableSpan(
                        name=span.name,
                        context=context,
                        parent=parent,
                        resource=resource,
                        attributes=_attributes(span.attributes),
                        events=[
                            Event(e.name, _attributes(e.attributes), e.time_unix_nano) for e in span.events
                        ],
                        links=[
                            Link(
                                SpanContext(
                                    int.from_bytes(link.trace_id, "big"),
                                    int.from_bytes(link.span_id, "big"),
                                    True,
                                ),
                                _attributes(link.attributes),
                            )
                            for link in span.links
                        ],
                        kind=SpanKind(max(span.kind - 1, 0)),  # OTLP numbers kinds from 1
                        status=_status(span.status.code, span.status.message),
                        start_time=span.start_time_unix_nano,
                        end_time=span.end_time_unix_nano,
                        instrumentation_scope=scope,
                    )
                )
    return spans
