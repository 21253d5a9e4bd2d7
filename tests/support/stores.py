"""Collectors on fresh stores of one kind: the embedded store, or a database on a ClickHouse server."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.support.clickhouse_server import ClickHouseServer
from tests.support.collector_process import CollectorProcess

EMBEDDED = "embedded"
CLICKHOUSE_SERVER = "clickhouse-server"


@dataclass
class Stores:
    """Makes collectors (not yet started) on fresh stores of one kind."""

    kind: str
    tmp_path_factory: pytest.TempPathFactory
    server: ClickHouseServer | None = None

    def collector(self, env: dict[str, str] | None = None, store: str | None = None) -> CollectorProcess:
        """A collector on a new, empty store, or on ``store`` (the DSN of another's, to share it).

        Only ``env`` configures it: no THREADLINE_* or OTEL_* variable of the calling shell leaks in.
        """
        folder = self.tmp_path_factory.mktemp(f"collector-{self.kind}")
        if store is None and self.server is not None:
            store = self.server.new_database()
        return CollectorProcess(store_dir=folder / "store", env=env or {}, store=store, isolated=True)
