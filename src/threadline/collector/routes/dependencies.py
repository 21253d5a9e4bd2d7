"""What the routes share, declared once: the collector, the caller, the moments and ranges they
filter by, the paging cursor and the transaction key in a path."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool

from .. import cursors
from ..admission import admit_read
from ..auth import Principal, require
from ..http_errors import ApiError
from ..models import StoredMoment
from ..schema import Problem
from ..service import Collector, get_collector

CollectorDep = Annotated[Collector, Depends(get_collector)]
# What every reading router asks first: a key that may read, then a turn among the tenant's reads.
READING = [Depends(require("read")), Depends(admit_read)]


def _principal(request: Request) -> Principal:
    return Collector.principal_of(request)


# Set by the router's ``auth.require`` dependency, which runs before the route's own.
PrincipalDep = Annotated[Principal, Depends(_principal)]


def _tenant(principal: PrincipalDep) -> str:
    return principal.tenant


TenantDep = Annotated[str, Depends(_tenant)]


async def _snapshot_caught_up(collector: CollectorDep, tenant: TenantDep) -> None:
    await run_in_threadpool(collector.snapshot.catch_up, tenant)


# What a route reading every transaction's state asks first (``StateKeeper.catch_up``): its read is
# then the snapshot's rows, and the reads that arrive together share one pass over what changed.
SNAPSHOT_CAUGHT_UP = Depends(_snapshot_caught_up)

# A time the store can hold (1970 to 2261), with a zone.
Moment = StoredMoment
AsOf = Annotated[
    Moment | None,
    Query(description="Answer as of this time (RFC 3339 with zone): later events are ignored. Default: now."),
]
Since = Annotated[Moment | None, Query(description="Only transactions started at or after this time")]
Until = Annotated[Moment | None, Query(description="Only transactions started at or before this time")]


def as_of_or_now(as_of: dt.datetime | None) -> dt.datetime:
    """The moment an answer is as of: the one asked for, else now (UTC)."""
    return (as_of or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)


def check_range(since: dt.datetime | None, until: dt.datetime | None) -> None:
    """400 naming ``since`` when the range ends before it starts."""
    if since and until and since > until:
        raise ApiError(
            400, "invalid_request", "since is after until", [Problem(field="since", reason="is after until")]
        )


def _after(cursor: str | None = None) -> cursors.Position | None:
    if cursor is None:
        return None
    try:
        return cursors.decode(cursor)
    except cursors.BadCursor as error:
        raise ApiError(
            400, "invalid_request", f"cursor {error}", [Problem(field="cursor", reason=str(error))]
        ) from None


# The ``cursor`` query parameter of a paged list, as the position its next page starts after.
After = Annotated[cursors.Position | None, Depends(_after)]

# Any stored key, percent-encoded by the client ("SO/2026/00042" as SO%2F2026%2F00042). The server
# decodes %2F before routing, so the key takes the rest of the path (`:path`); a route that goes on
# after it (`/resolve`) ends in a fixed word, and the key is everything before that last word.
TRANSACTION_PATH = "/transactions/{key:path}"
TransactionKey = Annotated[
    str, Path(description="Correlation id or any alias, percent-encoded", min_length=1, max_length=256)
]
