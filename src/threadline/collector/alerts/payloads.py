"""What receivers are sent: the generic webhook JSON, and its Slack-compatible rendering.

A notification must let someone act without opening anything else: which rule, how bad, which
transactions (with every key the business knows them by), where each waits and since when, and a
link into the dashboard. The generic payload is built once, when the alert fires or resolves, and
stored in the outbox; each receiver type renders it when it is sent.

Generic webhook body (``schema: threadline.alert/v1``)::

    {"schema": "threadline.alert/v1", "status": "firing", "notification_id": "...", "tenant": "acme",
     "summary": "quote-to-cash OPP-1042 breached its 4h SLA by 1h12m, waiting on ...",
     "alert": {"id": "...", "rule": "q2c-sla-breach", "condition": "sla_breached", "severity": "critical",
               "workflow": "quote-to-cash", "subject": "OPP-1042", "description": null, "parameters": {},
               "fired_at": "...", "resolved_at": null, "resolution": null, "link": "http://.../alerts?alert=..."},
     "figures": {"sla_seconds": 14400, "breached_by_seconds": 4320},
     "transactions_total": 1,
     "transactions": [{"correlation_id": "OPP-1042", "keys": {"erp.sales_order": "SO-88812"},
                       "workflow": "quote-to-cash", "state": "in_progress", "resolved_by_operator": false,
                       "started_at": "...", "last_activity": "...",
                       "waiting_on": [{"step": "billing.subscription.activated", "system": "stripe",
                                       "due_since": "...", "overdue": true}],
                       "sla": {...}, "violations": [], "missing_steps": [],
                       "amount": 48000, "currency": "USD",
                       "link": "http://localhost:8050/transactions/OPP-1042"}]}

``alert.labels`` (rule, severity, workflow, system, currency, subject) are what notifications are
grouped by and silences match. A receiver is sent one notification per group (``groups``), which
lists the alerts that fired or resolved since the group's last one, each as above::

    {"schema": "threadline.alert-group/v1", "status": "firing", "notification_id": "...",
     "tenant": "acme", "receiver": "ops-webhook",
     "group": {"key": "...", "labels": {"rule": "q2c-sla-breach"}, "link": "http://.../alerts?rule=..."},
     "summary": "q2c-sla-breach: 12 firing (12 new)", "firing": 12, "new": 12, "resolved": 0,
     "repeat": false, "alerts": [{"status": "firing", "summary": "...", "alert": {...},
                                  "figures": {...}, "transactions_total": 1, "transactions": [...]}]}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import orjson

from ..alert_rules import AlertRule
from ..models import TransactionSummary
from ..state import drift
from .records import AlertRecord

SCHEMA = "threadline.alert/v1"
GROUP_SCHEMA = "threadline.alert-group/v1"
SLACK_BLOCKS = 45  # sections of alert lines in one Slack message (Slack takes 50 blocks)
SLACK_TRANSACTIONS = 10  # listed in a Slack message; the rest are counted
_SLACK_TEXT_LIMIT = 2900  # Slack refuses a section text over 3000 characters
_SEVERITY_ICONS = {"critical": ":red_circle:", "warning": ":warning:", "info": ":information_source:"}


def transaction_link(dashboard_url: str, key: str) -> str:
    return f"{dashboard_url}/transactions/{quote(key, safe='')}"


def alert_link(dashboard_url: str, alert_id: str) -> str:
    return f"{dashboard_url}/alerts?alert={alert_id}"


def transaction_view(
    summary: TransactionSummary, keys: Mapping[str, str], resolved: bool, dashboard_url: str
) -> dict[str, Any]:
    """One transaction as a notification shows it: its keys, state, where it waits, its value."""
    return {
        "correlation_id": summary.correlation_id,
        "keys": dict(keys),
        "workflow": summary.workflow,
        "state": summary.state,
        "resolved_by_operator": resolved,
        "started_at": summary.started_at.isoformat(),
        "last_activity": summary.last_activity.isoformat(),
        "waiting_on": [
            {
                "step": step.step,
                "system": step.system,
                "due_since": step.due_since.isoformat(),
                "overdue": step.overdue,
            }
            for step in summary.waiting_on
        ],
        "sla": summary.sla.model_dump(mode="json"),
        "violations": [violation.model_dump(mode="json") for violation in summary.violations],
        "missing_steps": list(summary.missing_steps),
        "amount": summary.amount,
        "currency": summary.currency,
        "link": transaction_link(dashboard_url, summary.correlation_id),
    }


def labels_of(
    alert: AlertRecord, rule: AlertRule | None, summary: TransactionSummary | None
) -> dict[str, str]:
    """An alert's labels (``alert_rules.LABELS``): for a transaction, its workflow, the system it
    waits on and its currency; for an aggregate rule, the rule's, or the system or currency measured."""
    system = currency = ""
    workflow = alert.workflow
    if summary is not None:
        workflow = summary.workflow
        system = next((step.system for step in summary.waiting_on if step.system), "")
        currency = summary.currency or ""
    elif alert.condition == "system_error_rate_above":
        system = alert.subject
    elif alert.condition == "schema_drift":
        system = drift.system_of(alert.subject)
    elif alert.condition == "value_at_risk_above":
        currency = alert.subject
    if rule is not None:
        system = system or rule.system or ""
        currency = currency or rule.currency or ""
    return {
        "rule": alert.rule,
        "severity": alert.severity,
        "workflow": workflow,
        "system": system,
        "currency": currency,
        "subject": alert.subject,
    }


