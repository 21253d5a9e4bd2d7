"""The connection to ClickHouse: embedded (``chdb://dir``) or a server (``http://host:8123``).

Everything goes through ``clickhouse-connect`` and one ``Store``; nothing else in the collector
depends on which deployment it is. The store has one connection for writes and a few for reads
(``ReadConnections``), each running one statement at a time; the embedded engine (chdb 4) runs
statements of several connections at once, as a server does. So a read never waits behind a write
or a long read, only for a free read connection; and writes go one at a time (ingest's writer reads
what a batch meets and stores it with no other write in between), never behind a read.

A read made for an API caller (``Store.reading``) has a time limit (ClickHouse's
``max_execution_time``), is dropped before it starts if its caller has gone, and is cancelled with
``KILL QUERY`` when its caller goes while it runs. Writes, migrations, the backfill and the
collector's own reads (alert evaluation) have no limit: a cut write would only be sent again, and
nothing queues behind them unboundedly.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
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
QUERY_WAS_CANCELLED = 394  # ... for a statement stopped by KILL QUERY
# An API read carries its caller's id as its log_comment: the one mark of a running statement that
# both engines keep (the embedded one assigns its own query_id).
CANCEL_READ = "KILL QUERY WHERE Settings['log_comment'] = {read:String} ASYNC"
# Connections for reads (API calls, alert evaluation, the state keeper) beside the one for writes:
# on two cores, three let a short read pass a long one without splitting the cores many ways.
DEFAULT_READ_CONNECTIONS = 3
# The nice value of the collector's own reads (the state keeper's and the alert evaluator's;
# ClickHouse's os_thread_priority): where they and a dashboard's read want the cores at once, the
# dashboard's read gets most of them (a scan beside a looping scan: 0.2 s with the loop at nice 19,
# 0.35-0.6 s without). Overload bench at 10 M events, worst page p95: nice 10, 17.5 s then 12.0 s;
# nice 5, 21.2 s (bench/runs/2026-11-29-overload-full-*). Never a statement on the write
# connection: ingest waits for it (a niced keeper insert behind which a batch waits), and under
# reads a niced batch of 10 events waited for 15 reads of 16 (test_admission): writes go first.
# Nor inside ``Store.promptly`` (an alert cycle's reads).
OWN_WORK_NICENESS = 10
# How often a read waiting for a connection looks whether its caller has gone.
GONE_CHECK_S = 0.1
# How long a background statement (the alert evaluator's, the state keeper's) gives way to the API's
# reads: past it, it queues as one of them (else a steady flow of dashboards held back every alert).
BACKGROUND_PATIENCE_S = 1.0


class StoreUnavailable(RuntimeError):
    """The store cannot be reached or refused the operation; nothing of the operation was stored."""


class ReadTimedOut(StoreUnavailable):
    """A read ran past the read time limit and the store stopped it; nothing was changed."""


class CallerGone(RuntimeError):
    """The caller of a read went away: the read was dropped before it started, or cancelled."""


@dataclass
class ReadCaller:
    """The API caller a read is made for: the store drops or cancels its reads once it has gone."""

    tenant: str
    gone: threading.Event = field(default_factory=threading.Event)
    # Marks its statements (their log_comment), so that a running one can be found and cancelled.
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    running: bool = False  # a statement of it is executing now


# The caller of the reads made in this context (an API request); None for the collector's own.
_caller: ContextVar[ReadCaller | None] = ContextVar("threadline_read_caller", default=None)
# Whether this thread is ingest's writer, inside ``Store.writing``.
_writer = threading.local()
# Whether this thread's reads are background work (alert evaluation), inside ``Store.background``.
_background = threading.local()
# Whether this thread's writes run beside ingest's, inside ``Store.beside_ingest``.
_beside_ingest = threading.local()
# Whether this thread's background statements run at the API's priority, inside ``Store.promptly``.
_prompt = threading.local()


@contextmanager
def _active(flag: threading.local) -> Iterator[None]:
    """The thread's ``flag`` set inside the block (blocks may nest)."""
    outer = getattr(flag, "active", False)
    flag.active = True
    try:
        yield
    finally:
        flag.active = outer


@dataclass
class StoreTime:
    """The time one thread's statements spent executing in the store, waiting for it not counted."""

    seconds: float = 0.0
    statements: int = 0


