"""The HTTP side of ingest: media types, encodings, malformed and oversized bodies, health endpoints.

Every refusal is the collector's one JSON error shape, never a stack trace (``assert_error``).
"""

from __future__ import annotations

import gzip
import time

import httpx
import orjson
import pytest
from google.rpc import code_pb2

from tests.support.collector_process import CollectorProcess
from tests.support.ingest import (
    assert_error,
    assert_rpc_error,
    business_event,
    event_count,
    field_violations,
    gzip_bomb,
    padded_batch,
    unique_key,
)

DEFAULT_LIMIT = 16 * 1024 * 1024
INGEST = ["/v1/events", "/v1/traces", "/v1/logs"]


def test_healthz_answers_while_the_process_lives(http: httpx.Client) -> None:
    response = http.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_answers_200_while_the_store_answers(http: httpx.Client) -> None:
    response = http.get("/readyz")

    assert response.status_code == 200
    assert response.json()["status"] == "ready"


@pytest.mark.parametrize("path", INGEST)
@pytest.mark.parametrize("media_type", ["text/plain", "application/xml", "multipart/form-data", None])
def test_a_body_that_is_neither_json_nor_protobuf_is_refused_415(
    http: httpx.Client, path: str, media_type: str | None
) -> None:
    headers = {"content-type": media_type} if media_type else {}

    response = http.post(path, content=b'{"events": []}', headers=headers)

    assert_error(response, 415, "unsupported_media_type")


def test_protobuf_is_refused_415_by_the_json_events_endpoint(http: httpx.Client) -> None:
    response = http.post(
        "/v1/events", content=b"\x0a\x00", headers={"content-type": "application/x-protobuf"}
    )

    assert_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize("path", INGEST)
@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, br"])
def test_an_unknown_content_encoding_is_refused_415(http: httpx.Client, path: str, encoding: str) -> None:
    response = http.post(
        path, content=b"{}", headers={"content-type": "application/json", "content-encoding": encoding}
    )

    body = assert_error(response, 415, "unsupported_encoding")
    assert encoding in body["message"]


def test_malformed_json_is_refused_400_naming_the_body(http: httpx.Client) -> None:
    response = http.post(
        "/v1/events", content=b'{"events": [{"correlation_id": ', headers={"content-type": "application/json"}
    )

    body = assert_error(response, 400, "invalid_events")
    [problem] = body["problems"]
    assert problem["field"] == "body"
    assert problem["reason"].startswith("is not valid JSON")


def test_malformed_otlp_json_is_refused_400(http: httpx.Client) -> None:
    response = http.post(
        "/v1/traces", content=b'{"resourceSpans": [', headers={"content-type": "application/json"}
    )

    assert_error(response, 400, "invalid_otlp")


def test_garbage_protobuf_is_refused_400_with_a_protobuf_status(http: httpx.Client) -> None:
    # OTLP/HTTP: "the response body for all HTTP 4xx and 5xx responses MUST be a Protobuf-encoded
    # Status message" in the request's encoding.
    response = http.post(
        "/v1/traces",
        content=b"\xff\xff\xff\xff this is not an ExportTraceServiceRequest",
        headers={"content-type": "application/x-protobuf"},
    )

    answer = assert_rpc_error(response, 400, "invalid_otlp")
    assert answer.code == code_pb2.INVALID_ARGUMENT
    assert answer.message == "body is not a protobuf ExportTraceServiceRequest (it does not decode)"
    assert field_violations(answer) == {
        "body": "is not a protobuf ExportTraceServiceRequest (it does not decode)"
    }


@pytest.mark.parametrize("path", INGEST)
def test_a_body_that_is_not_the_gzip_it_claims_is_refused_400(http: httpx.Client, path: str) -> None:
    response = http.post(
        path,
        content=b'{"events": []}',
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )

    assert_error(response, 400, "bad_compression")


def test_a_gzip_body_cut_short_is_refused_400_and_nothing_is_stored(http: httpx.Client) -> None:
    key = unique_key("OPP")
    whole = gzip.compress(orjson.dumps({"events": [business_event(key)]}))

    response = http.post(
        "/v1/events",
        content=whole[:-8],  # without the trailer (CRC and length): the JSON inside is complete
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )

    assert_error(response, 400, "bad_compression")
    assert_error(http.get(f"/api/transactions/{key}"), 404, "not_found")


def test_a_gzip_body_of_several_members_is_read_whole(http: httpx.Client) -> None:
    key = unique_key("OPP")
    body = orjson.dumps({"events": [business_event(key)]})
    half = len(body) // 2

    response = http.post(
        "/v1/events",
        content=gzip.compress(body[:half]) + gzip.compress(body[half:]),  # RFC 1952: members in a row
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )

    assert response.status_code == 200, response.text
    assert event_count(http, key) == 1


def test_the_default_body_limit_is_16_mib(http: httpx.Client) -> None:
    at_limit, over_limit = unique_key("OPP"), unique_key("OPP")
    headers = {"content-type": "application/json"}

    accepted = http.post("/v1/events", content=padded_batch(at_limit, DEFAULT_LIMIT), headers=headers)
    refused = http.post("/v1/events", content=padded_batch(over_limit, DEFAULT_LIMIT + 1), headers=headers)

    assert accepted.status_code == 200, accepted.text
    body = assert_error(refused, 413, "body_too_large")
    assert str(DEFAULT_LIMIT) in body["message"]
    assert_error(http.get(f"/api/transactions/{over_limit}"), 404, "not_found")


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """1 GiB of zeros, gzip-compressed to about 1 MB."""
    return gzip_bomb(1 << 30)


@pytest.mark.parametrize(
    ("path", "media_type"), [(INGEST[0], "application/json"), (INGEST[1], "application/x-protobuf")]
)
def test_a_gzip_bomb_is_refused_413_without_being_inflated(
    http: httpx.Client, live_collector: CollectorProcess, bomb: bytes, path: str, media_type: str
) -> None:
    peak_before = live_collector.peak_memory_bytes()
    started = time.monotonic()

    response = http.post(path, content=bomb, headers={"content-type": media_type, "content-encoding": "gzip"})

    elapsed = time.monotonic() - started
    if media_type == "application/x-protobuf":
        assert_rpc_error(response, 413, "body_too_large")
    else:
        assert_error(response, 413, "body_too_large")
    assert elapsed < 5, f"refusing the bomb took {elapsed:.1f} s"
    grown = live_collector.peak_memory_bytes() - peak_before
    assert grown < 256 * 1024 * 1024, f"the collector's peak memory grew by {grown >> 20} MiB"
    assert http.get("/readyz").status_code == 200
    assert http.post("/v1/events", json={"events": [business_event(unique_key("OPP"))]}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v1/events", 405, "method_not_allowed"),
        ("GET", "/api/transactions/NO-SUCH-KEY-EVER", 404, "not_found"),
        ("GET", "/api/traces/not-a-trace-id", 400, "invalid_request"),
        ("GET", "/api/traces/" + "0" * 32, 404, "not_found"),
        ("GET", "/no/such/path", 404, "not_found"),
    ],
)
def test_other_errors_have_the_same_shape_and_no_stack_trace(
    http: httpx.Client, method: str, path: str, status: int, code: str
) -> None:
    assert_error(http.request(method, path), status, code)
