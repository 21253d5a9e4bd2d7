"""Conformance: which of a workflow's variants followed its definition, and how the others deviated.

A variant is a step sequence (``process_map.VARIANTS``: every event in event-time order, whatever its
status), so all its transactions share one verdict, decided here in Python over the few hundred
variants the map reads anyway: never from the events again. The rules, over a variant's steps:

- its *outcome* is failed when a ``fail_on`` step is in it, completed when a ``complete_on`` step is
  (and no failure step), else open;
- ``undefined_step``: a step the definition does not name (judged on nothing else);
- ``out_of_order``: a step whose first event comes before the first event of a step in its ``after``
  ("billing.subscription.activated before erp.order.created"); in an open transaction also when that
  step has not come yet: whatever comes later, it came first;
- ``missing``: in a completed or failed transaction, a step never seen (not a failure step) that must
  come, directly or not, before a step seen. Open transactions are judged on what they have done so
  far: a step still to come is not missing;
- ``repeated``: a step seen again after a step that must follow it came in between (work redone); a
  step seen again with no such step in between is a retry and conforms;
- ``after_failure``: a step (not a failure step) seen after the first failure step.

These are the transaction page's violations and missing steps (``rules.py``) read from the events'
order rather than from the first *successful* event of each step: a failed attempt at a step before
its prerequisite counts here (the map draws every attempt), not there.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..models import Conformance, Deviation, DeviationKind, Outcome, RankedDeviation
from ..workflows import WorkflowDefinition

OPEN_NOTE = (
    "Open transactions ({open:,}: neither a complete_on nor a fail_on step seen) are judged on the "
    "order of the steps done so far, not on steps still to come."
)
UNDEFINED_NOTE = "{workflow} has no definition: there is no order to judge its transactions by."

_DESCRIPTIONS: dict[DeviationKind, str] = {
    "out_of_order": "{step} before {other}",
    "missing": "{step} missing",
    "undefined_step": "{step} not in the definition",
    "repeated": "{step} again after {other}",
    "after_failure": "{step} after the failure {other}",
}


def deviation(kind: DeviationKind, step: str, other: str | None = None) -> Deviation:
    return Deviation(
        kind=kind, step=step, other=other, description=_DESCRIPTIONS[kind].format(step=step, other=other)
    )


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    deviations: tuple[Deviation, ...]

    @property
    def conforming(self) -> bool:
        return not self.deviations


def outcome(definition: WorkflowDefinition, steps: Iterable[str]) -> Outcome:
    seen = set(steps)
    if seen.intersection(definition.fail_on):
        return "failed"
    return "completed" if seen.intersection(definition.complete_on) else "open"


def judge(definition: WorkflowDefinition, steps: Sequence[str]) -> Verdict:
    """The variant ``steps`` against ``definition``: its outcome and its deviations, in step order."""
    ended = outcome(definition, steps)
    first: dict[str, int] = {}
    for index, step in enumerate(steps):
        first.setdefault(step, index)
    failing = set(definition.fail_on)
    found: dict[tuple[DeviationKind, str, str | None], None] = {}  # an ordered set

    for step in first:
        defined = definition.step(step)
        if defined is None:
            found["undefined_step", step, None] = None
            continue
        for before in defined.after:
            came_later = before in first and first[before] > first[step]
            not_yet = before not in first and (ended == "open" or before in failing)
            if came_later or not_yet:
                found["out_of_order", step, before] = None
    if ended != "open":
        for defined in definition.steps:
            unseen = defined.name not in first and defined.name not in failing
            if unseen and definition.successors(defined.name).intersection(first):
                found["missing", defined.name, None] = None

    previous: dict[str, int] = {}
    for index, step in enumerate(steps):
        if definition.step(step) is not None and step in previous:
            later = definition.successors(step)
            came_back_after = next((s for s in steps[previous[step] + 1 : index] if s in later), None)
            if came_back_after is not None:
                found["repeated", step, came_back_after] = None
        previous[step] = index

    failed_at = min((first[step] for step in failing if step in first), default=None)
    if failed_at is not None:
        failure = steps[failed_at]
        for step in steps[failed_at + 1 :]:
            if step not in failing and definition.step(step) is not None:
                found["after_failure", step, failure] = None
    return Verdict(ended, tuple(deviation(*key) for key in found))


@dataclass(frozen=True)
class Judged:
    """One variant's transactions with its verdict."""

    transactions: int
    verdict: Verdict


def summary(workflow: str, definition: WorkflowDefinition | None, judged: Sequence[Judged]) -> Conformance:
    """The share of transactions that conformed, and every deviation ranked by its transactions."""
    total = sum(variant.transactions for variant in judged)
    if definition is None:
        return Conformance(
            judged=False,
            note=UNDEFINED_NOTE.format(workflow=workflow),
            transactions=total,
            conforming=0,
            deviating=0,
            open=0,
            conforming_share=None,
            deviations=[],
        )
    conforming = sum(variant.transactions for variant in judged if variant.verdict.conforming)
    still_open = sum(variant.transactions for variant in judged if variant.verdict.outcome == "open")
    named: dict[str, Deviation] = {}  # by description: each names one (kind, step, other)
    transactions: Counter[str] = Counter()
    variants: Counter[str] = Counter()
    for variant in judged:
        for found in variant.verdict.deviations:
            named[found.description] = found
            transactions[found.description] += variant.transactions
            variants[found.description] += 1
    ranked = sorted(transactions, key=lambda description: (-transactions[description], description))
    return Conformance(
        judged=True,
        note=OPEN_NOTE.format(open=still_open),
        transactions=total,
        conforming=conforming,
        deviating=total - conforming,
        open=still_open,
        conforming_share=conforming / total if total else None,
        deviations=[
            RankedDeviation(
                **named[description].model_dump(),
                transactions=transactions[description],
                variants=variants[description],
            )
            for description in ranked
        ],
    )
