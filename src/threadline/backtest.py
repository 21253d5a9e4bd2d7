"""``threadline backtest``: the forecasts measured against what happened, on a replayed history.

History (a process log, or the simulator's back-fill) is stored into a fresh embedded store. Then,
at many moments of it, the forecasts are made from what was known then (the state as of that
moment; a model learned only from transactions completed before it) and compared with what
happened (each transaction's completion as of the end of the history):

- ETA error: at ``cuts`` moments evenly spread after a warm-up, every open transaction with a
  forecast that did complete later: the mean absolute error of the model's ETA, against the naive
  baseline's (the workflow's median remaining time from the step waited on, over all history before
  the moment, counted from when the step became due).
- Hindsight: the same ETAs from a model of the same form learned from the whole history, the future
  included, every completion and finer waited-time thresholds (``HINDSIGHT_QUANTILES``). No forecast
  of that form can do better on this history than about this: it is the ceiling against which the
  model's improvement over the baseline is to be read.
- Breach at lead: each transaction with an SLA, once, ``lead`` before its deadline (in buckets of
  ``bucket`` seconds: between ``lead - bucket`` and ``lead`` before it), if it is open and not
  breached then: predicted (``breach_expected``) against actual (completed after the deadline, or
  not at all by the end of the history); precision and recall. At most ``max_buckets`` buckets,
  evenly spread, when there are more.

Nothing is tuned here: the model's constants are the collector's (``collector/state/forecast.py``).
"""

from __future__ import annotations

import datetime as dt
import math
import random
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from threadline.collector.auth import ANONYMOUS_TENANT
from threadline.collector.schema import BusinessEvent, validate_event
from threadline.collector.state import forecast
from threadline.collector.state.rules import summary_parameters, summary_sql
from threadline.collector.storage import Store
from threadline.collector.storage.writes import store_events, utc
from threadline.collector.workflows import Workflows
from threadline.replay.importer import RowIdentity
from threadline.replay.xes import XesLog
from threadline.simulator.faults import DAY_S, SlowSchedule
from threadline.simulator.history import HOUR_S, History
from threadline.simulator.ids import KeyFactory
from threadline.simulator.planner import PlannedEvent, Planner
from threadline.simulator.scenarios import scenarios_for

TENANT = ANONYMOUS_TENANT
BATCH = 2000
WARM_UP = 0.25  # the first quarter of the history only trains
NAIVE_RECENT = 10**9  # the naive baseline learns from every completion before the moment
HINDSIGHT_QUANTILES = tuple(i / 20 for i in range(20))  # waited-time thresholds every 5%
FOREVER_S = 100 * 365 * DAY_S
MAX_BUCKETS = 150  # moments the breaches are judged at (a state query each, a second or two)

STATES = """
SELECT * FROM ({forecasted})
WHERE state IN ('in_progress', 'stuck')
  AND (empty({{ids:Array(String)}}) OR has({{ids:Array(String)}}, transaction_id))
"""
BOUNDS = "SELECT min(timestamp) AS first, max(timestamp) AS last FROM events WHERE tenant = {tenant:String}"
OUTCOMES = "SELECT transaction_id, completed_at, failed_at, started_at, sla_limit FROM ({summary})"


@dataclass(frozen=True)
class Outcome:
    """How a transaction ended, as of the end of the history."""

    completed_at: float | None
    failed_at: float | None
    deadline: float | None


@dataclass
class Figures:
    moments: int = 0
    eta_scored: int = 0
    model_error_s: float = 0.0
    naive_error_s: float = 0.0
    hindsight_error_s: float = 0.0
    no_forecast: int = 0  # open transactions at the moments without a forecast (too little history)
    not_expected: int = 0  # forecast not to complete without intervention (stuck, no ETA)
    not_expected_completed: int = 0  # ... that completed by the end of the history all the same
    breach_cases: int = 0
    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def model_mae_h(self) -> float:
        return self.model_error_s / max(self.eta_scored, 1) / 3600

    @property
    def naive_mae_h(self) -> float:
        return self.naive_error_s / max(self.eta_scored, 1) / 3600

    @property
    def hindsight_mae_h(self) -> float:
        return self.hindsight_error_s / max(self.eta_scored, 1) / 3600

    @property
    def improvement(self) -> float:
        return 1 - self.model_mae_h / self.naive_mae_h if self.naive_mae_h else 0.0

    @property
    def hindsight_improvement(self) -> float:
        return 1 - self.hindsight_mae_h / self.naive_mae_h if self.naive_mae_h else 0.0

    @property
    def precision(self) -> float:
        predicted = self.true_positive + self.false_positive
        return self.true_positive / predicted if predicted else math.nan

    @property
    def recall(self) -> float:
        actual = self.true_positive + self.false_negative
        return self.true_positive / actual if actual else math.nan

    def report(self, lead_s: float) -> str:
        lead = forecast.duration_text(lead_s)
        return "\n".join(
            [
                f"moments: {self.moments}; forecasts scored: {self.eta_scored}; "
                f"open without a forecast: {self.no_forecast}",
                f"not expected to complete without intervention (no ETA): {self.not_expected}; "
                f"of these, completed by the end of the history: {self.not_expected_completed}",
                f"ETA mean absolute error: model {self.model_mae_h:.2f} h, naive baseline "
                f"{self.naive_mae_h:.2f} h: {100 * self.improvement:.1f}% better than the baseline "
                f"(goal: at least 30%)",
                f"hindsight (the same form learned from the whole history, future included): "
                f"{self.hindsight_mae_h:.2f} h, {100 * self.hindsight_improvement:.1f}% better than "
                "the baseline",
                f"breach at {lead} lead: {self.breach_cases} transactions with an SLA open then; "
                f"{self.true_positive} predicted and breached, {self.false_positive} predicted but met, "
                f"{self.false_negative} breached unpredicted",
                f"breach precision {self.precision:.2f}, recall {self.recall:.2f} "
                f"(goal: recall >= 0.80 at precision >= 0.70)",
                *self.notes,
            ]
        )


