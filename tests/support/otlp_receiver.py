"""A real OTLP/HTTP trace receiver for tests: decodes what the exporters send, keeps the spans.

It can be told to answer 503 with Retry-After, to answer slowly, or to stop listening (collector
down), so tests can watch the SDK back off, spool and deliver later.
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None


@dataclass
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    start_ns: int
    end_ns: int
    status_code: int
    attributes: dict[str, Any]
    resource: dict[str, Any]

    @property
    def event_id(self) -> str | None:
        return self.attributes.get("threadline.event_id")


def decode_request(body: bytes) -> list[ReceivedSpan]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        status_code=span.status.code,
                        attributes={kv.key: _value(kv.value) for kv in span.attributes},
                        resource=resource,
                    )
                )
    return spans


@dataclass
class OtlpReceiver:
    port: int = field(default_factory=free_port)
    spans: list[ReceivedSpan] = field(default_factory=list)
    requests: list[tuple[float, int]] = field(default_factory=list)  # (monotonic time, status answered)
    unavailable_answers: int = 0  # answer this many requests with 503 before accepting
    retry_after_s: int | None = None
    delay_s: float = 0.0  # hold each request this long before answering (a slow collector)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OtlpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                with receiver._lock:
                    if receiver.unavailable_answers > 0:
                        receiver.unavailable_answers -= 1
                        receiver.requests.append((time.monotonic(), 503))
                        self.send_response(503)
                        if receiver.retry_after_s is not None:
                            self.send_header("Retry-After", str(receiver.retry_after_s))
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                spans = decode_request(body)
                with receiver._lock:
                    receiver.spans.extend(spans)
                    receiver.requests.append((time.monotonic(), 200))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def business_events(self) -> list[ReceivedSpan]:
        with self._lock:
            return [span for span in self.spans if "threadline.correlation_id" in span.attributes]

    def wait_for(self, count: int, timeout_s: float = 20.0) -> list[ReceivedSpan]:
        """The business events, once at least ``count`` distinct ones arrived (or the timeout passed)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            events = self.business_events()
            if len({span.event_id for span in events}) >= count:
                return events
            time.sleep(0.05)
        return self.business_events()