# The tallies open around the statements made in this context (a context variable, so that an API
# call's statements, made on a worker thread, count in the tally its middleware opened).
_spent: ContextVar[tuple[StoreTime, ...]] = ContextVar("threadline_store_time", default=())


class ReadConnections:
    """Up to ``size`` connections for reads, opened when first needed; each runs one statement at a
    time, and a read takes one that is free. API reads take them in arrival order; background reads
    (the alert evaluator's, the state keeper's) after every API read waiting, for a second at most
    (``BACKGROUND_PATIENCE_S``: else a steady flow of dashboards would hold back every alert). A read
    whose caller has gone leaves the queue without ever running."""

    def __init__(self, size: int, open_connection: Callable[[], Client]) -> None:
        self.size = size
        self._open = open_connection
        self._condition = threading.Condition(threading.Lock())
        self._free: list[Client] = []
        self._opened = 0  # free and in use
        self._readers: deque[object] = deque()
        self._background: deque[object] = deque()
        self._closed = False

    @property
    def waiting(self) -> int:
        with self._condition:
            return len(self._readers) + len(self._background)

    def take(self, caller: ReadCaller | None = None, background: bool = False) -> Client:
        """Raises CallerGone when ``caller`` leaves while waiting, StoreUnavailable once closed."""
        ticket, queue = object(), self._background if background else self._readers
        patient_until = time.monotonic() + BACKGROUND_PATIENCE_S
        with self._condition:
            queue.append(ticket)
            try:
                while not (
                    queue[0] is ticket
                    and (self._free or self._opened < self.size)
                    and (not background or not self._readers or time.monotonic() >= patient_until)
                ):
                    if self._closed:
                        raise StoreUnavailable("the store is closed")
                    if caller is not None and caller.gone.is_set():
                        raise CallerGone("the caller left before its read started")
                    self._condition.wait(GONE_CHECK_S)
            finally:
                queue.remove(ticket)
                self._condition.notify_all()  # the next read may be at the head now
            if self._closed:
                raise StoreUnavailable("the store is closed")
            if self._free:
                return self._free.pop()
            self._opened += 1
        try:
            return self._open()
        except BaseException:
            self.give_back(None)
            raise

    def give_back(self, connection: Client | None) -> None:
        """``connection`` is free again; None: it broke (the next read opens another)."""
        with self._condition:
            if connection is not None and not self._closed:
                self._free.append(connection)
            else:
                self._opened -= 1
                if connection is not None:
                    _close_quietly(connection)
            self._condition.notify_all()

    def close(self) -> None:
        """Close the free connections now, those in use when given back; refuse reads from now on."""
        with self._condition:
            self._closed = True
            for connection in self._free:
                _close_quietly(connection)
            self._opened -= len(self._free)
            self._free.clear()
            self._condition.notify_all()

    def reopen(self) -> None:
        with self._condition:
            self._closed = False


