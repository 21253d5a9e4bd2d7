"""The SDK is what integrations import: a small public surface, OpenTelemetry-only dependencies."""

from __future__ import annotations

import subprocess
import sys

from threadline import sdk

SERVER_SIDE = ["fastapi", "dash", "plotly", "clickhouse_connect", "chdb", "uvicorn", "pydantic", "orjson"]


def test_importing_the_sdk_pulls_in_nothing_of_the_server_side() -> None:
    probe = f"import sys, threadline.sdk; print(sorted(set({SERVER_SIDE!r}) & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_the_public_api_is_the_one_design_names() -> None:
    for name in ("configure", "event", "step", "correlate", "inject", "extract", "flush", "shutdown"):
        assert callable(getattr(sdk, name))