def stored_labels(alert: AlertRecord) -> dict[str, str]:
    """The labels an alert fired with (none for an alert fired before alerts had labels)."""
    if not alert.context:
        return {}
    labels: dict[str, str] = orjson.loads(alert.context).get("alert", {}).get("labels") or {}
    return labels


def alert_payload(
    *,
    event: str,
    alert: AlertRecord,
    rule: AlertRule | None,
    summary: str,
    figures: Mapping[str, Any],
    transactions: Sequence[Mapping[str, Any]],
    transactions_total: int,
    dashboard_url: str,
    labels: Mapping[str, str],
) -> dict[str, Any]:
    """The generic payload of one alert event (``firing`` or ``resolved``)."""
    return {
        "schema": SCHEMA,
        "status": event,
        "tenant": alert.tenant,
        "summary": summary,
        "alert": {
            "id": alert.alert_id,
            "rule": alert.rule,
            "condition": alert.condition,
            "severity": alert.severity,
            "workflow": alert.workflow or None,
            "subject": alert.subject,
            "description": rule.description if rule else None,
            "parameters": rule.parameters() if rule else {},
            "dimensions": dict(rule.dimensions) if rule else {},
            "fired_at": alert.fired_at.isoformat(),
            "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
            "resolution": alert.resolution or None,
            "link": alert_link(dashboard_url, alert.alert_id),
            "labels": dict(labels),
        },
        "figures": dict(figures),
        "transactions_total": transactions_total,
        "transactions": list(transactions),
    }


def _slack_escape(text: object) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_transaction(item: Mapping[str, Any]) -> str:
    keys = ", ".join(f"{kind} {alias}" for kind, alias in item["keys"].items())
    waiting = "; ".join(
        f"waiting on {w['step']}" + (f" ({w['system']})" if w["system"] else "") + f" since {w['due_since']}"
        for w in item["waiting_on"]
    )
    parts = [f"<{item['link']}|{_slack_escape(item['correlation_id'])}>"]
    parts.append(_slack_escape(f"{item['workflow']}, {item['state'].replace('_', ' ')}"))
    if keys:
        parts.append(_slack_escape(f"({keys})"))
    if item.get("amount") is not None and item.get("currency"):
        parts.append(_slack_escape(f"{item['currency']} {item['amount']:,.2f}"))
    if waiting:
        parts.append(_slack_escape(waiting))
    return "• " + " · ".join(parts)


