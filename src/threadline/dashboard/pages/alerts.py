"""Alerts (``/alerts``), for on-call: what fires now, what fired before, and who was told.

Notifications go out per group (a receiver's alerts sharing its group_by labels), throttled: the
Groups card lists them (how many fire, how many notifications, when last told), each with a button
to silence it; the Silences card lists the silences, each with a button to expire it. A silenced
alert still shows, marked silenced.

Firing and resolved counts, the alerts themselves (severity, rule, the transaction or figure they are
about, when they fired and for how long, each receiver's delivery), filters in the URL (status,
severity, rule, workflow), and the rules and receivers in force with the last evaluation, so a quiet
page can be told apart from an alerting loop that stopped. ``?alert=<id>``, the link in every
notification, opens that alert's detail above the table.
"""

from __future__ import annotations

from typing import Any

import dash
from dash import ClientsideFunction, Input, NoUpdate, Output, State, dcc, html

from .. import actions, alert_detail, signin
from .. import formatting as fmt
from ..alerting import SEVERITIES, delivery_lines, describe_rule, duration_seconds, per_transaction
from ..client import NotFound
from ..components import card, empty_state, icon, kpi, labelled, page_header, select, tag, wildcard
from ..grids import column, grid
from ..page import PageContext, Rendered
from ..schema import Alert, AlertGroup, AlertGroups, AlertPage, AlertRule, AlertRules, Silence, Silences
from ..urls import ALERTS, Query, href, search_of, transaction_path

STATUSES = {"firing": "Firing", "resolved": "Resolved", "": "All"}
LIMIT = 200  # alerts listed; the counts stay exact
FIRING_SCAN = 500  # firing alerts read for the per-severity and per-rule counts (the API's maximum)
FULL_PAGE_ROWS = 40
SILENCE_MINUTES = 120  # a group silenced from its card: for this long (longer ones through the API)


def render(context: PageContext) -> Rendered:
    """Counts, the selected alert, the table for the filters in the URL, and the rules in force."""
    query = context.query
    client = context.client
    status = query.get("status") if query.get("status") in ("firing", "resolved") else ""
    severity = query.get("severity") if query.get("severity") in SEVERITIES else ""
    rule, workflow = query.get("rule"), query.get("workflow")
    try:
        rules = client.alert_rules()
    except NotFound:
        return Rendered("Alerts", _no_alerting())
    page = client.alerts(status=status, severity=severity, rule=rule, workflow=workflow, limit=LIMIT)
    firing = client.alerts(status="firing", limit=FIRING_SCAN)
    workflows = [w["name"] for w in client.workflows()]
    header = page_header(
        "Alerts",
        "What the alert rules caught, who was told and when, and what became of it. "
        "Click an alert for its transactions and every delivery attempt.",
        _filters(query, rules, workflows, status, severity, rule, workflow),
    )
    selected = query.get("alert")
    content: list[Any] = [
        header,
        _kpis(page, firing, rules, context),
        alert_detail.panel(context, selected) if selected else None,
        _table(page, context, filtered=bool(status or severity or rule or workflow)),
        _rules_and_receivers(rules, firing, context),
        _groups_and_silences(client.alert_groups(), client.silences(), context),
    ]
    title = f"Alerts ({page['firing']} firing)" if page["firing"] else "Alerts"
    return Rendered(title, content)


def _rules_and_receivers(rules: AlertRules, firing: AlertPage, context: PageContext) -> Any:
    """The rules and receivers in force (where alerts go): an admin's, when people sign in."""
    person = signin.person()
    if person is not None and not person.is_admin:
        return html.Div(
            [icon("lock", "me-2"), "The alert rules and receivers in force are shown to admins."],
            className="tl-muted",
            id="alert-rules-admins-only",
        )
    return html.Div([_rules(rules, firing, context), _receivers(rules)], className="tl-grid-row")


def _no_alerting() -> Any:
    body = empty_state(
        "This collector has no alerting",
        "It answers no /api/alerts: it predates alerting. Upgrade the collector to see alerts here.",
        "bell-slash",
    )
    return card(body=html.Div(body, id="alerts-unsupported"))


