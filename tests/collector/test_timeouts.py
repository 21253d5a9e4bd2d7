"""A client that sends its request a byte at a time (slowloris) cannot hold a connection open:
the request head has THREADLINE_HEADER_TIMEOUT, the body THREADLINE_BODY_TIMEOUT plus a second per
THREADLINE_BODY_MIN_RATE bytes; past them the collector answers 408 and closes the connection."""

from __future__ import annotations

import http.client
import select
import socket
import time
from collections.abc import Iterator

import orjson
import pytest

from tests.support.collector_process import CollectorProcess
from tests.support.ingest import business_event, unique_key
from tests.support.stores import Stores

HEADER_TIMEOUT_S = 2
BODY_TIMEOUT_S = 2
BODY_MIN_RATE = 1000  # bytes per second
DRIP_INTERVAL_S = 0.2
GIVE_UP_S = 10  # far past every bound: by then a collector without them has shown it waits forever


@pytest.fixture(scope="module")
def collector(stores: Stores) -> Iterator[CollectorProcess]:
    running = stores.collector(
        env={
            "THREADLINE_HEADER_TIMEOUT": f"{HEADER_TIMEOUT_S}s",
            "THREADLINE_BODY_TIMEOUT": f"{BODY_TIMEOUT_S}s",
            "THREADLINE_BODY_MIN_RATE": str(BODY_MIN_RATE),
        }
    ).start()
    yield running
    running.stop()


def drip(collector: CollectorProcess, head: bytes, trickle: bytes) -> tuple[bytes, float]:
    """Send ``head`` at once, then ``trickle`` a byte every DRIP_INTERVAL_S; what the collector
    answered until it closed the connection, and after how many seconds it closed it."""
    answer = b""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", collector.port), timeout=GIVE_UP_S) as connection:
        connection.sendall(head)
        remaining = iter(trickle)
        while time.monotonic() - started < GIVE_UP_S:
            readable, _, _ = select.select([connection], [], [], DRIP_INTERVAL_S)
            if readable:
                chunk = connection.recv(65536)
                if not chunk:  # closed by the collector
                    return answer, time.monotonic() - started
                answer += chunk
                continue
            byte = next(remaining, None)
            if byte is not None:
                try:
                    connection.sendall(bytes([byte]))
                except (BrokenPipeError, ConnectionResetError):
                    break
    raise AssertionError(f"the connection was still open after {GIVE_UP_S} s; answered {answer!r}")


def status_and_body(answer: bytes) -> tuple[str, dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), orjson.loads(body)


def test_headers_sent_a_byte_at_a_time_get_408_and_the_connection_closed(collector: CollectorProcess) -> None:
    headers = b"POST /v1/events HTTP/1.1\r\nHost: collector\r\nContent-Type: application/json\r\n\r\n"

    answer, closed_after = drip(collector, b"", headers)

    status, body = status_and_body(answer)
    assert status == "HTTP/1.1 408 Request Timeout"
    assert body["error"] == "request_timeout"
    assert f"within {HEADER_TIMEOUT_S} s" in str(body["message"])
    assert closed_after < HEADER_TIMEOUT_S + 2


def test_a_body_sent_a_byte_at_a_time_gets_408_and_the_connection_closed(collector: CollectorProcess) -> None:
    key = unique_key("OPP")
    body = orjson.dumps({"events": [business_event(key)]})
    head = (
        b"POST /v1/events HTTP/1.1\r\nHost: collector\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )

    answer, closed_after = drip(collector, head, body)

    status, error = status_and_body(answer)
    assert status == "HTTP/1.1 408 Request Timeout"
    assert error["error"] == "request_timeout"
    assert f"at least {BODY_MIN_RATE} bytes per second" in str(error["message"])
    assert closed_after < BODY_TIMEOUT_S + 2


def test_a_connection_kept_alive_between_prompt_requests_is_not_cut(collector: CollectorProcess) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=GIVE_UP_S)
    try:
        opened = None
        for _ in range(3):  # together longer than the header bound, each request prompt
            connection.request("GET", "/healthz")
            assert connection.getresponse().read() == b'{"status":"ok"}'
            opened = opened or connection.sock
            assert connection.sock is opened  # the same connection all along
            time.sleep(HEADER_TIMEOUT_S * 0.6)
    finally:
        connection.close()