# --- History into a store ----------------------------------------------------------------------


def log_events(path: Path, workflow: str | None) -> Iterator[BusinessEvent]:
    """The events of an XES log, as ``threadline replay`` reads them (rows it refuses are left out)."""
    identity = RowIdentity.of(path)
    for candidate in XesLog(path, workflow=workflow, system="log").candidates():
        if candidate.problems or not candidate.fields:
            continue
        yield validate_event({"event_id": identity.event_id(candidate.position), **candidate.fields})


def simulated_events(
    workflows: Workflows, days: float, per_day: float, seed: int, end: float
) -> Iterator[BusinessEvent]:
    """The simulator's back-fill of ``days`` before ``end`` (slow-system incidents included), as the
    collector would store it: every event whose event time is by the end."""
    scenarios = scenarios_for(workflows)
    systems = tuple(sorted({s.system for d in workflows for s in d.steps if s.system}))
    planner = Planner(scenarios, SlowSchedule(str(seed), systems, ensure=(end - days * DAY_S, end - HOUR_S)))
    keys = KeyFactory(random.Random(f"{seed}/keys"))
    for timeline in History(planner, str(seed), end, days, per_day).timelines():
        for event in planner.materialize(timeline, keys).events:
            if event.at <= end and not event.redelivery:
                yield _business_event(event)


def _business_event(event: PlannedEvent) -> BusinessEvent:
    fields: dict[str, Any] = {
        "correlation_id": event.correlation_id,
        "workflow": event.workflow,
        "step": event.step,
        "system": event.system,
        "status": event.status,
        "event_id": event.event_id,
        "timestamp": dt.datetime.fromtimestamp(event.at, dt.UTC).isoformat(),
        "aliases": dict(event.aliases),
        "attributes": dict(event.attributes),
        "duration_ms": event.duration_ms,
    }
    optional = {
        "attempt": event.attempt,
        "error": dict(event.error) if event.error else None,
        "amount": event.amount,
        "currency": event.currency,
    }
    return validate_event({**fields, **{k: v for k, v in optional.items() if v is not None}})


def load(store: Store, events: Iterable[BusinessEvent]) -> int:
    ordered = sorted(events, key=lambda e: e.timestamp)
    for start in range(0, len(ordered), BATCH):
        with store.writing():  # as ingest's writer does
            store_events(store, TENANT, ordered[start : start + BATCH], source="replay")
    return len(ordered)


# --- Measuring ----------------------------------------------------------------------------------


def outcomes(store: Store, workflows: Workflows) -> dict[str, Outcome]:
    sql = OUTCOMES.format(summary=summary_sql(aggregates_complete=False))
    found = {}
    for row in store.rows(sql, summary_parameters(workflows, TENANT, dt.datetime(2200, 1, 1, tzinfo=dt.UTC))):
        started = utc(row["started_at"]).timestamp()
        found[row["transaction_id"]] = Outcome(
            utc(row["completed_at"]).timestamp() if row["completed_at"] else None,
            utc(row["failed_at"]).timestamp() if row["failed_at"] else None,
            started + row["sla_limit"] if row["sla_limit"] > 0 else None,
        )
    return found


