"""Which DSNs a store takes: chdb:// (embedded), http:// and https:// (a server), nothing else."""

from __future__ import annotations

import socket
import threading

import pytest

from threadline.collector.storage import Store, StoreUnavailable, UnsupportedStore


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
