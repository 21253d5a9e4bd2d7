"""How the dashboard reads alerts for people: severity colours, rules in words, deliveries in a line.

The API answers with rule conditions, parameters and notification records; a person on call needs
"stuck longer than 2h" and "pager failed after 3 attempts: HTTP 500". The Alerts page, its detail
panel and the tests all word them through here, so they read the same everywhere.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from . import formatting as fmt
from .schema import Alert, Notification

# Conditions that fire once per transaction: their subject is a correlation id (collector/alert_rules.py).
PER_TRANSACTION = frozenset(
    {"sla_breached", "stuck_longer_than", "failed", "violation", "mismatch", "duplicate", "predicted_breach"}
)
SEVERITIES = {"critical": "Critical", "warning": "Warning", "info": "Info"}
SEVERITY_ICONS = {
    "critical": "exclamation-octagon-fill",
    "warning": "exclamation-triangle-fill",
    "info": "info-circle-fill",
}
DELIVERY_ICONS = {
    "delivered": "check-circle-fill",
    "failed": "x-circle-fill",
    "pending": "arrow-repeat",
    "skipped": "dash-circle",
    "silenced": "bell-slash",
}


def per_transaction(alert: Alert) -> bool:
    """The alert is about one transaction (its subject is the key), not a count, a system or a currency."""
    return alert["condition"] in PER_TRANSACTION and bool(alert["subject"])


def describe_rule(when: str, parameters: Mapping[str, Any]) -> str:
    """A rule's condition in words: "Stuck longer than 2h", "netsuite error rate above 5% over 15m"."""
    window = fmt.duration(parameters["window_seconds"]) if "window_seconds" in parameters else "its window"
    if when == "sla_breached":
        return "SLA breached"
    if when == "stuck_longer_than":
        return f"Stuck longer than {fmt.duration(parameters.get('duration_seconds'))}"
    if when == "failed":
        return "Failed"
    if when == "violation":
        return "Governance violation"
    if when == "mismatch":
        return "Systems disagree on a value"
    if when == "duplicate":
        return "Possible duplicate"
    if when == "predicted_breach":
        return f"Predicted SLA breach within {fmt.duration(parameters.get('lead_seconds'))}"
    if when == "stuck_or_failed_count_above":
        return f"More than {fmt.count(int(parameters.get('threshold', 0)))} stuck or failed in {window}"
    if when == "system_error_rate_above":
        system = parameters.get("system") or "Any system's"
        text = f"{system} error rate above {float(parameters.get('percent', 0)):g}% over {window}"
        events = int(parameters.get("min_events", 1))
        return text + (f" (at least {events} events)" if events > 1 else "")
    if when == "value_at_risk_above":
        currency = parameters.get("currency")
        limit = fmt.money(float(parameters.get("amount", 0)), str(currency) if currency else None)
        return f"Value at risk above {limit}" + ("" if currency else " in any currency")
    return fmt.state_label(when)


def duration_seconds(alert: Alert, now: dt.datetime) -> float | None:
    """How long it fired: until it resolved, or until now."""
    fired = fmt.parse_time(alert["fired_at"])
    ended = fmt.parse_time(alert["resolved_at"]) or now
    return (ended - fired).total_seconds() if fired else None


def delivery_phrase(notification: Notification) -> str:
    """What became of one notification: "delivered", "failed after 3 attempts", "retrying (2 attempts)"."""
    attempts = notification["attempts"]
    plural = "s" if attempts != 1 else ""
    status = notification["status"]
    if status == "delivered":
        phrase = "delivered" + (f" after {attempts} attempts" if attempts > 1 else "")
    elif status == "failed":
        phrase = f"failed after {attempts} attempt{plural}"
    elif status == "pending":
        phrase = f"retrying ({attempts} attempt{plural} so far)" if attempts else "pending"
    elif status == "silenced":
        phrase = "silenced"
    else:
        phrase = "skipped"
    return ("resolution " + phrase) if notification["event"] == "resolved" else phrase


def delivery_lines(notifications: list[Notification]) -> list[dict[str, str]]:
    """One line per receiver, from its latest notification; the tooltip lists every one of them."""
    by_receiver: dict[str, list[Notification]] = {}
    for notification in notifications:
        by_receiver.setdefault(notification["receiver"], []).append(notification)
    lines = []
    for receiver, sent in sorted(by_receiver.items()):
        sent.sort(key=lambda n: (n["created_at"], n["event"] == "resolved"))
        latest = sent[-1]
        history = "; ".join(
            f"{n['event']}: {delivery_phrase(n).removeprefix('resolution ')}"
            + (f" ({n['last_error']})" if n["last_error"] else "")
            for n in sent
        )
        lines.append(
            {
                "receiver": receiver,
                "status": latest["status"],
                "text": delivery_phrase(latest),
                "error": latest["last_error"] if latest["status"] != "delivered" else "",
                "title": f"{receiver} ({latest['receiver_type']}) — {history}",
            }
        )
    return lines


_FIGURES: dict[str, str] = {
    "sla_seconds": "SLA",
    "breached_by_seconds": "Breached by",
    "waiting_seconds": "Waiting for",
    "violations": "Violations",
    "count": "Stuck or failed",
    "threshold": "Threshold",
    "error_rate_percent": "Error rate",
    "value_at_risk": "Value at risk",
}


def figure_facts(figures: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The figures an alert fired with, as (label, value) a person reads: ("Breached by", "1h 5m")."""
    facts = []
    for name, value in figures.items():
        if name == "currency" and "value_at_risk" in figures:
            continue  # shown with the amount
        label = _FIGURES.get(name) or fmt.state_label(name.removesuffix("_seconds").removesuffix("_percent"))
        if not isinstance(value, int | float) or isinstance(value, bool):
            text = str(value)
        elif name.endswith("_seconds"):
            text = fmt.duration(value)
        elif name.endswith("_percent"):
            text = f"{value:.3g}%"
        elif name == "value_at_risk":
            text = fmt.money(value, figures.get("currency"))
        else:
            text = fmt.count(int(value)) if value == int(value) else f"{value:,.2f}"
        facts.append((label, text))
    return facts