def _filters(
    query: Query,
    rules: AlertRules,
    workflows: list[str],
    status: str,
    severity: str,
    rule: str,
    workflow: str,
) -> html.Div:
    segments = html.Div(
        [
            dcc.Link(
                label,
                href=href(ALERTS, query.with_(status=value or None, alert=None)),
                className="tl-segment" + (" active" if value == status else ""),
                id=f"alerts-status-{value or 'all'}",
            )
            for value, label in STATUSES.items()
        ],
        className="tl-segmented",
        role="group",
        **wildcard({"aria-label": "Status"}),
    )
    rule_names = sorted({r["name"] for r in rules["rules"]} | ({rule} if rule else set()))
    return html.Div(
        [
            labelled("Status", segments),
            labelled(
                "Severity",
                select(
                    "alerts-severity",
                    [{"label": label, "value": value} for value, label in SEVERITIES.items()],
                    severity or None,
                    "Any",
                    width=140,
                ),
            ),
            labelled("Rule", select("alerts-rule", rule_names, rule or None, "Any rule", width=210)),
            labelled("Workflow", select("alerts-workflow", workflows, workflow or None, "All", width=200)),
        ],
        className="tl-filters",
    )


def _kpis(page: AlertPage, firing: AlertPage, rules: AlertRules, context: PageContext) -> html.Div:
    by_severity = dict.fromkeys(SEVERITIES, 0)
    for alert in firing["items"]:
        by_severity[alert["severity"]] = by_severity.get(alert["severity"], 0) + 1
    severities = " · ".join(f"{n} {name}" for name, n in by_severity.items() if n) or "nothing firing"
    unset = [r["name"] for r in rules["receivers"] if not r["configured"]]
    receivers = fmt.plural(len(rules["receivers"]), "receiver")
    last = rules["last_evaluation"]
    interval = rules["interval_seconds"]
    moment = fmt.parse_time(last)
    late = bool(moment and interval and (context.now - moment).total_seconds() > 3 * interval + 60)
    if not interval:
        evaluated, detail, tone = "Off", "THREADLINE_ALERT_INTERVAL is 0", "neutral"
    else:
        evaluated = fmt.ago(last, context.now) if last else "Not yet"
        detail = f"every {fmt.duration(interval)}" + (" · late" if late else "")
        tone = "stuck" if late or not last else "in_progress"
    return html.Div(
        [
            kpi(
                "alerts-firing",
                "Firing",
                dcc.Link(
                    fmt.count(page["firing"]),
                    href=href(ALERTS, {"status": "firing"}),
                    className="tl-kpi-link",
                ),
                html.Span(severities, id="alerts-firing-detail"),
                "failed" if page["firing"] else "completed",
                "bell",
                "Alerts firing now, whatever the filters",
            ),
            kpi(
                "alerts-resolved",
                "Resolved",
                dcc.Link(
                    fmt.count(page["resolved"]),
                    href=href(ALERTS, {"status": "resolved"}),
                    className="tl-kpi-link",
                ),
                f"of {fmt.count(page['firing'] + page['resolved'])} alerts so far",
                "completed",
                "check2-circle",
                "Alerts that fired and have since resolved",
            ),
            kpi(
                "alerts-rules",
                "Rules",
                fmt.count(len(rules["rules"])),
                html.Span(
                    receivers + (f" · {len(unset)} without a URL" if unset else ""),
                    className="tl-text-stuck" if unset else None,
                ),
                "accent",
                "sliders",
                "The alert rules in the workflow definitions file (its alerts: section)",
            ),
            kpi(
                "alerts-evaluated",
                "Last evaluation",
                evaluated,
                detail,
                tone,
                "arrow-repeat",
                fmt.full_time(last, context.tz) if last else "The rules have not been evaluated yet",
            ),
        ],
        className="tl-kpis tl-kpis-4",
    )


