"""The queue's open exceptions: failing steps grouped by error kind and system, and their acknowledgement.

Twenty transactions stuck on the same Stripe timeout are one problem, not twenty: the queue shows the
groups (``/api/exceptions``) above the transactions, with how many are acknowledged, who last
acknowledged the group, when and why, and an Acknowledge action (actions.py) that asks for a comment.
The queue's workflow and system filters apply here too; ``?kind=`` narrows the groups to one kind.
"""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from . import formatting as fmt
from .actions import ActionRequest, button, cannot_act, disabled_note
from .client import NotFound
from .components import card, icon, system_chip, tag, wildcard
from .page import PageContext
from .schema import AuditEntry, ExceptionGroup
from .urls import QUEUE, href, transaction_path

KIND_TONES = {
    "timeout": "stuck",
    "transient": "in_progress",
    "business": "failed",
    "validation": "violation",
    "auth": "breached",
    "unknown": "neutral",
}
SAMPLE = 3  # transactions named per group; the count says how many there are


def panel(context: PageContext, workflow: str, system: str) -> Any:
    """The exception groups for the queue's filters; None when there are none (or no such API)."""
    try:
        report = context.client.exceptions(workflow=workflow, system=system, limit=SAMPLE + 1)
    except NotFound:
        return None  # a collector that predates exception management
    kind = context.query.get("kind")
    groups = [group for group in report["groups"] if not kind or group["kind"] == kind]
    if not report["groups"]:
        return None
    kinds: dict[str, int] = {}
    for group in report["groups"]:
        kinds[group["kind"]] = kinds.get(group["kind"], 0) + group["exceptions"]
    segments = html.Div(
        [
            dcc.Link(
                "All"
                if not name
                else [name, html.Span(fmt.count(kinds[name]), className="tl-segment-count")],
                href=href(QUEUE, context.query.with_(kind=name or None)),
                className="tl-segment" + (" active" if name == kind else ""),
            )
            for name in ["", *sorted(kinds)]
        ],
        className="tl-segmented",
        role="group",
        **wildcard({"aria-label": "Error kind"}),
    )
    unacknowledged = sum(group["exceptions"] - group["acknowledged"] for group in groups)
    transactions = sum(g["transactions"] for g in groups) if kind else report["transactions"]
    failing = fmt.plural(sum(g["exceptions"] for g in groups), "failing step")
    subtitle = (
        f"{failing} in {fmt.plural(transactions, 'transaction')}, by error kind and system"
        f" · {fmt.count(unacknowledged)} not acknowledged"
    )
    header = html.Div(
        [
            html.Span("Error", className="tl-eyebrow"),
            html.Span("Exceptions", className="tl-eyebrow tl-num-head"),
            html.Span("Acknowledged", className="tl-eyebrow"),
            html.Span("Latest acknowledgement", className="tl-eyebrow"),
            html.Span("Transactions", className="tl-eyebrow"),
            html.Span("", className="tl-eyebrow"),
        ],
        className="tl-exception tl-exception-head",
    )
    refused = cannot_act(context.client)
    rows = [_group(group, context, workflow, refused) for group in groups]
    return card(
        "Open exceptions",
        html.Div([disabled_note(refused) if refused else None, header, *rows], className="tl-exceptions"),
        segments,
        html.Span(subtitle, id="exceptions-note"),
        flush=True,
        id="exceptions",
    )


def _group(group: ExceptionGroup, context: PageContext, workflow: str, refused: str | None) -> html.Div:
    kind, system = group["kind"], group["system"]
    open_now = group["exceptions"] - group["acknowledged"]
    latest = group["items"][0] if group["items"] else None
    share = group["acknowledged"] / group["exceptions"] if group["exceptions"] else 1.0
    workflows = " · ".join(f"{name} {count}" for name, count in group["workflows"].items())
    request = ActionRequest(
        "acknowledge",
        kind=kind,
        system=system,
        workflow=workflow,
        exceptions=group["exceptions"],
        acknowledged=group["acknowledged"],
    )
    action = (
        button(request, refused=refused)
        if open_now
        else tag([icon("check2-all"), "All acknowledged"], "completed", class_name="tl-exception-done")
    )
    resolve_all = ActionRequest(
        "resolve_group", kind=kind, system=system, workflow=workflow, exceptions=group["transactions"]
    )
    actions = html.Div([action, button(resolve_all, refused=refused, class_name="ms-2")], className="d-flex")
    return html.Div(
        [
            html.Div(
                [
                    html.Div(
                        [
                            tag(kind, KIND_TONES.get(kind, "neutral"), class_name="tl-kind"),
                            system_chip(system),
                        ],
                        className="tl-exception-title",
                    ),
                    html.Div(
                        latest["message"] if latest else "",
                        className="tl-exception-message",
                        title=latest["message"] if latest else None,
                    ),
                ],
                className="tl-exception-what",
            ),
            html.Div(
                [
                    html.Div(fmt.count(group["exceptions"]), className="tl-exception-count"),
                    html.Div(
                        f"last {fmt.ago(group['last_error_at'], context.now)}", className="tl-fact-detail"
                    ),
                ],
                className="tl-num-cell",
            ),
            html.Div(
                [
                    html.Div(
                        [
                            html.Span(
                                f"{fmt.count(group['acknowledged'])} of {fmt.count(group['exceptions'])}",
                                className="tl-exception-acked",
                            ),
                            html.Span(
                                f"{fmt.count(open_now)} new" if open_now else "",
                                className="tl-text-stuck tl-exception-new",
                            ),
                        ],
                        className="tl-exception-ack-line",
                    ),
                    html.Span(
                        html.Span(
                            className="tl-meter-fill "
                            + ("tl-meter-good" if not open_now else "tl-meter-warn"),
                            style={"width": f"{share * 100:.0f}%"},
                        ),
                        className="tl-meter-track tl-exception-meter",
                    ),
                ]
            ),
            _acknowledgement(group["acknowledgement"], context),
            html.Div(
                [
                    html.Div(
                        [
                            *[
                                dcc.Link(
                                    item["correlation_id"],
                                    href=href(transaction_path(item["correlation_id"])),
                                    className="tl-cell-link",
                                )
                                for item in group["items"][:SAMPLE]
                            ],
                            html.Span(f"+{group['transactions'] - SAMPLE} more", className="tl-muted")
                            if group["transactions"] > SAMPLE
                            else None,
                        ],
                        className="tl-exception-keys",
                    ),
                    html.Div(workflows, className="tl-fact-detail", title=workflows),
                ]
            ),
            html.Div(actions, className="tl-exception-action"),
        ],
        className="tl-exception",
        **wildcard({"data-group": f"{kind}/{system}"}),
    )


def _acknowledgement(entry: AuditEntry | None, context: PageContext) -> html.Div:
    """Who last acknowledged the group (the person, else the API key), when, and why."""
    if entry is None:
        return html.Div("Not acknowledged yet", className="tl-muted tl-exception-ack")
    who = entry["operator"] or entry["actor"]
    via = f" via {entry['actor']}" if entry["operator"] else ""
    return html.Div(
        [
            html.Div(
                [
                    icon("person-check", "me-1"),
                    html.Strong(who, className="tl-ack-who"),
                    html.Span(f"{via} · {fmt.ago(entry['at'], context.now)}", className="tl-muted"),
                ],
                title=fmt.full_time(entry["at"], context.tz),
            ),
            html.Div(f"“{entry['comment']}”", className="tl-ack-comment", title=entry["comment"]),
        ],
        className="tl-exception-ack",
    )
