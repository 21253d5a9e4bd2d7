"""The alerting service the collector runs: evaluate the rules on a schedule, deliver what fires.

Two daemon threads, so a slow receiver never delays an evaluation and an evaluation never delays a
delivery: the evaluator (every ``THREADLINE_ALERT_INTERVAL`` seconds, or at once when an operator
acts) and the dispatcher (``delivery.Dispatcher``). Both only talk to the store through ``Store``.
Ingest never waits for an evaluation: the evaluator's reads are background work (the dashboard's
go first) and its writes run beside ingest's (``Store.beside_ingest``).

One evaluation, per tenant, as of now, reads what may have changed since the last one (its cursor
is stored, so a restart resumes from it; at most ``CYCLE_SPAN_INTERVALS`` intervals of arrivals at a
time), not history: the open transactions whose SLA ran out or
that may have become stuck since (time alone does that, read off the rollups before any rule runs),
the transactions with an event received or an operator's resolve or reopen since (only those make a
transaction fail, violate its workflow or leave a state), those active within a count rule's
window, and the subjects of the alerts firing when they changed (every one, every
``FIRING_RECHECK_S``). The gauges (Prometheus; the value-at-risk and count
rules total from them) read every transaction (``snapshot.read_parts``), at most once per
``GAUGES_SHARE`` times their own store time (every evaluation when that is cheap). A rule watches
from the first evaluation that sees it (``watches``): that evaluation reads every transaction once,
the same way, and what already met the rule is summarised on it, not fired. Its reads are background work: the
dashboard's reads go first. A later evaluation's reads, bounded by what changed, take a connection
after the dashboard's but then run at the same priority (``Store.promptly``).

Then measure every rule, compare with the alerts firing in the store, and write what changed: first
the notifications (the outbox), then the alerts. A crash between the two leaves notifications whose
alert is not recorded; the next evaluation fires the same alert with the same id (see
``records``), so its notifications are the same rows: nothing is lost, nothing is sent twice.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace

import orjson
from prometheus_client import CollectorRegistry

from ..alert_rules import PER_TRANSACTION, AlertRule
from ..models import SchemaDrift, State, TransactionSummary
from ..schema import LATEST
from ..state import drift, snapshot
from ..state.forecast import ForecastModel
from ..state.rules import WorkflowParameters
from ..storage import Store, StoreUnavailable
from ..workflows import Workflows
from . import evaluate, payloads, records, watches
from .delivery import Dispatcher
from .evaluate import Candidate, GaugeRow, Match
from .metrics import AlertingMetrics, Snapshot
from .records import AlertRecord, NotificationRecord
from .settings import AlertSettings

logger = logging.getLogger("threadline.collector")

STATES: tuple[State, ...] = ("completed", "failed", "stuck", "in_progress")
# An evaluation that derives the state (no snapshot kept) covers what was received this long before
# it: a batch being stored while it read may have been received before it started. One that reads
# the snapshot covers what its mark does (``snapshot.margin`` covers such batches there).
CHANGED_MARGIN = dt.timedelta(seconds=60)
# The gauges read every transaction: at most this share of the store's time goes to them.
GAUGES_SHARE = 20
# A first evaluation builds and matches every transaction needing attention (232,000 at 10 M events:
# about 12 s of CPU quiet, 30 s under load, in the collector's own process): it works at most this
# share of the time, so that the dashboard's first pages, which come at the same moment, are not
# slowed (overload bench: its 30 s at full speed put the first round's pages at 9-14 s). Its answers
# do not change: every state is read at once, as of the evaluation's moment.
FIRST_EVALUATION_SHARE = 0.25
# A firing per-transaction alert stops holding when its transaction changes (``evaluate.CHANGED``:
# an event, an operator's action, a reconciliation, a link into another), or when what judges it
# does (the definitions, a forecast model learned again, retention): a later evaluation measures
# the firing ones that changed, and every one at least this often and whenever the definitions
# change. Measuring every one at every cycle grew with the alerts left open (14,000 after the
# overload bench's 5 minutes, half of each cycle's reads), however little had changed.
FIRING_RECHECK_S = 300.0
# A later evaluation covers at most this many intervals of arrivals, or twice what the last one
# took (so that it always gains on them), beyond the ``CHANGED_MARGIN`` a derived evaluation leaves;
# one that is behind (after a first evaluation's minutes, or a stop) covers them in steps, each
# begun right after the last, so that no cycle's reads grow with how far behind it is (overload
# bench: the cycle after a first evaluation, 3 paced minutes of arrivals at 3,700 events/s, read its
# candidates in 5.4 s of store time; the others in 1.2-3.1 s). One interval: a step reads what a
# regular cycle reads (with two, 3.6 s of candidates under load, and over 5 s in all).
CYCLE_SPAN_INTERVALS = 1


@dataclass
class _Figures:
    """The gauge values of one evaluation, gathered tenant by tenant."""

    transactions: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    breached: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    resolved: Counter[tuple[str, str]] = field(default_factory=Counter)
    value_at_risk: dict[tuple[str, str, str], float] = field(default_factory=dict)
    firing: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def add(self, tenant: str, rows: Sequence[evaluate.GaugeRow]) -> None:
        for workflow in {row.workflow for row in rows}:
            for state in STATES:  # every state of a workflow, so a count that drops to 0 reads 0
                self.transactions[tenant, workflow, state] += 0
                self.breached[tenant, workflow, state] += 0
            self.resolved[tenant, workflow] += 0
        for row in rows:
            self.transactions[tenant, row.workflow, row.state] += row.transactions
            self.breached[tenant, row.workflow, row.state] += row.breached
            self.resolved[tenant, row.workflow] += row.resolved
            if row.currency and row.at_risk_transactions:
                key = (tenant, row.workflow, row.currency)
                self.value_at_risk[key] = self.value_at_risk.get(key, 0.0) + row.at_risk

    def snapshot(self) -> Snapshot:
        return Snapshot(
            transactions=dict(self.transactions),
            breached=dict(self.breached),
            resolved=dict(self.resolved),
            value_at_risk=dict(self.value_at_risk),
            firing=dict(self.firing),
            evaluated_at=time.time(),
        )


class Pacer:
    """Called after each unit of work, it pauses so that the work takes at most ``share`` of the
    time, a pause at least every ``quantum_s`` of work (and none once ``stop`` is set)."""

    CHECK_EVERY = 256  # units between looks at the clock

    def __init__(
        self,
        share: float,
        stop: threading.Event,
        quantum_s: float = 0.1,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.share = share
        self.stop = stop
        self.quantum_s = quantum_s
        self.clock = clock
        self._units = 0
        self._working_since = clock()

    def __call__(self) -> None:
        self._units += 1
        if self._units % self.CHECK_EVERY:
            return
        worked = self.clock() - self._working_since
        if worked >= self.quantum_s:
            self.stop.wait(worked * (1 / self.share - 1))
            self._working_since = self.clock()


@dataclass(frozen=True)
class Outcome:
    """What one evaluation changed."""

    fired: list[AlertRecord] = field(default_factory=list)
    resolved: list[AlertRecord] = field(default_factory=list)


class Alerting:
    """Given what it uses: the store, the workflow definitions in force (``workflows()``: a reload
    replaces them) and the Prometheus registry its gauges join."""

    def __init__(
        self,
        store: Store,
        workflows: Callable[[], Workflows],
        registry: CollectorRegistry,
        settings: AlertSettings | None = None,
        environ: Mapping[str, str] = os.environ,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        forecasts: Callable[[str], ForecastModel] | None = None,
    ) -> None:
        self.store = store
        self.workflows = workflows
        self.forecasts = forecasts  # a tenant's forecast model, for predicted_breach rules
        self.settings = settings or AlertSettings.from_environment()
        self.environ = environ
        self.metrics = AlertingMetrics(registry)
        self.clock = clock  # one clock for evaluating and sending: group timers compare the two
        self.dispatcher = Dispatcher(
            store, self.settings, lambda: self.workflows().alerts, self.metrics, environ, clock
        )
        self.last_evaluation: dt.datetime | None = None
        # Per tenant, read from the store once, then kept here as this thread changes them.
        self._watches: dict[str, dict[tuple[str, str], watches.Watch]] = {}
        self._cursors: dict[str, dt.datetime | None] = {}
        self._gauges: dict[str, list[GaugeRow]] = {}
        self._gauges_due = 0.0  # time.monotonic() of the next refresh
        # Per tenant, the schema drifts last found and when (``drift_interval``).
        self._drifts: dict[str, tuple[float, Sequence[SchemaDrift]]] = {}
        # Per tenant, when every firing alert was last measured (time.monotonic()), and with which
        # definitions (``FIRING_RECHECK_S``).
        self._firing_measured: dict[str, tuple[float, str]] = {}
        self._behind: set[str] = set()  # tenants whose last evaluation covered less than there was
        self._cycle_s = 0.0  # how long the last evaluation of what changed took (wall time)
        # When this process first evaluated each rule (name, definition): where its watch starts.
        self._first_seen: dict[tuple[str, str], dt.datetime] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="threadline-alert-evaluator", daemon=True)

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Alerting:
        if not self.settings.enabled:
            logger.warning(
                "threadline: THREADLINE_ALERT_INTERVAL=0: alert rules are not evaluated, nothing is sent"
            )
            return self
        for receiver in self.dispatcher.receivers().values():
            if receiver.resolve_url(self.environ) is None:
                logger.warning(
                    "threadline: receiver %s has no URL ($%s is not set): its notifications are skipped",
                    receiver.name,
                    receiver.url_env,
                )
        self.dispatcher.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(60)
        self.dispatcher.stop()

    def request_evaluation(self) -> None:
        """Evaluate now (an operator resolved something) instead of at the next tick, gauges too."""
        self._gauges_due = 0.0
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            started = time.monotonic()
            try:
                # The dashboard's reads go first; ingest's writes never wait for its own.
                with Store.background(), Store.beside_ingest():
                    self.evaluate()
            except StoreUnavailable as error:
                logger.warning("threadline: alert evaluation skipped, the store is unavailable: %s", error)
            except Exception:
                logger.exception("threadline: alert evaluation failed; trying again at the next interval")
            elapsed = time.monotonic() - started
            # Never back to back, even when one evaluation takes longer than the interval; behind,
            # the next step only after a tenth of it.
            wait = 0.0 if self._behind else self.settings.interval - elapsed
            self._wake.wait(max(wait, 0.1 * self.settings.interval))

    # --- one evaluation -----------------------------------------------------------------------

    def evaluate(self, as_of: dt.datetime | None = None) -> Outcome:
        """Evaluate every rule for every tenant as of ``as_of`` (now), store and send what changed."""
        moment = (as_of or self.clock()).astimezone(dt.UTC)
        workflows = self.workflows()
        figures = _Figures()
        outcome = Outcome()
        for rule in workflows.alerts:
            self._first_seen.setdefault((rule.name, watches.definition(rule)), moment)
        began = time.monotonic()
        refresh_gauges = began >= self._gauges_due
        gauges_time = 0.0
        read_all = False  # for a tenant, every transaction (a rule seen for the first time)
        with Store.timed() as spent:
            for tenant in records.tenants(self.store):
                if self._stop.is_set():  # stopping: what is left waits for the next start
                    break
                if refresh_gauges or tenant not in self._gauges:
                    with Store.timed() as reading:
                        self._gauges[tenant] = evaluate.gauge_rows(self.store, workflows, tenant, moment)
                    gauges_time += reading.seconds
                figures.add(tenant, self._gauges[tenant])
                # A cycle reads what changed, a bounded piece that on-call waits on: at the API's
                # priority. A first evaluation and the gauges read everything: niced.
                unwatched = self._unwatched(tenant, workflows.alerts)
                first = _reads_all(unwatched)
                with nullcontext() if first else Store.promptly():
                    self._evaluate_tenant(tenant, workflows, moment, figures, outcome, unwatched)
                read_all |= first
        if refresh_gauges:
            self._gauges_due = time.monotonic() + max(self.settings.interval, GAUGES_SHARE * gauges_time)
        self.metrics.evaluated(spent.seconds - gauges_time, gauges_time if refresh_gauges else None, read_all)
        self.metrics.update(figures.snapshot())
        self.last_evaluation = moment
        if not read_all:
            self._cycle_s = time.monotonic() - began
        if outcome.fired or outcome.resolved:
            logger.info(
                "threadline: alerts: %d fired, %d resolved (%s)",
                len(outcome.fired),
                len(outcome.resolved),
                ", ".join(sorted({record.rule for record in outcome.fired + outcome.resolved})),
            )
            self.dispatcher.wake()
        return outcome

    def watching(self, tenant: str) -> dict[str, watches.Watch]:
        """The watches of the rules in force for a tenant, by rule name (none before its first
        evaluation)."""
        known = self._watches.get(tenant, {})
        in_force = {(rule.name, watches.definition(rule)) for rule in self.workflows().alerts}
        return {rule: watch for (rule, definition), watch in known.items() if (rule, definition) in in_force}

    def _candidates(
        self,
        tenant: str,
        workflows: Workflows,
        as_of: dt.datetime,
        since: dt.datetime | None,
        firing: Sequence[str],
        kept: bool,
        pace: Callable[[], None],
        until: dt.datetime = LATEST,
    ) -> list[Candidate]:
        """The transactions the rules are measured on: every one needing attention when ``since``
        is None (a first evaluation, built at ``pace``), else what may have changed since: what
        time alone made late or stuck, what an event or an operator changed, what failed within a
        count rule's window, and ``firing``, the subjects of alerts firing (to see them resolve). ``kept``:
        as the state snapshot holds them (those changed since its mark are left out: the next
        evaluation measures them). ``until``: what changed from then on is left to the next one."""
        store = self.store
        model = self.model(tenant, workflows)
        if since is None:
            return [
                candidate
                for scope, part in snapshot.read_parts(store, workflows, tenant)
                for candidate in evaluate.attention(
                    store, workflows, tenant, as_of, scope, model=model, pace=pace, **part
                )
            ]
        rules = workflows.alerts
        longest_lead = max((r.lead_s or 0.0 for r in rules if r.when == "predicted_breach"), default=0)
        window = max((r.window_s or 0.0 for r in rules if r.when == "stuck_or_failed_count_above"), default=0)
        longest_wait = max((r.duration_s or 0.0 for r in rules if r.when == "stuck_longer_than"), default=0)
        return evaluate.attention(
            store,
            workflows,
            tenant,
            as_of,
            f"({evaluate.DUE}) OR ({evaluate.CHANGED}) OR ({evaluate.ACTIVE_IN_WINDOW})",
            state_scope=f"({evaluate.DUE_STATE}) OR ({evaluate.CHANGED}) OR ({evaluate.FAILED_IN_WINDOW})",
            model=model,
            longest_wait=longest_wait,
            longest_lead=longest_lead,
            changed_since=since,
            changed_until=until,
            derive_changed=not kept,
            active_since=as_of - dt.timedelta(seconds=window) if window else as_of,
            ids=sorted(firing),
        )

    def _drifts_of(self, tenant: str, as_of: dt.datetime) -> Sequence[SchemaDrift]:
        """The tenant's schema drifts: looked for again once ``drift_interval`` has passed since the
        last look (drift is judged over hours of events, and a look costs up to 50 statements)."""
        looked = self._drifts.get(tenant)
        if looked is None or time.monotonic() - looked[0] >= self.settings.drift_interval:
            looked = (time.monotonic(), drift.detect(self.store, tenant, as_of).drifts)
            self._drifts[tenant] = looked
        return looked[1]

    def model(self, tenant: str, workflows: Workflows) -> ForecastModel | None:
        """The tenant's forecast model, when a predicted_breach rule needs it."""
        if self.forecasts is None or not any(r.when == "predicted_breach" for r in workflows.alerts):
            return None
        return self.forecasts(tenant)

    def _unwatched(self, tenant: str, rules: Sequence[AlertRule]) -> list[AlertRule]:
        """The rules in force that the tenant's watches do not know yet (its watches and cursor
        loaded at the first call)."""
        if tenant not in self._watches:
            self._watches[tenant] = watches.load(self.store, tenant)
            self._cursors[tenant] = watches.cursor(self.store, tenant)
        known = self._watches[tenant]
        return [rule for rule in rules if (rule.name, watches.definition(rule)) not in known]

    def _evaluate_tenant(
        self,
        tenant: str,
        workflows: Workflows,
        as_of: dt.datetime,
        figures: _Figures,
        outcome: Outcome,
        unwatched: Sequence[AlertRule],
    ) -> None:
        """Evaluate one tenant's rules; ``unwatched``: those its watches do not know yet
        (``_unwatched``), which make it read every transaction (``_reads_all``)."""
        store = self.store
        rules = workflows.alerts
        current = records.firing(store, tenant)
        since = None if _reads_all(unwatched) else self._cursors[tenant]
        firing = [record.subject for record in current.values() if record.condition in PER_TRANSACTION]
        # What this evaluation covers, so the next looks only at what was received since: up to the
        # snapshot's mark when a later evaluation reads the snapshot alone (the state of what changed
        # since is not derived again here: the keeper does that once for every reader); else all
        # but the last moments (a first evaluation derives every state, to start the watches exactly).
        digest = WorkflowParameters.of(workflows).digest
        mark = snapshot.readable_mark(store, tenant, digest) if since is not None else None
        covered = min(mark.covered_until - snapshot.margin(store), as_of) if mark else as_of - CHANGED_MARGIN
        longest = max(CYCLE_SPAN_INTERVALS * self.settings.interval, 2 * self._cycle_s)
        span = CHANGED_MARGIN + dt.timedelta(seconds=longest)
        until = LATEST  # what changed after is left to the next evaluation
        if since is not None and longest and covered - since > span:
            covered = until = since + span
            self._behind.add(tenant)
        else:
            self._behind.discard(tenant)
        pace = Pacer(FIRST_EVALUATION_SHARE, self._stop) if since is None else evaluate.unpaced
        kept = mark is not None
        last = self._firing_measured.get(tenant)
        every_firing = last is None or last[1] != digest or time.monotonic() - last[0] >= FIRING_RECHECK_S
        measured_firing = firing if every_firing else []  # a first evaluation reads every one anyway
        candidates = (
            self._candidates(tenant, workflows, as_of, since, measured_firing, kept, pace, until)
            if rules
            else []
        )
        if every_firing:
            self._firing_measured[tenant] = (time.monotonic(), digest)
        if any(rule.dimensions for rule in rules):
            candidates = evaluate.with_dimensions(store, workflows, tenant, candidates)
        measured = evaluate.evaluate_rules(
            rules,
            candidates,
            lambda rule: evaluate.error_rates(store, tenant, rule, as_of),
            as_of,
            self._gauges.get(tenant, []),
            functools.partial(self._drifts_of, tenant, as_of),
            pace,
        )
        holding = {key: match for key, match in measured.items() if match.holds}
        holding = self._watch(tenant, rules, unwatched, holding, candidates, current, as_of)
        # A firing alert whose transaction was not measured keeps firing until an evaluation measures
        # it: left out of the read (an event received since the mark), or unchanged since the last
        # evaluation while not every firing one is measured.
        deferred = evaluate.received_since(store, tenant, covered) if mark and firing else set()
        if firing and since is not None and not measured_firing:
            in_scope = evaluate.changed_since(store, tenant, since, until)
            deferred |= set(firing) - in_scope - {c.summary.correlation_id for c in candidates}
        unmeasured = {
            key
            for key, record in current.items()
            if record.condition in PER_TRANSACTION and key[1] in deferred
        }
        new = [key for key in holding if key not in current]
        cleared = [record for key, record in current.items() if key not in holding and key not in unmeasured]
        for key, record in current.items():
            if key in holding or key in unmeasured:
                figures.firing[tenant, record.rule, record.severity] += 1
        for key in new:
            figures.firing[tenant, holding[key].rule.name, holding[key].rule.severity] += 1
        if not new and not cleared:
            self._covered(tenant, covered)
            return

        # The transactions the notifications list: behind each new alert, and behind each one that
        # resolves (as measured now for an aggregate rule, its own transaction for the others).
        limit = self.settings.max_transactions
        behind = {tx for key in new for tx in holding[key].transactions[:limit]}
        for record in cleared:
            now_measured = measured.get((record.rule, record.subject))
            behind |= set((now_measured.transactions if now_measured else record.transactions)[:limit])
        states = {c.summary.correlation_id: c for c in candidates if c.summary.correlation_id in behind}
        states |= evaluate.summaries(
            store, workflows, tenant, as_of, behind - states.keys(), self.model(tenant, workflows)
        )
        keys = evaluate.keys_of(store, tenant, behind)
        url = self.settings.dashboard_url

        def views(transactions: Sequence[str]) -> list[dict[str, object]]:
            return [
                payloads.transaction_view(states[tx].summary, keys.get(tx, {}), states[tx].resolved, url)
                for tx in transactions[:limit]
                if tx in states
            ]

        by_name = {rule.name: rule for rule in rules}
        alerts: list[AlertRecord] = []
        notifications: list[NotificationRecord] = []
        previous = records.episodes(store, tenant, new)
        for key in new:
            match = holding[key]
            alert = self._fired(tenant, match, previous.get(key, 0), as_of)
            payload = payloads.alert_payload(
                event="firing",
                alert=alert,
                rule=match.rule,
                summary=match.summary,
                figures=match.figures,
                transactions=views(match.transactions),
                transactions_total=len(match.transactions),
                dashboard_url=url,
                labels=payloads.labels_of(alert, match.rule, _summary(match, states)),
            )
            alert = replace(alert, context=orjson.dumps(payload).decode())
            notifications += self._notifications(alert, "firing", match.rule, payload, as_of)
            alerts.append(alert)
            outcome.fired.append(alert)
        for record in cleared:
            rule = by_name.get(record.rule)
            if rule is None:  # removed from the definitions: nobody to tell, it just stops firing
                alerts.append(record.resolved(as_of, "the rule is no longer defined"))
                outcome.resolved.append(alerts[-1])
                continue
            summary, reason, measures, transactions = _resolution(
                record, measured.get((record.rule, record.subject)), states
            )
            resolved = record.resolved(as_of, reason)
            payload = payloads.alert_payload(
                event="resolved",
                alert=resolved,
                rule=rule,
                summary=summary,
                figures=measures,
                transactions=views(transactions),
                transactions_total=len(transactions),
                dashboard_url=url,
                labels=payloads.stored_labels(record) or payloads.labels_of(record, rule, None),
            )
            notifications += self._notifications(resolved, "resolved", rule, payload, as_of)
            alerts.append(resolved)
            outcome.resolved.append(resolved)
        records.save_notifications(store, notifications)  # the outbox first: see the module docstring
        records.save_alerts(store, alerts)
        self._covered(tenant, covered)

    def _covered(self, tenant: str, covered: dt.datetime) -> None:
        """Everything received before ``covered`` is evaluated and its alerts stored: the next
        evaluation starts from there (written last, so a crash before means looking at the same
        changes again)."""
        watches.save_cursor(self.store, tenant, covered)
        self._cursors[tenant] = covered

    def _watch(
        self,
        tenant: str,
        rules: Sequence[AlertRule],
        unwatched: Sequence[AlertRule],
        holding: Mapping[tuple[str, str], Match],
        candidates: Sequence[Candidate],
        current: Mapping[tuple[str, str], AlertRecord],
        as_of: dt.datetime,
    ) -> dict[tuple[str, str], Match]:
        """Start the watches of rules seen for the first time (what already meets them is their
        baseline), let go of the baseline transactions that no longer meet their rule, and leave
        out of ``holding`` what is still in a baseline: history, not news."""
        store = self.store
        known = self._watches[tenant]

        def meeting(rule: AlertRule) -> set[str]:
            return {subject for name, subject in holding if name == rule.name}

        for rule in unwatched:
            since = self._first_seen.get((rule.name, watches.definition(rule)), as_of)
            history: set[str] = set()
            if rule.per_transaction and (history := meeting(rule)):
                # News since the rule was first seen (a tenant's first events may come later), and
                # what is already alerted on (by an earlier definition), are not history.
                history -= {subject for name, subject in current if name == rule.name}
                history -= evaluate.received_since(store, tenant, since)
            watch = watches.started(rule, since, history)
            watches.save_started(store, tenant, watch)
            known[rule.name, watch.definition] = watch
            if watch.already_holding:
                logger.info("threadline: alert rule %s (tenant %r): %s", rule.name, tenant, watch.summary)
        measured = {candidate.summary.correlation_id for candidate in candidates}
        in_baseline: set[tuple[str, str]] = set()
        for rule in rules:
            watch = known[rule.name, watches.definition(rule)]
            if not watch.baseline:
                continue
            # Only what was measured is known not to meet it any more (none stops by time alone).
            left = (watch.baseline & measured) - meeting(rule)
            if left:
                watches.save_left(store, tenant, watch, left)
                watch.baseline -= left
            in_baseline.update((rule.name, subject) for subject in watch.baseline)
        return {key: match for key, match in holding.items() if key not in in_baseline}

    def _fired(self, tenant: str, match: Match, episode: int, as_of: dt.datetime) -> AlertRecord:
        rule = match.rule
        return AlertRecord(
            tenant=tenant,
            alert_id=records.alert_id(tenant, rule.name, match.subject, episode),
            rule=rule.name,
            condition=rule.when,
            severity=rule.severity,
            workflow=rule.workflow or "",
            subject=match.subject,
            status="firing",
            summary=match.summary,
            transactions=tuple(match.transactions[: self.settings.max_transactions]),
            context="",
            fired_at=as_of,
            resolved_at=None,
            resolution="",
            version=records.next_version(),
        )

    @staticmethod
    def _notifications(
        alert: AlertRecord, event: str, rule: AlertRule, payload: Mapping[str, object], now: dt.datetime
    ) -> list[NotificationRecord]:
        body = orjson.dumps(payload).decode()
        return [
            NotificationRecord(
                tenant=alert.tenant,
                notification_id=records.notification_id(alert.alert_id, event, receiver.name),
                alert_id=alert.alert_id,
                rule=alert.rule,
                receiver=receiver.name,
                receiver_type=receiver.type,
                event=event,
                payload=body,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                last_error="",
                created_at=now,
                delivered_at=None,
                version=0,  # below any attempt's version: writing it again never undoes one
            )
            for receiver in rule.receivers
        ]


