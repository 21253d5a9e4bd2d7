"""The state rules, derived the slow, obvious way: in plain Python, from the events that were sent.

This is the contract (docs/architecture.md, "Where each rule is decided") written as directly as
it reads, with no ClickHouse and nothing of the collector but the workflow definitions. A test
feeds it the same batches, in the same order, as a real collector and compares the answers.

Keys: every event has a correlation id and may announce aliases ``{kind: alias}``. Batches are
processed in the order sent; within one batch every alias announcement comes first (in event
order), then the batch's events. Announcing alias A for key K, with T the transaction of K (a key
never mapped is its own transaction): nothing if A is T or already maps to T; a conflict, ignored,
if A already maps to another transaction (the first claim wins); a conflict, ignored, if both T and
A have started (an event of a step with no prerequisite, not a failure step, among the events sent
so far and the batch's, under any key mapping to each); otherwise A, and every key that mapped to
transaction A, now maps to T. An event belongs to the transaction its correlation id
maps to after all batches; a repeated event id is one event (the first sent).

The answers have the shapes of the query API (``collector/models.py``), with datetimes as
``datetime`` objects: ``summary`` is a ``TransactionSummary``, ``detail`` adds ``aliases`` and
``events``, ``page`` is the operations queue, ``overview`` the per-workflow counts and
``process_map`` the directly-follows edges and variants.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from threadline.collector.workflows import Workflows

STATES = ("completed", "failed", "stuck", "in_progress")


def moment(value: str | dt.datetime) -> dt.datetime:
    """An RFC 3339 text (or an aware datetime) in UTC."""
    parsed = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return parsed.astimezone(dt.UTC)


def _default_error(sent: Mapping[str, Any]) -> dict[str, str] | None:
    """A failed event without an error object gets the documented default kind (README)."""
    return {"kind": "transient", "message": ""} if sent.get("status") == "error" else None


@dataclass(frozen=True)
class Event:
    """One business event as it was first sent, and where it came in the order of arrival."""

    event_id: str
    correlation_id: str
    workflow: str
    step: str
    system: str
    status: str
    timestamp: dt.datetime
    arrival: int  # position in everything sent, batch after batch, event after event
    attempt: int | None
    amount: float | None
    currency: str | None
    aliases: Mapping[str, str]
    error: Mapping[str, str] | None
    sent: Mapping[str, Any]

    @classmethod
    def of(cls, sent: Mapping[str, Any], arrival: int) -> Event:
        if not sent.get("event_id"):
            raise ValueError("the reference needs an event_id on every event")
        currency = sent.get("currency")
        return cls(
            event_id=sent["event_id"],
            correlation_id=sent["correlation_id"],
            workflow=sent["workflow"],
            step=sent["step"],
            system=sent["system"],
            status=sent.get("status", "ok"),
            timestamp=moment(sent["timestamp"]),
            arrival=arrival,
            attempt=sent.get("attempt"),
            amount=float(sent["amount"]) if sent.get("amount") is not None else None,
            currency=currency.upper() if currency else None,
            aliases=dict(sent.get("aliases") or {}),
            error=dict(sent["error"]) if sent.get("error") else _default_error(sent),
            sent=dict(sent),
        )

    @property
    def latest_key(self) -> tuple[dt.datetime, int]:
        return (self.timestamp, self.arrival)  # ties in event time: the order received


@dataclass(frozen=True)
class IngestCount:
    accepted: int
    duplicates: int


class Reference:
    """Everything sent so far, and every answer the rules give about it."""

    def __init__(self, workflows: Workflows) -> None:
        self.workflows = workflows
        self.events: dict[str, Event] = {}  # by event id: the first sent in each transaction
        self.transaction: dict[str, str] = {}  # key → transaction, for every key announced as an alias
        self.kinds: dict[str, str] = {}  # announced alias → its kind
        self.members: dict[str, set[str]] = defaultdict(set)  # transaction → keys that map to it
        self.arrivals = 0
        self.started_keys: set[str] = set()  # keys with an event of a start step among those kept
        # What the traffic exercised, so that a test can insist it still covers each case.
        self.coverage: Counter[str] = Counter()
        self._summaries: dict[tuple[int, dt.datetime], dict[str, dict[str, Any]]] = {}

    # --- Ingest ---------------------------------------------------------------------------------

    def send(self, batch: Sequence[Mapping[str, Any]]) -> IngestCount:
        """One acknowledged batch: its announcements first, then its events."""
        for sent in batch:
            for kind, alias in (sent.get("aliases") or {}).items():
                self.announce(sent["correlation_id"], kind, alias, batch)
        accepted = duplicates = 0
        for sent in batch:
            event = Event.of(sent, self.arrivals)
            self.arrivals += 1
            first = self.events.get(event.event_id)
            if first is not None and self.transaction_of(first.correlation_id) != self.transaction_of(
                event.correlation_id
            ):
                # The same id in another transaction is another transaction's event: kept apart.
                self.coverage["event id reused in another transaction"] += 1
                self.keep(f"{event.event_id}#{event.arrival}", event)
                accepted += 1
                continue
            if first is not None:
                duplicates += 1
                self.coverage["duplicate"] += 1
                if first.sent != event.sent:
                    self.coverage["duplicate with other content"] += 1
                if first.correlation_id != event.correlation_id:
                    self.coverage["duplicate under another key"] += 1
                continue
            if event.correlation_id in self.transaction:
                self.coverage["event keyed by a known alias"] += 1
            self.keep(event.event_id, event)
            accepted += 1

        return IngestCount(accepted=accepted, duplicates=duplicates)

    def keep(self, identity: str, event: Event) -> None:
        self.events[identity] = event
        if self.starts(event.workflow, event.step):
            self.started_keys.add(event.correlation_id)

    def transaction_of(self, key: str) -> str:
        return self.transaction.get(key, key)

    def announce(self, key: str, kind: str, alias: str, batch: Sequence[Mapping[str, Any]] = ()) -> None:
        into = self.transaction_of(key)
        current = self.transaction.get(alias)
        if alias == into or current == into:
            return
        if current is not None:
            self.coverage["alias conflict"] += 1
            return
        if self.started(into, batch) and self.started(alias, batch):
            self.coverage["alias of another started transaction refused"] += 1
            return
        if any(self.transaction_of(e.correlation_id) == alias for e in self.events.values()):
            self.coverage["alias announced after events keyed by it"] += 1
        if alias in self.members:
            self.coverage["transaction with aliases absorbed"] += 1
        for member in self.members.pop(alias, set()):
            self.transaction[member] = into
            self.members[into].add(member)
        self.transaction[alias] = into
        self.members[into].add(alias)
        self.kinds[alias] = kind

    def started(self, transaction: str, batch: Sequence[Mapping[str, Any]]) -> bool:
        keys = self.started_keys | {
            event["correlation_id"] for event in batch if self.starts(event["workflow"], event["step"])
        }
        return any(self.transaction_of(key) == transaction for key in keys)

    def starts(self, workflow: str, step: str) -> bool:
        definition = self.workflows.get(workflow)
        if definition is None:
            return False
        defined = definition.step(step)
        return defined is not None and not defined.after and step not in definition.fail_on

    # --- Transactions ---------------------------------------------------------------------------

    def grouped(self) -> dict[str, list[Event]]:
        """Every transaction's events (all of them, whatever their time), by transaction id."""
        transactions: dict[str, list[Event]] = defaultdict(list)
        for event in self.events.values():
            transactions[self.transaction_of(event.correlation_id)].append(event)
        return dict(transactions)

    def summaries(self, as_of: dt.datetime) -> dict[str, dict[str, Any]]:
        """Every transaction that exists as of ``as_of``, by transaction id."""
        cached = self._summaries.get((self.arrivals, as_of))
        if cached is not None:
            return cached
        answers = {}
        for transaction, events in self.grouped().items():
            summary = self.summary(transaction, events, as_of)
            if summary is not None:
                answers[transaction] = summary
        self._summaries = {(self.arrivals, as_of): answers, **self._summaries}
        return answers

    def summary(self, transaction: str, events: Iterable[Event], as_of: dt.datetime) -> dict[str, Any] | None:
        events = [event for event in events if event.timestamp <= as_of]
        if not events:
            return None
        first = min(events, key=lambda event: event.latest_key)
        started_at = first.timestamp
        last_activity = max(event.timestamp for event in events)
        definition = self.workflows.get(first.workflow)

        first_at: dict[str, dt.datetime] = {}
        first_ok: dict[str, dt.datetime] = {}
        for event in events:
            if event.step not in first_at or event.timestamp < first_at[event.step]:
                first_at[event.step] = event.timestamp
            if event.status != "ok":
                continue
            if event.step not in first_ok or event.timestamp < first_ok[event.step]:
                first_ok[event.step] = event.timestamp
        done = set(first_ok)

        failed_at = completed_at = None
        waiting: list[dict[str, Any]] = []
        missing: list[str] = []
        violations: list[dict[str, str | None]] = []
        if definition is not None:
            failed_at = min((first_at[s] for s in definition.fail_on if s in first_at), default=None)
            completed_at = min((first_ok[s] for s in definition.complete_on if s in done), default=None)
        if failed_at is not None:  # whenever it came: a failure after completion reverses it
            terminal = "failed"
        elif completed_at is not None:
            terminal = "completed"
        else:
            terminal = None

        if definition is not None:
            for step in definition.steps:
                if step.name in done or step.name in definition.fail_on:
                    continue
                later_done = bool(definition.successors(step.name) & done)
                if later_done:
                    missing.append(step.name)
                elif terminal is None and all(before in done for before in step.after):
                    due = max((first_ok[before] for before in step.after), default=started_at)
                    within = step.within_s or None
                    waiting.append(
                        {
                            "step": step.name,
                            "system": step.system or None,
                            "due_since": due,
                            "within_seconds": within,
                            "overdue": within is not None and (as_of - due).total_seconds() > within,
                        }
                    )
            for step in definition.steps:
                if step.name not in done:
                    continue
                for before in step.after:
                    if before not in done or first_ok[before] > first_ok[step.name]:
                        violations.append(
                            {"rule": "out_of_order", "step": step.name, "before": before, "after": None}
                        )
            if failed_at is not None:
                failing = min((first_at[s], s) for s in definition.fail_on if s in first_at)[1]
                violations += [
                    {"rule": "after_failure", "step": step, "before": None, "after": failing}
                    for step in sorted(done)
                    if first_ok[step] > failed_at and step not in definition.fail_on
                ]

        last_progress = max(first_ok.values(), default=started_at)
        if terminal is not None:
            state = terminal
        elif (
            definition is not None
            and waiting
            and as_of - last_progress >= dt.timedelta(seconds=definition.stuck_after_s)
        ):
            state = "stuck"
        else:
            state = "in_progress"

        limit = (definition.sla_s if definition is not None else None) or None
        end = {"completed": completed_at, "failed": failed_at}.get(state) or as_of
        elapsed = end - started_at
        breached = limit is not None and elapsed > dt.timedelta(seconds=limit)
        elapsed_s = max(elapsed.total_seconds(), 0.0)

        with_amount = [event for event in events if event.amount is not None]
        with_currency = [event for event in events if event.currency]
        return {
            "correlation_id": transaction,
            "workflow": first.workflow,
            "state": state,
            "started_at": started_at,
            "last_activity": last_activity,
            "completed_at": completed_at,
            "failed_at": failed_at,
            "waiting_on": waiting,
            "sla": {
                "limit_seconds": limit,
                "elapsed_seconds": elapsed_s,
                "breached": breached,
                "breached_by_seconds": max(elapsed_s - limit, 0.0) if limit else 0.0,
            },
            "missing_steps": missing,
            "violations": violations,
            "systems": sorted({event.system for event in events}),
            "amount": max(with_amount, key=lambda e: e.latest_key).amount if with_amount else None,
            "currency": max(with_currency, key=lambda e: e.latest_key).currency if with_currency else None,
            "event_count": len(events),
            "error_count": sum(1 for event in events if event.status == "error"),
            "retry_count": sum(
                1 for event in events if event.status == "retrying" or (event.attempt or 0) > 1
            ),
            "resolved": False,
        }

    def aliases_of(self, transaction: str) -> dict[str, set[str]]:
        """{kind: the aliases of that kind} announced for the transaction (usually one each)."""
        aliases: dict[str, set[str]] = defaultdict(set)
        for alias in self.members.get(transaction, ()):
            aliases[self.kinds[alias]].add(alias)
        return dict(aliases)

    def detail(self, key: str, as_of: dt.datetime) -> dict[str, Any] | None:
        """``GET /api/transactions/{key}``; None for 404. ``aliases`` holds sets (see aliases_of)."""
        transaction = self.transaction_of(key)
        events = self.grouped().get(transaction, [])
        summary = self.summary(transaction, events, as_of)
        if summary is None:
            return None
        shown = sorted(
            (event for event in events if event.timestamp <= as_of), key=lambda e: (e.timestamp, e.arrival)
        )
        return {**summary, "aliases": self.aliases_of(transaction), "events": shown}

    # --- Lists and aggregates -------------------------------------------------------------------

    def page(
        self,
        as_of: dt.datetime,
        workflow: str | None = None,
        state: str | None = None,
        breached: bool | None = None,
    ) -> list[dict[str, Any]]:
        """The operations queue: newest last activity first, ties by transaction id (descending)."""
        items = [
            summary
            for summary in self.summaries(as_of).values()
            if (workflow is None or summary["workflow"] == workflow)
            and (state is None or summary["state"] == state)
            and (breached is None or summary["sla"]["breached"] == breached)
        ]
        return sorted(items, key=lambda s: (s["last_activity"], s["correlation_id"]), reverse=True)

    def overview(
        self,
        as_of: dt.datetime,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        workflow: str = "",
    ) -> dict[str, dict[str, Any]]:
        """Per workflow, and in total under the key "", the counts of ``GET /api/overview``: of the
        transactions started between ``since`` and ``until`` (inclusive), of ``workflow`` if given."""
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for summary in self.summaries(as_of).values():
            if since is not None and summary["started_at"] < since:
                continue
            if until is not None and summary["started_at"] > until:
                continue
            if workflow and summary["workflow"] != workflow:
                continue
            groups[summary["workflow"]].append(summary)
            groups[""].append(summary)
        return {name: figures(summaries) for name, summaries in groups.items()}

    def process_map(self, workflow: str, tie_break: str = "arrival") -> dict[str, Any]:
        """Directly-follows edge counts and variant counts of one workflow, over every stored event.

        A transaction's trace is its events of that workflow in event-time order, ties in the order
        they arrived (``tie_break="event_id"``: by event id instead, to tell the two apart).
        """
        traces: dict[str, list[Event]] = defaultdict(list)
        for event in self.events.values():
            if event.workflow == workflow:
                traces[self.transaction_of(event.correlation_id)].append(event)
        edges: Counter[tuple[str, str]] = Counter()
        variants: Counter[tuple[str, ...]] = Counter()
        tied = 0
        for events in traces.values():
            events.sort(key=lambda e: (e.timestamp, e.arrival if tie_break == "arrival" else 0, e.event_id))
            steps = tuple(event.step for event in events)
            variants[steps] += 1
            edges.update(itertools.pairwise(steps))
            at: dict[dt.datetime, set[str]] = defaultdict(set)
            for event in events:
                at[event.timestamp].add(event.step)
            tied += any(len(names) > 1 for names in at.values())
        return {"transactions": len(traces), "edges": edges, "variants": variants, "tied": tied}

    # --- Helpers for picking interesting moments ------------------------------------------------

    def stuck_boundaries(self) -> list[tuple[str, dt.datetime]]:
        """(transaction, as_of): an open, waiting transaction exactly ``stuck_after`` after its last progress.

        Found without the stuck rule itself, so that a wrong rule still gets these moments to answer.
        """
        found = []
        waits = sorted({definition.stuck_after_s for definition in self.workflows})
        for transaction, events in sorted(self.grouped().items()):
            progress = {e.timestamp for e in events if e.status == "ok"} | {min(e.timestamp for e in events)}
            for candidate in sorted(progress):
                for wait in waits:
                    as_of = candidate + dt.timedelta(seconds=wait)
                    at = self.summary(transaction, events, as_of)
                    definition = self.workflows.get(at["workflow"]) if at else None
                    if (
                        at is not None
                        and definition is not None
                        and definition.stuck_after_s == wait
                        and at["state"] in ("stuck", "in_progress")
                        and at["waiting_on"]
                        and _last_progress(at, events, as_of) == candidate
                    ):
                        found.append((transaction, as_of))
                        break
                else:
                    continue
                break
        return found

    def sla_boundaries(self) -> list[tuple[str, dt.datetime]]:
        """(transaction, as_of) where an open transaction's SLA clock reads exactly its limit."""
        found = []
        for transaction, events in sorted(self.grouped().items()):
            started = min(events, key=lambda e: e.latest_key)
            definition = self.workflows.get(started.workflow)
            if definition is None or not definition.sla_s:
                continue
            as_of = started.timestamp + dt.timedelta(seconds=definition.sla_s)
            at = self.summary(transaction, events, as_of)
            if at is not None and at["state"] in ("stuck", "in_progress"):
                found.append((transaction, as_of))
        return found


