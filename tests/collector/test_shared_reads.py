"""Expensive answers shared between identical calls, against a real collector process.

Every answer counts as expensive here (``THREADLINE_SHARED_READ_MIN_SECONDS=0``), so what a
large store does to an overview happens on a small one: the same call gets the kept answer for its
time, an operator's action drops it, an old one is served once while a fresh one is made, and one
key's answer is never another key's.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from tests.support.collector_process import CollectorProcess
from tests.support.ingest import business_event, unique_key
from tests.support.polling import eventually
from threadline.collector.shared_reads import SharedReads

ACME, GLOBEX = "tl_acme_shared", "tl_globex_shared"
KEYS = f"""
keys:
  - {{name: acme, key: {ACME}, tenant: acme, roles: [admin]}}
  - {{name: globex, key: {GLOBEX}, tenant: globex, roles: [admin]}}
"""
KEPT_S = 3.0


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[CollectorProcess]:
    keys = tmp_path / "keys.yaml"
    keys.write_text(KEYS)
    env = {
        "THREADLINE_API_KEYS": str(keys),
        "THREADLINE_SHARED_READ_SECONDS": str(KEPT_S),
        "THREADLINE_SHARED_READ_MIN_SECONDS": "0",
        "THREADLINE_ALERT_INTERVAL": "0",
    }
    running = CollectorProcess(store_dir=tmp_path / "store", env=env, isolated=True).start()
    yield running
    running.stop()


def send(collector: CollectorProcess, key: str, *events: dict[str, object]) -> None:
    answer = httpx.post(collector.url + "/v1/events", json={"events": list(events)}, headers=bearer(key))
    assert answer.status_code == 200, answer.text


def transactions(collector: CollectorProcess, key: str) -> httpx.Response:
    answer = httpx.get(collector.url + "/api/overview", headers=bearer(key), timeout=60)
    assert answer.status_code == 200, answer.text
    return answer


def total(answer: httpx.Response) -> int:
    return int(answer.json()["totals"]["transactions"])


def test_an_answer_is_kept_for_its_time_and_an_operators_action_drops_it(collector: CollectorProcess) -> None:
    first = unique_key("SHARED")
    send(collector, ACME, business_event(first))
    asked = transactions(collector, ACME)
    assert total(asked) == 1 and "x-threadline-shared" not in asked.headers

    send(collector, ACME, business_event(unique_key("SHARED")))
    kept = transactions(collector, ACME)

    assert total(kept) == 1  # the answer of a moment ago, said to be so
    assert kept.headers["x-threadline-shared"] == "kept" and int(kept.headers["age"]) < KEPT_S

    acted = httpx.post(
        f"{collector.url}/api/transactions/{first}/resolve",
        json={"comment": "handled"},
        headers=bearer(ACME),
    )
    assert acted.status_code == 201, acted.text
    fresh = transactions(collector, ACME)
    assert total(fresh) == 2 and "x-threadline-shared" not in fresh.headers

    send(collector, ACME, business_event(unique_key("SHARED")))
    time.sleep(KEPT_S + 0.5)
    stale = transactions(collector, ACME)  # too old: served once more, a fresh one made meanwhile
    assert stale.headers["x-threadline-shared"] == "stale" and total(stale) == 2
    eventually(lambda: total(transactions(collector, ACME)) == 3, what="the refreshed answer")


def test_a_lookup_of_one_transaction_is_never_kept(collector: CollectorProcess) -> None:
    order = unique_key("ORDER")
    send(collector, ACME, business_event(order))

    def events_of_the_order() -> int:
        answer = httpx.get(f"{collector.url}/api/transactions/{order}", headers=bearer(ACME), timeout=60)
        assert answer.status_code == 200 and "x-threadline-shared" not in answer.headers
        return int(answer.json()["event_count"])

    assert events_of_the_order() == 1
    send(collector, ACME, business_event(order, step="erp.order.created", system="netsuite"))
    assert events_of_the_order() == 2  # not the answer of a moment ago


def test_one_keys_answer_is_never_served_to_another_key(collector: CollectorProcess) -> None:
    send(collector, ACME, business_event(unique_key("ACME")), business_event(unique_key("ACME")))
    send(collector, GLOBEX, business_event(unique_key("GLOBEX")))

    assert total(transactions(collector, ACME)) == 2
    globex = transactions(collector, GLOBEX)

    assert total(globex) == 1 and "x-threadline-shared" not in globex.headers
    again = transactions(collector, ACME)  # still its own answer (stale if the machine is slow)
    assert total(again) == 2 and again.headers["x-threadline-shared"] in ("kept", "stale")
    unknown = httpx.get(collector.url + "/api/overview", headers=bearer("tl_nobody"), timeout=60)
    assert unknown.status_code == 401


# --- An answer begun before an operator's write ---------------------------------------------------
# The race needs an answer still being computed when the write succeeds, which a small store never
# shows on time: the middleware is driven here through ASGI with an application that answers when
# told to (the store is not involved: the middleware decides what is kept and shared).


class _Keys:
    def authenticate(self, authorization: str | None) -> None:
        return None


class _App:
    """GET answers what the transaction's state was when the call began, once released; POST changes it."""

    def __init__(self) -> None:
        self.state = SimpleNamespace(collector=SimpleNamespace(keys=_Keys()))
        self.resolved = False
        self.release = asyncio.Event()

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["method"] == "POST":
            self.resolved = True
            body = b"{}"
        else:
            body = json.dumps({"resolved": self.resolved}).encode()
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body, "more_body": False})


async def _call(shared: SharedReads, app: _App, method: str, path: str) -> dict[str, Any]:
    scope = {"type": "http", "method": method, "path": path, "query_string": b"", "headers": [], "app": app}
    answer: dict[str, Any] = {}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["headers"] = dict(message["headers"])
        else:
            answer["body"] = json.loads(message["body"])

    await shared(scope, receive, send)
    return answer


def test_an_answer_begun_before_an_operators_action_is_neither_kept_nor_shared_after_it() -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        app = _App()
        shared = SharedReads(app, ttl_s=30, min_cost_s=0)
        begun = asyncio.create_task(_call(shared, app, "GET", "/api/overview"))
        await asyncio.sleep(0.05)  # the overview is being computed: as before the resolve
        await _call(shared, app, "POST", "/api/transactions/SO-1/resolve")
        after = asyncio.create_task(_call(shared, app, "GET", "/api/overview"))  # the operator looks
        await asyncio.sleep(0.05)
        app.release.set()
        return await begun, await after, await _call(shared, app, "GET", "/api/overview")

    begun, after, later = asyncio.run(scenario())
    assert begun["body"] == {"resolved": False}  # its own answer: as of when it was asked
    assert after["body"] == {"resolved": True}  # not the answer begun before the action
    assert later["body"] == {"resolved": True}  # nor that answer kept for the next caller
    assert b"x-threadline-shared" in later["headers"]  # what is kept now is the fresh one
