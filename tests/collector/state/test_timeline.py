"""The step table of a transaction: expected steps in order, retries folded, unexpected steps last."""

from __future__ import annotations

import datetime as dt
from typing import Any

from threadline.collector.models import EventErrorView, EventView, Sla, TransactionSummary, WaitingStep
from threadline.collector.state.timeline import step_views
from threadline.collector.workflows import parse

WORKFLOW = parse("""
workflows:
  onboarding:
    steps:
      - {name: a.created, system: crm}
      - {name: b.synced, system: middleware}
      - {name: c.created, system: erp}
      - {name: d.done, system: support}
""").get("onboarding")
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def event(step: str, minute: int, status: str = "ok", **fields: Any) -> EventView:
    defaults: dict[str, Any] = {
        "event_id": f"{step}-{minute}",
        "correlation_id": "K",
        "workflow": "onboarding",
        "system": "x",
        "received_at": T0,
        "duration_ms": None,
        "attempt": None,
        "error": None,
        "amount": None,
        "currency": None,
        "aliases": {},
        "attributes": {},
        "trace_id": None,
        "span_id": None,
        "source": "json",
    }
    return EventView(
        **{
            **defaults,
            **fields,
            "step": step,
            "status": status,
            "timestamp": T0 + dt.timedelta(minutes=minute),
        }
    )


def summary(waiting: list[str] = (), missing: list[str] = ()) -> TransactionSummary:  # type: ignore[assignment]
    return TransactionSummary(
        correlation_id="K",
        workflow="onboarding",
        state="in_progress",
        started_at=T0,
        last_activity=T0,
        completed_at=None,
        failed_at=None,
        missing_steps=list(missing),
        violations=[],
        systems=[],
        amount=None,
        currency=None,
        event_count=0,
        error_count=0,
        retry_count=0,
        sla=Sla(limit_seconds=None, elapsed_seconds=0, breached=False, breached_by_seconds=0),
        waiting_on=[
            WaitingStep(step=s, system=None, due_since=T0, within_seconds=None, overdue=False)
            for s in waiting
        ],
    )


def test_expected_steps_come_in_definition_order_with_their_state() -> None:
    events = [event("a.created", 0), event("c.created", 5)]
    views = step_views(WORKFLOW, events, summary(waiting=["d.done"], missing=["b.synced"]))
    assert [(view.name, view.state) for view in views] == [
        ("a.created", "done"),
        ("b.synced", "missing"),
        ("c.created", "done"),
        ("d.done", "waiting"),
    ]
    assert views[1].attempts == 0 and views[1].system == "middleware"


def test_a_retried_step_is_one_step_and_a_success_clears_the_error() -> None:
    boom = EventErrorView(kind="transient", message="503")
    events = [
        event("a.created", 0, "error", error=boom),
        event("a.created", 2, "retrying", attempt=2, error=boom),
        event("a.created", 4, "ok", attempt=3, duration_ms=80.0),
    ]
    [first, *_] = step_views(WORKFLOW, events, summary())
    assert (first.state, first.status, first.attempts, first.error, first.duration_ms) == (
        "done",
        "ok",
        3,
        None,
        80.0,
    )
    assert first.first_at == T0 and first.last_at == T0 + dt.timedelta(minutes=4)


def test_a_step_still_failing_shows_its_last_error() -> None:
    boom = EventErrorView(kind="auth", message="token expired")
    [first, *_] = step_views(WORKFLOW, [event("a.created", 0, "error", error=boom)], summary())
    assert (first.state, first.error) == ("failed", boom)


def test_steps_the_workflow_does_not_define_are_listed_after_the_expected_ones() -> None:
    views = step_views(WORKFLOW, [event("z.audit", 1), event("a.created", 0)], summary())
    assert [(view.name, view.expected) for view in views][-1] == ("z.audit", False)


def test_without_a_definition_every_seen_step_is_listed_in_time_order() -> None:
    views = step_views(None, [event("first", 0), event("second", 1, "pending")], summary())
    assert [(view.name, view.state) for view in views] == [("first", "done"), ("second", "in_progress")]
