"""The OCEL 2.0 reader: which events make up whose transaction, aliases, and the line of each event."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from tests.replay.support import ORDERS_OCEL
from threadline.replay import ReplayError
from threadline.replay.ocel import OcelLog, load_with_event_lines
from threadline.replay.source import Candidate

UTC = dt.UTC


def read(path: Path = ORDERS_OCEL, **options: str) -> tuple[OcelLog, list[Candidate]]:
    log = OcelLog(path, **options)
    return log, list(log.candidates())


def by_id(rows: list[Candidate]) -> dict[str, Candidate]:
    return {row.fields["event_id"]: row for row in rows}


def test_the_type_with_the_most_events_is_the_transaction_by_default() -> None:
    log, rows = read()
    assert log.chosen == "orders"
    assert log.notes[0] == (
        "transactions are the 'orders' objects, related to 6 events; other object types: "
        "items (5), invoices (4), customers (3) (choose one with object_type)"
    )
    assert {row.fields["workflow"] for row in rows} == {"orders"}


def test_each_order_gets_its_own_events_and_those_of_its_own_items_and_invoice() -> None:
    _, rows = read()
    transactions: dict[str, list[str]] = {}
    for row in rows:
        transactions.setdefault(row.fields["correlation_id"], []).append(row.fields["event_id"])
    assert transactions == {
        # e4/e12 pick o-1's items, e6/e8 create and pay o-1's own invoice (linked object-to-object)
        "o-1": ["e1", "e3", "e4", "e6", "e7@o-1", "e8", "e12"],
        "o-2": ["e2", "e5", "e7@o-2", "e11", "e13"],
    }


def test_own_objects_are_aliases_and_shared_ones_attributes() -> None:
    _, rows = read()
    events = by_id(rows)
    # qualified by type: the bare id is the item's own key when the log is replayed by items
    assert events["e1"].fields["aliases"] == {"items": "items:i-1", "items#2": "items:i-2"}
    assert events["e1"].fields["attributes"] == {"channel": "web", "object.customers": "c-1"}
    assert events["e1"].fields["system"] == "webshop"
    assert events["e4"].fields["aliases"] == {"items": "items:i-1"}
    assert events["e4"].fields["system"] == "wms"  # from the attribute "resource"
    assert events["e6"].fields["aliases"] == {"invoices": "invoices:inv-1"}
    assert "aliases" not in events["e7@o-1"].fields  # inv-2 covers both orders: no one's key
    assert events["e7@o-1"].fields["attributes"] == {"object.invoices": "inv-2", "object.orders": "o-2"}
    assert events["e8"].fields["attributes"] == {"amount": "250.5"}


def test_events_only_of_shared_objects_are_skipped_and_named_in_the_notes() -> None:
    log, rows = read()
    assert log.skipped == 2  # e9 pays the shared invoice, e10 registers the shared customer
    assert {"e9", "e10"}.isdisjoint(by_id(rows))
    assert log.notes[1] == (
        "2 events are related to no single 'orders' object (only to objects shared by several, or to none) "
        "and were skipped: pay invoice (1), register customer (1)"
    )


def test_the_bad_event_is_reported_by_line_and_by_number_and_id() -> None:
    _, rows = read()
    [bad] = [row for row in rows if row.problems]
    assert bad.line == 113
    assert bad.ref == "event #11 (id e11)"
    assert bad.problems == (
        (
            "timestamp",
            "'next tuesday' is not an ISO 8601 time (pass timestamp_format=... for another format)",
        ),
    )


def test_zone_less_times_are_read_in_the_given_zone() -> None:
    _, rows = read(timezone="Europe/Berlin")
    assert by_id(rows)["e3"].fields["timestamp"].astimezone(UTC) == dt.datetime(2024, 6, 3, 8, tzinfo=UTC)
    _, rows = read()
    assert by_id(rows)["e3"].fields["timestamp"] == dt.datetime(2024, 6, 3, 10, tzinfo=UTC)


def test_another_object_type_can_be_the_transaction() -> None:
    log, rows = read(object_type="items", workflow="fulfilment")
    assert log.chosen == "items"
    assert {row.fields["workflow"] for row in rows} == {"fulfilment"}
    keys = {(row.fields["correlation_id"], row.fields["event_id"]) for row in rows}
    assert ("i-1", "e1@i-1") in keys and ("i-2", "e1@i-2") in keys  # one place-order event, two items
    assert ("i-3", "e5") in keys
    with pytest.raises(ReplayError, match="no object of type 'parcels'; the object types are: orders"):
        read(object_type="parcels")


def write(tmp_path: Path, document: dict[str, Any], indent: int | None = None) -> Path:
    path = tmp_path / "log.json"
    path.write_text(json.dumps(document, indent=indent))
    return path


def minimal(**event: Any) -> dict[str, Any]:
    base = {
        "id": "e1",
        "type": "approve",
        "time": "2024-01-01T00:00:00Z",
        "attributes": [{"name": "system", "value": "erp"}],
        "relationships": [{"objectId": "o-1", "qualifier": ""}],
    }
    return {
        "objectTypes": [{"name": "order", "attributes": []}],
        "eventTypes": [],
        "objects": [{"id": "o-1", "type": "order"}],
        "events": [base | event],
    }


def test_minified_json_reports_line_one_and_the_event_number(tmp_path: Path) -> None:
    document = minimal(type=None)
    document["events"].append(minimal(id="e2")["events"][0])
    _, rows = read(write(tmp_path, document))
    assert [(row.line, row.ref, row.problems) for row in rows if row.problems] == [
        (1, "event #1 (id e1)", (("type", "is required (a non-empty string)"),))
    ]


def test_the_system_option_is_needed_when_no_event_names_one(tmp_path: Path) -> None:
    path = write(tmp_path, minimal(attributes=[]))
    with pytest.raises(ReplayError, match="name no system"):
        read(path)
    _, [row] = read(path, system="sap")
    assert row.fields["system"] == "sap"


def test_ocel_1_is_refused_with_a_way_out(tmp_path: Path) -> None:
    path = write(tmp_path, {"ocel:global-log": {}, "ocel:events": {}, "ocel:objects": {}})
    with pytest.raises(ReplayError, match=r"OCEL 1\.0"):
        read(path)


def test_malformed_json_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "objects": [],\n  "events": [\n    {"id": "e1",}\n  ]\n}\n')
    with pytest.raises(ReplayError, match=r"line 4: broken\.json is not valid JSON"):
        read(path)


@pytest.mark.parametrize("indent", [None, 2])
def test_event_lines_come_with_a_document_equal_to_json_loads(indent: int | None) -> None:
    document = json.loads(ORDERS_OCEL.read_text())
    text = json.dumps(document, indent=indent)
    loaded, lines = load_with_event_lines(text)
    assert loaded == document
    assert len(lines) == len(document["events"])
    if indent is None:
        assert set(lines) == {1}
    else:  # each event's line is its opening brace, followed by its id
        physical = text.splitlines()
        assert [physical[line - 1] for line in lines] == ["    {"] * len(lines)
        assert [physical[line] for line in lines] == [f'      "id": "{e["id"]}",' for e in document["events"]]
    assert load_with_event_lines('{"events": []}') == ({"events": []}, [])
