"""``POST /v1/cloudevents``: CloudEvents in structured, binary and batch mode (``ingest/cloud_events.py``),
stored as ``POST /v1/events`` stores events."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from ..auth import require
from ..http_errors import ApiError, media_type
from ..ingest import cloud_events, webhooks
from ..schema import InvalidBatch
from .dependencies import CollectorDep, PrincipalDep
from .ingest import IngestResult, clock_of, read_body, store_events
from .webhooks import no_mapping

router = APIRouter(tags=["ingest"], dependencies=[Depends(require("ingest"))])

ENDPOINT = "cloudevents"  # the endpoint label of the ingest metrics, and the source stored with each event


@router.post(
    "/v1/cloudevents",
    response_model=IngestResult,
    summary="CloudEvents (HTTP binding: structured, binary or batch mode)",
    responses={
        400: {"description": "A required attribute missing, or a value the contract refuses; nothing stored"},
        413: {},
        415: {},
        422: {"description": "An event without the BAM extension that no cloudevents mapping matches"},
        429: {},
        503: {},
    },
)
async def post_cloudevents(
    request: Request, collector: CollectorDep, principal: PrincipalDep
) -> IngestResult:
    """Store the request's CloudEvents, all or none."""
    started = time.perf_counter()
    content_type = media_type(request)
    structured = content_type in (cloud_events.STRUCTURED, cloud_events.BATCH)
    if not structured and not cloud_events.is_binary(request.headers):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send {cloud_events.STRUCTURED} (structured mode), {cloud_events.BATCH} (batch mode), or the "
            "event's attributes as ce-* headers with its data as the body (binary mode)",
        )
    body = await read_body(request, collector.settings.max_body_bytes)
    source = collector.webhooks.sources.get(cloud_events.MAPPINGS_SOURCE)
    mappings = source.mappings if source is not None else []
    headers = dict(request.headers)
    with collector.writer.arriving() as arrival:
        try:
            received = await run_in_threadpool(cloud_events.read, content_type, headers, body)
            events = await run_in_threadpool(
                cloud_events.convert, received, mappings, headers, clock_of(collector)
            )
        except InvalidBatch as invalid:
            collector.metrics.events_rejected.labels(ENDPOINT, "invalid").inc(max(invalid.events, 1))
            raise ApiError(
                400,
                "invalid_events",
                f"{len(invalid.problems)} problem(s) in the CloudEvents; nothing was stored",
                problems=invalid.problems,
            ) from None
        except webhooks.NoMappingMatched as unmatched:
            collector.metrics.events_rejected.labels(ENDPOINT, "unmatched").inc()
            raise no_mapping(unmatched) from None
        return await store_events(collector, principal, ENDPOINT, ENDPOINT, events, started, arrival)
