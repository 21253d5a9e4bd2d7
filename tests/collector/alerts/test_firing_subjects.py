"""Which firing alerts an evaluation measures again, on the real embedded engine.

While few per-transaction alerts fire, every evaluation measures each one's transaction. When many
do (every live transaction's mismatch, at 10 M events), an evaluation measures only what may have
changed (an event, an operator's action, the keeper's reconciliation, time for a forecast) and
every one of them again every few minutes: an alert whose transaction did not change keeps firing
without being read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from threadline.collector.alerts import evaluate, records, service
from threadline.collector.alerts.service import Alerting
from threadline.collector.alerts.settings import AlertSettings
from threadline.collector.models import CommentRequest
from threadline.collector.schema import parse_batch
from threadline.collector.state.exception_groups import change_resolution, transaction_of
from threadline.collector.storage import Store
from threadline.collector.storage.writes import store_events
from threadline.collector.workflows import Workflows, parse

TENANT = "acme"
WORKFLOWS = parse(
    """
alerts:
  receivers: {hook: {type: webhook, url_env: THREADLINE_TEST_UNSET_HOOK}}
  rules:
    - {name: order-failed, when: failed, severity: warning, receivers: [hook]}
workflows:
  order:
    fail_on: [order.rejected]
    steps:
      - {name: order.received, system: crm}
      - {name: order.booked, system: erp}
      - {name: order.rejected, system: erp, after: [order.received]}
"""
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"chdb://{tmp_path / 'store'}").open()
    yield opened
    opened.close()


def rejected(key: str) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC)
    return [
        {
            "correlation_id": key,
            "workflow": "order",
            "step": step,
            "system": system,
            "timestamp": at.isoformat(),
        }
        for step, system, at in (
            ("order.received", "crm", now - dt.timedelta(minutes=5)),
            ("order.rejected", "erp", now - dt.timedelta(minutes=1)),
        )
    ]


def send(store: Store, workflows: Workflows, events: list[dict[str, Any]]) -> None:
    with store.writing():  # as ingest's writer does
        store_events(
            store, TENANT, parse_batch(orjson.dumps({"events": events})), "json", workflows.key_rules
        )


def firing(store: Store) -> list[str]:
    return sorted(record.subject for record in records.firing(store, TENANT).values())


def test_many_firing_alerts_are_measured_when_their_transaction_changes_and_all_every_few_minutes(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "FIRING_MEASURED_ALWAYS", 0)  # as if they were many
    monkeypatch.setattr(service, "CHANGED_MARGIN", dt.timedelta(0))  # no second look at what changed
    measured: list[set[str]] = []
    attention = evaluate.attention

    def spied(*args: Any, **kwargs: Any) -> list[evaluate.Candidate]:
        found = attention(*args, **kwargs)
        measured.append({candidate.summary.correlation_id for candidate in found})
        return found

    monkeypatch.setattr(evaluate, "attention", spied)
    alerting = Alerting(store, lambda: WORKFLOWS, CollectorRegistry(), AlertSettings(interval=30))
    alerting.evaluate()  # the rule watches from now: nothing yet
    send(store, WORKFLOWS, rejected("ORD-A") + rejected("ORD-B") + rejected("ORD-C"))
    alerting.evaluate()
    assert firing(store) == ["ORD-A", "ORD-B", "ORD-C"]

    alerting.evaluate()  # nothing changed: none of them is read, all keep firing
    assert measured[-1] == set() and firing(store) == ["ORD-A", "ORD-B", "ORD-C"]

    transaction = transaction_of(store, TENANT, "ORD-B")
    assert transaction is not None
    change_resolution(store, TENANT, "dana", transaction, "ORD-B", "resolve", CommentRequest(comment="done"))
    alerting.evaluate()  # an operator resolved B: B is read, its alert resolves
    assert measured[-1] == {"ORD-B"} and firing(store) == ["ORD-A", "ORD-C"]

    monkeypatch.setattr(service, "FIRING_RECHECK", dt.timedelta(0))
    alerting.evaluate()  # every few minutes, each one firing is read again
    assert measured[-1] == {"ORD-A", "ORD-C"} and firing(store) == ["ORD-A", "ORD-C"]
