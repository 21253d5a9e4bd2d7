"""Ingest endpoints: ``POST /v1/events`` (the JSON contract), ``POST /v1/traces`` and ``POST /v1/logs``
(OTLP/HTTP).

Bodies are read with a size limit measured after decompression, so a gzip bomb is refused
(413) without ever being inflated in full. A request is answered 2xx only once the store has
everything it carried.
"""

from __future__ import annotations

import datetime as dt
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from ..auth import Principal, enforce_rate, require
from ..http_errors import PROTOBUF_TYPES, ApiError, media_type
from ..ingest import otlp, otlp_logs, undefined
from ..ingest.writer import Arrival, WriteResult
from ..schema import BusinessEvent, InvalidBatch, Problem, clock, parse_batch
from ..service import Collector
from .dependencies import CollectorDep, PrincipalDep

router = APIRouter(tags=["ingest"], dependencies=[Depends(require("ingest"))])

JSON_TYPES = ("application/json",)


class IngestResult(BaseModel):
    accepted: int
    duplicates: int
    warnings: list[Problem] = Field(
        default_factory=list,
        description="Events stored that the workflow definitions cannot judge (an undefined workflow or "
        "step), by index, field and reason",
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, decompressed; 413 past ``limit`` bytes, 415 for an unknown encoding."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "", "gzip", "deflate"):
        raise ApiError(
            415, "unsupported_encoding", f"Content-Encoding {encoding!r} is not supported; use gzip"
        )
    inflater = None
    if encoding == "gzip":
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        inflater = zlib.decompressobj()
    too_large = ApiError(
        413, "body_too_large", f"the body is larger than {limit} bytes (after decompression)"
    )
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            if inflater is None:
                size += len(chunk)
                if size > limit:
                    raise too_large
                chunks.append(chunk)
                continue
            while chunk:
                if inflater.eof:
                    # Data after the end of the stream: gzip allows several members one after
                    # the other (RFC 1952); for deflate it is garbage, refused like any corruption.
                    if encoding != "gzip":
                        raise zlib.error("data after the end of the compressed stream")
                    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                # Inflate at most what is still allowed (+1 to notice going over), never more.
                piece = inflater.decompress(chunk, limit - size + 1)
                size += len(piece)
                if size > limit:
                    raise too_large
                chunks.append(piece)
                chunk = inflater.unconsumed_tail or inflater.unused_data
        if inflater is not None:
            piece = inflater.flush()
            size += len(piece)
            if size > limit:
                raise too_large
            chunks.append(piece)
            if not inflater.eof:  # cut short: what was inflated may parse, but is not what was sent
                raise zlib.error("the compressed stream ends early")
    except zlib.error as error:
        raise ApiError(400, "bad_compression", f"the body is not valid {encoding}: {error}") from None
    return b"".join(chunks)


def clock_of(collector: Collector) -> dict[str, object]:
    """Validation context: event times later than now plus the allowed skew are refused."""
    return clock(dt.datetime.now(dt.UTC), collector.settings.max_future_skew)


@router.post(
    "/v1/events",
    response_model=IngestResult,
    summary="Send business events (JSON)",
    responses={
        400: {"description": "Invalid events; nothing of the batch was stored"},
        413: {},
        415: {},
        503: {},
    },
)
async def post_events(request: Request, collector: CollectorDep, principal: PrincipalDep) -> IngestResult:
    """Store a batch ``{"events": [...]}``. All or nothing: one invalid event refuses the batch."""
    started = time.perf_counter()
    if media_type(request) not in JSON_TYPES:
        raise ApiError(415, "unsupported_media_type", "send application/json")
    body = await read_body(request, collector.settings.max_body_bytes)
    with collector.writer.arriving() as arrival:
        try:
            events = await run_in_threadpool(parse_batch, body, clock_of(collector))
        except InvalidBatch as invalid:
            # All or nothing: every event of the batch is refused, however many problems it has.
            if invalid.events:
                collector.metrics.events_received.labels("events").inc(invalid.events)
                collector.metrics.events_rejected.labels("events", "invalid").inc(invalid.events)
            else:  # not a batch at all: its events cannot be counted, the body counts once
                collector.metrics.events_rejected.labels("events", "malformed").inc()
            raise ApiError(
                400,
                "invalid_events",
                f"{len(invalid.problems)} problem(s) in the batch; nothing was stored",
                problems=invalid.problems,
            ) from None
        return await store_events(collector, principal, "events", "json", events, started, arrival)


async def store_events(
    collector: Collector,
    principal: Principal,
    endpoint: str,
    source: str,
    events: list[BusinessEvent],
    started: float,
    arrival: Arrival | None = None,
) -> IngestResult:
    """Store checked events as every JSON sender's are: counted, rate-limited, redacted, written and
    acknowledged once stored, with the warnings of events the definitions do not name.

    ``endpoint`` labels the metrics; ``source`` is stored with each event; ``arrival`` is the
    request's, if it was announced (``Writer.arriving``)."""
    collector.metrics.events_received.labels(endpoint).inc(len(events))
    enforce_rate(principal, len(events))
    result = await collector.writer.submit(
        principal.tenant,
        source,
        collector.redact(events),
        rules=collector.workflows.key_rules,
        arrival=arrival,
    )
    collector.metrics.events_accepted.labels(endpoint).inc(result.accepted)
    collector.metrics.duplicates.labels(endpoint).inc(result.duplicates)
    collector.metrics.batch_seconds.labels(endpoint).observe(time.perf_counter() - started)
    warnings = undefined.warnings(collector.workflows, events)
    undefined.count(collector.metrics, endpoint, warnings)
    return IngestResult(accepted=result.accepted, duplicates=result.duplicates, warnings=warnings)


@dataclass(frozen=True)
class _Signal:
    """One OTLP signal this collector receives, as its refusals and metrics name it."""

    endpoint: str  # the `endpoint` label of the ingest metrics
    items: str  # what a request carries
    list_field: str  # where in the request they are
    limit: int  # how many one request may carry
    source: str  # what the stored events say they came by

    @property
    def responses(self) -> dict[int | str, dict[str, Any]]:
        return {
            200: {"content": {"application/x-protobuf": {}, "application/json": {}}},
            400: {},
            413: {"description": f"Over the body size limit, or more than {self.limit} {self.items}"},
            415: {},
            429: {},
        }

    @property
    def too_many(self) -> str:
        return "too_many_" + self.items.replace(" ", "_")


_TRACES = _Signal("traces", "spans", "resourceSpans", otlp.MAX_SPANS_PER_REQUEST, "otlp")
_LOGS = _Signal("logs", "log records", "resourceLogs", otlp_logs.MAX_LOG_RECORDS_PER_REQUEST, "otlp_logs")
# How many refusal reasons a partial success spells out; the count covers them all.
_MAX_REASONS = 20


async def _otlp_body(request: Request, collector: Collector) -> tuple[bytes, bool]:
    """The body of an OTLP/HTTP request, and whether it is OTLP/JSON (else protobuf)."""
    content_type = media_type(request)
    if content_type not in JSON_TYPES + PROTOBUF_TYPES:
        raise ApiError(
            415, "unsupported_media_type", "send application/x-protobuf or application/json (OTLP)"
        )
    return await read_body(request, collector.settings.max_body_bytes), content_type in JSON_TYPES


def _within_limit(collector: Collector, signal: _Signal, count: int) -> None:
    if count > signal.limit:
        collector.metrics.events_rejected.labels(signal.endpoint, "malformed").inc()
        reason = f"carries {count} {signal.items}; at most {signal.limit} per request"
        raise ApiError(
            413,
            signal.too_many,
            f"the request {reason}: send them in smaller batches; nothing was stored",
            problems=[Problem(field=signal.list_field, reason=reason)],
        )


def _malformed(collector: Collector, signal: _Signal, invalid: otlp.InvalidPayload) -> ApiError:
    collector.metrics.events_rejected.labels(signal.endpoint, "malformed").inc()
    problems = [Problem(field=invalid.field, reason=str(invalid))]
    return ApiError(400, "invalid_otlp", f"{invalid.field} {invalid}", problems=problems)


def _count_received(collector: Collector, signal: _Signal, events: int, rejected: int) -> None:
    collector.metrics.events_received.labels(signal.endpoint).inc(events + rejected)
    if rejected:
        collector.metrics.events_rejected.labels(signal.endpoint, "invalid").inc(rejected)


async def _store_converted(
    collector: Collector,
    principal: Principal,
    signal: _Signal,
    events: list[BusinessEvent],
    rejected: list[str],
    spans: Sequence[Mapping[str, Any]],
    charged: int,
    arrival: Arrival,
) -> WriteResult:
    """What an OTLP request carried, converted: counted, ``charged`` items taken from the key's
    rate, its events redacted, and stored with its spans."""
    _count_received(collector, signal, len(events), len(rejected))
    enforce_rate(principal, charged)
    return await collector.writer.submit(
        principal.tenant,
        signal.source,
        collector.redact(events),
        spans,
        collector.workflows.key_rules,
        arrival,
    )


def _count_stored(
    collector: Collector, signal: _Signal, result: WriteResult, events: list[BusinessEvent], started: float
) -> None:
    metrics = collector.metrics
    metrics.events_accepted.labels(signal.endpoint).inc(result.accepted)
    metrics.duplicates.labels(signal.endpoint).inc(result.duplicates)
    metrics.batch_seconds.labels(signal.endpoint).observe(time.perf_counter() - started)
    undefined.count(metrics, signal.endpoint, undefined.warnings(collector.workflows, events))


def _otlp_answer(encode: Callable[[int, str, bool], bytes], rejected: list[str], as_json: bool) -> Response:
    """The export response: a partial success counting the refused, with the first reasons."""
    content = encode(len(rejected), "; ".join(rejected[:_MAX_REASONS]), as_json)
    return Response(content=content, media_type="application/json" if as_json else "application/x-protobuf")


@router.post(
    "/v1/traces",
    summary="OTLP/HTTP trace export (protobuf or JSON)",
    response_class=Response,
    responses=_TRACES.responses,
)
async def post_traces(request: Request, collector: CollectorDep, principal: PrincipalDep) -> Response:
    """Accept an ``ExportTraceServiceRequest``; answer an ``ExportTraceServiceResponse``."""
    started = time.perf_counter()
    tenant = principal.tenant
    body, as_json = await _otlp_body(request, collector)
    with collector.writer.arriving() as arrival:
        try:
            request_message = await run_in_threadpool(otlp.decode, body, as_json)
            _within_limit(collector, _TRACES, otlp.span_count(request_message))
            converted = await run_in_threadpool(
                otlp.convert,
                request_message,
                tenant,
                collector.redactor,
                clock_of(collector),
                collector.workflows.key_rules,
            )
        except otlp.InvalidPayload as invalid:
            raise _malformed(collector, _TRACES, invalid) from None
        charged = len(converted.spans)
        result = await _store_converted(
            collector,
            principal,
            _TRACES,
            converted.events,
            converted.rejected,
            converted.spans,
            charged,
            arrival,
        )
    _count_stored(collector, _TRACES, result, converted.events, started)
    return _otlp_answer(otlp.encode_response, converted.rejected, as_json)


@router.post(
    "/v1/logs",
    summary="OTLP/HTTP logs export (protobuf or JSON): log records with threadline.* attributes",
    response_class=Response,
    responses=_LOGS.responses,
)
async def post_logs(request: Request, collector: CollectorDep, principal: PrincipalDep) -> Response:
    """Accept an ``ExportLogsServiceRequest``; answer an ``ExportLogsServiceResponse``.

    A log record with ``threadline.*`` attributes is a business event, as a span is (README, "OTLP
    logs"); a record refused is counted in ``partialSuccess`` with its reasons; a record without
    them is accepted and not stored.
    """
    started = time.perf_counter()
    body, as_json = await _otlp_body(request, collector)
    with collector.writer.arriving() as arrival:
        try:
            request_message = await run_in_threadpool(otlp_logs.decode, body, as_json)
            _within_limit(collector, _LOGS, otlp_logs.record_count(request_message))
            converted = await run_in_threadpool(otlp_logs.convert, request_message, clock_of(collector))
        except otlp.InvalidPayload as invalid:
            raise _malformed(collector, _LOGS, invalid) from None
        # Only business events are stored, so only they count against the key's rate.
        charged = len(converted.events)
        result = await _store_converted(
            collector, principal, _LOGS, converted.events, converted.rejected, (), charged, arrival
        )
    _count_stored(collector, _LOGS, result, converted.events, started)
    return _otlp_answer(otlp_logs.encode_response, converted.rejected, as_json)
