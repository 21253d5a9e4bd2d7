"""What every state test stands on: a fresh embedded store (the real engine) per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from threadline.collector.storage import Store


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"chdb://{tmp_path / 'store'}").open()
    yield opened
    opened.close()
