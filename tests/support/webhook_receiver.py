"""A webhook receiver for the alert tests: a real HTTP server in a thread that records every POST.

It answers ``status`` (200 unless a test says otherwise), except on the paths in ``refusing``,
which always answer 500 so the collector retries and finally gives up; ``stop()`` makes the port
refuse connections altogether (the receiver is down).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from tests.support.otlp_receiver import free_port


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    answered: int
    raw: bytes = b""  # the body as sent, for checking a signature over it

    @property
    def status(self) -> str:
        """firing or resolved: a webhook says so, a Slack message in its text."""
        if "status" in self.body:
            return str(self.body["status"])
        return "firing" if " FIRING " in self.body.get("text", "") else "resolved"

    @property
    def alert(self) -> dict[str, Any]:
        """The one alert a notification lists (its group holds one alert: ``group_by: [...]``)."""
        [alert] = self.body["alerts"]
        return dict(alert)

    def about(self, key: str) -> bool:
        if "alerts" in self.body:
            return any(
                item["correlation_id"] == key
                for alert in self.body["alerts"]
                for item in alert["transactions"]
            )
        return f"|{key}>" in orjson.dumps(self.body).decode()  # a Slack message links each key


@dataclass
class WebhookReceiver:
    """Records every POST; answers ``status`` (500 on ``refusing`` paths)."""

    port: int = field(default_factory=free_port)
    status: int = 200
    refusing: frozenset[str] = frozenset()
    requests: list[Request] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status = 500 if self.path in receiver.refusing else receiver.status
                with receiver._lock:
                    receiver.requests.append(
                        Request(
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            orjson.loads(body),
                            status,
                            body,
                        )
                    )
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def received(
        self, key: str, path: str = "/hook", status: str | None = None, ok: bool = True
    ) -> list[Request]:
        """Requests about transaction ``key`` to ``path`` (answered 2xx unless ``ok`` is False)."""
        with self._lock:
            requests = list(self.requests)
        return [
            r
            for r in requests
            if r.path == path
            and r.about(key)
            and (not ok or 200 <= r.answered < 300)
            and (status is None or r.status == status)
        ]

    def firing(self, rule: str, subject: str, path: str = "/hook") -> list[dict[str, Any]]:
        """The "firing" alert payloads of ``rule`` about ``subject`` listed in what reached ``path``."""
        with self._lock:
            bodies = [r.body for r in self.requests if r.path == path]
        return [
            alert
            for body in bodies
            for alert in body.get("alerts", [])
            if alert["status"] == "firing"
            and alert["alert"]["rule"] == rule
            and alert["alert"]["subject"] == subject
        ]
