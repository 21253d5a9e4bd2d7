"""The live part: new transactions at ``rate`` per minute, every planned event sent when it is due.

One loop on the caller's thread keeps a heap of planned events by delivery time (plan time). It
starts new transactions as their arrival times come (a Poisson process, so the API shows a steady
but irregular stream), sends what is due through the fleet, and sleeps until the next thing is due.
The history's in-flight transactions continue here too: their remaining steps are in the heap.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterable

from .clock import Clock
from .faults import FaultMix
from .history import pick_workflow
from .ids import KeyFactory
from .planner import PlannedEvent, Planner, TransactionSpec
from .stats import SimulationStats
from .systems import Fleet

logger = logging.getLogger("threadline.simulator")

MAX_SLEEP_S = 0.5  # the loop looks at the stop signal and the deadline at least this often
PROGRESS_EVERY_S = 60.0

Observer = Callable[[PlannedEvent, float], None]


class Live:
    def __init__(
        self,
        planner: Planner,
        fleet: Fleet,
        clock: Clock,
        keys: KeyFactory,
        seed: str,
        rate: float,
        stats: SimulationStats,
        observer: Observer | None = None,
    ) -> None:
        self.planner = planner
        self.fleet = fleet
        self.clock = clock
        self.keys = keys
        self.seed = seed
        self.stats = stats
        self.observer = observer
        self._rng = random.Random(f"{seed}/live")
        self._numbers = itertools.count()
        self._order = itertools.count()
        self._heap: list[tuple[float, int, PlannedEvent]] = []
        # `rate` counts per minute of wall time; in plan time arrivals are `speed` times further apart.
        self._mean_gap = math.inf if rate <= 0 else 60.0 / rate * clock.speed
        self._next_arrival = clock.anchor + self._gap()

    def _gap(self) -> float:
        return self._rng.expovariate(1 / self._mean_gap) if math.isfinite(self._mean_gap) else math.inf

    def schedule(self, events: Iterable[PlannedEvent]) -> None:
        for event in events:
            heapq.heappush(self._heap, (event.deliver_at, next(self._order), event))

    def _start_transaction(self, start: float) -> None:
        scenario = pick_workflow(self._rng, self.planner.scenarios)
        fault = FaultMix(scenario.proportions).draw(self._rng, scenario.supported_faults())
        spec = TransactionSpec(
            scenario.definition.name, start, fault, f"{self.seed}/live/{next(self._numbers)}"
        )
        transaction = self.planner.materialize(self.planner.timeline(spec), self.keys)
        self.stats.planned(transaction)
        self.schedule(transaction.events)

    def send(self, event: PlannedEvent) -> None:
        timestamp = self.clock.stamp(event.at)
        self.fleet.emit(event, timestamp)
        self.stats.sent(event)
        if self.observer is not None:
            self.observer(event, timestamp)

    def run(self, duration_s: float | None, stop: threading.Event) -> None:
        """Until ``duration_s`` seconds passed (None: until ``stop`` is set or Ctrl-C)."""
        started = time.monotonic()
        deadline = math.inf if duration_s is None else started + duration_s
        next_report = started + PROGRESS_EVERY_S
        while not stop.is_set() and time.monotonic() < deadline:
            now = self.clock.plan_time(time.time())
            while self._next_arrival <= now:
                self._start_transaction(self._next_arrival)
                self._next_arrival += self._gap()
            while self._heap and self._heap[0][0] <= now:
                self.send(heapq.heappop(self._heap)[2])
            if time.monotonic() >= next_report:
                next_report += PROGRESS_EVERY_S
                logger.info("threadline simulator: %s", self.stats.summary())
            due = min(self._heap[0][0] if self._heap else math.inf, self._next_arrival)
            wait = self.clock.wall_time(due) - time.time() if math.isfinite(due) else MAX_SLEEP_S
            stop.wait(max(min(wait, MAX_SLEEP_S, deadline - time.monotonic()), 0.0))