def _last_progress(summary: Mapping[str, Any], events: Iterable[Event], as_of: dt.datetime) -> dt.datetime:
    first_ok: dict[str, dt.datetime] = {}
    for event in events:
        if event.timestamp <= as_of and event.status == "ok":
            first_ok[event.step] = min(first_ok.get(event.step, event.timestamp), event.timestamp)
    return max(first_ok.values(), default=summary["started_at"])


def figures(summaries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The counts of one ``WorkflowFigures`` row, and the cycle times it takes percentiles of."""
    total = len(summaries)
    count = Counter(summary["state"] for summary in summaries)
    breached = sum(1 for summary in summaries if summary["sla"]["breached"])
    with_sla = sum(1 for summary in summaries if summary["sla"]["limit_seconds"])
    at_risk: dict[str, list[float]] = defaultdict(list)
    for summary in summaries:
        if (
            (summary["state"] == "stuck" or summary["sla"]["breached"])
            and summary["amount"] is not None
            and summary["currency"]
        ):
            at_risk[summary["currency"]].append(summary["amount"])
    return {
        "transactions": total,
        **{state: count[state] for state in STATES},
        "breached": breached,
        "with_violations": sum(1 for summary in summaries if summary["violations"]),
        "resolved": 0,
        # Stuck or past the SLA, each once (the reference has no operators: none is resolved).
        "at_risk": sum(
            1 for summary in summaries if summary["state"] == "stuck" or summary["sla"]["breached"]
        ),
        "completion_rate": count["completed"] / total if total else None,
        "sla_attainment": 1 - breached / with_sla if with_sla else None,
        "value_at_risk": {
            currency: {"amount": sum(amounts), "transactions": len(amounts)}
            for currency, amounts in at_risk.items()
        },
        "cycle_times": sorted(
            (summary["completed_at"] - summary["started_at"]).total_seconds()
            for summary in summaries
            if summary["state"] == "completed"
        ),
    }
