"""The connection to ClickHouse: embedded (``chdb://dir``) or a server (``http://host:8123``).

Everything goes through ``clickhouse-connect`` and one ``Store``; nothing else in the collector
depends on which deployment it is. The embedded engine is not safe for concurrent use from many
threads, so every call is serialized by a lock (a server would not need it, and it costs little).
That lock lets the writer go first, except that after each write the reads waiting have the store
for as long as that write held it (``WriterFirstLock``).

A read made for an API caller (``Store.reading``) has a time limit (ClickHouse's
``max_execution_time``), is dropped before it starts if its caller has gone, and on a server is
cancelled with ``KILL QUERY`` when its caller goes while it runs; the embedded engine cannot be
interrupted from another thread, so there a running read ends at its time limit. Writes,
migrations, the backfill and the collector's own reads (alert evaluation) have no limit: a cut
write would only be sent again, and nothing queues behind them unboundedly.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError
from clickhouse_connect.driver.query import QueryResult

from . import migrations

logger = logging.getLogger("threadline.collector")
T = TypeVar("T")

DEFAULT_DSN = "chdb://./.threadline/store"
# chdb: the embedded engine; http(s): a ClickHouse server's HTTP interface (clickhouse-connect's own).
SCHEMES = ("chdb", "http", "https")
RECHECK_S = 5.0
# How many partitions one INSERT may touch on this connection (ClickHouse's default is 100; 0: any).
PARTITIONS_PER_INSERT = "SELECT toUInt64(getSetting('max_partitions_per_insert_block'))"
DEFAULT_READ_TIMEOUT_S = 10.0
TIMEOUT_EXCEEDED = 159  # ClickHouse's error code for a statement past max_execution_time
CANCEL_READ = "KILL QUERY WHERE query_id = {query_id:String} ASYNC"
# How often a read waiting for the lock looks whether its caller has gone.
GONE_CHECK_S = 0.1
# How long the store waits, between two statements of one API call, for the next one (a handler maps
# rows and builds its next statement in milliseconds; the call's end ends the wait at once).
CALL_GRACE_S = 0.05
# How long a background statement (the alert evaluator's, the state keeper's) gives way to the API's
# reads: past it, it queues as one of them (else a steady flow of dashboards held back every alert).
BACKGROUND_PATIENCE_S = 1.0


class StoreUnavailable(RuntimeError):
    """The store cannot be reached or refused the operation; nothing of the operation was stored."""


class ReadTimedOut(StoreUnavailable):
    """A read ran past the read time limit and the store stopped it; nothing was changed."""


class CallerGone(RuntimeError):
    """The caller of a read went away before it started: the read was dropped, not executed."""


@dataclass
class ReadCaller:
    """The API caller a read is made for: the store drops or cancels its reads once it has gone."""

    tenant: str
    gone: threading.Event = field(default_factory=threading.Event)
    running: str | None = None  # the query_id of its statement executing now (a server only)
    had_the_store: bool = False  # a statement of it held the store: its next ones go first
    done: bool = False  # its call has answered (``Store.done_reading``)


# The caller of the reads made in this context (an API request); None for the collector's own.
_caller: ContextVar[ReadCaller | None] = ContextVar("threadline_read_caller", default=None)
# Whether this thread is ingest's writer, inside ``Store.writing``.
_writer = threading.local()
# Whether this thread's reads are background work (alert evaluation), inside ``Store.background``.
_background = threading.local()


@dataclass
class StoreTime:
    """The time one thread's statements spent executing in the store, waiting for it not counted."""

    seconds: float = 0.0
    statements: int = 0


# The tallies open around the statements made in this context (a context variable, so that an API
# call's statements, made on a worker thread, count in the tally its middleware opened).
_spent: ContextVar[tuple[StoreTime, ...]] = ContextVar("threadline_store_time", default=())


