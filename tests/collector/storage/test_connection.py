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


def test_under_a_steady_flow_of_writes_reads_take_turns_with_them(tmp_path: Path) -> None:
    store = Store(f"chdb://{tmp_path}").open()
    finished: list[str] = []

    def read(name: str) -> None:
        store.query("SELECT count() FROM schema_migrations")
        finished.append(name)

    def write(name: str) -> None:
        with store.writing():
            store.insert("schema_migrations", [[0]], ["version"])
        finished.append(name)

    with store.writing():  # ingest writing, with more writes and reads waiting for their turn
        threads: list[threading.Thread] = []
        for target, name in [(write, "write 1"), (read, "read 1"), (write, "write 2"), (read, "read 2")]:
            threads.append(threading.Thread(target=target, args=(name,)))
            threads[-1].start()
            queued = len(threads)
            _wait_until(lambda: sum(store.waiting) == queued)  # noqa: B023 (called at once, in the loop)
    for thread in threads:
        thread.join(30)
    store.close()
    # Never two writes in a row while a read waits; writes before reads otherwise. (Which of two
    # waiting writes goes first is not promised: ingest has one writer thread.)
    assert [name.split()[0] for name in finished] == ["read", "write", "read", "write"]
    assert finished[0] == "read 1" and finished[2] == "read 2"


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
