"""What the storage tests share: a fresh embedded store with every migration applied."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from threadline.collector.storage import Store


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"chdb://{tmp_path / 'store'}").open()  # every migration applied
    yield opened
    opened.close()