class WriterFirstLock:
    """One statement at a time, reentrant; a waiting writer goes before every waiting reader, and a
    waiting reader before every waiting background reader, except that after each write the readers
    have the store for as long as that write held it.

    ``threading.RLock`` wakes waiters in no particular order, so ingest's writer could wait behind
    any number of queued reads. Here readers go in arrival order, writers before them, background
    reads (the alert evaluator's and the state keeper's passes) after them (for a second at most:
    ``BACKGROUND_PATIENCE_S``), and a reader whose
    caller has gone leaves the queue without ever holding the lock. Under a steady flow of events
    there is always a write waiting: strictly first, writes would starve every read (a page waited
    minutes). So the store's time is shared: each write earns the readers as much store time as it
    held the store (their *turn*), which every read spends, one statement each in arrival order; a
    waiting write goes next once it is spent (a statement begun in the turn runs to its end). A page
    makes its calls one after another: within a turn each goes at once, instead of each waiting for
    a write of its own (up to seconds for a batch of thousands of events; the writer leaves the
    store for a few milliseconds between batches, so a turn must outlast a moment with no write
    waiting). A read that runs past the turn is paid back: the writes after it go until they have
    held the store as long as it overran. Under contention, writes and reads each get half of the
    store, however long a read's statement. An API call that already had the store (its first
    statement ran) goes first with its next ones, turn spent or not (and pays it back likewise): a call
    of five statements waits for the store once, not five times behind a write each. Between two of
    its statements (its handler mapping rows, building the next one) the store waits for it, up to
    ``CALL_GRACE_S`` or until the call has answered, instead of going to a writer for a whole batch.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0
        self._writers_waiting = 0
        self._readers: deque[object] = deque()
        self._background: deque[object] = deque()
        self._writing = False  # the holder now is a writer
        self._held_since = 0.0
        self._turn_s = 0.0  # the readers' store time left before a waiting writer goes
        self._continuing = 0  # readers waiting whose call already had the store: before writers
        self._holder: ReadCaller | None = None  # the API call whose statement holds the store now
        self._grace: tuple[ReadCaller, float] | None = None  # the call the store waits for, until when

    def acquire(self, writer: bool, caller: ReadCaller | None = None, background: bool = False) -> None:
        """Raises CallerGone, without taking the lock, when ``caller`` leaves while waiting."""
        me = threading.get_ident()
        with self._condition:
            if self._owner == me:
                self._depth += 1
                return
            if writer:
                self._writers_waiting += 1
                try:
                    while not (
                        self._owner is None
                        and not self._continuing
                        and not self._in_grace()
                        and not (self._turn_s > 0 and (self._readers or self._background))
                    ):
                        self._condition.wait(CALL_GRACE_S)  # a grace ends without a notification
                finally:
                    self._writers_waiting -= 1
            else:
                ticket, queue = object(), self._background if background else self._readers
                continuing = (
                    caller is not None and caller.had_the_store and not caller.done and not background
                )
                if continuing:
                    queue.appendleft(ticket)
                    self._continuing += 1
                else:
                    queue.append(ticket)
                patient_until = time.monotonic() + BACKGROUND_PATIENCE_S
                try:
                    while not (
                        self._owner is None
                        and (continuing or not self._writers_waiting or self._turn_s > 0)
                        and queue[0] is ticket
                        and (
                            not background
                            or not (self._readers or self._in_grace())
                            or time.monotonic() >= patient_until
                        )
                    ):
                        if caller is not None and caller.gone.is_set():
                            raise CallerGone("the caller left before its read started")
                        self._condition.wait(GONE_CHECK_S if caller is not None else CALL_GRACE_S)
                finally:
                    queue.remove(ticket)
                    self._continuing -= continuing
                    self._condition.notify_all()  # the next reader may be at the head now
            self._owner = me
            self._depth = 1
            self._writing = writer
            self._held_since = time.monotonic()
            self._holder = caller
            if caller is not None:
                caller.had_the_store = True
                if self._grace is not None and self._grace[0] is caller:
                    self._grace = None

    def _in_grace(self) -> bool:
        """The store is waiting for the next statement of the call that just had it."""
        if self._grace is None:
            return False
        caller, until = self._grace
        if caller.done or caller.gone.is_set() or time.monotonic() >= until:
            self._grace = None
            return False
        return True

    def done(self, caller: ReadCaller) -> None:
        """``caller``'s call has answered: the store waits no more for its next statement."""
        with self._condition:
            caller.done = True
            if self._grace is not None and self._grace[0] is caller:
                self._grace = None
                self._condition.notify_all()

    @property
    def waiting(self) -> tuple[int, int]:
        """Reads and writes waiting for the lock now."""
        with self._condition:
            return len(self._readers) + len(self._background), self._writers_waiting

    def release(self) -> None:
        with self._condition:
            self._depth -= 1
            if self._depth == 0:
                held = time.monotonic() - self._held_since
                # A write earns the readers its own time, less what they overran before (a
                # statement begun in the turn runs to its end); a read spends their time.
                self._turn_s = held + min(self._turn_s, 0.0) if self._writing else self._turn_s - held
                holder, self._holder = self._holder, None
                if holder is not None and not holder.done:
                    self._grace = (holder, time.monotonic() + CALL_GRACE_S)
                self._owner = None
                self._condition.notify_all()

    @contextmanager
    def held(
        self, writer: bool = True, caller: ReadCaller | None = None, background: bool = False
    ) -> Iterator[None]:
        self.acquire(writer, caller, background)
        try:
            yield
        finally:
            self.release()


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
        self,
        dsn: str = DEFAULT_DSN,
        cluster: str | None = None,
        ttl_days: int | None = None,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
        backups_path: Path | None = None,
    ) -> None:
        self.dsn = normalize_dsn(dsn)
        self.backups_path = backups_path  # the embedded engine's backups.allowed_path (backups.py)
        self.cluster = cluster
        self.ttl_days = ttl_days
        self.read_timeout_s = read_timeout_s
        self.embedded = self.dsn.startswith("chdb:")
        self._client: Client | None = None
        self._closed = False
        self._lock = WriterFirstLock()
        self._aggregates_complete = False
        self._aggregates_checked_at = 0.0
        self._remembered: dict[Hashable, tuple[float, object]] = {}
        self.writes = 0  # ingest's writes through this object so far (``writing`` blocks)
        # Who held the store, and for how long: API reads as "api", the rest by their thread's name
        # (ingest's writer, the state keeper, the alert evaluator). The embedded engine runs one
        # statement at a time, so under load this says which work the others waited behind.
        self.busy: dict[str, StoreTime] = {}
        self.partitions_per_insert = 100  # the server's own limit, read at open

    # --- lifecycle --------------------------------------------------------------------------

    def open(self, migrate: bool = True) -> Store:
        """Connect and bring the schema up to date (unless ``migrate`` is False: a backup takes the
        store as it is). Raises StoreUnavailable if the store cannot be reached."""
        self._closed = False
        with self.writing():  # migrations: no time limit
            self._connect()
            if migrate:
                self.migrate()
            self.partitions_per_insert = self.query(PARTITIONS_PER_INSERT).result_rows[0][0]
        return self

    def _connect(self) -> Client:
        if self._closed:
            raise StoreUnavailable(f"the store {self.redacted_dsn} is closed")
        if self._client is None:
            try:
                self._client = clickhouse_connect.get_client(dsn=self.dsn, **self._server_options())
            except Exception as error:
                raise StoreUnavailable(f"cannot connect to {self.redacted_dsn}: {error}") from error
        return self._client

    def _server_options(self) -> dict[str, Any]:
        if self.embedded:  # a server's backup locations are in its own configuration
            allowed = {"backups.allowed_path": str(self.backups_path)} if self.backups_path else {}
            return {"chdb_options": allowed} if allowed else {}
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
        """Close the connection for good: a statement after this raises StoreUnavailable (a thread
        still running, like an alert evaluation past its stop, must not open the store again)."""
        with self._lock.held():
            self._closed = True
            if self._client is not None:
                try:
                    self._client.close()
                finally:
                    self._client = None

    def migrate(self, up_to: int | None = None) -> int:
        """Apply every migration newer than the store's version (up to ``up_to``: the upgrade test's
        fixture is made at a past version); returns the version now."""
        for statement in migrations.version_table(self.cluster):
            self.command(statement)
        current = self.query("SELECT max(version) FROM schema_migrations").result_rows[0][0] or 0
        for version, statements in migrations.migrations(self.cluster, self.ttl_days):
            if version <= current or (up_to is not None and version > up_to):
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

    def remembered(self, key: Hashable, load: Callable[[], T], max_age_s: float = RECHECK_S) -> T:
        """``load()``, read again at most every ``max_age_s``: a fact about the store that every
        call asks and that changes rarely (how far the state snapshot is complete, per tenant)."""
        now = time.monotonic()
        known = self._remembered.get(key)
        if known is not None and now - known[0] < max_age_s:
            return cast(T, known[1])
        value = load()
        self._remembered[key] = (now, value)
        return value

    def forget(self, key: Hashable) -> None:
        """The next ``remembered(key, ...)`` reads again (this process just changed the fact)."""
        self._remembered.pop(key, None)

    # --- statements: all values travel as bound parameters ----------------------------------

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Ingest's writer, migrations: their statements go before every waiting read (but for the
        readers' turn after a write: ``WriterFirstLock``), and have no time limit."""
        with self._lock.held(writer=True):
            outer = getattr(_writer, "active", False)
            _writer.active = True
            try:
                yield
            finally:
                _writer.active = outer
                self.writes += 1

    @property
    def waiting(self) -> tuple[int, int]:
        """Reads and writes waiting for the store now (the embedded one takes one at a time)."""
        return self._lock.waiting

    @staticmethod
    @contextmanager
    def background() -> Iterator[None]:
        """This thread's statements inside the block wait until no read is waiting (the alert
        evaluator, the state snapshot's keeper: a dashboard's read waits for one of their statements
        at most, never their queue)."""
        outer = getattr(_background, "active", False)
        _background.active = True
        try:
            yield
        finally:
            _background.active = outer

    @staticmethod
    @contextmanager
    def timed() -> Iterator[StoreTime]:
        """Tally the store time of this thread's statements inside the block (the alert evaluator's
        figure: how long it held the store, whoever made it wait). Blocks may nest: a statement
        counts in every tally open around it."""
        tally = StoreTime()
        token = _spent.set((*_spent.get(), tally))
        try:
            yield tally
        finally:
            _spent.reset(token)

    @staticmethod
    def reading(caller: ReadCaller) -> None:
        """The reads made from now on in this context are for ``caller`` (an API request)."""
        _caller.set(caller)

    def done_reading(self, caller: ReadCaller) -> None:
        """``caller``'s call has answered: its statements are over (``WriterFirstLock.done``)."""
        self._lock.done(caller)

    def cancel(self, caller: ReadCaller) -> None:
        """Stop the read running for a caller that has gone (a server only: see the module doc)."""
        query_id = caller.running
        if self.embedded or query_id is None or self._client is None:
            return
        try:  # not under the lock: the HTTP client takes concurrent statements
            self._client.command(CANCEL_READ, parameters={"query_id": query_id})
        except (ClickHouseError, OSError) as error:
            logger.warning("threadline: could not cancel a read whose caller left: %s", error)

    @contextmanager
    def _call(self, read: bool = False) -> Iterator[tuple[Client, dict[str, Any]]]:
        """The client, and the settings of the statement: a read's time limit, its query_id."""
        writer = getattr(_writer, "active", False)
        read = read and not writer
        caller = _caller.get() if read else None
        settings: dict[str, Any] = {}
        background = not writer and getattr(_background, "active", False)
        with self._lock.held(writer=not read and not background, caller=caller, background=background):
            if caller is not None and caller.gone.is_set():
                raise CallerGone("the caller left before its read started")
            if caller is not None:
                settings["max_execution_time"] = self.read_timeout_s
                if not self.embedded:
                    settings["query_id"] = caller.running = uuid.uuid4().hex
            client = self._connect()
            began = time.perf_counter()
            try:
                yield client, settings
            except ClickHouseError as error:
                if getattr(error, "code", None) == TIMEOUT_EXCEEDED:
                    limit = f"{self.read_timeout_s:g} s"
                    raise ReadTimedOut(f"a read ran past the read time limit of {limit}") from error
                if not self._is_connection_error(error):
                    raise  # a query the store refused: a bug to fix, not an outage
                self._client = None  # reconnect on the next call
                raise StoreUnavailable(str(error).splitlines()[0]) from error
            except OSError as error:
                self._client = None
                raise StoreUnavailable(str(error)) from error
            finally:
                if caller is not None:
                    caller.running = None
                took = time.perf_counter() - began
                holder = "api" if caller is not None else threading.current_thread().name
                for tally in (*_spent.get(), self.busy.setdefault(holder, StoreTime())):
                    tally.seconds += took
                    tally.statements += 1

    @staticmethod
    def _is_connection_error(error: Exception) -> bool:
        text = str(error).lower()
        return any(
            word in text for word in ("connection", "timed out", "refused", "network", "reset by peer")
        )

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        with self._call(read=True) as (client, settings):
            return client.query(sql, parameters=parameters, settings=settings)

    def rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        result = self.query(sql, parameters)
        return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]

    def command(
        self, sql: str, parameters: dict[str, Any] | None = None, settings: dict[str, Any] | None = None
    ) -> Any:
        with self._call() as (client, _):
            return client.command(sql, parameters=parameters, settings=settings)

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        if not rows:
            return
        with self._call() as (client, _):
            client.insert(table, rows, column_names=list(columns))

    def ping(self) -> bool:
        try:
            return self.query("SELECT 1").result_rows[0][0] == 1
        except StoreUnavailable:
            return False
