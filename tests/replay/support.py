"""Helpers for the replay tests: the fixture files, and a stand-in collector built on ingest's own parser."""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from threadline.collector.schema import InvalidBatch, parse_batch
from threadline.replay import mapping_from_args

DATA = Path(__file__).parent / "data"
# Line 6 of orders.csv: there is no 31 February.
CSV_BAD_TIME = (
    "'31/02/2024 10:00' is not a time in the format '%d/%m/%Y %H:%M' (day is out of range for month)"
)
ORDERS_CSV = DATA / "orders.csv"
ONBOARDING_XES = DATA / "onboarding.xes"
ORDERS_OCEL = DATA / "order-management.jsonocel"


def transaction(api: httpx.Client, key: str) -> dict[str, Any]:
    response = api.get(f"/api/transactions/{key}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def orders_mapping() -> dict[str, str]:
    """The fixture CSV's mapping, written as the command line's ``--map`` items, one per line."""
    return mapping_from_args((DATA / "orders.mapping").read_text().splitlines())


@dataclass
class FakeIngest:
    """``POST /v1/events`` in-process: validates with ``parse_batch`` (ingest's own), dedupes by event id.

    For tests that need no store but must hold replay to the collector's exact rules, and for
    answers a real collector gives only under load (429, 503, 413).
    """

    answers: list[httpx.Response] = field(default_factory=list)  # served first, in order
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.answers:
            return self.answers.pop(0)
        body = request.content
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        try:
            events = parse_batch(body)
        except InvalidBatch as invalid:
            problems = [p.model_dump() for p in invalid.problems]
            return httpx.Response(400, json={"error": "invalid_events", "message": "x", "problems": problems})
        accepted = 0
        for event in events:
            if event.event_id not in self.stored:
                self.stored[str(event.event_id)] = event.model_dump(mode="json")
                accepted += 1
        return httpx.Response(200, json={"accepted": accepted, "duplicates": len(events) - accepted})

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))

    def sent_batches(self) -> list[list[dict[str, Any]]]:
        return [orjson.loads(gzip.decompress(r.content))["events"] for r in self.requests]