def _close_quietly(connection: Client) -> None:
    try:
        connection.close()
    except Exception:  # closing a broken connection: nothing to do about it
        logger.debug("threadline: closing a store connection failed", exc_info=True)


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
        read_connections: int = DEFAULT_READ_CONNECTIONS,
    ) -> None:
        self.dsn = normalize_dsn(dsn)
        self.backups_path = backups_path  # the embedded engine's backups.allowed_path (backups.py)
        self.cluster = cluster
        self.ttl_days = ttl_days
        self.read_timeout_s = read_timeout_s
        self.embedded = self.dsn.startswith("chdb:")
        self._client: Client | None = None  # for writes, and the reads of a write (``writing``)
        self._closed = False
        self._write = threading.RLock()
        self._deleting = threading.Lock()  # a deletion under way (``deleting``)
        self._write_depth = 0
        self._write_began: dt.datetime | None = None
        self._reads = ReadConnections(read_connections, self._open_connection)
        self._control: Client | None = None  # cancels reads, whatever the others are doing
        self._control_lock = threading.Lock()
        self._aggregates_complete = False
        self._aggregates_checked_at = 0.0
        self._remembered: dict[Hashable, tuple[float, object]] = {}
        self.writes = 0  # ingest's writes through this object so far (``writing`` blocks)
        # Who kept the store busy, and for how long: API reads as "api", the rest by their thread's
        # name (ingest's writer, the state keeper, the alert evaluator); statements that ran at once
        # each count their whole time.
        self.busy: dict[str, StoreTime] = {}
        self._tallying = threading.Lock()
        self.partitions_per_insert = 100  # the server's own limit, read at open

    # --- lifecycle --------------------------------------------------------------------------

    def open(self, migrate: bool = True) -> Store:
        """Connect and bring the schema up to date (unless ``migrate`` is False: a backup takes the
        store as it is). Raises StoreUnavailable if the store cannot be reached."""
        self._closed = False
        self._reads.reopen()
        with self.writing():  # migrations: no time limit
            self._connect()
            if migrate:
                self.migrate()
            self.partitions_per_insert = self.query(PARTITIONS_PER_INSERT).result_rows[0][0]
        return self

    def _connect(self) -> Client:
        """The connection for writes (opened again after it broke)."""
        if self._client is None:
            self._client = self._open_connection()
        return self._client

    def _open_connection(self) -> Client:
        if self._closed:
            raise StoreUnavailable(f"the store {self.redacted_dsn} is closed")
        try:
            return clickhouse_connect.get_client(dsn=self.dsn, **self._server_options())
        except Exception as error:
            raise StoreUnavailable(f"cannot connect to {self.redacted_dsn}: {error}") from error

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
        """Close the connections for good: a statement after this raises StoreUnavailable (a thread
        still running, like an alert evaluation past its stop, must not open the store again)."""
        with self._write:
            self._closed = True
            self._reads.close()
            for connection in (self._client, self._control):
                if connection is not None:
                    _close_quietly(connection)
            self._client = self._control = None

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
        """Ingest's writer, migrations, backups, retention: every statement of the block, its reads
        too, on the write connection with no other write in between, and no time limit."""
        with self._holding_writes(), _active(_writer):
            try:
                yield
            finally:
                self.writes += 1

    @contextmanager
    def deleting(self) -> Iterator[None]:
        """Retention's batch: ``writing``, and no write beside ingest (``beside_ingest``) meets it
        half done either. A state keeper's pass is one INSERT ... SELECT from the rollups: run between
        the batch's DELETE of the states and its DELETE of the rollups, it derived the expired
        transaction again, kept for good (the queue still listed it, its events gone)."""
        with self.writing(), self._deleting:
            yield

    @contextmanager
    def _holding_writes(self) -> Iterator[None]:
        with self._write:
            self._write_depth += 1
            if self._write_depth == 1:
                self._write_began = dt.datetime.now(dt.UTC)
            try:
                yield
            finally:
                self._write_depth -= 1
                if self._write_depth == 0:
                    self._write_began = None

    def settled_until(self) -> dt.datetime:
        """Now, or when the write under way began: every event received (stamped inside a write)
        before it is stored, so a pass that reads what was received since a mark may move the mark
        here, never past a write still to show."""
        now = dt.datetime.now(dt.UTC)  # first: a write beginning after it stamps after it
        began = self._write_began
        return min(now, began) if began is not None else now

    @property
    def reads_waiting(self) -> int:
        """Reads waiting for a free read connection now."""
        return self._reads.waiting

    @staticmethod
    @contextmanager
    def background() -> Iterator[None]:
        """This thread's reads inside the block take a read connection after every API read waiting
        (the alert evaluator, the state snapshot's keeper: a dashboard's read waits for one of their
        statements at most, never their queue)."""
        with _active(_background):
            yield

    @staticmethod
    @contextmanager
    def promptly() -> Iterator[None]:
        """This thread's background statements inside the block run at the API's priority (still
        taking a read connection after the API's reads waiting): for small, bounded work that people
        wait on, an alert cycle's reads of what changed. Niced, under a saturated store they took
        3-8 s for what takes 1-2 s quiet."""
        with _active(_prompt):
            yield

    @staticmethod
    @contextmanager
    def beside_ingest() -> Iterator[None]:
        """This thread's writes inside the block (the state keeper's derived tables, the alert
        evaluator's alerts) take a read connection, as its reads do, instead of waiting in ingest's
        queue for the write connection, where a batch would wait for them in turn. They write only
        tables that ingest's writer never reads, so its read-then-store needs no pause for them. (A
        read's catch-up pass waited there: 7.5 s of the API threads' first 50 s under the overload
        bench, beside 8.7 s waiting for one another's passes.) Inside ``writing``, every statement
        stays on the write connection."""
        with _active(_beside_ingest):
            yield

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

    def cancel(self, caller: ReadCaller) -> None:
        """Stop the read running for a caller that has gone (on a connection of its own, so that it
        waits for no other statement)."""
        if not caller.running or self._closed:
            return
        try:
            with self._control_lock:
                if self._control is None:
                    self._control = self._open_connection()
                self._control.command(CANCEL_READ, parameters={"read": caller.id})
        except (ClickHouseError, OSError, StoreUnavailable) as error:
            logger.warning("threadline: could not cancel a read whose caller left: %s", error)

    @contextmanager
    def _call(self, read: bool = False) -> Iterator[tuple[Client, dict[str, Any]]]:
        """The connection, and the settings of the statement: a read's time limit, its mark, and
        for the collector's own reads (and writes beside ingest) their lower priority."""
        settings: dict[str, Any] = {}
        writer = getattr(_writer, "active", False)
        if not writer and (read or getattr(_beside_ingest, "active", False)):
            background = getattr(_background, "active", False)
            if background and not getattr(_prompt, "active", False):
                settings["os_thread_priority"] = OWN_WORK_NICENESS
            caller = _caller.get() if read else None  # a write beside ingest outlives a read's caller
            connection = self._reads.take(caller, background)
            broken = False
            deletion_done = nullcontext() if read else self._deleting  # see ``deleting``
            try:
                with self._executing(caller, settings), deletion_done:
                    yield connection, settings
            except ReadTimedOut:
                raise
            except StoreUnavailable:
                broken = True  # the next read opens another connection
                raise
            finally:
                self._reads.give_back(None if broken else connection)
        else:
            with self._holding_writes():
                connection = self._connect()
                try:
                    with self._executing(None, settings):
                        yield connection, settings
                except StoreUnavailable:
                    self._client = None  # broken: the next write opens another connection
                    raise

    @contextmanager
    def _executing(self, caller: ReadCaller | None, settings: dict[str, Any]) -> Iterator[None]:
        """Run a statement: a read's settings added, its store time tallied, its errors told apart."""
        if caller is not None:
            if caller.gone.is_set():
                raise CallerGone("the caller left before its read started")
            settings["max_execution_time"] = self.read_timeout_s
            settings["log_comment"] = caller.id
            caller.running = True
        began = time.perf_counter()
        try:
            yield
        except ClickHouseError as error:
            code = getattr(error, "code", None)
            if code == TIMEOUT_EXCEEDED:
                limit = f"{self.read_timeout_s:g} s"
                raise ReadTimedOut(f"a read ran past the read time limit of {limit}") from error
            if code == QUERY_WAS_CANCELLED and caller is not None and caller.gone.is_set():
                raise CallerGone("the caller left while its read ran: it was cancelled") from error
            if not self._is_connection_error(error):
                raise  # a query the store refused: a bug to fix, not an outage
            raise StoreUnavailable(str(error).splitlines()[0]) from error
        except OSError as error:
            raise StoreUnavailable(str(error)) from error
        finally:
            if caller is not None:
                caller.running = False
            took = time.perf_counter() - began
            holder = "api" if caller is not None else threading.current_thread().name
            with self._tallying:  # statements end at once on several threads
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

    def each_row(self, sql: str, parameters: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """``rows`` one at a time, each block of the answer (about 1,000 rows) decoded only when
        reached: a caller that pauses between rows spreads the decoding too. Decoding is Python
        holding the GIL from the API's threads: 2.1 s for the 232,000 rows of state a first alert
        evaluation reads at 10 M events (a first start's dashboard pages took twice as long)."""
        result = self.query(sql, parameters)
        with result.row_block_stream as blocks:
            for block in blocks:
                for row in block:
                    yield dict(zip(result.column_names, row, strict=True))

    def command(
        self, sql: str, parameters: dict[str, Any] | None = None, settings: dict[str, Any] | None = None
    ) -> Any:
        with self._call() as (client, own):
            return client.command(sql, parameters=parameters, settings={**own, **(settings or {})})

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        if not rows:
            return
        with self._call() as (client, settings):
            client.insert(table, rows, column_names=list(columns), settings=settings)

    def ping(self) -> bool:
        try:
            return self.query("SELECT 1").result_rows[0][0] == 1
        except StoreUnavailable:
            return False