def _reads_all(unwatched: Sequence[AlertRule]) -> bool:
    """Whether an evaluation reads every transaction: a new per-transaction rule needs every one
    once, to know what already meets it."""
    return any(rule.per_transaction for rule in unwatched)


def _summary(match: Match, states: Mapping[str, Candidate]) -> TransactionSummary | None:
    """The transaction a per-transaction alert is about, as measured now."""
    candidate = states.get(match.subject) if match.rule.per_transaction else None
    return candidate.summary if candidate else None


def _resolution(
    record: AlertRecord, measured: Match | None, states: Mapping[str, Candidate]
) -> tuple[str, str, Mapping[str, object], tuple[str, ...]]:
    """Why an alert resolved: (summary, reason, figures, transactions) for its notification."""
    if record.condition in PER_TRANSACTION:
        candidate = states.get(record.subject)
        if candidate is None:
            reason = "no transaction has this key any more (it joined another one through an alias)"
        elif candidate.resolved:
            reason = "resolved by an operator"
        elif candidate.summary.state == "completed":
            reason = "the transaction completed"
        elif candidate.summary.state == "failed":
            reason = "the transaction failed"
        else:
            reason = "the condition cleared"
        workflow = candidate.summary.workflow if candidate else record.workflow
        return f"{workflow} {record.subject}: {reason}".strip(), reason, {}, (record.subject,)
    if measured is None:
        return (
            f"{record.rule} {record.subject}: no longer measured".strip(),
            "nothing left to measure",
            {},
            (),
        )
    return measured.summary, "back within the limit", measured.figures, measured.transactions
