"""The back-fill: a few days of history, so every chart has data the moment the demo opens.

History has two parts:

- *traffic*: ``per_day`` transactions a day over the last ``days`` days, busier on weekdays and in
  European and American working hours, each drawing its workflow and fault from the mix;
- *showcases*: a few transactions placed deliberately, so that however small the history and
  whatever the seed, the collector shows, as of the moment the back-fill ends, every workflow in
  each of the four states (completed, failed, stuck, in progress) and every fault at least once.
  A showcase is planned without slow-system incidents (except the one that shows an incident), so
  moving it in time does not change it and its state as of now is known in advance.

A showcase may start before the history window: a stuck subscription renewal has been idle for more
than its ``stuck_after`` (8 hours) and open for more than its SLA (3 days) as of now.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .faults import DAY_S, DRAWN, Fault, FaultMix, SlowWindow
from .planner import Planner, Timeline, TransactionSpec
from .scenarios import Scenario

HOUR_S = 3600.0
# Which workflow shows a fault that is not also a state, in order of preference.
SHOWCASE_ORDER = ("quote-to-cash", "support-credit", "subscription-renewal", "customer-onboarding")


@dataclass(frozen=True)
class Showcase:
    label: str  # "quote-to-cash:stuck", "duplicate", ...
    workflow: str
    fault: Fault
    placement: str  # "done", "stuck", "open" or "incident"


def intensity(moment: float) -> float:
    """Relative volume of new transactions at ``moment``: weekdays, EMEA and Americas working hours."""
    when = dt.datetime.fromtimestamp(moment, dt.UTC)
    hour = when.hour + when.minute / 60
    level = 0.15 + 0.6 * (7 <= hour < 17) + 0.6 * (13 <= hour < 23)
    return level * (0.3 if when.weekday() >= 5 else 1.0)


MAX_INTENSITY = 1.35


def arrivals(rng: random.Random, end: float, days: float, count: int) -> list[float]:
    """``count`` start times in the ``days`` before ``end``, following ``intensity``."""
    found: list[float] = []
    while len(found) < count:
        moment = end - rng.random() * days * DAY_S
        if rng.random() * MAX_INTENSITY <= intensity(moment):
            found.append(moment)
    return sorted(found)


def pick_workflow(rng: random.Random, scenarios: Mapping[str, Scenario]) -> Scenario:
    names = list(scenarios)
    return scenarios[rng.choices(names, [scenarios[name].weight for name in names])[0]]


def showcases(scenarios: Mapping[str, Scenario]) -> list[Showcase]:
    """The guaranteed transactions: four states per workflow, then each remaining fault once."""
    cases: list[Showcase] = []
    for name, scenario in scenarios.items():
        supported = scenario.supported_faults()
        cases.append(Showcase(f"{name}:completed", name, Fault.NONE, "done"))
        if Fault.REJECTION in supported:
            cases.append(Showcase(f"{name}:failed", name, Fault.REJECTION, "done"))
        if Fault.STUCK in supported:
            cases.append(Showcase(f"{name}:stuck", name, Fault.STUCK, "stuck"))
        cases.append(Showcase(f"{name}:in_progress", name, Fault.NONE, "open"))
    preference = [name for name in SHOWCASE_ORDER if name in scenarios] + [
        name for name in scenarios if name not in SHOWCASE_ORDER
    ]
    for fault in DRAWN:
        workflow = next((name for name in preference if fault in scenarios[name].supported_faults()), None)
        if workflow is not None:
            cases.append(Showcase(fault.value, workflow, fault, "done"))
    return cases


class History:
    """Plans the back-fill: traffic plus showcases, as timelines in start order."""

    def __init__(self, planner: Planner, seed: str, anchor: float, days: float, per_day: float) -> None:
        self.planner = planner
        self.seed = seed
        self.anchor = anchor
        self.days = days
        self.per_day = per_day

    def timelines(self) -> list[Timeline]:
        if self.days <= 0:
            return []
        found = self.traffic() + self.showcases()
        return sorted(found, key=lambda timeline: (timeline.spec.start, timeline.spec.seed))

    def traffic(self) -> list[Timeline]:
        rng = random.Random(f"{self.seed}/history")
        scenarios = self.planner.scenarios
        found = []
        count = round(self.per_day * self.days)
        for number, start in enumerate(arrivals(rng, self.anchor, self.days, count)):
            scenario = pick_workflow(rng, scenarios)
            fault = FaultMix(scenario.proportions).draw(rng, scenario.supported_faults())
            spec = TransactionSpec(scenario.definition.name, start, fault, f"{self.seed}/history/{number}")
            found.append(self.planner.timeline(spec))
        return found

    def showcases(self) -> list[Timeline]:
        rng = random.Random(f"{self.seed}/showcase")
        found = []
        for case in showcases(self.planner.scenarios):
            spec = TransactionSpec(
                case.workflow,
                0.0,
                case.fault,
                f"{self.seed}/showcase/{case.label}",
                slow=False,
                label=case.label,
            )
            relative = self.planner.timeline(spec)
            found.append(relative.shifted(self._start(case, relative, rng)))
        incident = self._incident()
        if incident is not None:
            found.append(incident)
        return found

    def _start(self, case: Showcase, relative: Timeline, rng: random.Random) -> float:
        """Where to put a showcase (planned from 0) so that its state as of the anchor is the wanted one."""
        definition = self.planner.scenarios[case.workflow].definition
        stuck_after = definition.stuck_after_s
        progress = relative.progress()
        if case.placement == "stuck":
            # Idle for longer than stuck_after, and open for longer than the SLA: a stuck transaction
            # is also a late one, and the operations queue shows both.
            start = self.anchor - progress[-1] - stuck_after * rng.uniform(1.3, 2.0)
            if definition.sla_s is not None:
                start = min(start, self.anchor - definition.sla_s - rng.uniform(10 * 60.0, HOUR_S))
            return start
        if case.placement == "open":
            # Now falls in the longest wait between two steps, well before it would count as stuck.
            gaps = [(later - earlier, earlier) for earlier, later in itertools.pairwise(progress)]
            gap, earlier = max(gaps, default=(0.0, progress[-1]))
            return self.anchor - earlier - min(0.5 * gap, 0.4 * stuck_after)
        latest_end = min(6 * HOUR_S, max(0.4 * self.days * DAY_S, 20 * 60.0))
        return self.anchor - relative.last_delivery() - rng.uniform(15 * 60.0, latest_end)

    def _incident(self) -> Timeline | None:
        """A transaction caught in a slow-system incident of the history, breaching its SLA if one can.

        Tries the latest incidents first, each workflow that uses the slow system, a few moments in
        the incident and a few draws; the first candidate whose SLA breaks wins, else the first one
        slowed at all (the schedule plants an incident in the history when the draw gave none).
        """
        windows: Sequence[SlowWindow] = list(
            self.planner.slow.windows(self.anchor - self.days * DAY_S, self.anchor - HOUR_S)
        )
        scenarios = self.planner.scenarios
        preference = [name for name in SHOWCASE_ORDER if name in scenarios] + [
            name for name in scenarios if name not in SHOWCASE_ORDER
        ]
        seed = f"{self.seed}/showcase/{Fault.SLOW_SYSTEM.value}"
        fallback: Timeline | None = None
        for window in reversed(windows):
            for name in preference:
                scenario = scenarios[name]
                steps = [s.name for s in scenario.definition.steps if s.system == window.system]
                steps = [s for s in steps if s in scenario.happy_steps[1:]]
                if not steps:
                    continue
                for variant, position in itertools.product(range(4), (0.02, 0.25, 0.5, 0.75)):
                    spec = TransactionSpec(
                        name, 0.0, Fault.NONE, f"{seed}/{variant}", slow=False, label=Fault.SLOW_SYSTEM.value
                    )
                    due = min(self.planner.timeline(spec).due[step] for step in steps)
                    start = window.start + position * (window.end - window.start) - due
                    timeline = self.planner.timeline(dataclasses.replace(spec, start=start, slow=True))
                    if timeline.slowed and self._breaches(timeline):
                        return timeline
                    if timeline.slowed and fallback is None:
                        fallback = timeline
        return fallback

    def _breaches(self, timeline: Timeline) -> bool:
        definition = self.planner.scenarios[timeline.spec.workflow].definition
        if definition.sla_s is None:
            return False
        completed = [
            o.at for o in timeline.occurrences if o.step in definition.complete_on and o.status == "ok"
        ]
        end = min(min(completed, default=self.anchor), self.anchor)
        return end - timeline.spec.start > definition.sla_s
