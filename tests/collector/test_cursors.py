"""The paging cursor: opaque to clients, but a cursor handed out before keeps working."""

from __future__ import annotations

import datetime as dt

import pytest

from threadline.collector import cursors

MOMENT = dt.datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=dt.UTC)
# What every paged list handed out before the one codec: url-safe base64, unpadded, of
# ["2026-03-02T09:00:00.123456+00:00","OPP-1042"].
HANDED_OUT = "WyIyMDI2LTAzLTAyVDA5OjAwOjAwLjEyMzQ1NiswMDowMCIsIk9QUC0xMDQyIl0"


def test_a_cursor_keeps_its_wire_format() -> None:
    assert cursors.encode(MOMENT, "OPP-1042") == HANDED_OUT
    assert cursors.decode(HANDED_OUT) == (MOMENT, "OPP-1042")


def test_a_cursor_round_trips_any_key_and_is_url_safe() -> None:
    key = "SO/2026/00042 ü?&="
    cursor = cursors.encode(MOMENT, key)
    assert cursors.decode(cursor) == (MOMENT, key)
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_a_moment_without_a_zone_is_read_as_utc() -> None:
    naive = "WyIyMDI2LTAzLTAyVDA5OjAwOjAwIiwiU08vMjAyNi8xIl0"  # ["2026-03-02T09:00:00","SO/2026/1"]
    assert cursors.decode(naive) == (dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC), "SO/2026/1")


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "",
        "WzEsMl0",  # [1,2]
        "WyIyMDI2LTAzLTAyVDA5OjAwOjAwKzAwOjAwIiwiYSIsImIiXQ",  # three values
        "WyI5OTk5LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwieCJd",  # a moment the store cannot hold (9999)
    ],
)
def test_anything_else_is_refused_with_the_reason(cursor: str) -> None:
    with pytest.raises(cursors.BadCursor, match="is not a cursor this API handed out"):
        cursors.decode(cursor)


def test_the_first_page_starts_after_every_position() -> None:
    latest, after_every_id = cursors.FIRST_PAGE
    assert latest >= dt.datetime(2261, 12, 31, tzinfo=dt.UTC)
    assert after_every_id > "\U0010ffff" + "any id"
