from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from tests.support.otlp_receiver import OtlpReceiver
from tests.support.sdk_environment import isolate_sdk
from threadline.collector.config import EXAMPLE_WORKFLOWS
from threadline.collector.workflows import Workflows, load

# A Wednesday afternoon (UTC): history behind it covers working hours and a night.
NOW = dt.datetime(2026, 3, 4, 15, 0, tzinfo=dt.UTC)
EXAMPLE = EXAMPLE_WORKFLOWS


@pytest.fixture(autouse=True)
def _quiet_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    isolate_sdk(monkeypatch, tmp_path_factory.mktemp("cache"), export_timeout_s=5)


@pytest.fixture(scope="session")
def workflows() -> Workflows:
    return load(EXAMPLE)


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    running = OtlpReceiver().start()
    yield running
    running.stop()
