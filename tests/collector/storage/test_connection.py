"""Which DSNs a store takes: chdb:// (embedded), http:// and https:// (a server), nothing else;
which statements wait for which, and their time limits."""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from threadline.collector.storage import (
    CallerGone,
    ReadCaller,
    ReadTimedOut,
    Store,
    StoreUnavailable,
    UnsupportedStore,
)
from threadline.collector.storage.connection import OWN_WORK_NICENESS


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        (
            "postgres://ops:s3cret@db:5432/threadline",
            "store postgres://***@db:5432/threadline: unknown scheme 'postgres'; "
            "supported: chdb://, http://, https://",
        ),
        ("./store", "store ./store: no scheme; supported: chdb://, http://, https://"),
    ],
)
def test_a_dsn_of_no_supported_scheme_is_refused_naming_it_without_its_password(
    dsn: str, message: str
) -> None:
    with pytest.raises(UnsupportedStore) as refused:
        Store(dsn)
    assert str(refused.value) == message


def test_an_https_store_is_spoken_to_over_tls_whatever_its_port() -> None:
    """clickhouse-connect alone reads the scheme of a DSN only from its port (443, 8443)."""
    first_bytes: list[bytes] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(10)

        def accept() -> None:
            connection, _ = listener.accept()
            with connection:
                first_bytes.append(connection.recv(3))

        server = threading.Thread(target=accept)
        server.start()
        store = Store(f"https://default:secret@127.0.0.1:{listener.getsockname()[1]}/threadline")
        with pytest.raises(StoreUnavailable):
            store.open()
        server.join(10)
    assert first_bytes and first_bytes[0][:2] == b"\x16\x03"  # a TLS handshake, not "GET"/"POS"


