"""threadline-sdk installs alone: OpenTelemetry and nothing of the server, small, and it delivers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.collector_process import CollectorProcess
from tests.support.distributions import SDK_PROJECT, FreshVenv, build_wheel
from tests.support.polling import eventually

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SERVER_SIDE = ("chdb", "clickhouse-connect", "fastapi", "dash", "plotly", "pandas", "pyarrow")
MAX_INSTALLED_BYTES = 25 * 1024 * 1024

SEND_ONE_EVENT = """
import sys
import threadline.sdk
from threadline import sdk

assert threadline.sdk.__file__.startswith(sys.prefix), threadline.sdk.__file__
sdk.configure(service="order-sync", system="netsuite")
sdk.event("quote-to-cash", "erp.order.created", correlation_id=sys.argv[1], amount=48_000, currency="USD")
assert sdk.flush(30), "not delivered"
"""


def test_the_sdk_wheel_installs_opentelemetry_only_and_sends_an_event(tmp_path: Path) -> None:
    wheel = build_wheel(SDK_PROJECT, tmp_path / "wheels")
    venv = FreshVenv(tmp_path / "venv")
    venv.pip_install(wheel)  # its OpenTelemetry dependencies come from the package index

    installed = venv.distributions()
    assert {"threadline-sdk", "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http"} <= installed
    assert "threadline" not in installed
    assert installed.isdisjoint(SERVER_SIDE), sorted(installed & set(SERVER_SIDE))
    size = venv.installed_bytes()
    assert size < MAX_INSTALLED_BYTES, f"{size / 2**20:.1f} MiB installed"

    collector = CollectorProcess(store_dir=tmp_path / "collector" / "store", isolated=True).start()
    try:
        script = tmp_path / "send_one_event.py"
        script.write_text(SEND_ONE_EVENT)
        env = {
            "PATH": os.environ["PATH"],
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "THREADLINE_SPOOL_DIR": str(tmp_path / "spool"),
        }
        venv.run_python(str(script), "OPP-WHEEL-1", cwd=tmp_path, env=env)

        def stored() -> dict[str, Any] | None:
            answer = httpx.get(f"{collector.url}/api/transactions/OPP-WHEEL-1", timeout=10)
            return answer.json() if answer.status_code == 200 else None

        transaction = eventually(stored, timeout=30, what="the SDK's event in the collector")
        [event] = transaction["events"]
        assert (event["workflow"], event["step"], event["system"]) == (
            "quote-to-cash",
            "erp.order.created",
            "netsuite",
        )
        assert event["amount"] == 48_000
    finally:
        collector.stop()