def open_states(
    store: Store,
    workflows: Workflows,
    model: forecast.ForecastModel,
    moment: dt.datetime,
    ids: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The open transactions as of ``moment`` with their forecast's columns (only ``ids``, if given)."""
    scope = "transaction_id IN {ids:Array(String)}" if ids else ""
    summary = summary_sql(aggregates_complete=store.aggregates_complete(), open_only=True, scope=scope)
    sql = STATES.format(forecasted=forecast.FORECASTED.replace("{summary}", summary))
    return store.rows(sql, summary_parameters(workflows, TENANT, moment, ids=list(ids), **model.parameters))


def naive_eta(row: dict[str, Any], naive: forecast.ForecastModel, moment: float) -> float | None:
    """When the naive baseline expects completion: each step waited on, from when it became due,
    takes the median remaining time of every completion seen from it (the latest of them)."""
    times = []
    for step, due in zip(row["waiting"], row["due_since"], strict=True):
        position = naive.position(row["workflow"], step)
        if position is None or not position.usable:
            return None
        times.append(utc(due).timestamp() + position.remaining_p50)
    return max([moment, *times]) if times else None


def backtest(
    store: Store,
    workflows: Workflows,
    cuts: int,
    lead_s: float,
    window_s: float,
    bucket_s: float,
    max_buckets: int = MAX_BUCKETS,
) -> Figures:
    figures = Figures()
    ended = outcomes(store, workflows)
    bounds = store.rows(BOUNDS, {"tenant": TENANT})
    first, last = utc(bounds[0]["first"]).timestamp(), utc(bounds[0]["last"]).timestamp()
    warm = first + WARM_UP * (last - first)
    hindsight = forecast.learn(
        store, workflows, TENANT, _when(last), FOREVER_S, recent=NAIVE_RECENT, quantiles=HINDSIGHT_QUANTILES
    )
    for number in range(cuts):
        moment = warm + (last - warm) * number / cuts
        _score_etas(store, workflows, figures, ended, moment, window_s, hindsight)
    # Each transaction once, ``lead`` before its deadline: grouped by the bucket that moment falls in.
    buckets: dict[int, list[str]] = {}
    for transaction, outcome in ended.items():
        if outcome.deadline is not None and warm <= outcome.deadline - lead_s <= last:
            buckets.setdefault(math.ceil((outcome.deadline - lead_s) / bucket_s), []).append(transaction)
    chosen = sorted(buckets)
    if len(chosen) > max_buckets:  # evenly spread over the history: each costs a state query
        chosen = [chosen[len(chosen) * part // max_buckets] for part in range(max_buckets)]
        figures.notes.append(f"breach moments: {max_buckets} of {len(buckets)}, evenly spread")
    for bucket in chosen:
        ids = sorted(buckets[bucket])
        _score_breaches(store, workflows, figures, ended, bucket * bucket_s, ids, window_s)
    return figures


def _when(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _score_etas(
    store: Store,
    workflows: Workflows,
    figures: Figures,
    ended: dict[str, Outcome],
    moment: float,
    window_s: float,
    hindsight: forecast.ForecastModel,
) -> None:
    model = forecast.learn(store, workflows, TENANT, _when(moment), window_s)
    naive = forecast.learn(store, workflows, TENANT, _when(moment), FOREVER_S, recent=NAIVE_RECENT)
    figures.moments += 1
    scored: dict[str, float] = {}  # transaction: when it completed
    for row in open_states(store, workflows, model, _when(moment)):
        outcome = ended[row["transaction_id"]]
        if not row["forecastable"]:
            figures.no_forecast += 1
            continue
        if row["fc_eta_time"] is None:
            figures.not_expected += 1
            figures.not_expected_completed += outcome.completed_at is not None
            continue
        baseline = naive_eta(row, naive, moment)
        if outcome.completed_at is None or baseline is None:
            continue  # never completed in the history: no error to measure
        eta = utc(row["fc_eta_time"]).timestamp()
        figures.eta_scored += 1
        figures.model_error_s += abs(eta - outcome.completed_at)
        figures.naive_error_s += abs(baseline - outcome.completed_at)
        scored[row["transaction_id"]] = outcome.completed_at
    # The same transactions, by hindsight's positions (the stuck ones aside as the model put them).
    if not scored:
        return  # (no ids would read every open transaction)
    known = forecast.ForecastModel(hindsight.learned_at, hindsight.positions, model.stuck)
    for row in open_states(store, workflows, known, _when(moment), sorted(scored)):
        completed_at = scored[row["transaction_id"]]
        figures.hindsight_error_s += abs(utc(row["fc_eta_time"]).timestamp() - completed_at)


def _score_breaches(
    store: Store,
    workflows: Workflows,
    figures: Figures,
    ended: dict[str, Outcome],
    moment: float,
    ids: list[str],
    window_s: float,
) -> None:
    model = forecast.learn(store, workflows, TENANT, _when(moment), window_s)
    for row in open_states(store, workflows, model, _when(moment), ids):
        outcome = ended[row["transaction_id"]]
        deadline = outcome.deadline
        if deadline is None or row["breached"] or (outcome.failed_at or math.inf) <= deadline:
            continue  # breached already, or it failed first: no breach to predict
        figures.breach_cases += 1
        breached = outcome.completed_at is None or outcome.completed_at > deadline
        predicted = bool(row["breach_expected"])
        figures.true_positive += predicted and breached
        figures.false_positive += predicted and not breached
        figures.false_negative += breached and not predicted


def run(
    events: Iterable[BusinessEvent],
    workflows: Workflows,
    cuts: int,
    lead_s: float,
    window_s: float,
    bucket_s: float,
    max_buckets: int = MAX_BUCKETS,
) -> Figures:
    """Stores ``events`` into a fresh embedded store (removed afterwards) and measures there."""
    with tempfile.TemporaryDirectory(prefix="threadline-backtest-") as directory:
        store = Store(f"chdb://{directory}/store").open()
        try:
            count = load(store, events)
            figures = backtest(store, workflows, cuts, lead_s, window_s, bucket_s, max_buckets)
            figures.notes.insert(0, f"events: {count}")
            return figures
        finally:
            store.close()