def _wait_until(condition: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# A read that keeps its connection about a second (the engine caps one sleep at 3 s).
SLOW_READ = "SELECT sleepEachRow(0.25) FROM numbers(4)"


def test_a_read_runs_while_a_write_holds_the_store(tmp_path: Path) -> None:
    store = Store(f"chdb://{tmp_path}").open()
    read: list[int] = []
    with store.writing():  # ingest's writer in the middle of a batch
        store.insert("schema_migrations", [[0]], ["version"])
        reader = threading.Thread(target=lambda: read.append(store.query("SELECT 1").result_rows[0][0]))
        reader.start()
        reader.join(30)
        assert read == [1]  # answered before the write ended
    store.close()


def test_writes_go_one_at_a_time_a_write_block_whole(tmp_path: Path) -> None:
    store = Store(f"chdb://{tmp_path}").open()
    finished: list[str] = []

    def write() -> None:
        store.insert("schema_migrations", [[0]], ["version"])
        finished.append("other write")

    with store.writing():
        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(0.5)
        # The block reads what it wrote, with no other write in between.
        assert store.query("SELECT count() FROM schema_migrations WHERE version = 0").result_rows == [(0,)]
        store.insert("schema_migrations", [[0]], ["version"])
        assert store.query("SELECT count() FROM schema_migrations WHERE version = 0").result_rows == [(1,)]
        finished.append("block")
    writer.join(30)
    store.close()
    assert finished == ["block", "other write"]


def test_a_read_waits_for_a_free_read_connection_not_for_a_write(tmp_path: Path) -> None:
    store = Store(f"chdb://{tmp_path}", read_connections=2).open()
    finished: list[str] = []

    def read(name: str, sql: str = "SELECT 1") -> None:
        store.query(sql)
        finished.append(name)

    slow = [threading.Thread(target=read, args=(f"slow {n}", SLOW_READ)) for n in range(2)]
    for thread in slow:
        thread.start()
    time.sleep(0.3)
    quick = threading.Thread(target=read, args=("quick",))
    quick.start()
    _wait_until(lambda: store.reads_waiting == 1)  # both read connections busy
    for thread in [*slow, quick]:
        thread.join(30)
    store.close()
    assert finished[0].startswith("slow")  # it had to wait for one of them


def test_background_reads_wait_for_every_api_read_even_one_queued_after_them(tmp_path: Path) -> None:
    store = Store(f"chdb://{tmp_path}", read_connections=1).open()
    finished: list[str] = []

    def read(name: str, background: bool = False, sql: str = "SELECT 1") -> None:
        with Store.background() if background else contextlib.nullcontext():
            store.query(sql)
        finished.append(name)

    holder = threading.Thread(target=read, args=("holder", False, SLOW_READ))
    holder.start()
    time.sleep(0.3)  # the one read connection busy: the alert evaluator queues first, a dashboard after
    evaluator = threading.Thread(target=read, args=("evaluator", True))
    evaluator.start()
    _wait_until(lambda: store.reads_waiting == 1)
    dashboard = threading.Thread(target=read, args=("dashboard",))
    dashboard.start()
    _wait_until(lambda: store.reads_waiting == 2)
    for thread in (holder, evaluator, dashboard):
        thread.join(30)
    store.close()
    assert finished == ["holder", "dashboard", "evaluator"]


def test_a_background_read_waits_for_a_steady_flow_of_reads_a_second_at_most(tmp_path: Path) -> None:
    store = Store(f"chdb://{tmp_path}", read_connections=1).open()
    stop = threading.Event()
    waited: list[float] = []

    def dashboard() -> None:  # a read always waiting: each statement queued before the last ends
        while not stop.is_set():
            store.query("SELECT sleep(0.05), count() FROM schema_migrations")

    def evaluator() -> None:
        began = time.monotonic()
        with Store.background():
            store.query("SELECT count() FROM schema_migrations")
        waited.append(time.monotonic() - began)

    readers = [threading.Thread(target=dashboard) for _ in range(3)]
    for reader in readers:
        reader.start()
    background = threading.Thread(target=evaluator)
    background.start()
    background.join(10)
    stop.set()
    for reader in readers:
        reader.join(30)
    store.close()
    assert waited and 0.9 <= waited[0] < 3


def test_a_read_whose_caller_has_gone_is_not_executed(tmp_path: Path) -> None:
    store = Store(f"chdb://{tmp_path}", read_connections=1).open()
    caller = ReadCaller("acme")
    failures: list[BaseException] = []

    def read() -> None:
        store.reading(caller)  # this thread's context only
        try:
            store.query("SELECT 1")
        except CallerGone as error:
            failures.append(error)

    holder = threading.Thread(target=store.query, args=(SLOW_READ,))
    holder.start()
    time.sleep(0.3)
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    _wait_until(lambda: store.reads_waiting == 1)
    caller.gone.set()
    _wait_until(lambda: store.reads_waiting == 0)  # left the queue while the connection was busy
    assert holder.is_alive()
    for thread in (holder, reader):
        thread.join(30)
    store.close()
    assert len(failures) == 1


def test_a_running_read_whose_caller_has_gone_is_cancelled(tmp_path: Path) -> None:
    store = Store(f"chdb://{tmp_path}").open()
    caller = ReadCaller("acme")
    outcome: list[tuple[str, float]] = []

    def read() -> None:
        store.reading(caller)
        began = time.monotonic()
        try:
            store.query("SELECT count() FROM numbers(1e11) WHERE sipHash64(number) % 7 = 1")  # minutes
            outcome.append(("answered", time.monotonic() - began))
        except CallerGone:
            outcome.append(("cancelled", time.monotonic() - began))

    reader = threading.Thread(target=read)
    reader.start()
    _wait_until(lambda: caller.running)
    time.sleep(0.5)
    caller.gone.set()  # the dashboard gave up
    store.cancel(caller)
    reader.join(30)
    store.close()
    assert outcome and outcome[0][0] == "cancelled" and outcome[0][1] < 5


def test_the_collectors_own_reads_leave_the_cores_to_api_reads_and_writes_keep_theirs(
    tmp_path: Path,
) -> None:
    store = Store(f"chdb://{tmp_path}").open()
    niceness = "SELECT toInt64(getSetting('os_thread_priority'))"

    def api_read() -> int:
        store.reading(ReadCaller("acme"))
        return int(store.query(niceness).result_rows[0][0])

    assert contextvars.copy_context().run(api_read) == 0
    with Store.background():  # the alert evaluator, the state keeper
        assert store.query(niceness).result_rows[0][0] == OWN_WORK_NICENESS
        with Store.promptly():  # an alert cycle's reads of what changed
            assert store.query(niceness).result_rows[0][0] == 0
        with store.writing():  # the keeper's insert: ingest would wait behind it, so never niced
            assert store.query(niceness).result_rows[0][0] == 0
    with store.writing():  # ingest's writer: writes go first
        assert store.query(niceness).result_rows[0][0] == 0
        store.insert("schema_migrations", [[0]], ["version"])
    store.close()


def keeper_pass(store: Store, written: list[str]) -> threading.Thread:
    """A state keeper's write, beside ingest, in a thread of its own: ``written`` says when it is done."""

    def write() -> None:
        with Store.background(), Store.beside_ingest():
            store.insert("schema_migrations", [[0]], ["version"])
            written.append("the keeper's rows")

    keeper = threading.Thread(target=write)
    keeper.start()
    return keeper


def test_the_collectors_own_writes_run_beside_ingests_never_waiting_for_its_batch(tmp_path: Path) -> None:
    store = Store(f"chdb://{tmp_path}").open()
    niceness = "SELECT toInt64(getSetting('os_thread_priority'))"
    written: list[str] = []

    with store.writing():  # ingest's writer in the middle of a batch
        keeper = keeper_pass(store, written)
        keeper.join(30)
        assert written == ["the keeper's rows"]  # stored before the batch ended
        with Store.beside_ingest():  # inside a write block, on its connection: one write at a time
            assert store.query(niceness).result_rows[0][0] == 0
    with Store.background(), Store.beside_ingest():
        store.command("INSERT INTO schema_migrations (version) VALUES (0)")  # background work
    assert store.query("SELECT count() FROM schema_migrations WHERE version = 0").result_rows == [(2,)]
    store.close()


def test_a_pass_never_marks_past_a_write_under_way(tmp_path: Path) -> None:
    store = Store(f"chdb://{tmp_path}").open()
    before = dt.datetime.now(dt.UTC)
    with store.writing():
        began = store.settled_until()
        time.sleep(0.2)
        assert before <= store.settled_until() == began  # the write's events are stamped after it
    assert store.settled_until() >= began + dt.timedelta(seconds=0.2)
    store.close()


def test_a_read_for_a_caller_over_the_read_time_limit_is_stopped_and_said_so(tmp_path: Path) -> None:
    store = Store(f"chdb://{tmp_path}", read_timeout_s=0.001).open()  # migrations have no limit
    slow = "SELECT count() FROM numbers(10000000) WHERE sipHash64(number) % 7 = 1"

    def read_for_a_caller() -> None:
        store.reading(ReadCaller("acme"))
        store.query(slow)

    with pytest.raises(ReadTimedOut, match=r"read time limit of 0\.001 s"):
        contextvars.copy_context().run(read_for_a_caller)
    assert store.query(slow).result_rows  # the collector's own reads have none
    store.close()


def test_a_closed_store_refuses_statements_instead_of_opening_again(tmp_path: Path) -> None:
    store = Store(f"chdb://{tmp_path}").open()
    store.close()  # a thread still running (an alert evaluation past its stop) must not reopen it

    with pytest.raises(StoreUnavailable, match="closed"):
        store.query("SELECT 1")
    assert store.open().query("SELECT 1").result_rows == [(1,)]  # an explicit open does
    store.close()


def test_rows_read_one_at_a_time_are_the_same_rows_and_hold_no_connection_meanwhile(tmp_path: Path) -> None:
    # A paced reader (a first alert evaluation) decodes its answer between pauses, while the API reads.
    store = Store(f"chdb://{tmp_path}", read_connections=1).open()
    several_blocks = (
        "SELECT number AS n, toString(number) AS s FROM numbers(5000) SETTINGS max_block_size = 1000"
    )
    rows = store.each_row(several_blocks)
    first = next(rows)
    assert store.rows("SELECT 1 AS one") == [{"one": 1}]  # the only read connection is free
    assert [first, *rows] == store.rows(several_blocks)
    store.close()


def test_a_write_beside_ingest_waits_for_a_deletion_under_way(tmp_path: Path) -> None:
    # Retention's batch deletes a transaction table by table: a keeper pass in between would derive
    # it again from the rows not deleted yet.
    store = Store(f"chdb://{tmp_path}").open()
    written: list[str] = []

    with store.deleting():
        keeper = keeper_pass(store, written)
        keeper.join(0.5)
        assert written == []  # not while the batch is half done
        written.append("the batch")
    keeper.join(30)
    assert written == ["the batch", "the keeper's rows"]
    store.close()
