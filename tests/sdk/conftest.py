from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.otlp_receiver import OtlpReceiver
from threadline import sdk


@pytest.fixture(autouse=True)
def _quiet_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests configure the SDK explicitly; nothing from the developer's shell leaks in or out."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))  # the default spool
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_SERVICE_NAME",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "THREADLINE_API_KEY",
        "THREADLINE_REDACT_KEYS",
        "THREADLINE_SPOOL_DIR",
        "THREADLINE_QUEUE_SIZE",
        "THREADLINE_SYSTEM",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("THREADLINE_SCHEDULE_DELAY", "0.05")
    monkeypatch.setenv("THREADLINE_EXPORT_TIMEOUT", "2")
    monkeypatch.setenv("THREADLINE_MAX_BACKOFF", "1")
    logging.getLogger("opentelemetry.exporter.otlp.proto.http.trace_exporter").setLevel(logging.CRITICAL)
    logging.getLogger("opentelemetry.exporter.otlp.common.http").setLevel(logging.CRITICAL)


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    running = OtlpReceiver().start()
    yield running
    running.stop()


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def configured(receiver: OtlpReceiver, spool_dir: Path) -> Iterator[OtlpReceiver]:
    """The SDK configured against a live receiver, with its own spool; shut down afterwards."""
    sdk.configure(service="order-sync", system="netsuite", endpoint=receiver.endpoint, spool_dir=spool_dir)
    yield receiver
    sdk.shutdown(timeout_s=2)