def _table(page: AlertPage, context: PageContext, filtered: bool) -> Any:
    if not page["items"]:
        if filtered:
            body = empty_state(
                "No alert matches these filters",
                "Widen the filters to see more of the history.",
                "funnel",
                dcc.Link("Clear filters", href=href(ALERTS), className="btn btn-outline-primary"),
            )
        else:
            body = empty_state(
                "No alert has fired",
                "The rules are evaluated on schedule; an alert shows here the moment one fires.",
                "bell",
            )
        return card(body=html.Div(body, id="alerts-empty"))
    items = page["items"]
    table = grid(
        "alerts-grid",
        _columns(),
        [_row(alert, context) for alert in items],
        row_id="id",
        height=None if len(items) <= FULL_PAGE_ROWS else 760,
        clickable=True,
        no_rows="No alert",
    )
    table.dashGridOptions["getRowHeight"] = {"function": "params.data.height"}
    table.dashGridOptions["rowClassRules"] = {"tl-row-selected": {"function": "params.data.selected"}}
    table.className += " tl-grid-middle tl-grid-plain-sort"
    shown = len(items)
    subtitle = (
        f"The {shown:,} newest of {page['total']:,}; narrow the filters to see the rest"
        if page["next_cursor"]
        else f"{fmt.plural(shown, 'alert')}, firing first, newest first"
    )
    return card("Alerts", table, subtitle=html.Span(subtitle, id="alerts-note"), flush=True)


def _columns() -> list[dict[str, Any]]:
    return [
        column("severity_rank", "Severity", renderer="Severity", width=126),
        column("status", "Status", renderer="AlertStatus", width=122, sort="asc", sortIndex=0),
        column("rule", "Rule", width=180, cellClass="tl-mono", tooltipField="rule"),
        column("subject", "About", renderer="Link", width=150, tooltipField="subject_title"),
        column("summary", "Summary", flex=1.5, minWidth=260, tooltipField="summary"),
        column(
            "fired_ts",
            "Fired",
            width=130,
            sort="desc",
            sortIndex=1,
            valueFormatter={"function": "params.data.fired_text"},
            tooltipField="fired_title",
        ),
        column(
            "duration",
            "For",
            numeric=True,
            width=100,
            valueFormatter={"function": "params.data.duration_text"},
        ),
        column("deliveries", "Notifications", renderer="Deliveries", flex=1.7, minWidth=330, sortable=False),
    ]


def _row(alert: Alert, context: PageContext) -> dict[str, Any]:
    lines = delivery_lines(alert["notifications"])
    fired = fmt.parse_time(alert["fired_at"]) or context.now
    lasted = duration_seconds(alert, context.now)
    if per_transaction(alert):
        subject, link = alert["subject"], href(transaction_path(alert["subject"]))
    else:  # a count, a system or a currency: its link opens the alert, which lists the transactions
        count = len(alert["transactions"])
        subject = (alert["subject"] or "all") + (f" · {count} txn" if count else "")
        link = href(ALERTS, context.query.with_(alert=alert["id"]))
    return {
        "id": alert["id"],
        "severity": alert["severity"],
        "severity_rank": list(SEVERITIES).index(alert["severity"]) if alert["severity"] in SEVERITIES else 9,
        "status": alert["status"],
        "rule": alert["rule"],
        "subject": subject,
        "subject_title": ", ".join(alert["transactions"][:10]) or alert["subject"],
        "href": link,
        "summary": ("Silenced · " if alert["silenced_by"] else "") + alert["summary"],
        "fired_ts": fired.timestamp(),
        "fired_text": fmt.clock(fired, context.tz, context.now),
        "fired_title": fmt.full_time(fired, context.tz),
        "duration": lasted,
        "duration_text": fmt.duration(lasted),
        "deliveries": lines,
        "height": 44 + 21 * max(len(lines) - 1, 0),
        "selected": alert["id"] == context.query.get("alert"),
    }


def _history(rule: AlertRule) -> str:
    """What the rule found when it started watching: history, summarised instead of alerted."""
    if not rule["history"]:
        return "Not evaluated yet: it alerts on what happens from its first evaluation."
    shown = rule["history_transactions"]
    more = rule["already_holding"] - len(shown)
    named = f": {', '.join(shown)}" + (f" and {more:,} more" if more > 0 else "") if shown else ""
    return rule["history"] + named


