"""THREADLINE_MAX_BODY_BYTES: the largest body a collector takes, measured after decompression."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterator

import httpx
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.support.ingest import (
    assert_error,
    assert_rpc_error,
    event_count,
    new_span_id,
    new_trace_id,
    otlp_json_request,
    otlp_json_span,
    padded_batch,
    unique_key,
)
from tests.support.stores import Stores

pytestmark = pytest.mark.slow

LIMIT = 64 * 1024
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def small(stores: Stores) -> Iterator[httpx.Client]:
    """A client on a collector started with a 64 KiB body limit."""
    collector = stores.collector(env={"THREADLINE_MAX_BODY_BYTES": str(LIMIT)}).start()
    with httpx.Client(base_url=collector.url, timeout=30) as client:
        yield client
    collector.stop()


def test_a_body_of_exactly_the_limit_is_accepted(small: httpx.Client) -> None:
    key = unique_key("OPP")

    response = small.post("/v1/events", content=padded_batch(key, LIMIT), headers=JSON)

    assert response.status_code == 200, response.text
    assert event_count(small, key) == 1


def test_a_body_one_byte_over_the_limit_is_refused_413(small: httpx.Client) -> None:
    key = unique_key("OPP")

    response = small.post("/v1/events", content=padded_batch(key, LIMIT + 1), headers=JSON)

    body = assert_error(response, 413, "body_too_large")
    assert str(LIMIT) in body["message"]
    assert_error(small.get(f"/api/transactions/{key}"), 404, "not_found")


@pytest.mark.parametrize(("encoding", "compress"), [("gzip", gzip.compress), ("deflate", zlib.compress)])
def test_the_limit_is_measured_after_decompression(
    small: httpx.Client, encoding: str, compress: Callable[[bytes], bytes]
) -> None:
    key = unique_key("OPP")
    compressed = compress(padded_batch(key, LIMIT + 1))
    assert len(compressed) < LIMIT // 10

    response = small.post("/v1/events", content=compressed, headers={**JSON, "content-encoding": encoding})

    assert_error(response, 413, "body_too_large")


def test_the_limit_applies_to_otlp_protobuf(small: httpx.Client) -> None:
    trace_id = new_trace_id()
    spans = [otlp_json_span(trace_id, new_span_id(), "x" * 1000) for _ in range(80)]
    request = json_format.ParseDict(otlp_json_request("netsuite", *spans), ExportTraceServiceRequest())
    body = request.SerializeToString()
    assert len(body) > LIMIT

    response = small.post("/v1/traces", content=body, headers={"content-type": "application/x-protobuf"})

    assert str(LIMIT) in assert_rpc_error(response, 413, "body_too_large").message
    assert_error(small.get(f"/api/traces/{trace_id}"), 404, "not_found")
