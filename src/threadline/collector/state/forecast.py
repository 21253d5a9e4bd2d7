"""Forecasts: when an open transaction will complete, and whether it will breach its SLA.

Learned from the same workflow's completed transactions, explainable, no black box. A transaction's
*position* is the step it waits on (``rules``: due since the last of its prerequisites was done).
For every workflow and step, the model holds what the recently completed transactions did from
that position: how long the step took once due (its step-to-step time) and how long was left to
completion from when it became due. A transaction that has already waited ``w`` on the step is
compared only with those that waited at least as long (remaining time given the wait so far), at a
few waited-time thresholds: the model is a few numbers per workflow and step, bound into the state
SQL as parameters, so the queue sorts millions of transactions by predicted breach in the engine.

- Learning reads the rollups of transactions active in the recent window (``window_s``), the
  latest ``RECENT`` completions per position: a slow system shows in the next refresh, where the
  history's median would hide it.
- A position with fewer than ``MIN_HISTORY`` completed transactions gives no forecast, and says so.
- The forecast: ETA = when the step waited on reached the longest threshold it has waited past,
  plus the median remaining time of the transactions that waited at least as long (not before as
  of; past the last threshold and that median, where history says no more, from as of; the latest
  over the steps it waits on); a breach is
  expected when the ETA is after the SLA deadline (first event + the workflow's SLA).
- A *stuck* transaction (nothing done for the workflow's ``stuck_after``) is compared with the
  workflow's recent transactions that became stuck: how many of them completed later, and how long
  after becoming stuck (a Kaplan-Meier median: those still open count for as long as they were seen,
  failed ones never complete). When fewer than half are expected to complete, it has no ETA, is not
  expected to complete without intervention, and a breach of its SLA is expected: the step-to-step
  times of the transactions that did complete say nothing about one that stopped moving.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..models import Forecast
from ..schema import EARLIEST
from ..storage import Store, StoreUnavailable
from ..storage.writes import utc
from ..workflows import WorkflowDefinition, Workflows
from .rules import WorkflowParameters

logger = logging.getLogger("threadline.collector")

MIN_HISTORY = 20  # completed transactions from a position, below which it gives no forecast
# Stuck episodes of a workflow below which a stuck transaction is forecast by its position instead:
# with 10 seen and none completed, that in truth half would complete has a chance below 0.1%.
MIN_STUCK_HISTORY = 10
RECENT = 200  # the latest completions per position the model learns from
# Waited-time thresholds, as quantiles of the step's own waits: 0 (just due), then ever longer waits.
WAIT_QUANTILES = (0.0, 0.25, 0.5, 0.75, 0.9)
ETA_QUANTILE = 0.5
REASON_QUANTILE = 0.8
# Transactions read per workflow at one refresh: the recent window, newest first.
MAX_TRANSACTIONS = 20_000

# The facts of transactions active in the window, one row each (rows of a transaction not merged yet
# are merged here; the window is chosen from last_activity alone, which the rollups keep cheaply).
RECENT_ROLLUPS = """
SELECT
    transaction_id,
    min(first_event).1 AS started_at,
    min(first_event).3 AS workflow,
    minMap(step_first_ok) AS done,
    mapFilter((step, at) -> has({failures:Array(String)}, step), minMap(step_first)) AS failures
FROM transaction_rollups
WHERE tenant = {tenant:String}
  AND transaction_id IN (
      SELECT transaction_id FROM transaction_rollups
      WHERE tenant = {tenant:String} AND last_activity >= {since:DateTime64(6, 'UTC')}
      ORDER BY last_activity DESC
      LIMIT {limit:UInt32}
  )
