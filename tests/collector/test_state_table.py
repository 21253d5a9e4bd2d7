"""The stored transaction state answers exactly what deriving it from the events answers.

Two real collectors receive the same events in the same batches: one keeps ``transaction_state``
(the default), the other derives every state from the events (``THREADLINE_STORED_STATE=off``).
The events are random but seeded: the four example workflows, steps skipped, repeated, failed and
retried, out of order, duplicated, keyed by an alias before or after the alias is announced (so
events move between transactions), some stamped in the future. Every query the product makes
must then give the same JSON from both, now and as of a moment in the past, right after each
batch (nothing acknowledged may be missing) and after the definitions are reloaded.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.collector_process import ROOT, CollectorProcess
from threadline.collector.workflows import Workflows, load

pytestmark = pytest.mark.slow

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
SYSTEMS = ("salesforce", "cpq", "netsuite", "stripe", "zendesk", "mulesoft")


class Generator:
    """Seeded business events over the example workflows, with the faults integrations have."""

    def __init__(self, workflows: Workflows, seed: int) -> None:
        self.rng = random.Random(seed)
        self.workflows = list(workflows)
        self.sent: list[dict[str, Any]] = []
        self.keys: list[str] = []
        self.aliases: dict[str, str] = {}  # alias → the key that announces it

    def transaction(self, number: int) -> list[dict[str, Any]]:
        rng = self.rng
        definition = rng.choice(self.workflows)
        key = f"T{number:05d}"
        self.keys.append(key)
        start = NOW - dt.timedelta(hours=rng.uniform(0, 72))
        steps = [s for s in definition.steps if rng.random() < 0.85]
        alias = f"SO-{number:05d}" if rng.random() < 0.3 else None
        events = []
        moment = start
        for index, step in enumerate(steps):
            moment += dt.timedelta(minutes=rng.expovariate(1 / 40))
            if rng.random() < 0.02:
                moment = NOW + dt.timedelta(minutes=rng.uniform(1, 90))  # a sender's clock runs ahead
            for attempt in range(1, (3 if rng.random() < 0.15 else 1) + 1):
                status = rng.choice(["error", "retrying"]) if rng.random() < 0.15 else "ok"
                event: dict[str, Any] = {
                    "event_id": uuid.UUID(int=rng.getrandbits(128)).hex,
                    "correlation_id": key,
                    "workflow": definition.name,
                    "step": step.name,
                    "system": step.system or rng.choice(SYSTEMS),
                    "timestamp": (moment + dt.timedelta(seconds=attempt)).isoformat(),
                    "status": status,
                    "attempt": attempt,
                }
                if status == "error":
                    event["error"] = {"kind": rng.choice(["timeout", "business"]), "message": "refused"}
                if rng.random() < 0.3:
                    event["amount"] = round(rng.uniform(100, 90_000), 2)
                    event["currency"] = rng.choice(["USD", "EUR"])
                if alias is not None:
                    if index == 1 and attempt == 1:
                        event["aliases"] = {"erp.sales_order": alias}
                        self.aliases[alias] = key
                    elif index >= 2 and rng.random() < 0.5:
                        event["correlation_id"] = alias  # the ERP only knows its own number
                events.append(event)
        if rng.random() < 0.1 and events:
            events.append(dict(rng.choice(events)))  # redelivered
        return events

    def batches(self, transactions: int, size: int) -> Iterator[list[dict[str, Any]]]:
        """Events of all transactions, shuffled (arrival order is not event order), in batches."""
        events = [e for n in range(transactions) for e in self.transaction(n)]
        self.rng.shuffle(events)
        for start in range(0, len(events), size):
            batch = events[start : start + size]
            self.sent.extend(batch)
            yield batch


@pytest.fixture(scope="module")
def workflows_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("definitions") / "workflows.yaml"
    shutil.copy(ROOT / "workflows.example.yaml", copy)
    return copy


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, workflows_file: Path) -> Iterator[list[httpx.Client]]:
    """The collector that stores state, and the one that derives it; the same definitions."""
    collectors = [
        CollectorProcess(
            store_dir=tmp_path_factory.mktemp(name) / "store",
            workflows=workflows_file,
            env={"THREADLINE_STORED_STATE": setting, "THREADLINE_ALERT_INTERVAL": "0"},
            isolated=True,
        ).start()
        for name, setting in (("stored", "on"), ("derived", "off"))
    ]
    clients = [httpx.Client(base_url=c.url, timeout=60) for c in collectors]
    yield clients
    for client in clients:
        client.close()
    for collector in collectors:
        collector.stop()


def both(pair: list[httpx.Client], path: str, **params: Any) -> tuple[Any, Any]:
    answers = []
    for client in pair:
        response = client.get(path, params=params)
        assert response.status_code == 200, response.text
        answers.append(response.json())
    return answers[0], answers[1]


def send(pair: list[httpx.Client], batch: list[dict[str, Any]]) -> None:
    for client in pair:
        response = client.post("/v1/events", json={"events": batch})
        assert response.status_code == 200, response.text


def wait_current(client: httpx.Client) -> None:
    deadline = time.monotonic() + 60
    while client.get("/readyz").json().get("transaction_state") != "current":
        assert time.monotonic() < deadline, "the stored state was not rebuilt within 60 s"
        time.sleep(0.1)


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = (a.keys() | b.keys()) - {"received_at"}  # each collector's own clock
        return [d for k in keys for d in differences(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{path}[{i}]")
        ]
    if isinstance(a, float) and isinstance(b, float):  # sums of amounts: the order of addition differs
        return [] if math.isclose(a, b, rel_tol=1e-12) else [f"{path}: {a!r} != {b!r}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def same(a: Any, b: Any) -> bool:
    return not differences(a, b)


def assert_same_answers(pair: list[httpx.Client], keys: list[str], as_of: dt.datetime) -> None:
    moment = as_of.isoformat()
    stored, derived = both(pair, "/api/transactions", limit=1000, as_of=moment)
    assert stored["total"] == derived["total"] > 0
    assert stored == derived
    for state in ("stuck", "failed", "completed", "in_progress"):
        assert both(pair, "/api/transactions", state=state, limit=1000, as_of=moment)[0]["total"] == (
            sum(1 for item in derived["items"] if item["state"] == state)
        )
    stored, derived = both(pair, "/api/transactions", attention="true", limit=1000, as_of=moment)
    assert stored == derived
    stored, derived = both(pair, "/api/overview", as_of=moment)
    assert same(stored, derived), differences(stored, derived)
    stored, derived = both(pair, "/api/exceptions", as_of=moment)
    assert same(stored, derived), differences(stored, derived)
    for key in keys:
        stored_one, derived_one = (c.get(f"/api/transactions/{key}", params={"as_of": moment}) for c in pair)
        assert stored_one.status_code == derived_one.status_code
        assert same(stored_one.json(), derived_one.json()), (
            key,
            differences(stored_one.json(), derived_one.json()),
        )


def test_every_answer_is_the_same_after_each_batch(pair: list[httpx.Client], workflows_file: Path) -> None:
    generator = Generator(load(workflows_file), seed=20261125)
    wait_current(pair[0])
    for number, batch in enumerate(generator.batches(transactions=400, size=250)):
        send(pair, batch)
        if number % 3 == 0:  # right after the acknowledgement: nothing acknowledged is missing
            keys = generator.rng.sample(generator.keys, 5) + generator.rng.sample(
                sorted(generator.aliases), 3
            )
            assert_same_answers(pair, keys, NOW)
    sample = generator.rng.sample(generator.keys, 20) + sorted(generator.aliases)[:10]
    assert_same_answers(pair, sample, NOW)
    assert_same_answers(pair, sample, NOW + dt.timedelta(hours=2))  # after the events from the future
    assert_same_answers(pair, sample, NOW - dt.timedelta(hours=30))  # many transactions not over yet


def test_a_reload_rebuilds_the_stored_state_for_the_new_definitions(
    pair: list[httpx.Client], workflows_file: Path
) -> None:
    before = both(pair, "/api/transactions", state="stuck", limit=1, as_of=NOW.isoformat())[1]["total"]
    text = workflows_file.read_text()
    workflows_file.write_text(text.replace("stuck_after: 1h ", "stuck_after: 10h "))
    try:
        for client in pair:
            assert client.post("/api/workflows/reload").status_code == 200
        # Right away (the rebuild may still run) and once it is done, the answers agree.
        assert_same_answers(pair, [], NOW)
        wait_current(pair[0])
        assert_same_answers(pair, [], NOW)
        after = both(pair, "/api/transactions", state="stuck", limit=1, as_of=NOW.isoformat())[0]["total"]
        assert after < before  # quote-to-cash now waits ten hours before it counts as stuck
    finally:
        workflows_file.write_text(text)