def _rules(rules: AlertRules, firing: AlertPage, context: PageContext) -> Any:
    counts: dict[str, int] = {}
    for alert in firing["items"]:
        counts[alert["rule"]] = counts.get(alert["rule"], 0) + 1
    rows = [
        {
            "name": rule["name"],
            "href": href(ALERTS, {"rule": rule["name"]}),
            "severity": rule["severity"],
            "condition": describe_rule(rule["when"], rule["parameters"])
            + (f" · {rule['workflow']}" if rule["workflow"] else " · every workflow"),
            "description": rule["description"] or describe_rule(rule["when"], rule["parameters"]),
            "receivers": [{"text": name, "tone": "neutral"} for name in rule["receivers"]],
            "firing": counts.get(rule["name"], 0),
            "watching": fmt.clock(rule["watching_since"], context.tz, context.now)
            if rule["watching_since"]
            else "not yet",
            "history": rule["already_holding"],
            "history_note": _history(rule),
        }
        for rule in rules["rules"]
    ]
    columns = [
        column("name", "Rule", renderer="Link", width=170),
        column("severity", "Severity", renderer="Severity", width=116),
        column("condition", "Condition", flex=1.5, minWidth=220, tooltipField="description"),
        column("receivers", "Receivers", renderer="Tags", flex=1, minWidth=170, sortable=False),
        column(
            "firing",
            "Firing",
            numeric=True,
            width=84,
            cellClassRules={"tl-cell-failed": {"function": "params.value > 0"}},
        ),
        column("watching", "Watching since", width=140, tooltipField="history_note"),
        column("history", "Met at start", numeric=True, width=110, tooltipField="history_note"),
    ]
    last = rules["last_evaluation"]
    every = fmt.duration(rules["interval_seconds"])
    evaluated = (
        f"evaluated every {every}, last at {fmt.clock(last, context.tz, context.now)}"
        if last
        else "not evaluated yet"
    )
    body = (
        grid("alerts-rules-grid", columns, rows, row_id="name")
        if rows
        else html.Div(
            empty_state(
                "No alert rules",
                ["Add an ", html.Code("alerts:"), " section to the workflow definitions file."],
                "sliders",
            ),
            className="tl-card-body",
        )
    )
    history = [
        html.Li([html.Strong(rule["name"]), f" — {_history(rule)}"])
        for rule in rules["rules"]
        if rule["already_holding"]
    ]
    if history:  # what each rule found when it started: said once, here, instead of as alerts
        body = html.Div([body, html.Ul(history, id="alerts-rules-history", className="tl-card-body")])
    note = f"{fmt.plural(len(rows), 'rule')} · {evaluated}"
    return card(
        "Rules",
        body,
        subtitle=html.Span(note, id="alerts-rules-note"),
        class_name="tl-span-8",
        flush=True,
        id="alerts-rules",
    )


def _receivers(rules: AlertRules) -> Any:
    items = [
        html.Li(
            [
                html.Div(
                    [
                        icon("slack" if receiver["type"] == "slack" else "broadcast", "tl-receiver-icon"),
                        html.Span(receiver["name"], className="tl-receiver-name"),
                        tag(receiver["type"]),
                    ],
                    className="tl-receiver-top",
                ),
                html.Div(
                    [
                        html.Code(receiver["target"], className="tl-receiver-target"),
                        tag([icon("check2"), "configured"], "completed")
                        if receiver["configured"]
                        else tag([icon("exclamation-triangle"), "no URL: not set"], "stuck"),
                    ],
                    className="tl-receiver-bottom",
                ),
            ],
            className="tl-receiver",
            id=f"receiver-{receiver['name']}",
        )
        for receiver in rules["receivers"]
    ]
    body = (
        html.Ul(items, className="tl-receivers")
        if items
        else html.Div("No receiver is defined.", className="tl-muted")
    )
    return card(
        "Receivers",
        body,
        subtitle="Where notifications go; their URLs stay in the environment",
        class_name="tl-span-4",
        id="alerts-receivers",
    )


def _labels(labels: dict[str, str]) -> str:
    return " · ".join(f"{name} {value}" for name, value in labels.items() if value) or "every alert"


