"""ClickHouse storage: the only part of Threadline that talks to the store."""

from .connection import (
    DEFAULT_DSN,
    CallerGone,
    ReadCaller,
    ReadTimedOut,
    Store,
    StoreUnavailable,
    UnsupportedStore,
    normalize_dsn,
    redact_dsn,
)

__all__ = [
    "DEFAULT_DSN",
    "CallerGone",
    "ReadCaller",
    "ReadTimedOut",
    "Store",
    "StoreUnavailable",
    "UnsupportedStore",
    "normalize_dsn",
    "redact_dsn",
]
