"""From "a quote-to-cash that starts at 09:12 and gets stuck" to the exact events that tell it.

Planning is two passes, so the time a transaction needs is known before its keys are handed out:

1. ``Planner.timeline`` decides *when*: each step happens once the steps in its ``after`` are done,
   after a delay drawn from the scenario's timing; faults change the plan (a step never happens, a
   rejection replaces a step, a retry adds a backoff, an event is delivered late or twice) and a
   slow-system incident stretches the steps it covers.
2. ``Planner.materialize`` decides *what*: record numbers from the run's key factory (so numbers
   grow with time, as in real systems), event ids, amounts and attributes.

Each transaction draws from its own generator, seeded from the run's seed and the transaction's
place in the run, so the same seed plans the same transactions whatever else the run does.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import ids
from .faults import Fault, SchemaChange, SlowSchedule
from .scenarios import PRIMARY, Deal, Scenario
from .systems import system_class

RETRY_BACKOFF_S = (20.0, 300.0)  # a failed call is retried after this long (uniform)
SLOW_CALL_FACTOR = 6.0  # during an incident, API calls of the slow system take this much longer


@dataclass(frozen=True)
class TransactionSpec:
    """What to plan: a workflow, when it starts (plan time, Unix seconds) and its fault."""

    workflow: str
    start: float
    fault: Fault
    seed: str  # seeds the transaction's own generator
    slow: bool = True  # whether slow-system incidents affect it (not for the guaranteed showcases)
    label: str = ""  # a showcase transaction's name in the run's statistics


@dataclass(frozen=True)
class Occurrence:
    """One event of the timeline: a step (or one attempt of it) at a time, delivered at a time."""

    step: str
    system: str
    at: float  # event time (plan time)
    deliver_at: float  # when the integration hands it to the SDK (plan time)
    duration_ms: float
    status: str = "ok"
    attempt: int | None = None
    error: Mapping[str, str] | None = None
    extra: Mapping[str, str] = field(default_factory=dict)  # attributes of a rejection
    redeliver_at: float | None = None  # delivered a second time, same event_id (duplicate)


@dataclass(frozen=True)
class Timeline:
    spec: TransactionSpec
    deal: Deal
    occurrences: tuple[Occurrence, ...]  # in event-time order
    due: Mapping[str, float]  # when each step became due (plan time)
    fault: Fault  # the fault as applied (NONE when the workflow cannot have it)
    slowed: tuple[str, ...]  # the steps a slow-system incident stretched
    outcome: str  # "completed", "failed" or "open" (stops early: will be stuck)

    def progress(self) -> list[float]:
        """The times at which a step was done (an ``ok`` event), in order."""
        return sorted({o.at for o in self.occurrences if o.status == "ok" and o.error is None})

    def last_delivery(self) -> float:
        return max(max(o.deliver_at, o.redeliver_at or 0.0) for o in self.occurrences)

    def shifted(self, delta: float) -> Timeline:
        """The same timeline, ``delta`` seconds later (exact when no incident affects it)."""

        def move(o: Occurrence) -> Occurrence:
            redeliver = None if o.redeliver_at is None else o.redeliver_at + delta
            return dataclasses.replace(
                o, at=o.at + delta, deliver_at=o.deliver_at + delta, redeliver_at=redeliver
            )

        return dataclasses.replace(
            self,
            spec=dataclasses.replace(self.spec, start=self.spec.start + delta),
            occurrences=tuple(move(o) for o in self.occurrences),
            due={step: moment + delta for step, moment in self.due.items()},
        )


@dataclass(frozen=True)
class PlannedEvent:
    """One business event, ready for the SDK: every field of ``sdk.event`` plus its times."""

    transaction: str  # the transaction's primary key
    workflow: str
    step: str
    system: str
    correlation_id: str
    aliases: Mapping[str, str]
    status: str
    attempt: int | None
    error: Mapping[str, str] | None
    amount: float | None
    currency: str | None
    attributes: Mapping[str, str]
    event_id: str
    at: float  # event time (plan time)
    deliver_at: float  # when it is sent (plan time)
    duration_ms: float
    redelivery: bool = False  # the second delivery of a duplicated event


@dataclass(frozen=True)
class Transaction:
    timeline: Timeline
    keys: Mapping[str, str]  # primary key, aliases and references
    aliases: Mapping[str, str]  # alias kind -> key
    events: tuple[PlannedEvent, ...]  # in delivery order

    @property
    def correlation_id(self) -> str:
        return self.keys[PRIMARY]


def _order(steps: Sequence[str], after: Mapping[str, Sequence[str]]) -> list[str]:
    """``steps`` so that every step comes after its ``after`` steps, else in definition order."""
    placed: list[str] = []
    remaining = list(steps)
    while remaining:
        ready = next((s for s in remaining if all(a in placed for a in after[s] if a in steps)), remaining[0])
        placed.append(ready)
        remaining.remove(ready)
    return placed


class Planner:
    """Plans transactions of the scenarios' workflows, under one run's slow-system incidents."""

    def __init__(
        self, scenarios: Mapping[str, Scenario], slow: SlowSchedule, changes: Sequence[SchemaChange] = ()
    ) -> None:
        self.scenarios = scenarios
        self.slow = slow
        self.changes = tuple(changes)

    def timeline(self, spec: TransactionSpec) -> Timeline:
        """When each step of ``spec`` happens and is delivered, with its fault applied.

        A fault the workflow cannot have (a violation outside support-credit) is planned as none.
        """
        scenario = self.scenarios[spec.workflow]
        definition = scenario.definition
        rng = random.Random(spec.seed)
        deal = scenario.deal(rng)
        happy = scenario.happy_steps
        steps = {s.name: s for s in definition.steps}
        after = {s: tuple(a for a in steps[s].after if a in happy) for s in happy}
        system = {name: step.system or "generic" for name, step in steps.items()}
        base = {s: 0.0 if i == 0 and not after[s] else scenario.delay(s, rng) for i, s in enumerate(happy)}

        fault = spec.fault if spec.fault in scenario.supported_faults() else Fault.NONE
        dropped: set[str] = set()
        retried: str | None = None
        backoffs: list[float] = []
        failure: tuple[str, str] | None = None  # (fail step, the step it stands in for)
        if fault is Fault.STUCK:
            complete = set(definition.complete_on)
            candidates = [s for s in happy[1:] if s in complete or complete & definition.successors(s)]
            victim = rng.choice(candidates or list(happy[1:]))
            dropped = {victim, *definition.successors(victim)}
        elif fault is Fault.REJECTION:
            choices = scenario.rejection_choices()
            fail_step = rng.choice(sorted(choices))
            replaced = rng.choice(choices[fail_step])
            dropped = {replaced, *definition.successors(replaced)}
            failure = (fail_step, replaced)
        elif fault is Fault.VIOLATION:
            assert scenario.violation is not None
            early, skipped = scenario.violation
            # The early step waits only for what the skipped step waited for.
            after[early] = tuple(dict.fromkeys([*(a for a in after[early] if a != skipped), *after[skipped]]))
            if rng.random() < 0.6:
                after[skipped] = (*after[skipped], early)  # approved after the fact
            else:
                dropped = {skipped}  # never approved
        elif fault is Fault.TRANSIENT:
            retried = rng.choice(happy)
            attempts = 2 if rng.random() < 0.8 else 3  # the last attempt succeeds
            backoffs = [rng.uniform(*RETRY_BACKOFF_S) for _ in range(attempts - 1)]

        done: dict[str, float] = {}
        due: dict[str, float] = {}
        factor: dict[str, float] = {}
        for step in _order(happy, after):
            due[step] = max((done[a] for a in after[step]), default=spec.start)
            factor[step] = self.slow.factor(system[step], due[step]) if spec.slow and base[step] else 1.0
            done[step] = due[step] + base[step] * factor[step] + (sum(backoffs) if step == retried else 0.0)

        occurrences: list[Occurrence] = []

        def occur(step: str, at: float, slow_factor: float, status: str = "ok", **fields: Any) -> None:
            occurrences.append(self._occurrence(rng, step, system[step], at, slow_factor, status, **fields))

        fail_at = math.inf
        if failure is not None:
            fail_step, replaced = failure
            fail_at = done[replaced]
            outcome = scenario.rejection(fail_step, deal, rng)
            occur(
                fail_step,
                fail_at,
                factor[replaced],
                outcome.status,
                error=outcome.error,
                extra=outcome.attributes,
            )
        for step in happy:
            if step in dropped or done[step] > fail_at:
                continue
            if step == retried:
                moment = done[step] - sum(backoffs)
                for attempt, backoff in enumerate(backoffs, start=1):
                    error = {"kind": "transient", "message": system_class(system[step]).transient_error(rng)}
                    occur(step, moment, factor[step], "error", attempt=attempt, error=error)
                    moment += backoff
                occur(step, done[step], factor[step], attempt=len(backoffs) + 1)
            else:
                occur(step, done[step], factor[step])
        occurrences.sort(key=lambda o: (o.at, o.step))

        if fault is Fault.DUPLICATE:
            index = rng.randrange(len(occurrences))
            # The sender's own retry after a lost acknowledgement, or a webhook redelivered later.
            late = rng.uniform(1, 10) if rng.random() < 0.5 else rng.uniform(60, 900)
            chosen = occurrences[index]
            occurrences[index] = dataclasses.replace(chosen, redeliver_at=chosen.deliver_at + late)
        elif fault is Fault.OUT_OF_ORDER:
            pairs = [
                (i, j)
                for i, first in enumerate(occurrences)
                for j, then in enumerate(occurrences)
                if first.step in after.get(then.step, ()) and then.at > first.at and then.status == "ok"
            ]
            if pairs:
                i, j = rng.choice(pairs)
                occurrences[i] = dataclasses.replace(
                    occurrences[i], deliver_at=occurrences[j].deliver_at + rng.uniform(5, 180)
                )
            else:
                fault = Fault.NONE

        steps_done = {o.step for o in occurrences if o.status == "ok" and o.error is None}
        if failure is not None:
            result = "failed"
        elif steps_done & set(definition.complete_on):
            result = "completed"
        else:
            result = "open"
        slowed = tuple(dict.fromkeys(o.step for o in occurrences if factor.get(o.step, 1.0) > 1))
        return Timeline(spec, deal, tuple(occurrences), due, fault, slowed, result)

    @staticmethod
    def _occurrence(
        rng: random.Random,
        step: str,
        system: str,
        at: float,
        slow_factor: float,
        status: str = "ok",
        *,
        attempt: int | None = None,
        error: Mapping[str, str] | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> Occurrence:
        duration = system_class(system).call_ms(rng, SLOW_CALL_FACTOR if slow_factor > 1 else 1.0)
        lag = min(0.4 * math.exp(rng.gauss(0, 0.8)), 20.0)  # webhook or queue hop to the integration
        return Occurrence(
            step=step,
            system=system,
            at=at,
            deliver_at=at + duration / 1000 + lag,
            duration_ms=duration,
            status=status,
            attempt=attempt,
            error=error,
            extra=extra or {},
        )

    def materialize(self, timeline: Timeline, keys: ids.KeyFactory) -> Transaction:
        """The events of ``timeline``, with record numbers from ``keys`` and seeded event ids."""
        spec = timeline.spec
        scenario = self.scenarios[spec.workflow]
        rng = random.Random(f"{spec.seed}/content")
        numbers = scenario.keys(keys)
        deal = timeline.deal
        disagreeing: dict[str, tuple[float | None, str | None]] = {}
        if timeline.fault is Fault.MISMATCH:
            step = rng.choice(scenario.mismatch_steps)
            disagreeing[step] = scenario.mismatched(step, deal, rng)
        events = self._events(timeline, timeline.occurrences, numbers, rng, disagreeing)
        if timeline.fault is Fault.DUPLICATE_ENTITY:
            # The same customer entered again a while later, under record numbers of its own.
            later = rng.uniform(10, 60) * 60
            again = [
                dataclasses.replace(o, at=o.at + later, deliver_at=o.deliver_at + later, redeliver_at=None)
                for o in timeline.occurrences
                if o.step in scenario.twin_steps and o.status == "ok"
            ]
            events += self._events(timeline, again, scenario.keys(keys), rng, {})
        events.sort(key=lambda e: e.deliver_at)
        aliases = {kind: numbers[kind] for kind in scenario.aliases}
        return Transaction(timeline, numbers, aliases, tuple(events))

    def _events(
        self,
        timeline: Timeline,
        occurrences: Sequence[Occurrence],
        numbers: Mapping[str, str],
        rng: random.Random,
        disagreeing: Mapping[str, tuple[float | None, str | None]],
    ) -> list[PlannedEvent]:
        """The events of ``occurrences`` under ``numbers``: a step in ``disagreeing`` records that
        amount and currency instead of the deal's; the run's schema changes apply."""
        scenario = self.scenarios[timeline.spec.workflow]
        deal = timeline.deal
        events: list[PlannedEvent] = []
        for o in occurrences:
            route = scenario.route(o.step, timeline.fault)
            carries_amount = o.step in scenario.amount_steps
            amount, currency = disagreeing.get(o.step, (deal.amount, deal.currency))
            attributes = {**scenario.attributes(o.step, deal, numbers, rng), **o.extra}
            for change in self.changes:
                attributes = change.apply(o.step, o.system, o.at, attributes)
            event = PlannedEvent(
                transaction=numbers[PRIMARY],
                workflow=timeline.spec.workflow,
                step=o.step,
                system=o.system,
                correlation_id=numbers[route.key],
                aliases={kind: numbers[kind] for kind in route.announces},
                status=o.status,
                attempt=o.attempt,
                error=o.error,
                amount=amount if carries_amount else None,
                currency=currency if carries_amount else None,
                attributes=attributes,
                event_id=ids.event_id(rng),
                at=o.at,
                deliver_at=o.deliver_at,
                duration_ms=o.duration_ms,
            )
            events.append(event)
            if o.redeliver_at is not None:
                events.append(dataclasses.replace(event, deliver_at=o.redeliver_at, redelivery=True))
        return events
