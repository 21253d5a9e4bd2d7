from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator

import pytest

from tests.support.collector_process import ROOT
from tests.support.otlp_receiver import OtlpReceiver
from threadline.collector.workflows import Workflows, load

# A Wednesday afternoon (UTC): history behind it covers working hours and a night.
NOW = dt.datetime(2026, 3, 4, 15, 0, tzinfo=dt.UTC)
EXAMPLE = ROOT / "workflows.example.yaml"


@pytest.fixture(autouse=True)
def _quiet_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Nothing from the developer's shell leaks in; the SDK delivers quickly and backs off briefly."""
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
        "THREADLINE_WORKFLOWS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("THREADLINE_SCHEDULE_DELAY", "0.05")
    monkeypatch.setenv("THREADLINE_EXPORT_TIMEOUT", "5")
    monkeypatch.setenv("THREADLINE_MAX_BACKOFF", "1")
    logging.getLogger("opentelemetry.exporter.otlp.proto.http.trace_exporter").setLevel(logging.CRITICAL)


@pytest.fixture(scope="session")
def workflows() -> Workflows:
    return load(EXAMPLE)


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    running = OtlpReceiver().start()
    yield running
    running.stop()