def slack_message(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message (``text`` plus Block Kit ``blocks``) for the payload."""
    alert = payload["alert"]
    firing = payload["status"] == "firing"
    icon = _SEVERITY_ICONS.get(alert["severity"], ":bell:") if firing else ":white_check_mark:"
    title = f"{icon} {'FIRING' if firing else 'RESOLVED'} [{alert['severity']}] {alert['rule']}"
    headline = payload["summary"] + (f" ({alert['resolution']})" if alert["resolution"] else "")
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"*{_slack_escape(title)}*\n{_slack_escape(headline)}"[:_SLACK_TEXT_LIMIT],
            },
        }
    ]
    shown = payload["transactions"][:SLACK_TRANSACTIONS]
    if shown:
        lines = [_slack_transaction(item) for item in shown]
        hidden = payload["transactions_total"] - len(shown)
        if hidden > 0:
            lines.append(f"… and {hidden} more")
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:_SLACK_TEXT_LIMIT]}}
        )
    context = (
        f"<{alert['link']}|Open in Threadline> · rule `{_slack_escape(alert['rule'])}` · {alert['condition']}"
    )
    if payload["tenant"]:
        context += f" · tenant {_slack_escape(payload['tenant'])}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": f"{title}: {headline}", "blocks": blocks}


def group_link(dashboard_url: str, labels: Mapping[str, str]) -> str:
    """The Alerts page filtered as far as its filters reach the group's labels."""
    query = "&".join(
        f"{name}={quote(labels[name], safe='')}"
        for name in ("rule", "workflow", "severity")
        if labels.get(name)
    )
    return f"{dashboard_url}/alerts" + (f"?{query}" if query else "")


def group_payload(
    *,
    tenant: str,
    receiver: str,
    key: str,
    labels: Mapping[str, str],
    alerts: Sequence[Mapping[str, Any]],
    firing: int,
    repeat: bool,
    dashboard_url: str,
) -> dict[str, Any]:
    """One notification of a group: ``alerts`` are the alert payloads it tells of (new and resolved
    since the group's last notification; every one still firing when ``repeat``); ``firing``: how
    many of the group's alerts fire now."""
    new = sum(1 for alert in alerts if alert["status"] == "firing")
    resolved = len(alerts) - new
    named = ", ".join(f"{value}" for value in labels.values() if value) or "every alert"
    parts = [f"{firing} firing"]
    if new and not repeat:
        parts.append(f"{new} new")
    if resolved:
        parts.append(f"{resolved} resolved")
    return {
        "schema": GROUP_SCHEMA,
        "status": "firing" if firing else "resolved",
        "tenant": tenant,
        "receiver": receiver,
        "group": {"key": key, "labels": dict(labels), "link": group_link(dashboard_url, labels)},
        "summary": f"{named}: {', '.join(parts)}" + (" (still firing)" if repeat else ""),
        "firing": firing,
        "new": 0 if repeat else new,
        "resolved": resolved,
        "repeat": repeat,
        "alerts": [{k: v for k, v in alert.items() if k not in ("schema", "tenant")} for alert in alerts],
    }


_SEVERITY_ORDER = ("critical", "warning", "info")


def _slack_alert(alert: Mapping[str, Any]) -> str:
    about = alert["alert"]
    link = alert["transactions"][0]["link"] if len(alert["transactions"]) == 1 else about["link"]
    subject = about["subject"] or about["rule"]
    mark = ":white_check_mark: " if alert["status"] == "resolved" else ""
    return f"• {mark}<{link}|{_slack_escape(subject)}> {_slack_escape(alert['summary'])}"


def slack_group_message(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message for a group's notification: a headline, then one line per
    alert it tells of, in as many sections as Slack takes."""
    firing = payload["status"] == "firing"
    severities = [alert["alert"]["severity"] for alert in payload["alerts"]]
    severity = min(
        severities, key=lambda s: _SEVERITY_ORDER.index(s) if s in _SEVERITY_ORDER else 9, default=""
    )
    icon = _SEVERITY_ICONS.get(severity, ":bell:") if firing else ":white_check_mark:"
    title = f"{icon} {'FIRING' if firing else 'RESOLVED'} [{severity or 'info'}] {payload['summary']}"
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*{_slack_escape(title)}*"[:_SLACK_TEXT_LIMIT]},
        }
    ]
    section: list[str] = []
    size = 0
    alerts = payload["alerts"]
    shown = 0
    for alert in alerts:
        line = _slack_alert(alert)[:_SLACK_TEXT_LIMIT]
        if size + len(line) + 1 > _SLACK_TEXT_LIMIT:
            if len(blocks) > SLACK_BLOCKS:
                break
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(section)}})
            section, size = [], 0
        section.append(line)
        size += len(line) + 1
        shown += 1
    if shown < len(alerts):
        section.append(f"… and {len(alerts) - shown} more")
    if section:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(section)}})
    group = payload["group"]
    context = f"<{group['link']}|Open in Threadline> · receiver `{_slack_escape(payload['receiver'])}`"
    if payload["tenant"]:
        context += f" · tenant {_slack_escape(payload['tenant'])}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": title, "blocks": blocks}


def render(receiver_type: str, payload: Mapping[str, Any], notification_id: str) -> dict[str, Any]:
    """The body a receiver of this type is sent."""
    if receiver_type == "slack":
        return (
            slack_group_message(payload) if payload.get("schema") == GROUP_SCHEMA else slack_message(payload)
        )
    return {**payload, "notification_id": notification_id}
