"""What a simulation did: counts per workflow, fault and outcome, and the showcase transactions.

The showcases (``examples``) name real keys, so a test or a person can look them up in the API:
``examples["late_alias"].aliases["erp.sales_order"]`` is an ``SO-`` number that resolves to the
opportunity's transaction.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from .faults import Fault
from .planner import PlannedEvent, Transaction


@dataclass(frozen=True)
class TransactionRef:
    """One planned transaction, as the collector should come to show it."""

    label: str
    workflow: str
    correlation_id: str
    aliases: Mapping[str, str]  # alias kind -> key
    fault: str
    outcome: str  # as planned: "completed", "failed" or "open" (stops early: stuck once idle long enough)
    started_at: dt.datetime
    event_ids: tuple[str, ...]  # every distinct event id, in event-time order
    slowed_steps: tuple[str, ...]  # steps a slow-system incident stretched
    twin: str | None = None  # duplicate_entity: the key of the same customer's second transaction


@dataclass
class SimulationStats:
    seed: int
    anchor: dt.datetime  # where history ends and the live part begins
    backfill_transactions: int = 0
    live_transactions: int = 0
    events_sent: int = 0  # business events handed to the SDK, duplicate deliveries included
    duplicates_sent: int = 0  # second deliveries of an event (same event_id)
    by_workflow: Counter[str] = field(default_factory=Counter)
    by_fault: Counter[str] = field(default_factory=Counter)  # drawn faults, plus "slow_system" when hit
    by_outcome: Counter[str] = field(default_factory=Counter)
    backfill_seconds: float = 0.0
    live_seconds: float = 0.0
    delivered: bool | None = None  # all reached the collector (False: the rest waits in the spool)
    examples: dict[str, TransactionRef] = field(default_factory=dict)  # showcase label -> transaction

    @property
    def transactions(self) -> int:
        return self.backfill_transactions + self.live_transactions

    def planned(self, transaction: Transaction, anchor: float | None = None) -> None:
        """Count ``transaction``: each of its transactions (a customer onboarded twice is two) is in
        the back-fill when one of its events is delivered by ``anchor`` (None: all is live)."""
        timeline = transaction.timeline
        delivered: dict[str, bool] = {}
        for event in transaction.events:
            delivered[event.transaction] = delivered.get(event.transaction, False) or (
                anchor is not None and event.deliver_at <= anchor
            )
        self.backfill_transactions += sum(delivered.values())
        self.live_transactions += len(delivered) - sum(delivered.values())
        self.by_workflow[timeline.spec.workflow] += 1
        self.by_fault[timeline.fault.value] += 1
        if timeline.slowed:
            self.by_fault[Fault.SLOW_SYSTEM.value] += 1
        self.by_outcome[timeline.outcome] += 1
        if timeline.spec.label:
            self.examples[timeline.spec.label] = reference(transaction)

    def sent(self, event: PlannedEvent) -> None:
        self.events_sent += 1
        self.duplicates_sent += event.redelivery

    def summary(self) -> str:
        faults = ", ".join(
            f"{name} {count}" for name, count in sorted(self.by_fault.items()) if name != "none"
        )
        return (
            f"seed {self.seed}: {self.transactions} transactions ({self.backfill_transactions} back-filled, "
            f"{self.live_transactions} live), {self.events_sent} events ({self.duplicates_sent} duplicate "
            f"deliveries); faults: {faults}; "
            f"back-fill {self.backfill_seconds:.1f}s, live {self.live_seconds:.1f}s"
            + ("; some events wait in the spool" if self.delivered is False else "")
        )


def reference(transaction: Transaction) -> TransactionRef:
    timeline = transaction.timeline
    seen: dict[str, None] = {}
    own = [event for event in transaction.events if event.transaction == transaction.correlation_id]
    for event in sorted(own, key=lambda e: (e.at, e.redelivery)):
        seen.setdefault(event.event_id)
    twin = next(
        (e.transaction for e in transaction.events if e.transaction != transaction.correlation_id), None
    )
    return TransactionRef(
        label=timeline.spec.label,
        workflow=timeline.spec.workflow,
        correlation_id=transaction.correlation_id,
        aliases=dict(transaction.aliases),
        fault=timeline.fault.value,
        outcome=timeline.outcome,
        started_at=dt.datetime.fromtimestamp(timeline.spec.start, dt.UTC),
        event_ids=tuple(seen),
        slowed_steps=timeline.slowed,
        twin=twin,
    )
