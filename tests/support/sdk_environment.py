"""A clean SDK environment for tests: nothing from the developer's shell leaks in or out."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

SHELL_SETTINGS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "THREADLINE_API_KEY",
    "THREADLINE_REDACT_KEYS",
    "THREADLINE_SPOOL_DIR",
    "THREADLINE_QUEUE_SIZE",
    "THREADLINE_SYSTEM",
    "THREADLINE_WORKFLOWS",
)


def isolate_sdk(monkeypatch: pytest.MonkeyPatch, cache_dir: Path, export_timeout_s: float) -> None:
    """Fresh default spool, no inherited settings, quick delivery and short backoff."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_dir))  # where the default spool lives
    for name in SHELL_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("THREADLINE_SCHEDULE_DELAY", "0.05")
    monkeypatch.setenv("THREADLINE_EXPORT_TIMEOUT", str(export_timeout_s))
    monkeypatch.setenv("THREADLINE_MAX_BACKOFF", "1")
    for name in (
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        "opentelemetry.exporter.otlp.common.http",
    ):
        logging.getLogger(name).setLevel(logging.CRITICAL)
