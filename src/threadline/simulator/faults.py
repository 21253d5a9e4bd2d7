"""The faults the simulator injects, how often, and the slow-system incidents.

Each transaction draws at most one fault (most draw none), so every fault stays visible on its own
in what the collector derives and none hides another:

=================  =====================================================  ==========================
fault              what happens                                           what the collector shows
=================  =====================================================  ==========================
transient          a step fails with a transient error, the retry         retries, errors per system
                   (attempt 2, sometimes 3) succeeds
rejection          a business rule stops the transaction at a            state ``failed``
                   ``fail_on`` step (order rejected, credit refused...)
stuck              a step never happens                                   state ``stuck`` after
                                                                          ``stuck_after``
violation          a credit is posted in billing before finance           governance violation (and
                   approved it (approval after the fact, or never)        a missing step)
duplicate          one event is delivered twice with the same event_id    counted once
out_of_order       an event arrives after the event of a later step       state unaffected (event time)
late_alias         an ERP record is keyed by its own number only; the     two fragments that join into
                   alias that ties it to the transaction comes later      one transaction
mismatch           a system records another amount: billing at list       a mismatch (``reconcile:``)
                   price, the ERP in its ledger currency, or no amount
duplicate_entity   the same customer is onboarded twice (the account      a possible duplicate
                   entered again): a second transaction, same tax id      (``unique_by:``), stuck
slow_system        (not drawn: a time window) one system takes 10-25x     SLA breaches, stuck for a while
                   longer for an hour or so, about once a day
=================  =====================================================  ==========================

And one change of a vendor's schema (``SchemaChange``, not drawn: a moment): from eight hours
before the end of history, Stripe's subscription events send ``plan_id`` instead of ``plan``, as a
new API version would; the collector shows it as schema drift.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache

from threadline.collector.workflows import WorkflowDefinition


class Fault(enum.StrEnum):
    NONE = "none"
    TRANSIENT = "transient"
    REJECTION = "rejection"
    STUCK = "stuck"
    VIOLATION = "violation"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"
    LATE_ALIAS = "late_alias"
    MISMATCH = "mismatch"
    DUPLICATE_ENTITY = "duplicate_entity"
    SLOW_SYSTEM = "slow_system"


# Share of transactions drawing each fault, when the workflow's scenario supports it. Realistic for
# a busy integration landscape: retries are the most common, outright lost steps the rarest.
DEFAULT_PROPORTIONS: Mapping[Fault, float] = {
    Fault.TRANSIENT: 0.08,
    Fault.REJECTION: 0.05,
    Fault.STUCK: 0.04,
    Fault.VIOLATION: 0.06,
    Fault.DUPLICATE: 0.05,
    Fault.OUT_OF_ORDER: 0.05,
    Fault.LATE_ALIAS: 0.05,
    Fault.MISMATCH: 0.02,  # finance finds about one deal in fifty off at month-end close
    Fault.DUPLICATE_ENTITY: 0.015,
}
DRAWN = tuple(DEFAULT_PROPORTIONS)


@dataclass(frozen=True)
class FaultMix:
    """Draws one fault per transaction from the proportions, among the faults a scenario supports."""

    proportions: Mapping[Fault, float]

    def draw(self, rng: random.Random, supported: Collection[Fault]) -> Fault:
        point = rng.random()
        for fault in DRAWN:  # fixed order: the same seed draws the same faults
            if fault in supported:
                point -= self.proportions.get(fault, 0.0)
                if point < 0:
                    return fault
        return Fault.NONE


# Which system has an incident, weighted: ERPs and billing APIs are the usual bottlenecks.
SLOW_CANDIDATES: Mapping[str, float] = {
    "netsuite": 0.35,
    "stripe": 0.2,
    "mulesoft": 0.15,
    "zendesk": 0.1,
    "cpq": 0.1,
    "salesforce": 0.1,
}
DAY_S = 86_400.0


@dataclass(frozen=True)
class SlowWindow:
    """One incident: ``system`` takes ``factor`` times longer for steps due in [start, end)."""

    system: str
    start: float
    end: float
    factor: float

    def covers(self, system: str, moment: float) -> bool:
        return system == self.system and self.start <= moment < self.end


@dataclass(frozen=True)
class SlowSchedule:
    """About one incident per day (a day may have none), in working hours, on a system in use.

    Each UTC day's incident is drawn from its own seeded generator, so history and the live part see
    the same incidents however far the simulation runs, and the same seed gives the same incidents.
    ``ensure`` names a span of time (the history) that must see an incident start: when the draw
    gives none there, one is planted in it, so that every history shows one.
    """

    seed: str
    systems: tuple[str, ...]  # the systems the workflows use; an incident only hits one of these
    chance_per_day: float = 0.85
    ensure: tuple[float, float] | None = None
    incidents: tuple[SlowWindow, ...] = ()  # given incidents, in addition to the drawn ones

    @cached_property
    def _weights(self) -> tuple[tuple[str, ...], tuple[float, ...]]:
        names = tuple(name for name in SLOW_CANDIDATES if name in self.systems) or self.systems
        return names, tuple(SLOW_CANDIDATES.get(name, 0.1) for name in names)

    @cached_property
    def _planted(self) -> SlowWindow | None:
        if self.ensure is None or not self.systems:
            return None
        low, high = self.ensure
        if high <= low or any(self._drawn(low, high)) or any(low <= i.start < high for i in self.incidents):
            return None
        rng = random.Random(f"{self.seed}/slow/planted")
        names, weights = self._weights
        start = rng.uniform(max(low, high - 18 * 3600), max(low, high - 2 * 3600))
        return SlowWindow(rng.choices(names, weights)[0], start, start + rng.uniform(60, 100) * 60, 20.0)

    def window_of_day(self, day: int) -> SlowWindow | None:
        if not self.systems:
            return None
        names, weights = self._weights
        return _window_of_day(self.seed, names, weights, self.chance_per_day, day)

    def factor(self, system: str, moment: float) -> float:
        """How many times longer a step of ``system`` due at ``moment`` takes (1 outside incidents)."""
        for incident in (*self.incidents, self._planted):
            if incident is not None and incident.covers(system, moment):
                return incident.factor
        window = self.window_of_day(int(moment // DAY_S))
        return window.factor if window is not None and window.covers(system, moment) else 1.0

    def _drawn(self, start: float, end: float) -> Iterable[SlowWindow]:
        for day in range(int(start // DAY_S), int(end // DAY_S) + 1):
            window = self.window_of_day(day)
            if window is not None and start <= window.start < end:
                yield window

    def windows(self, start: float, end: float) -> list[SlowWindow]:
        """The incidents that begin in [start, end), oldest first."""
        found = list(self._drawn(start, end))
        for incident in (*self.incidents, self._planted):
            if incident is not None and start <= incident.start < end:
                found.append(incident)
        return sorted(found, key=lambda window: window.start)


@lru_cache(maxsize=4096)
def _window_of_day(
    seed: str, names: tuple[str, ...], weights: tuple[float, ...], chance: float, day: int
) -> SlowWindow | None:
    rng = random.Random(f"{seed}/slow/{day}")
    happens = rng.random() < chance
    system = rng.choices(names, weights)[0]
    start = day * DAY_S + rng.uniform(8, 17) * 3600  # working hours (UTC)
    length = rng.uniform(40, 100) * 60
    factor = rng.uniform(10, 25)
    return SlowWindow(system, start, start + length, factor) if happens else None


@dataclass(frozen=True)
class SchemaChange:
    """A vendor's new API version: from ``at`` (event time) on, ``system``'s ``step`` events send each
    attribute of ``renamed`` under its new key, its value as an identifier ("Enterprise annual" →
    "enterprise_annual")."""

    system: str
    step: str
    at: float
    renamed: Mapping[str, str]

    def apply(self, step: str, system: str, at: float, attributes: Mapping[str, str]) -> dict[str, str]:
        if step != self.step or system != self.system or at < self.at:
            return dict(attributes)
        return {
            self.renamed.get(key, key): _identifier(value) if key in self.renamed else value
            for key, value in attributes.items()
        }


def _identifier(value: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in value.lower())


SCHEMA_CHANGE_BEFORE_ANCHOR_S = 8 * 3600.0  # the demo's 3 days of history then show it at once


def schema_changes(anchor: float, definitions: Iterable[WorkflowDefinition]) -> tuple[SchemaChange, ...]:
    """The run's vendor change, when its workflows have the step, eight hours before ``anchor``."""
    change = SchemaChange(
        "stripe",
        "billing.subscription.activated",
        anchor - SCHEMA_CHANGE_BEFORE_ANCHOR_S,
        {"plan": "plan_id"},
    )
    steps = {(step.system, step.name) for definition in definitions for step in definition.steps}
    return (change,) if (change.system, change.step) in steps else ()