def _group(group: AlertGroup, context: PageContext, refused: str | None) -> Any:
    matchers = {name: value for name, value in group["labels"].items() if value}
    told = group["last_notified_at"]
    sent = fmt.plural(group["notifications"], "notification")
    facts = (
        f"{fmt.plural(group['firing'], 'alert')} firing · {sent}"
        + (f" · last {fmt.clock(told, context.tz, context.now)}" if told else "")
        + f" · every {fmt.duration(group['group_interval_seconds'])} at most"
    )
    request = actions.ActionRequest("silence", matchers=matchers, minutes=SILENCE_MINUTES, group=group["key"])
    return html.Li(
        [
            html.Div(
                [html.Strong(_labels(group["labels"]), className="tl-group-labels"), tag(group["receiver"])],
                className="tl-receiver-top",
            ),
            html.Div(facts, className="tl-muted tl-group-facts"),
            actions.button(request, f"Silence {fmt.duration(SILENCE_MINUTES * 60)}", refused=refused)
            if matchers
            else None,
        ],
        className="tl-receiver",
        id=f"group-{group['key']}",
    )


def _silence(silence: Silence, context: PageContext, refused: str | None) -> Any:
    who = silence["operator"] or silence["created_by"]
    when = (
        f"from {fmt.clock(silence['starts_at'], context.tz, context.now)} "
        f"until {fmt.clock(silence['ends_at'], context.tz, context.now)}"
    )
    request = actions.ActionRequest("expire", matchers=silence["matchers"], silence=silence["id"])
    return html.Li(
        [
            html.Div(
                [
                    html.Strong(_labels(silence["matchers"])),
                    tag(silence["state"], "stuck" if silence["state"] == "active" else "neutral"),
                ],
                className="tl-receiver-top",
            ),
            html.Div(f"{when} · by {who}: {silence['comment']}", className="tl-muted"),
            actions.button(request, refused=refused) if silence["state"] != "expired" else None,
        ],
        className="tl-receiver",
        id=f"silence-{silence['id']}",
    )


def _groups_and_silences(groups: AlertGroups, silences: Silences, context: PageContext) -> Any:
    """The notification groups, each with a button to silence it, and the silences, to expire."""
    refused = actions.cannot_act(context.client)
    listed = [_group(group, context, refused) for group in groups["items"]]
    group_body = (
        html.Ul(listed, className="tl-receivers")
        if listed
        else html.Div("No group was notified yet.", className="tl-muted")
    )
    items = [_silence(silence, context, refused) for silence in silences["items"]]
    silence_body = (
        html.Ul(items, className="tl-receivers")
        if items
        else html.Div("No silence: every group notifies its receivers.", className="tl-muted")
    )
    return html.Div(
        [
            card(
                "Notification groups",
                group_body,
                subtitle="One notification per group, throttled: what each receiver was told",
                class_name="tl-span-8",
                id="alerts-groups",
            ),
            card(
                "Silences",
                silence_body,
                subtitle="Alerts they match still show here but notify nobody",
                class_name="tl-span-4",
                id="alerts-silences",
            ),
        ],
        className="tl-grid-row",
    )


def register(app: dash.Dash) -> None:
    """Filters write themselves into the URL; a click on an alert opens its detail (``?alert=``)."""

    @app.callback(
        Output("url", "search", allow_duplicate=True),
        Input("alerts-severity", "value"),
        Input("alerts-rule", "value"),
        Input("alerts-workflow", "value"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def filter_alerts(
        severity: str | None, rule: str | None, workflow: str | None, search: str | None
    ) -> str | NoUpdate:
        query = Query.parse(search)
        new = search_of(query.with_(severity=severity, rule=rule, workflow=workflow))
        return dash.no_update if new == (search or "") else new

    @app.callback(
        Output("url", "search", allow_duplicate=True),
        Input("alerts-grid", "cellClicked"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def open_alert(cell: dict[str, Any] | None, search: str | None) -> str | NoUpdate:
        if not cell or not cell.get("rowId") or cell.get("colId") == "subject":
            return dash.no_update  # the subject is a link of its own
        new = search_of(Query.parse(search).with_(alert=str(cell["rowId"])))
        return dash.no_update if new == (search or "") else new

    # The detail opens above the table: bring it into view as the URL changes.
    app.clientside_callback(
        ClientsideFunction("threadline", "toTop"),
        Input("alerts-grid", "cellClicked"),
        prevent_initial_call=True,
    )
