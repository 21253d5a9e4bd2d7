from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.otlp_receiver import OtlpReceiver
from tests.support.sdk_environment import isolate_sdk
from threadline import sdk


@pytest.fixture(autouse=True)
def _quiet_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    isolate_sdk(monkeypatch, tmp_path_factory.mktemp("cache"), export_timeout_s=2)


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
