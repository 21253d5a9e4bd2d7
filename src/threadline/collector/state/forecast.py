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
    minMap(step_first_ok) AS done
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


def position_of(workflow: str, step: str, samples: Sequence[Sample], recent_count: int = RECENT) -> Position:
    """The model of one position from its samples (the latest ``recent_count`` of them)."""
    recent = sorted(samples, key=lambda s: s.completed_at)[-recent_count:]
    if len(recent) < MIN_HISTORY:
        return Position(workflow, step, len(recent))
    steps = sorted(s.waited for s in recent)
    waits: list[float] = []
    remaining: list[float] = []
    for q in WAIT_QUANTILES:
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
class ForecastModel:
    """Every position's model, as learned at ``learned_at`` from completions before it."""

    learned_at: dt.datetime
    positions: Mapping[tuple[str, str], Position] = field(default_factory=dict)

    def position(self, workflow: str, step: str) -> Position | None:
        return self.positions.get((workflow, step))

    @property
    def parameters(self) -> dict[str, Any]:
        """The usable positions as bound parameters of ``FORECAST`` (parallel arrays)."""
        usable = [p for p in self.positions.values() if p.usable]
        return {
            "fc_positions": [(p.workflow, p.step) for p in usable],
            "fc_waits": [list(p.waits) for p in usable],
            "fc_remaining": [list(p.remaining) for p in usable],
        }


def learn(
    store: Store, workflows: Workflows, tenant: str, now: dt.datetime, window_s: float, recent: int = RECENT
) -> ForecastModel:
    """The model from the transactions completed in the ``window_s`` seconds before ``now`` (the
    latest ``recent`` per position)."""
    rows = store.rows(
        RECENT_ROLLUPS,
        {
            "tenant": tenant,
            "since": now - dt.timedelta(seconds=window_s),
            "until": now,
            "limit": MAX_TRANSACTIONS * max(len(workflows), 1),
            "workflows": [d.name for d in workflows],
        },
    )
    cut = now.timestamp()
    collected: dict[tuple[str, str], list[Sample]] = {}
    for row in rows:
        definition = workflows.get(row["workflow"])
        if definition is None:
            continue
        done = {step: utc(at).timestamp() for step, at in row["done"].items()}
        for step, sample in samples_of(definition, utc(row["started_at"]).timestamp(), done).items():
            if sample.completed_at <= cut:  # what was known at ``now`` only
                collected.setdefault((definition.name, step), []).append(sample)
    positions = {
        (d.name, s.name): position_of(d.name, s.name, collected.get((d.name, s.name), []), recent)
        for d in workflows
        for s in d.steps
    }
    return ForecastModel(now, positions)


# --- In the engine: over the rows of ``rules.summary_sql`` --------------------------------------
# Per step waited on: its position's index (0: no usable model), the wait so far, the longest
# threshold it has waited past, and the median remaining time from that threshold less the time
# waited since (never below 0); past the last threshold and longer than that median, where history
# says no more, that median from now. The ETA is the latest over the steps waited on.
FORECAST_COLUMNS = """
    arrayMap(s -> indexOf({fc_positions:Array(Tuple(String, String))}, (workflow, s)), waiting) AS fc_at,
    state IN ('in_progress', 'stuck') AND notEmpty(waiting) AND NOT has(fc_at, 0) AS forecastable,
    arrayMap(due -> greatest(dateDiff('microsecond', due, {as_of:DateTime64(6, 'UTC')}) / 1e6, 0), due_since)
        AS fc_waited,
    arrayMap((k, waited) -> arrayLastIndex(w -> w <= waited, {fc_waits:Array(Array(Float64))}[k]),
             fc_at, fc_waited) AS fc_threshold,
    if(forecastable,
       arrayMax(arrayMap((k, i, waited) ->
                             if(i = length({fc_waits:Array(Array(Float64))}[k])
                                  AND {fc_remaining:Array(Array(Float64))}[k][i]
                                      <= waited - {fc_waits:Array(Array(Float64))}[k][i],
                                {fc_remaining:Array(Array(Float64))}[k][i],
                                greatest({fc_remaining:Array(Array(Float64))}[k][i]
                                         - (waited - {fc_waits:Array(Array(Float64))}[k][i]), 0)),
                         fc_at, fc_threshold, fc_waited)),
       NULL) AS fc_remaining_seconds,
    if(sla_limit > 0, started_at + toIntervalMicrosecond(toInt64(sla_limit * 1e6)), NULL) AS sla_deadline,
    {as_of:DateTime64(6, 'UTC')} + toIntervalMicrosecond(toInt64(ifNull(fc_remaining_seconds, 0) * 1e6))
        AS fc_eta_time,
    forecastable AND sla_limit > 0 AND fc_eta_time > assumeNotNull(sla_deadline) AS breach_expected,
    if(breach_expected,
       greatest(dateDiff('microsecond', {as_of:DateTime64(6, 'UTC')}, assumeNotNull(sla_deadline)) / 1e6, 0),
       NULL) AS breach_lead_seconds
"""
FORECASTED = f"SELECT *, {FORECAST_COLUMNS} FROM ({{summary}})"


def no_forecast(why: str) -> Forecast:
    return Forecast(eta=None, breach_expected=False, lead_seconds=None, reason=f"no forecast: {why}")


def forecast_of(row: Mapping[str, Any], model: ForecastModel, as_of: dt.datetime) -> Forecast:
    """The forecast of one row of ``FORECASTED``, with its reason in words."""
    waiting = list(row["waiting"])
    if row["state"] not in ("in_progress", "stuck"):
        return no_forecast(f"the transaction is {row['state']}")
    if not waiting:
        return no_forecast("it waits on no step of its workflow's definition")
    positions = [model.position(row["workflow"], step) for step in waiting]
    for step, position in zip(waiting, positions, strict=True):
        if position is None or not position.usable:
            history = position.history if position else 0
            return no_forecast(
                f"{history} completed {row['workflow']} transactions waited on {step} recently, "
                f"{MIN_HISTORY} needed"
            )
    eta = utc(row["fc_eta_time"])
    parts = [
        f"{p.step} usually takes {duration_text(p.step_p50)} (p50), {duration_text(p.step_p80)} (p80) here; "
        f"from it, completion takes {duration_text(p.remaining_p50)} (p50)"
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
    expect = f"expected to complete in {duration_text((eta - as_of).total_seconds())}"
    return Forecast(
        eta=eta,
        breach_expected=expected,
        lead_seconds=row["breach_lead_seconds"] if expected else None,
        reason="; ".join([*parts, f"{expect}, {clock}"]),
    )


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
