"""Which DSNs a store takes: chdb:// (embedded), http:// and https:// (a server), nothing else;
the order in which it takes statements, and their time limits."""

from __future__ import annotations

import contextlib
import contextvars
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


def test_a_waiting_write_goes_before_every_read_queued_ahead_of_it(tmp_path: Path) -> None:
    store = Store(f"chdb://{tmp_path}").open()
    finished: list[str] = []

    def read(name: str, sql: str = "SELECT count() FROM schema_migrations") -> None:
        store.query(sql)
        finished.append(name)

    def write() -> None:
        with store.writing():
            store.insert("schema_migrations", [[0]], ["version"])
        finished.append("write")

    with store.writing():  # a write of no time: the readers' turn after it is spent by the first read
        pass
    # A dashboard read holds the store for a few seconds: everything else queues behind it.
    holder = threading.Thread(target=read, args=("holder", "SELECT sleepEachRow(0.25) FROM numbers(10)"))
    holder.start()
    time.sleep(0.5)
    readers = [threading.Thread(target=read, args=(f"read {n}",)) for n in range(8)]
    for thread in readers:
        thread.start()
    _wait_until(lambda: store.waiting == (8, 0))
    writer = threading.Thread(target=write)
    writer.start()
    _wait_until(lambda: store.waiting == (8, 1))
    for thread in [holder, *readers, writer]:
        thread.join(30)
    store.close()
    assert finished[:2] == ["holder", "write"]
    assert sorted(finished[2:]) == [f"read {n}" for n in range(8)]


def _steady_flow(store: Store, write_s: float, queued: list[tuple[str, float]]) -> list[str]:
    """Ingest writing for ``write_s``, while writes and reads (each its name and how long its
    statement takes) queue in this order; the order they finished in."""
    finished: list[str] = []

    def read(name: str, seconds: float) -> None:
        store.query(f"SELECT sleep({seconds}), count() FROM schema_migrations")
        finished.append(name)

    def write(name: str, seconds: float) -> None:
        with store.writing():
            store.command(f"SELECT sleep({seconds})")
            store.insert("schema_migrations", [[0]], ["version"])
        finished.append(name)

    began = time.monotonic()
    with store.writing():  # ingest writing, with more writes and reads waiting for their turn
        threads: list[threading.Thread] = []
        for name, seconds in queued:
            target = write if name.startswith("write") else read
            threads.append(threading.Thread(target=target, args=(name, seconds)))
            threads[-1].start()
            count = len(threads)
            _wait_until(lambda: sum(store.waiting) == count)  # noqa: B023 (called at once, in the loop)
        time.sleep(max(0.0, write_s - (time.monotonic() - began)))
    for thread in threads:
        thread.join(30)
    store.close()
    return finished


def test_under_a_steady_flow_of_writes_reads_have_the_store_for_as_long_as_the_write_before(
    tmp_path: Path,
) -> None:
    # A write of 1.5 s earns the readers 1.5 s: both short reads go, then the writes.
    finished = _steady_flow(
        Store(f"chdb://{tmp_path}").open(),
        1.5,
        [("write 1", 0), ("read 1", 0), ("write 2", 0), ("read 2", 0)],
    )

    assert finished[:2] == ["read 1", "read 2"]
    assert sorted(finished[2:]) == ["write 1", "write 2"]


def test_a_read_longer_than_the_readers_turn_lets_the_waiting_write_go_next(tmp_path: Path) -> None:
    # The first read starts in the readers' turn and runs past it: the write goes before the second.
    finished = _steady_flow(
        Store(f"chdb://{tmp_path}").open(),
        0.5,
        [("write 1", 0), ("read 1", 1.5), ("read 2", 0)],
    )

    assert finished == ["read 1", "write 1", "read 2"]


def test_a_read_that_overran_the_readers_turn_is_paid_back_by_the_writes_after_it(tmp_path: Path) -> None:
    # A write of 0.5 s earns the readers 0.5 s; the first read takes 1.5 s, a second behind it. The
    # writes (0.3 s each) then go until they have held the store for the 1 s overrun: all three
    # before the second read. (Which of the waiting writes goes first is not promised: ingest has one
    # writer thread.) So ingest keeps half of the store whatever the reads' statements cost.
    finished = _steady_flow(
        Store(f"chdb://{tmp_path}").open(),
        0.5,
        [("write 1", 0.3), ("read 1", 1.5), ("write 2", 0.3), ("read 2", 0), ("write 3", 0.3)],
    )

    assert finished[0] == "read 1" and finished[-1] == "read 2"
    assert sorted(finished[1:-1]) == ["write 1", "write 2", "write 3"]


def test_background_reads_wait_for_every_read_even_one_queued_after_them(tmp_path: Path) -> None:
    store = Store(f"chdb://{tmp_path}").open()
    finished: list[str] = []

    def read(name: str, background: bool) -> None:
        with Store.background() if background else contextlib.nullcontext():
            store.query("SELECT count() FROM schema_migrations")
        finished.append(name)

    with store.writing():  # the store busy: the alert evaluator queues first, a dashboard read after
        evaluator = threading.Thread(target=read, args=("evaluator", True))
        evaluator.start()
        _wait_until(lambda: store.waiting == (1, 0))
        dashboard = threading.Thread(target=read, args=("dashboard", False))
        dashboard.start()
        _wait_until(lambda: store.waiting == (2, 0))
    for thread in (evaluator, dashboard):
        thread.join(30)
    store.close()
    assert finished == ["dashboard", "evaluator"]


@pytest.mark.parametrize("answered_between", [False, True])
def test_a_call_that_had_the_store_goes_on_before_the_waiting_write_until_it_has_answered(
    tmp_path: Path, answered_between: bool
) -> None:
    # The call's first statement runs past the readers' short turn, a write waits behind it: the
    # call's second statement still goes first (it waits for the store once), unless the call had
    # answered, and its next read is a read like any other.
    store = Store(f"chdb://{tmp_path}").open()
    caller = ReadCaller("acme")
    finished: list[str] = []

    def call() -> None:
        store.reading(caller)  # this thread's context only
        store.query("SELECT sleep(0.6), count() FROM schema_migrations")
        if answered_between:
            store.done_reading(caller)
        store.query("SELECT count() FROM schema_migrations")
        finished.append("call")

    def write() -> None:
        with store.writing():
            store.insert("schema_migrations", [[0]], ["version"])
        finished.append("write")

    with store.writing():  # ingest writing briefly: the readers' turn is short
        caller_thread = threading.Thread(target=call)
        caller_thread.start()
        _wait_until(lambda: store.waiting == (1, 0))
        writer = threading.Thread(target=write)
        writer.start()
        _wait_until(lambda: store.waiting == (1, 1))
    for thread in (caller_thread, writer):
        thread.join(30)
    store.close()
    assert finished == (["write", "call"] if answered_between else ["call", "write"])


def test_a_background_read_waits_for_a_steady_flow_of_reads_a_second_at_most(tmp_path: Path) -> None:
    store = Store(f"chdb://{tmp_path}").open()
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
    store = Store(f"chdb://{tmp_path}").open()
    caller = ReadCaller("acme")
    failures: list[BaseException] = []

    def read() -> None:
        store.reading(caller)  # this thread's context only
        try:
            store.query("SELECT 1")
        except CallerGone as error:
            failures.append(error)

    with store.writing():
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        _wait_until(lambda: store.waiting == (1, 0))
        caller.gone.set()
        _wait_until(lambda: store.waiting == (0, 0))  # left the queue while the store was busy
    reader.join(30)
    store.close()
    assert len(failures) == 1


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
