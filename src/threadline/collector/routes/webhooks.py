"""``POST /v1/webhooks/{source}``: a SaaS sender's own webhook body, through the mappings file
(``ingest/webhooks.py``), stored as ``POST /v1/events`` stores events."""

from __future__ import annotations

import time

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from ..auth import require
from ..http_errors import ApiError, media_type
from ..ingest import webhooks
from ..schema import Problem, not_json
from .dependencies import CollectorDep, PrincipalDep
from .ingest import IngestResult, clock_of, read_body, store_events

router = APIRouter(tags=["ingest"], dependencies=[Depends(require("ingest"))])

ENDPOINT = "webhooks"  # the endpoint label of the ingest metrics
SOURCE = "webhook"  # stored with each event, as "json" and "otlp" are


class WebhookResult(IngestResult):
    mapping: str  # the mapping that made the event


def is_json(content_type: str) -> bool:
    """application/json, or a JSON-based type (``application/cloudevents+json``)."""
    return content_type == "application/json" or content_type.endswith("+json")


@router.post(
    "/v1/webhooks/{source}",
    response_model=WebhookResult,
    summary="A SaaS sender's webhook, turned into a business event by the mappings file",
    responses={
        400: {"description": "Not JSON, or the matching mapping made an invalid event; nothing stored"},
        401: {"description": "The sender signs and the signature does not verify; nothing stored"},
        404: {"description": "No source of that name in the mappings file"},
        413: {},
        415: {},
        422: {"description": "No mapping of the source matches the body: each one tried, and why"},
        429: {},
        503: {},
    },
)
async def post_webhook(
    source: str, request: Request, collector: CollectorDep, principal: PrincipalDep
) -> WebhookResult:
    started = time.perf_counter()
    sender = collector.webhooks.sources.get(source)
    if sender is None:
        known = ", ".join(sorted(collector.webhooks.sources)) or "none: set THREADLINE_WEBHOOKS"
        raise ApiError(404, "unknown_webhook_source", f"no webhook source {source!r} (sources: {known})")
    if not is_json(media_type(request)):
        raise ApiError(415, "unsupported_media_type", "send application/json")
    body = await read_body(request, collector.settings.max_body_bytes)
    if sender.signature is not None:
        try:  # on the raw body, as the sender signed it
            sender.signature.verify(request.headers, body, time.time())
        except webhooks.SignatureError as error:
            collector.metrics.events_rejected.labels(ENDPOINT, "bad_signature").inc()
            raise ApiError(
                401,
                "invalid_signature",
                f"{error}; nothing was stored",
                [Problem(field="signature", reason=str(error))],
            ) from None
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        collector.metrics.events_rejected.labels(ENDPOINT, "malformed").inc()
        raise ApiError(400, "invalid_body", f"the body {not_json(error)}") from None
    match = await run_in_threadpool(
        match_webhook, source, sender, webhooks.request_document(document, request.headers), collector
    )
    result = await store_events(collector, principal, ENDPOINT, SOURCE, [match.event], started)
    return WebhookResult(**result.model_dump(), mapping=match.mapping)


def match_webhook(
    source: str, sender: webhooks.Source, document: dict[str, object], collector: CollectorDep
) -> webhooks.Match:
    """The event of the first mapping that applies; 422 when none does, 400 for a bad value."""
    try:
        return webhooks.first_match(source, sender.mappings, document, clock_of(collector))
    except webhooks.NoMappingMatched as unmatched:
        collector.metrics.events_rejected.labels(ENDPOINT, "unmatched").inc()
        raise no_mapping(unmatched) from None
    except webhooks.InvalidMapping as invalid:
        collector.metrics.events_rejected.labels(ENDPOINT, "invalid").inc()
        raise ApiError(400, "invalid_event", f"{invalid}; nothing was stored", invalid.problems) from None


def no_mapping(unmatched: webhooks.NoMappingMatched) -> ApiError:
    """422: the body is well formed, but no mapping says what event it is; each one tried, and why."""
    return ApiError(422, "no_mapping_matched", f"{unmatched}; nothing was stored", unmatched.problems)
