"""A transaction's steps: every step seen, against every step its workflow expects (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence

from ..models import EventView, StepState, StepView, TransactionSummary, WaitingStep
from ..workflows import WorkflowDefinition

_TRYING = ("error", "retrying", "ok")


def _attempts(events: Sequence[EventView]) -> int:
    declared = max((event.attempt or 0 for event in events), default=0)
    tries = sum(1 for event in events if event.status in _TRYING)
    return max(declared, tries, 1)


def _seen_step(
    name: str, expected_system: str | None, expected: bool, events: Sequence[EventView]
) -> StepView:
    latest = events[-1]
    done = next((event for event in events if event.status == "ok"), None)
    last_error = next((event.error for event in reversed(events) if event.error is not None), None)
    state: StepState
    if done is not None:
        state, error = "done", None
    elif latest.status == "error":
        state, error = "failed", last_error
    else:
        state, error = "in_progress", last_error
    return StepView(
        name=name,
        system=(done or latest).system,  # what did it (or tried last), whatever the definition expects
        expected_system=expected_system,
        expected=expected,
        state=state,
        status=(done or latest).status,
        attempts=_attempts(events),
        first_at=events[0].timestamp,
        last_at=latest.timestamp,
        duration_ms=(done or latest).duration_ms,
        error=error,
    )


def step_views(
    definition: WorkflowDefinition | None, events: Sequence[EventView], summary: TransactionSummary
) -> list[StepView]:
    """Expected steps in definition order, then steps seen that the workflow does not define.

    ``events`` are in event-time order. Retries of a step are one step with ``attempts`` > 1; a
    later success recovers it (state ``done``, no error). A failure step (``fail_on``) is an outcome,
    not a step to expect: it is listed only once seen.
    """
    by_step: dict[str, list[EventView]] = {}
    for event in events:
        by_step.setdefault(event.step, []).append(event)
    waiting = {item.step for item in summary.waiting_on}
    missing = set(summary.missing_steps)
    views: list[StepView] = []
    expected_names: set[str] = set()
    fail_on = definition.fail_on if definition else ()
    for step in definition.steps if definition else ():
        expected_names.add(step.name)
        seen = by_step.get(step.name)
        if seen:
            views.append(_seen_step(step.name, step.system, True, seen))
            continue
        if step.name in fail_on:
            continue
        state: StepState = (
            "waiting" if step.name in waiting else "missing" if step.name in missing else "not_started"
        )
        views.append(
            StepView(
                name=step.name,
                system=step.system,
                expected_system=step.system,
                expected=True,
                state=state,
                status=None,
                attempts=0,
                first_at=None,
                last_at=None,
                duration_ms=None,
                error=None,
            )
        )
    for name, seen in by_step.items():
        if name not in expected_names:
            views.append(_seen_step(name, None, False, seen))
    return views


def waiting_on_systems(waiting_on: Sequence[WaitingStep], events: Sequence[EventView]) -> list[WaitingStep]:
    """The steps waited on, each with the system that has been trying it (if any) as its ``system``,
    and the one the definition expects beside it."""
    trying = {event.step: event.system for event in events}  # the latest attempt's, in event-time order
    return [
        waiting.model_copy(
            update={"system": trying.get(waiting.step, waiting.system), "expected_system": waiting.system}
        )
        for waiting in waiting_on
    ]
