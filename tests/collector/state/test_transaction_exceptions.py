"""Open exceptions read from the rows the state keeper keeps are the ones the events give, whatever
arrived since the keeper's last pass: new errors, recoveries, transactions linked into others.

Each check asks the real embedded engine the same question twice, once through the kept rows and once
deriving every erring transaction from its events, and compares every row.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.collector.state.test_snapshot import TENANT, send
from tests.support.traffic import NOW, Traffic
from threadline.collector.config import EXAMPLE_WORKFLOWS
from threadline.collector.state import snapshot, transaction_exceptions
from threadline.collector.state.exception_groups import OPEN_EXCEPTIONS
from threadline.collector.state.rules import RESOLVED_TRANSACTIONS
from threadline.collector.storage import Store
from threadline.collector.workflows import Workflows, load

LATER = NOW + dt.timedelta(days=30)  # after every event: the kept rows may answer


def open_exceptions(store: Store, workflows: Workflows, kept: bool) -> list[dict[str, Any]]:
    state = snapshot.read(store, workflows, TENANT, LATER, kind="", system="", workflow="")
    assert state.kept and not state.late  # the snapshot is kept with these definitions
    sql = OPEN_EXCEPTIONS.format(
        summary=state.sql,
        exceptions=transaction_exceptions.read(kept=kept, changed=state.changed),
        resolved=RESOLVED_TRANSACTIONS,
    )
    return sorted(store.rows(sql, state.parameters), key=repr)


def assert_same(store: Store, workflows: Workflows) -> list[dict[str, Any]]:
    derived = open_exceptions(store, workflows, kept=False)
    assert open_exceptions(store, workflows, kept=True) == derived
    return derived


def test_the_kept_exceptions_answer_as_the_events_do(store: Store) -> None:
    workflows = load(EXAMPLE_WORKFLOWS)
    traffic = Traffic(workflows, seed=20261129)
    batches = [
        [e for n in range(start, start + 80) for e in traffic.transaction(n)] for start in (0, 80, 160)
    ]

    send(store, workflows, batches[0])
    snapshot.keep(store, workflows, TENANT)  # the first pass: every transaction
    assert assert_same(store, workflows), "the traffic made open exceptions"

    send(store, workflows, batches[1])  # new errors, recoveries and links since the pass
    assert_same(store, workflows)  # the changed transactions derived again at read time

    snapshot.keep(store, workflows, TENANT)  # what changed
    assert_same(store, workflows)
    send(store, workflows, batches[2])
    assert_same(store, workflows)


def test_a_recovered_step_leaves_the_kept_exceptions(store: Store) -> None:
    workflows = load(EXAMPLE_WORKFLOWS)
    definition = next(iter(workflows))
    step = definition.steps[0]

    def event(status: str, minutes: int) -> dict[str, Any]:
        return {
            "event_id": f"e-{status}-{minutes}",
            "correlation_id": "ORDER-1",
            "workflow": definition.name,
            "step": step.name,
            "system": step.system or "crm",
            "timestamp": (NOW + dt.timedelta(minutes=minutes)).isoformat(),
            "status": status,
            **({"error": {"kind": "timeout", "message": "gateway timed out"}} if status == "error" else {}),
        }

    send(store, workflows, [event("error", 0)])
    snapshot.keep(store, workflows, TENANT)
    (kept,) = store.rows("SELECT exceptions FROM transaction_exceptions FINAL")
    assert [(e["step"], e["kind"], e["message"], e["errors"]) for e in kept["exceptions"]] == [
        (step.name, "timeout", "gateway timed out", 1)
    ]
    assert [row["step"] for row in assert_same(store, workflows)] == [step.name]

    send(store, workflows, [event("ok", 5)])  # the retry succeeded
    assert assert_same(store, workflows) == []  # before the keeper's next pass
    snapshot.keep(store, workflows, TENANT)
    assert store.rows("SELECT exceptions FROM transaction_exceptions FINAL") == [{"exceptions": []}]
    assert assert_same(store, workflows) == []
