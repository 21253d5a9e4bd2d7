"""``simulate()``: back-fill a few days of history, then run live, through the real SDK.

    from threadline.simulator import simulate
    stats = simulate("http://localhost:4318", rate=6, seed=42)   # Ctrl-C to stop

Units: ``rate`` is new transactions per minute of wall time in the live part; ``speed`` compresses
the live part's business time (``speed=60``: a step planned to take an hour takes a minute); the
back-fill writes ``backfill_per_day`` transactions a day over ``backfill_days`` days (3 000 by
default) plus the showcases, with their real timestamps, as fast as the collector takes them.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import threading
import time
from pathlib import Path

from threadline.collector.config import EXAMPLE_WORKFLOWS
from threadline.collector.workflows import Workflows, load

from .clock import Clock
from .faults import DAY_S, SlowSchedule, schema_changes
from .history import HOUR_S, History
from .ids import KeyFactory
from .live import Live, Observer
from .planner import PlannedEvent, Planner
from .scenarios import scenarios_for
from .stats import SimulationStats
from .systems import Fleet

logger = logging.getLogger("threadline.simulator")

FLUSH_EVERY = 3000  # back-fill events between flushes: keeps every SDK queue far below its 8192 limit
FLUSH_TIMEOUT_S = 60.0


def default_workflows() -> Path:
    """The collector's workflows file: ``THREADLINE_WORKFLOWS``, else the project's example file."""
    return Path(os.environ.get("THREADLINE_WORKFLOWS") or EXAMPLE_WORKFLOWS)


def simulate(
    endpoint: str,
    rate: float,
    seed: int | None = None,
    backfill_days: float = 3,
    duration_s: float | None = None,
    spool_dir: str | os.PathLike[str] | None = None,
    *,
    speed: float = 1.0,
    backfill_per_day: float = 1000.0,
    workflows: str | os.PathLike[str] | Workflows | None = None,
    now: dt.datetime | None = None,
    stop: threading.Event | None = None,
    observer: Observer | None = None,
) -> SimulationStats:
    """Back-fill history, then run live until ``duration_s`` seconds passed, ``stop`` is set or Ctrl-C.

    ``seed`` makes the run reproducible: the same seed gives the same transactions, keys and event
    ids (None: a random seed, reported in the result). ``now`` pins where history ends (default: the
    current time), so that two runs give identical timestamps too. ``duration_s=0`` sends history
    only (the steps still in flight when history ends are left unsent); ``backfill_days=0`` skips
    history. ``observer(event, timestamp)`` sees every event as it is handed to the SDK. Returns once
    everything was delivered, or spooled when the collector cannot be reached.
    """
    if rate < 0 or not speed > 0 or backfill_days < 0 or backfill_per_day < 0:
        raise ValueError("rate, backfill_days and backfill_per_day must be 0 or more, and speed above 0")
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    definitions = workflows if isinstance(workflows, Workflows) else load(workflows or default_workflows())
    scenarios = scenarios_for(definitions)
    systems = tuple(sorted({s.system for d in definitions for s in d.steps if s.system}))
    began = time.time()
    anchor = now.timestamp() if now is not None else began
    # History always shows an incident (one that ended at least an hour ago, when it can).
    history_span = (anchor - backfill_days * DAY_S, anchor - HOUR_S) if backfill_days > 0 else None
    planner = Planner(
        scenarios, SlowSchedule(str(seed), systems, ensure=history_span), schema_changes(anchor, definitions)
    )
    clock = Clock(anchor=anchor, anchor_wall=began, speed=speed)
    stats = SimulationStats(seed=seed, anchor=dt.datetime.fromtimestamp(anchor, dt.UTC))
    keys = KeyFactory(random.Random(f"{seed}/keys"))
    fleet = Fleet(endpoint, spool_dir)
    stop = stop or threading.Event()

    live = Live(planner, fleet, clock, keys, str(seed), rate, stats, observer)
    try:
        # The showcases go first, so the API shows every state within seconds even while the
        # rest of history is still loading; then the traffic, oldest first.
        showcases: list[PlannedEvent] = []
        traffic: list[PlannedEvent] = []
        for timeline in History(planner, str(seed), anchor, backfill_days, backfill_per_day).timelines():
            transaction = planner.materialize(timeline, keys)
            # History if any of its events is delivered by the end of it; one whose every event is
            # still in flight then (its first delivery delayed past it) is the live part's to send.
            stats.planned(transaction, anchor)
            for event in transaction.events:
                if event.deliver_at > anchor:
                    live.schedule([event])  # still in flight when history ends: the live part sends it
                else:
                    (showcases if timeline.spec.label else traffic).append(event)
        for part in (showcases, traffic):
            for number, event in enumerate(sorted(part, key=lambda event: event.deliver_at), start=1):
                if stop.is_set():
                    break
                live.send(event)
                if number % FLUSH_EVERY == 0:
                    fleet.flush(FLUSH_TIMEOUT_S)  # the collector sets the pace
            fleet.flush(FLUSH_TIMEOUT_S)
        stats.backfill_seconds = time.time() - began
        logger.info("threadline simulator: back-filled %s", stats.summary())
        if duration_s is None or duration_s > 0:
            live_began = time.monotonic()
            try:
                live.run(duration_s, stop)
            finally:
                stats.live_seconds = time.monotonic() - live_began
    except KeyboardInterrupt:
        logger.info("threadline simulator: interrupted")
    finally:
        stats.delivered = fleet.flush(FLUSH_TIMEOUT_S)
        fleet.shutdown()
    return stats