GROUP BY transaction_id
HAVING started_at <= {until:DateTime64(6, 'UTC')} AND has({workflows:Array(String)}, workflow)
"""


@dataclass(frozen=True)
class Sample:
    """One completed transaction seen from a position: when its step became due, how long the step
    took from then, and how long was left to completion."""

    completed_at: float
    waited: float
    remaining: float


@dataclass(frozen=True)
class Position:
    """What the model knows of one workflow's step."""

    workflow: str
    step: str
    history: int  # completed transactions learned from
    waits: tuple[float, ...] = ()  # waited-time thresholds, seconds (the first is 0)
    remaining: tuple[float, ...] = ()  # median remaining time at each threshold, seconds
    step_p50: float = 0.0  # the step-to-step time once due, seconds
    step_p80: float = 0.0
    remaining_p50: float = 0.0  # remaining time when just due: the naive baseline's
    remaining_p80: float = 0.0

    @property
    def usable(self) -> bool:
        return self.history >= MIN_HISTORY


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of sorted ``values``, linearly interpolated (numpy's default method)."""
    at = q * (len(values) - 1)
    low = int(at)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (at - low)


def position_of(
    workflow: str,
    step: str,
    samples: Sequence[Sample],
    recent_count: int = RECENT,
    quantiles: Sequence[float] = WAIT_QUANTILES,
) -> Position:
    """The model of one position from its samples (the latest ``recent_count`` of them), its
    waited-time thresholds at ``quantiles`` of their waits."""
    recent = sorted(samples, key=lambda s: s.completed_at)[-recent_count:]
    if len(recent) < MIN_HISTORY:
        return Position(workflow, step, len(recent))
    steps = sorted(s.waited for s in recent)
    waits: list[float] = []
    remaining: list[float] = []
    for q in quantiles:
        wait = quantile(steps, q) if q else 0.0
        left = sorted(s.remaining - wait for s in recent if s.waited >= wait)
        if len(left) < MIN_HISTORY or (waits and wait <= waits[-1]):
            continue
        waits.append(wait)
        remaining.append(max(quantile(left, ETA_QUANTILE), 0.0))
    from_due = sorted(s.remaining for s in recent)
    return Position(
        workflow,
        step,
        len(recent),
        tuple(waits),
        tuple(remaining),
        step_p50=quantile(steps, 0.5),
        step_p80=quantile(steps, REASON_QUANTILE),
        remaining_p50=quantile(from_due, 0.5),
        remaining_p80=quantile(from_due, REASON_QUANTILE),
    )


def samples_of(
    definition: WorkflowDefinition, started_at: float, done: Mapping[str, float]
) -> dict[str, Sample]:
    """A completed transaction's sample per step it waited on (none when it did not complete)."""
    finished = [done[step] for step in definition.complete_on if step in done]
    if not finished:
        return {}
    completed_at = min(finished)
    found = {}
    for step in definition.steps:
        at = done.get(step.name)
        if at is None or at > completed_at or step.name in definition.fail_on:
            continue
        if any(p not in done for p in step.after):
            continue  # done out of order: never waited on as the rules define it
        due = max((done[p] for p in step.after), default=started_at)
        if at < due or any(done.get(s, at) < at for s in definition.successors(step.name)):
            continue  # a later step came first: it was missing, not waited on
        found[step.name] = Sample(completed_at, at - due, completed_at - due)
    return found


@dataclass(frozen=True)
class Stuck:
    """What the model knows of one workflow's stuck transactions: of ``history`` that became stuck,
    ``completed`` completed later; half of them within ``median`` seconds of becoming stuck (a
    Kaplan-Meier median), or None when fewer than half are expected to complete at all."""

    workflow: str
    history: int
    completed: int
    median: float | None

    @property
    def usable(self) -> bool:
        return self.history >= MIN_STUCK_HISTORY


@dataclass(frozen=True)
class Episode:
    """One transaction stuck from ``stuck_at``: completed ``completes_after`` seconds later, or seen
    open for ``seen_for`` seconds (None: failed, it never completes)."""

    stuck_at: float
    completes_after: float | None = None
    seen_for: float | None = None


def stuck_episodes(
    definition: WorkflowDefinition,
    started_at: float,
    done: Mapping[str, float],
    failures: Mapping[str, float],
    cut: float,
) -> list[Episode]:
    """Each time a transaction went ``stuck_after`` without progress before ending, as known at
    ``cut`` (as ``rules.CLOCKED`` names a transaction stuck: no step done for that long while open);
    ``failures``: when each failure step was first seen."""
    done = {step: at for step, at in done.items() if at <= cut}
    completed = min((done[s] for s in definition.complete_on if s in done), default=None)
    failed = min((at for s, at in failures.items() if s in definition.fail_on and at <= cut), default=None)
    ended = min((at for at in (completed, failed) if at is not None), default=cut)
    progress = sorted({started_at, *(at for at in done.values() if at <= ended)})
    episodes = []
    for at, following in zip(progress, [*progress[1:], ended], strict=True):
        stuck_at = at + definition.stuck_after_s
        if stuck_at >= following:
            continue
        if completed is not None:
            episodes.append(Episode(stuck_at, completes_after=completed - stuck_at))
        elif failed is not None:
            episodes.append(Episode(stuck_at))
        else:
            episodes.append(Episode(stuck_at, seen_for=cut - stuck_at))
    return episodes


def kaplan_meier_median(episodes: Sequence[Episode]) -> float | None:
    """The time from becoming stuck by which half are expected to have completed (those still open
    count while seen, failed ones never complete); None when the estimate never falls to half."""
    completions = sorted(e.completes_after for e in episodes if e.completes_after is not None)
    left = (e.seen_for if e.completes_after is None else e.completes_after for e in episodes)
    exits = sorted(t for t in left if t is not None)  # failed ones never leave
    never = sum(1 for e in episodes if e.completes_after is None and e.seen_for is None)
    surviving, gone, index = 1.0, 0, 0
    for time in sorted(set(completions)):
        while gone < len(exits) and exits[gone] < time:
            gone += 1  # left before this moment: completed earlier, or last seen open
        at_risk = len(exits) - gone + never
        while index < len(completions) and completions[index] == time:
            index += 1
            surviving *= 1 - 1 / at_risk
            at_risk -= 1
        if surviving <= 0.5:
            return time
    return None


def stuck_of(workflow: str, episodes: Sequence[Episode]) -> Stuck:
    return Stuck(
        workflow,
        len(episodes),
        sum(1 for e in episodes if e.completes_after is not None),
        kaplan_meier_median(episodes),
    )


@dataclass(frozen=True)
class ForecastModel:
    """Every position's model, as learned at ``learned_at`` from completions before it."""

    learned_at: dt.datetime
    positions: Mapping[tuple[str, str], Position] = field(default_factory=dict)
    stuck: Mapping[str, Stuck] = field(default_factory=dict)

    def position(self, workflow: str, step: str) -> Position | None:
        return self.positions.get((workflow, step))

    @property
    def parameters(self) -> dict[str, Any]:
        """The usable positions as bound parameters of ``FORECAST`` (parallel arrays)."""
        usable = [p for p in self.positions.values() if p.usable]
        stuck = [k for k in self.stuck.values() if k.usable]
        return {
            "fc_positions": [(p.workflow, p.step) for p in usable],
            "fc_waits": [list(p.waits) for p in usable],
            "fc_remaining": [list(p.remaining) for p in usable],
            "fc_stuck_workflows": [k.workflow for k in stuck],
            "fc_stuck_never": [k.median is None for k in stuck],
            "fc_stuck_median": [k.median or 0.0 for k in stuck],
        }


def learn(
    store: Store,
    workflows: Workflows,
    tenant: str,
    now: dt.datetime,
    window_s: float,
    recent: int = RECENT,
    quantiles: Sequence[float] = WAIT_QUANTILES,
) -> ForecastModel:
    """The model from the transactions completed in the ``window_s`` seconds before ``now`` (the
    latest ``recent`` per position, waited-time thresholds at ``quantiles``)."""
    rows = store.rows(
        RECENT_ROLLUPS,
        {
            "tenant": tenant,
            "since": now - dt.timedelta(seconds=window_s),
            "until": now,
            "limit": MAX_TRANSACTIONS * max(len(workflows), 1),
            "workflows": [d.name for d in workflows],
            "failures": sorted({step for d in workflows for step in d.fail_on}),
        },
    )
    cut = now.timestamp()
    collected: dict[tuple[str, str], list[Sample]] = {}
    episodes: dict[str, list[Episode]] = {}
    for row in rows:
        definition = workflows.get(row["workflow"])
        if definition is None:
            continue
        started_at = utc(row["started_at"]).timestamp()
        done = {step: utc(at).timestamp() for step, at in row["done"].items()}
        for step, sample in samples_of(definition, started_at, done).items():
            if sample.completed_at <= cut:  # what was known at ``now`` only
                collected.setdefault((definition.name, step), []).append(sample)
        failures = {step: utc(at).timestamp() for step, at in row["failures"].items()}
        episodes.setdefault(definition.name, []).extend(
            stuck_episodes(definition, started_at, done, failures, cut)
        )
    positions = {
        (d.name, s.name): position_of(d.name, s.name, collected.get((d.name, s.name), []), recent, quantiles)
        for d in workflows
        for s in d.steps
    }
    stuck = {d.name: stuck_of(d.name, episodes.get(d.name, [])) for d in workflows}
    return ForecastModel(now, positions, stuck)


# --- In the engine: over the rows of ``rules.summary_sql`` --------------------------------------
# Per step waited on: its position's index (0: no usable model), the wait so far, the longest
# threshold it has waited past, and the median remaining time from that threshold less the time
# waited since (never below 0); past the last threshold and longer than that median, where history
# says no more, that median from now. The ETA is the latest over the steps waited on. A stuck
# transaction whose workflow has a usable stuck model: that median from when it became stuck (from
# now, once that is past), or no ETA when its like are not expected to complete.
FORECAST_COLUMNS = """
    arrayMap(s -> indexOf({fc_positions:Array(Tuple(String, String))}, (workflow, s)), waiting) AS fc_at,
    if(state = 'stuck', indexOf({fc_stuck_workflows:Array(String)}, workflow), 0) AS fc_stuck,
    fc_stuck > 0 AND {fc_stuck_never:Array(Bool)}[fc_stuck] AS fc_never,
    state IN ('in_progress', 'stuck') AND notEmpty(waiting) AND (fc_stuck > 0 OR NOT has(fc_at, 0))
        AS forecastable,
    arrayMap(due -> greatest(dateDiff('microsecond', due, {as_of:DateTime64(6, 'UTC')}) / 1e6, 0), due_since)
        AS fc_waited,
    arrayMap((k, waited) -> arrayLastIndex(w -> w <= waited, {fc_waits:Array(Array(Float64))}[k]),
             fc_at, fc_waited) AS fc_threshold,
    dateDiff('microsecond', last_progress, {as_of:DateTime64(6, 'UTC')}) / 1e6 - stuck_after AS fc_stuck_for,
    multiIf(
        NOT forecastable OR fc_never, NULL,
        fc_stuck > 0,
        if({fc_stuck_median:Array(Float64)}[fc_stuck] <= fc_stuck_for,
           {fc_stuck_median:Array(Float64)}[fc_stuck],
           {fc_stuck_median:Array(Float64)}[fc_stuck] - fc_stuck_for),
        arrayMax(arrayMap((k, i, waited) ->
                              if(i = length({fc_waits:Array(Array(Float64))}[k])
                                   AND {fc_remaining:Array(Array(Float64))}[k][i]
                                       <= waited - {fc_waits:Array(Array(Float64))}[k][i],
                                 {fc_remaining:Array(Array(Float64))}[k][i],
                                 greatest({fc_remaining:Array(Array(Float64))}[k][i]
                                          - (waited - {fc_waits:Array(Array(Float64))}[k][i]), 0)),
                          fc_at, fc_threshold, fc_waited))) AS fc_remaining_seconds,
    if(sla_limit > 0, started_at + toIntervalMicrosecond(toInt64(sla_limit * 1e6)), NULL) AS sla_deadline,
    if(fc_remaining_seconds IS NULL, NULL,
       {as_of:DateTime64(6, 'UTC')}
           + toIntervalMicrosecond(toInt64(assumeNotNull(fc_remaining_seconds) * 1e6))) AS fc_eta_time,
    forecastable AND sla_limit > 0 AND (fc_never OR ifNull(fc_eta_time > assumeNotNull(sla_deadline), false))
        AS breach_expected,
    if(breach_expected,
       greatest(dateDiff('microsecond', {as_of:DateTime64(6, 'UTC')}, assumeNotNull(sla_deadline)) / 1e6, 0),
       NULL) AS breach_lead_seconds
"""
FORECASTED = f"SELECT *, {FORECAST_COLUMNS} FROM ({{summary}})"


def no_forecast(why: str) -> Forecast:
    return Forecast(
        eta=None,
        completion_expected=None,
        breach_expected=False,
        lead_seconds=None,
        reason=f"no forecast: {why}",
    )


def forecast_of(row: Mapping[str, Any], model: ForecastModel, as_of: dt.datetime) -> Forecast:
    """The forecast of one row of ``FORECASTED``, with its reason in words."""
    waiting = list(row["waiting"])
    if row["state"] not in ("in_progress", "stuck"):
        return no_forecast(f"the transaction is {row['state']}")
    if not waiting:
        return no_forecast("it waits on no step of its workflow's definition")
    stuck = model.stuck.get(row["workflow"]) if row["state"] == "stuck" else None
    if stuck is not None and stuck.usable:
        parts = [stuck_text(stuck)]
    else:
        positions = [model.position(row["workflow"], step) for step in waiting]
        for step, position in zip(waiting, positions, strict=True):
            if position is None or not position.usable:
                history = position.history if position else 0
                return no_forecast(
                    f"{history} completed {row['workflow']} transactions waited on {step} recently, "
                    f"{MIN_HISTORY} needed"
                )
        parts = [
            f"{p.step} usually takes {duration_text(p.step_p50)} (p50), {duration_text(p.step_p80)} (p80) "
            f"here; from it, completion takes {duration_text(p.remaining_p50)} (p50)"
            for p in positions
            if p is not None
        ]
    deadline = utc(row["sla_deadline"]) if row["sla_deadline"] is not None else None
    expected = bool(row["breach_expected"])
    if deadline is None:
        clock = "no SLA"
    elif deadline <= as_of:
        clock = f"SLA ended {duration_text((as_of - deadline).total_seconds())} ago"
    else:
        clock = f"SLA ends in {duration_text((deadline - as_of).total_seconds())}"
    eta = utc(row["fc_eta_time"]) if row["fc_eta_time"] is not None else None
    if eta is None:
        expect = "not expected to complete without intervention"
    else:
        expect = f"expected to complete in {duration_text((eta - as_of).total_seconds())}"
    return Forecast(
        eta=eta,
        completion_expected=eta is not None,
        breach_expected=expected,
        lead_seconds=row["breach_lead_seconds"] if expected else None,
        reason="; ".join([*parts, f"{expect}, {clock}"]),
    )


def stuck_text(stuck: Stuck) -> str:
    """Stuck: "of the 23 quote-to-cash transactions stuck recently, 2 completed later"."""
    text = (
        f"stuck: of the {stuck.history} {stuck.workflow} transactions stuck recently, "
        f"{stuck.completed} completed later"
    )
    if stuck.median is None:
        return text
    return f"{text}, half of them within {duration_text(stuck.median)} of becoming stuck"


def duration_text(seconds: float) -> str:
    """2h10, 40 min, 3d4h: how people say a duration."""
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h"


NO_MODEL = ForecastModel(EARLIEST)


def forecast_parameters(model: ForecastModel | None) -> dict[str, Any]:
    return (model or NO_MODEL).parameters


# An as_of this close to now asks about the present: the current model answers. Models of past
# moments are kept, the least recently used leaving first (a page asks as of one moment repeatedly).
PRESENT_S = 60.0
MAX_PAST_MODELS = 16


class Forecasts:
    """Each tenant's model, learned again every ``interval_s`` seconds by a background thread (a
    read never waits for learning, except the first of a tenant, or after the definitions changed)."""

    def __init__(
        self,
        store: Store,
        workflows: Callable[[], Workflows],
        window_s: float,
        interval_s: float,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.store = store
        self.workflows = workflows
        self.window_s = window_s
        self.interval_s = interval_s
        self.clock = clock
        self._models: dict[str, tuple[str, ForecastModel]] = {}  # tenant: (definitions, model)
        self._past: OrderedDict[tuple[str, str, dt.datetime], ForecastModel] = OrderedDict()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="threadline-forecaster", daemon=True)

    def model(self, tenant: str, as_of: dt.datetime | None = None) -> ForecastModel:
        """The model to forecast with now, or as of a past moment: learned from what was known then,
        as the backtest learns (the same question gets the same answer, whenever it is asked)."""
        workflows = self.workflows()
        digest = WorkflowParameters.of(workflows).digest
        if as_of is not None and as_of < self.clock() - dt.timedelta(seconds=PRESENT_S):
            return self._model_as_of(tenant, workflows, digest, as_of)
        known = self._models.get(tenant)
        if known is not None and known[0] == digest:
            return known[1]
        return self.learn(tenant, workflows, digest)

    def _model_as_of(
        self, tenant: str, workflows: Workflows, digest: str, as_of: dt.datetime
    ) -> ForecastModel:
        key = (tenant, digest, as_of)
        with self._lock:
            if (model := self._past.get(key)) is None:
                model = learn(self.store, workflows, tenant, as_of, self.window_s)
                self._past[key] = model
                while len(self._past) > MAX_PAST_MODELS:
                    self._past.popitem(last=False)
            self._past.move_to_end(key)
        return model

    def learn(
        self, tenant: str, workflows: Workflows | None = None, digest: str | None = None
    ) -> ForecastModel:
        workflows = workflows or self.workflows()
        digest = digest or WorkflowParameters.of(workflows).digest
        with self._lock:
            model = learn(self.store, workflows, tenant, self.clock(), self.window_s)
            self._models[tenant] = (digest, model)
        return model

    def start(self) -> Forecasts:
        if self.interval_s > 0:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(60)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                with Store.background():
                    for tenant in list(self._models):
                        self.learn(tenant)
            except StoreUnavailable as error:
                logger.warning("threadline: forecasts not learned again, the store is unavailable: %s", error)
            except Exception:
                logger.exception("threadline: learning the forecasts failed; the previous models stay")
