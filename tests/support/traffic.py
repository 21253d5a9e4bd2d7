"""Seeded random business events over the example workflows, with the faults integrations have.

``Generator`` is the traffic of the state tests: steps skipped, repeated, failed and retried, out
of order, duplicated, keyed by an alias before or after the alias is announced (so events move
between transactions), some stamped in the future. ``Traffic`` adds the cases the state contract
spells out one by one (see tests/support/reference_state.py): workflows no definition names,
transactions whose earliest event belongs to another workflow, ties in event time, redeliveries
that differ from the first delivery or come under the other key, alias chains, conflicting claims
of an alias, merged transactions, ``pending`` events, amounts without a currency, steps the
definition does not know, and a failure at the very moment of completion.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterator
from typing import Any

from threadline.collector.workflows import Workflows

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
SYSTEMS = ("salesforce", "cpq", "netsuite", "stripe", "zendesk", "mulesoft")


class Generator:
    """Seeded business events over the example workflows, with the faults integrations have."""

    def __init__(self, workflows: Workflows, seed: int, now: dt.datetime = NOW) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.workflows = list(workflows)
        self.sent: list[dict[str, Any]] = []
        self.keys: list[str] = []
        self.aliases: dict[str, str] = {}  # alias → the key that announces it

    def transaction(self, number: int) -> list[dict[str, Any]]:
        rng = self.rng
        definition = rng.choice(self.workflows)
        key = f"T{number:05d}"
        self.keys.append(key)
        start = self.now - dt.timedelta(hours=rng.uniform(0, 72))
        steps = [s for s in definition.steps if rng.random() < 0.85]
        alias = f"SO-{number:05d}" if rng.random() < 0.3 else None
        events = []
        moment = start
        for index, step in enumerate(steps):
            moment += dt.timedelta(minutes=rng.expovariate(1 / 40))
            if rng.random() < 0.02:
                moment = self.now + dt.timedelta(minutes=rng.uniform(1, 90))  # a sender's clock runs ahead
            for attempt in range(1, (3 if rng.random() < 0.15 else 1) + 1):
                status = rng.choice(["error", "retrying"]) if rng.random() < 0.15 else "ok"
                event: dict[str, Any] = {
                    "event_id": uuid.UUID(int=rng.getrandbits(128)).hex,
                    "correlation_id": key,
                    "workflow": definition.name,
                    "step": step.name,
                    "system": step.system or rng.choice(SYSTEMS),
                    "timestamp": (moment + dt.timedelta(seconds=attempt)).isoformat(),
                    "status": status,
                    "attempt": attempt,
                }
                if status == "error":
                    event["error"] = {"kind": rng.choice(["timeout", "business"]), "message": "refused"}
                if rng.random() < 0.3:
                    event["amount"] = round(rng.uniform(100, 90_000), 2)
                    event["currency"] = rng.choice(["USD", "EUR"])
                if alias is not None:
                    if index == 1 and attempt == 1:
                        event["aliases"] = {"erp.sales_order": alias}
                        self.aliases[alias] = key
                    elif index >= 2 and rng.random() < 0.5:
                        event["correlation_id"] = alias  # the ERP only knows its own number
                events.append(event)
        if rng.random() < 0.1 and events:
            events.append(dict(rng.choice(events)))  # redelivered
        return events

    def batches(self, transactions: int, size: int) -> Iterator[list[dict[str, Any]]]:
        """Events of all transactions, shuffled (arrival order is not event order), in batches."""
        events = [e for n in range(transactions) for e in self.transaction(n)]
        self.rng.shuffle(events)
        for start in range(0, len(events), size):
            batch = events[start : start + size]
            self.sent.extend(batch)
            yield batch


UNDEFINED_WORKFLOW = "legacy-import"  # no definition names it


def _time(event: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(event["timestamp"])


class Traffic(Generator):
    """The Generator's traffic plus every case the state contract spells out (see the module)."""

    def event_id(self) -> str:
        return uuid.UUID(int=self.rng.getrandbits(128)).hex

    def transaction(self, number: int) -> list[dict[str, Any]]:
        rng = self.rng
        if rng.random() < 0.04:
            return self.undefined_workflow(number)
        events = super().transaction(number)
        if not events:
            return events
        key = self.keys[-1]
        alias = f"SO-{number:05d}" if f"SO-{number:05d}" in self.aliases else None
        extra: list[dict[str, Any]] = []
        for event in events:
            if event["status"] == "ok" and rng.random() < 0.03:
                event["status"] = "pending"  # seen, not done
            if rng.random() < 0.04:
                event["amount"] = round(rng.uniform(10, 5_000), 2)
                event.pop("currency", None)  # an amount without a currency
        if rng.random() < 0.04:
            extra.append(self.unknown_step(events))
        if rng.random() < 0.06:
            extra.append(self.other_workflow(events))
        if rng.random() < 0.10:
            extra.append(self.tie(events))
        if rng.random() < 0.06:
            extra.append(self.changed_redelivery(events))
        if rng.random() < 0.08:
            self.fail_as_it_completes(events)
        if alias is not None:
            if rng.random() < 0.4:
                self.alias_chain(events, alias, number)
            if rng.random() < 0.15:
                extra += self.redelivered_under_alias(events, key, alias)
        elif rng.random() < 0.08:
            self.claim_alias_of_another(events, key)
        if rng.random() < 0.02:
            self.merge_another(events, key)
        return events + extra

    def undefined_workflow(self, number: int) -> list[dict[str, Any]]:
        key = f"L{number:05d}"
        self.keys.append(key)
        moment = self.now - dt.timedelta(hours=self.rng.uniform(0, 72))
        events = []
        for step in ("legacy.order.imported", "legacy.order.checked", "legacy.order.archived"):
            if self.rng.random() < 0.3:
                continue
            moment += dt.timedelta(minutes=self.rng.expovariate(1 / 200))
            events.append(
                {
                    "event_id": self.event_id(),
                    "correlation_id": key,
                    "workflow": UNDEFINED_WORKFLOW,
                    "step": step,
                    "system": "mulesoft",
                    "timestamp": moment.isoformat(),
                    "status": self.rng.choice(["ok", "ok", "error", "retrying"]),
                    "amount": round(self.rng.uniform(100, 9_000), 2),
                    "currency": "GBP",
                }
            )
        return events

    def unknown_step(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        """A step the definition does not know (progress all the same, for last_progress)."""
        base = self.rng.choice(events)
        return {
            **{k: v for k, v in base.items() if k not in ("aliases", "error", "amount", "currency")},
            "event_id": self.event_id(),
            "step": "crm.note.added",
            "system": "salesforce",
            "status": "ok",
            "attempt": 1,
            "timestamp": (_time(base) + dt.timedelta(minutes=self.rng.uniform(-20, 20))).isoformat(),
        }

    def other_workflow(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        """An event of another workflow in the transaction, around its start (maybe its earliest)."""
        first = min(events, key=_time)
        other = self.rng.choice([d for d in self.workflows if d.name != first["workflow"]])
        step = other.steps[0]
        return {
            "event_id": self.event_id(),
            "correlation_id": first["correlation_id"],
            "workflow": other.name,
            "step": step.name,
            "system": step.system or "salesforce",
            "timestamp": (_time(first) + dt.timedelta(minutes=self.rng.uniform(-30, 30))).isoformat(),
            "status": "ok",
        }

    def tie(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        """The same step at the same moment under another event id: the later event id decides
        amount and currency, the earlier one the workflow (here another one, half the time)."""
        base = min(events, key=_time) if self.rng.random() < 0.5 else self.rng.choice(events)
        twin = {k: v for k, v in base.items() if k != "aliases"}
        twin["event_id"] = self.event_id()
        twin["amount"] = round(self.rng.uniform(100, 90_000), 2)
        twin["currency"] = self.rng.choice(["USD", "EUR", "CHF"])
        if base is min(events, key=_time) and self.rng.random() < 0.5:
            twin["workflow"] = self.rng.choice([d.name for d in self.workflows if d.name != base["workflow"]])
        return twin

    def changed_redelivery(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        """The same event id again with other content: the first sent is the one that counts."""
        base = self.rng.choice(events)
        again = dict(base)
        if base["status"] == "ok":
            again["status"] = "error"
            again["error"] = {"kind": "business", "message": "redelivered differently"}
        else:
            again["status"] = "ok"
            again.pop("error", None)
        again["amount"] = round(self.rng.uniform(100, 90_000), 2)
        again["currency"] = "USD"
        return again

    def fail_as_it_completes(self, events: list[dict[str, Any]]) -> None:
        """A fail_on step at the moment a complete_on step is done: failed (failed_at <= completed_at)."""
        definition = next(d for d in self.workflows if d.name == events[0]["workflow"])
        completing = [e for e in events if e["step"] in definition.complete_on and e["status"] == "ok"]
        failing = [e for e in events if e["step"] in definition.fail_on]
        if completing and failing:
            failing[0]["timestamp"] = min(completing, key=_time)["timestamp"]

    def alias_chain(self, events: list[dict[str, Any]], alias: str, number: int) -> None:
        """An event keyed by the alias announces another alias, and a later event uses only that."""
        by_alias = [e for e in events if e["correlation_id"] == alias and not e.get("aliases")]
        plain = [e for e in events if e["correlation_id"] != alias and not e.get("aliases")]
        if not by_alias or not plain:
            return
        invoice = f"INV-{number:05d}"
        self.rng.choice(by_alias)["aliases"] = {"billing.invoice": invoice}
        self.rng.choice(plain)["correlation_id"] = invoice
        self.aliases[invoice] = alias

    def redelivered_under_alias(
        self, events: list[dict[str, Any]], key: str, alias: str
    ) -> list[dict[str, Any]]:
        """An event sent again under the other key of the transaction, with the same event id."""
        plain = [e for e in events if e["correlation_id"] == key and not e.get("aliases")]
        if not plain:
            return []
        return [{**self.rng.choice(plain), "correlation_id": alias}]

    def claim_alias_of_another(self, events: list[dict[str, Any]], key: str) -> None:
        """This transaction announces an alias another one announces too: the first claim wins."""
        taken = sorted(a for a, owner in self.aliases.items() if a.startswith("SO-") and owner != key)
        plain = [e for e in events if e["correlation_id"] == key and not e.get("aliases")]
        if taken and plain:
            self.rng.choice(plain)["aliases"] = {"erp.sales_order": self.rng.choice(taken)}

    def merge_another(self, events: list[dict[str, Any]], key: str) -> None:
        """This transaction announces another transaction's own key as its alias: the two merge."""
        others = [k for k in self.keys if k != key]
        plain = [e for e in events if e["correlation_id"] == key and not e.get("aliases")]
        if others and plain:
            self.rng.choice(plain)["aliases"] = {"crm.merged": self.rng.choice(others)}
