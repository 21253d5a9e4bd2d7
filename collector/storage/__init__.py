"""ClickHouse storage: the only part of Threadline that talks to the store."""

from .connection import DEFAULT_DSN, Store, StoreUnavailable, normalize_dsn

__all__ = ["DEFAULT_DSN", "Store", "StoreUnavailable", "normalize_dsn"]
