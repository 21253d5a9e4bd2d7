"""The paging cursor every paged list hands out: where its next page starts.

Lists are newest first and page by keyset, ``(moment, id) < position``: a cursor is the last
item's position, as url-safe base64 (unpadded) of the JSON array ``[moment in ISO 8601, id]``. It is
opaque to clients, but its wire format stays: a cursor handed out before keeps working.
"""

from __future__ import annotations

import base64
import datetime as dt

import orjson

from .schema import LATEST, in_storable_range

Position = tuple[dt.datetime, str]

# Sorts after any id a client can send (UTF-8, compared byte by byte): the upper bound of ids.
AFTER_EVERY_ID = "\U0010ffff" * 8
# Newest first, the first page starts after a position later than every stored one.
FIRST_PAGE: Position = (LATEST, AFTER_EVERY_ID)


class BadCursor(ValueError):
    """Not a cursor this API handed out (the message is the reason, for a 400 naming ``cursor``)."""


def encode(moment: dt.datetime, key: str) -> str:
    raw = orjson.dumps([moment.isoformat(), key])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> Position:
    try:
        moment, key = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(moment, str) or not isinstance(key, str):
            raise TypeError("a cursor holds a moment and an id")
        parsed = dt.datetime.fromisoformat(moment)
        # Handed out in UTC; a moment without a zone is read as UTC, as the store hands them back.
        return in_storable_range(parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)), key
    except (ValueError, TypeError) as error:
        raise BadCursor("is not a cursor this API handed out") from error
