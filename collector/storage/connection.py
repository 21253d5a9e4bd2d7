"""The connection to ClickHouse: embedded (``chdb://dir``) or a server (``http://host:8123``).

Everything goes through ``clickhouse-connect`` and one ``Store``; nothing else in the collector
depends on which deployment it is. The embedded engine is not safe for concurrent use from many
threads, so every call is serialized by a lock (a server would not need it, and it costs little).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError
from clickhouse_connect.driver.query import QueryResult

from . import migrations

logger = logging.getLogger("threadline.collector")

DEFAULT_DSN = "chdb://./.threadline/store"
# chdb: the embedded engine; http(s): a ClickHouse server's HTTP interface (clickhouse-connect's own).
SCHEMES = ("chdb", "http", "https")
RECHECK_S = 5.0
# How many partitions one INSERT may touch on this connection (ClickHouse's default is 100; 0: any).
PARTITIONS_PER_INSERT = "SELECT toUInt64(getSetting('max_partitions_per_insert_block'))"


class StoreUnavailable(RuntimeError):
    """The store cannot be reached or refused the operation; nothing of the operation was stored."""


class UnsupportedStore(ValueError):
    """A DSN no deployment of Threadline can use; ``str()`` names it (no password) and the schemes."""

    def __init__(self, dsn: str) -> None:
        scheme, separator, _ = dsn.partition("://")
        what = f"unknown scheme {scheme!r}" if separator else "no scheme"
        supported = ", ".join(name + "://" for name in SCHEMES)
        super().__init__(f"store {redact_dsn(dsn)}: {what}; supported: {supported}")


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, for logs and messages."""
    if "@" not in dsn:
        return dsn
    scheme, _, rest = dsn.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"


def normalize_dsn(dsn: str) -> str:
    """``chdb://relative/dir`` → ``chdb:///absolute/dir`` (created if missing); other DSNs unchanged.

    Raises UnsupportedStore for a scheme that is none of SCHEMES: clickhouse-connect would otherwise
    read ``postgres://host`` as a ClickHouse server and fail only at the first connection.
    """
    scheme, separator, _ = dsn.partition("://")
    if not separator or scheme not in SCHEMES:
        raise UnsupportedStore(dsn)
    if not dsn.startswith("chdb://"):
        return dsn
    location = dsn[len("chdb://") :]
    if location in ("memory", ":memory:") or location.startswith("memory/"):
        return dsn
    path = Path(location).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return f"chdb://{path}"


class Store:
    def __init__(
        self, dsn: str = DEFAULT_DSN, cluster: str | None = None, ttl_days: int | None = None
    ) -> None:
        self.dsn = normalize_dsn(dsn)
        self.cluster = cluster
        self.ttl_days = ttl_days
        self.embedded = self.dsn.startswith("chdb:")
        self._client: Client | None = None
        self._lock = threading.RLock()
        self._aggregates_complete = False
        self._aggregates_checked_at = 0.0
        self.partitions_per_insert = 100  # the server's own limit, read at open

    # --- lifecycle --------------------------------------------------------------------------

    def open(self) -> Store:
        """Connect and bring the schema up to date. Raises StoreUnavailable if the store cannot be reached."""
        with self._lock:
            self._connect()
            self.migrate()
            self.partitions_per_insert = self.query(PARTITIONS_PER_INSERT).result_rows[0][0]
        return self

    def _connect(self) -> Client:
        if self._client is None:
            try:
                self._client = clickhouse_connect.get_client(dsn=self.dsn, **self._server_options())
            except Exception as error:
                raise StoreUnavailable(f"cannot connect to {self.redacted_dsn}: {error}") from error
        return self._client

    def _server_options(self) -> dict[str, Any]:
        if self.embedded:
            return {}
        options: dict[str, Any] = {
            "interface": self.dsn.partition("://")[0],  # https means TLS on any port
            "connect_timeout": 5,
            "send_receive_timeout": 60,
            "autogenerate_session_id": False,
        }
        if self.cluster:
            options["settings"] = {
                # A subquery over a Distributed table inside a query over another reads every shard
                # once and ships the result (the default refuses such queries).
                "distributed_product_mode": "global",
                # An insert returns once every shard has its rows: acknowledged means stored.
                "distributed_foreground_insert": 1,
            }
        return options

    @property
    def redacted_dsn(self) -> str:
        """The DSN without its password, for logs and messages."""
        return redact_dsn(self.dsn)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                try:
                    self._client.close()
                finally:
                    self._client = None

    def migrate(self) -> int:
        """Apply every migration newer than the store's version; returns the version now."""
        for statement in migrations.version_table(self.cluster):
            self.command(statement)
        current = self.query("SELECT max(version) FROM schema_migrations").result_rows[0][0] or 0
        for version, statements in migrations.migrations(self.cluster, self.ttl_days):
            if version <= current:
                continue
            for statement in statements:
                self.command(statement)
            self.insert("schema_migrations", [[version]], ["version"])
            logger.info("threadline: store schema migrated to version %d", version)
            current = version
        return current

    def aggregates_complete(self) -> bool:
        """Whether the engine-kept aggregates hold every stored event (see ``backfill.py``).

        Re-read at most every few seconds until it is so (whoever runs the backfill), then never again.
        """
        if self._aggregates_complete or time.monotonic() - self._aggregates_checked_at < RECHECK_S:
            return self._aggregates_complete
        self._aggregates_checked_at = time.monotonic()
        pending = self.query("SELECT count() FROM aggregate_backfill FINAL WHERE NOT done").result_rows
        self._aggregates_complete = pending[0][0] == 0
        return self._aggregates_complete

    # --- statements: all values travel as bound parameters ----------------------------------

    @contextmanager
    def _call(self) -> Iterator[Client]:
        with self._lock:
            client = self._connect()
            try:
                yield client
            except ClickHouseError as error:
                if not self._is_connection_error(error):
                    raise  # a query the store refused: a bug to fix, not an outage
                self._client = None  # reconnect on the next call
                raise StoreUnavailable(str(error).splitlines()[0]) from error
            except OSError as error:
                self._client = None
                raise StoreUnavailable(str(error)) from error

    @staticmethod
    def _is_connection_error(error: Exception) -> bool:
        text = str(error).lower()
        return any(
            word in text for word in ("connection", "timed out", "refused", "network", "reset by peer")
        )

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        with self._call() as client:
            return client.query(sql, parameters=parameters)

    def rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        result = self.query(sql, parameters)
        return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]

    def command(
        self, sql: str, parameters: dict[str, Any] | None = None, settings: dict[str, Any] | None = None
    ) -> Any:
        with self._call() as client:
            return client.command(sql, parameters=parameters, settings=settings)

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        if not rows:
            return
        with self._call() as client:
            client.insert(table, rows, column_names=list(columns))

    def ping(self) -> bool:
        try:
            return self.query("SELECT 1").result_rows[0][0] == 1
        except StoreUnavailable:
            return False
