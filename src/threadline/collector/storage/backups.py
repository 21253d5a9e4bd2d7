"""Backup and restore of a whole store with ClickHouse's own ``BACKUP`` / ``RESTORE``.

Every table goes, the materialized views and ``schema_migrations`` included, so a restored store is
the store that was backed up, and a backup made by an older release is migrated as the restored
store opens. The embedded engine takes its backups to a directory (``File``; chdb refuses it unless
``backups.allowed_path`` is set, which ``Store`` passes it: the parent of that directory). A
server takes them to one of its backup disks (``Disk``, allowed by its ``backups.allowed_disk``) or
to S3 (credentials from its configuration): ``disk:NAME:PATH`` or ``s3:URL``.

The embedded engine serves one process: back up or restore with the collector stopped (chdb
refuses a store another process holds). A server's backup is taken while collectors write, table
by table, so the state snapshot (``transaction_states``, ``state_marks``) may hold a transaction's
state from events its ``events`` copy lacks: a restore empties the snapshot, which the collector
derives again in its first pass (reads derive every state until then).
"""

from __future__ import annotations

import fcntl
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.exceptions import ClickHouseError

from .connection import Store, StoreUnavailable

# The database's name inside every backup: restored under the store's own, whatever it was named.
NAME_IN_BACKUP = "threadline"
_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

CURRENT_DATABASE = "SELECT currentDatabase()"
TABLES_IN_DATABASE = "SELECT count() FROM system.tables WHERE database = currentDatabase()"
# Emptied after a restore: derived again by the collector's state keeper (see the module doc).
SNAPSHOT_TABLES = (
    "transaction_states",
    "state_marks",
    "transaction_reconciliations",
    "transaction_dimensions",
    "transaction_exceptions",
)


class BackupError(ValueError):
    """A backup or restore that cannot be made as asked; ``str()`` says why in one line."""


@dataclass(frozen=True)
class Location:
    """Where a backup is: the engine clause (``File(...)``, ``Disk(...)``, ``S3(...)``) and its values."""

    clause: str
    parameters: dict[str, Any]
    directory: Path | None = None  # an embedded store's backup directory


def location(store: Store, where: str) -> Location:
    """``where`` for this store: a directory (embedded), ``disk:NAME:PATH`` or ``s3:URL`` (server)."""
    if store.embedded:
        directory = Path(where).expanduser().resolve()
        return Location("File({path:String})", {"path": str(directory)}, directory)
    kind, _, rest = where.partition(":")
    if kind == "disk" and rest.count(":") >= 1 and all(rest.split(":", 1)):
        disk, path = rest.split(":", 1)
        return Location("Disk({disk:String}, {path:String})", {"disk": disk, "path": path})
    if kind == "s3" and rest:
        return Location("S3({url:String})", {"url": rest})
    raise BackupError(f"{where!r}: a server's backup goes to disk:NAME:PATH (a backup disk) or s3:URL")


def _database(store: Store) -> str:
    """The store's database, checked to be a plain name: BACKUP takes no bound parameter for it."""
    name = str(store.query(CURRENT_DATABASE).result_rows[0][0])
    if not _PLAIN_NAME.match(name):
        raise BackupError(f"database {name!r}: only letters, digits and underscores can be backed up here")
    return name


@contextmanager
def _refused(statement: str) -> Iterator[None]:
    """ClickHouse's refusal (a location not allowed, a backup that exists) as StoreUnavailable."""
    try:
        yield
    except ClickHouseError as error:
        reason = str(error).strip().splitlines()[0]
        raise StoreUnavailable(f"the store refused the {statement}: {reason}") from error


def _refuse_if_in_use(store: Store) -> None:
    """An embedded store another process holds (a running collector): said in one line. The engine
    locks the ``status`` file of its folder (flock), and would refuse with a less telling error."""
    status = Path(store.dsn.removeprefix("chdb://")) / "status"
    if not status.exists():
        return
    with status.open("rb") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreUnavailable(
                f"{store.redacted_dsn} is in use by another process: stop its collector first"
            ) from None
        fcntl.flock(file, fcntl.LOCK_UN)


def opened(dsn: str, where: Location | None = None) -> Store:
    """The store, not migrated, with the engine allowed to read and write ``where``'s directory."""
    backups_path = where.directory.parent if where is not None and where.directory else None
    store = Store(dsn, backups_path=backups_path)
    if store.embedded:
        _refuse_if_in_use(store)
    return store.open(migrate=False)


def backup(dsn: str, destination: str) -> str:
    """Back the store up to ``destination``; what was made, in one line."""
    probe = Store(dsn)
    target = location(probe, destination)
    if target.directory is not None and target.directory.exists():
        raise BackupError(f"{target.directory} exists already: a backup goes to a new directory")
    if target.directory is not None:
        target.directory.parent.mkdir(parents=True, exist_ok=True)
    store = opened(dsn, target)
    try:
        if not store.query(TABLES_IN_DATABASE).result_rows[0][0]:
            raise BackupError(f"{store.redacted_dsn} holds no table: no store to back up there")
        database = _database(store)
        with store.writing(), _refused("BACKUP"):  # nothing else of this process writes meanwhile
            statement = f"BACKUP DATABASE `{database}` AS {NAME_IN_BACKUP} TO {target.clause}"
            store.command(statement, target.parameters)
    finally:
        store.close()
    return f"backed up {store.redacted_dsn} to {destination}"


def restore(dsn: str, source: str) -> str:
    """Restore the backup at ``source`` into the store, which must hold no table yet; one line."""
    probe = Store(dsn)
    origin = location(probe, source)
    if origin.directory is not None and not origin.directory.is_dir():
        raise BackupError(f"{source}: no such backup directory")
    store = opened(dsn, origin)
    try:
        if store.query(TABLES_IN_DATABASE).result_rows[0][0]:
            raise BackupError(f"{store.redacted_dsn} holds tables already: restore into an empty store")
        database = _database(store)
        with store.writing(), _refused("RESTORE"):
            statement = f"RESTORE DATABASE {NAME_IN_BACKUP} AS `{database}` FROM {origin.clause}"
            store.command(statement, origin.parameters)
            version = store.migrate()  # a backup of an older release is brought up to date
            for table in SNAPSHOT_TABLES:
                store.command(f"TRUNCATE TABLE {table}")
    finally:
        store.close()
    return f"restored {source} into {store.redacted_dsn} (schema version {version})"
