"""Overview (``/``), for executives: how each workflow performs over a time range, and what is at risk.

Figures come straight from ``/api/overview`` for the chosen workflow and range; "at risk" counts the
stuck or SLA-breached transactions, from ``/api/transactions`` (stuck + breached - both).
"""

from __future__ import annotations

from typing import Any

import dash
import plotly.graph_objects as go
from dash import Input, NoUpdate, Output, State, dcc, html

from .. import formatting as fmt
from .. import signin
from ..components import card, empty_state, icon, kpi, labelled, page_header, range_picker, select, tag
from ..grids import column, grid, meter
from ..page import PageContext, Rendered
from ..schema import Bottleneck, DimensionFigures, Overview, WorkflowFigures
from ..theme import Palette, empty_figure, figure_layout
from ..urls import OVERVIEW, QUEUE, RANGES, Query, href, search_of, workflow_path

# The queue's every state: late but completed transactions count as at risk too.
EVERY_STATE = "stuck,failed,in_progress,completed"


def render(context: PageContext) -> Rendered:
    """KPIs, trend, bottlenecks and per-workflow figures for the workflow and range in the URL."""
    query = context.query
    workflow = query.get("workflow")
    since, until = query.window(context.now)
    workflows = context.client.workflows()
    dimensions = list(dict.fromkeys(key for w in workflows for key in w.get("dimensions", [])))
    group_by = query.get("group_by") if query.get("group_by") in dimensions else None
    overview = context.client.overview(workflow=workflow, since=since, until=until, group_by=group_by)
    retention = context.client.retention()
    filters = html.Div(
        [
            labelled(
                "Workflow",
                select(
                    "overview-workflow",
                    [w["name"] for w in workflows],
                    workflow or None,
                    "All workflows",
                    width=230,
                ),
            ),
            html.Div(
                labelled(
                    "Group by", select("overview-group-by", dimensions, group_by, "No grouping", width=180)
                ),
                hidden=not dimensions,  # rendered all the same: the filter callback takes it as an input
            ),
            labelled("Started", range_picker(OVERVIEW, query)),
        ],
        className="tl-filters",
    )
    scope = f"{workflow or 'All workflows'} · {_range_label(query)}"
    header = page_header(
        "Overview",
        f"Transactions started · {scope} · as of {fmt.clock(overview['as_of'], context.tz)}",
        filters,
    )
    kept = html.Div(
        fmt.retention(retention["days"], retention["kept_since"], context.tz),
        id="overview-retention",
        className="tl-muted",
    )
    note = signin.unprotected_note(context.client)  # without sign-in: who can see this
    totals = overview["totals"]
    if totals["transactions"] == 0:
        return Rendered("Overview", [header, kept, note, _empty(context, workflow, query)])
    return Rendered(
        "Overview",
        [
            header,
            kept,
            note,
            _kpis(totals, query),
            html.Div(
                [
                    card(
                        "Volume and outcomes",
                        dcc.Graph(
                            id="overview-trend",
                            figure=_trend(overview, context.theme),
                            config={"displayModeBar": False, "responsive": True},
                            className="tl-graph",
                        ),
                        subtitle=f"Started per {fmt.duration(overview['trend_bucket_seconds'])}, "
                        "by what became of them",
                        class_name="tl-span-8",
                    ),
                    _bottlenecks(overview["bottlenecks"], query),
                ],
                className="tl-grid-row",
            ),
            *([_groups(overview, group_by, query)] if group_by else []),
            card(
                "Workflows",
                grid("overview-workflows", _workflow_columns(), _workflow_rows(overview, query)),
                subtitle="Each workflow over the same range; open one for its process map",
                flush=True,
            ),
        ],
    )


def _groups(overview: Overview, dimension: str, query: Query) -> Any:
    """The figures per value of ``dimension``; each value opens the queue filtered by it."""
    rows = [
        {
            **_figure_cells(figures),
            "workflow": figures["value"] or f"(no {dimension})",
            "href": href(
                QUEUE,
                {
                    "workflow": query.get("workflow"),
                    "dimension": f"{dimension}:{figures['value']}",
                    "state": EVERY_STATE,
                },
            )
            if figures["value"]
            else None,
        }
        for figures in overview.get("groups", [])
    ]
    return card(
        f"By {dimension}",
        grid("overview-groups", _workflow_columns(dimension.replace("_", " ").capitalize()), rows),
        subtitle=f"Each {dimension} over the same range; open one for its transactions in the queue",
        flush=True,
    )


def _range_label(query: Query) -> str:
    if query.get("since") or query.get("until"):
        return "custom range"
    return RANGES[query.range_key()][0].lower()


def _kpis(totals: WorkflowFigures, query: Query) -> html.Div:
    at_risk = totals["at_risk"]  # stuck or past the SLA, each once; the resolved ones left out
    risk = totals["value_at_risk"]
    risk_value = (
        fmt.money(risk[0]["amount"], risk[0]["currency"], compact=True) if risk else fmt.money(0, None)
    )
    more = " · ".join(fmt.money(item["amount"], item["currency"], compact=True) for item in risk[1:])
    risk_detail = html.Span(
        (more and f"+ {more}") or f"in {sum(item['transactions'] for item in risk)} transactions",
        id="kpi-value-at-risk-more",
        title=" · ".join(fmt.money(item["amount"], item["currency"]) for item in risk),
    )
    queue = href(QUEUE, {"workflow": query.get("workflow"), "issue": "stuck,breached", "state": EVERY_STATE})
    return html.Div(
        [
            kpi(
                "kpi-transactions",
                "Transactions",
                fmt.count(totals["transactions"]),
                [
                    html.Span(fmt.count(totals["in_progress"]), id="kpi-in-progress"),
                    " in progress · ",
                    html.Span(fmt.count(totals["completed"]), id="kpi-completed"),
                    " done",
                ],
                "accent",
                "arrow-left-right",
            ),
            kpi(
                "kpi-completion-rate",
                "Completion rate",
                fmt.percent(totals["completion_rate"]),
                [html.Span(fmt.count(totals["failed"]), id="kpi-failed"), " failed"],
                "completed",
                "check2-circle",
                "Completed / started, over transactions started in the range",
            ),
            kpi(
                "kpi-cycle-p50",
                "Cycle time p50",
                fmt.duration(totals["cycle_time_p50_seconds"]),
                ["p95 ", html.Span(fmt.duration(totals["cycle_time_p95_seconds"]), id="kpi-cycle-p95")],
                "in_progress",
                "stopwatch",
                "First event to completion, over completed transactions",
            ),
            kpi(
                "kpi-sla-attainment",
                "SLA attainment",
                fmt.percent(totals["sla_attainment"]),
                [html.Span(fmt.count(totals["breached"]), id="kpi-breached"), " breached"],
                "breached" if totals["breached"] else "completed",
                "speedometer2",
                "Share of transactions with an SLA that are within it",
            ),
            kpi(
                "kpi-at-risk",
                "At risk",
                dcc.Link(fmt.count(at_risk), href=queue, className="tl-kpi-link"),
                [
                    html.Span(fmt.count(totals["stuck"]), id="kpi-stuck"),
                    f" stuck · {fmt.count(at_risk - totals['stuck'])} past their SLA",
                ],
                "stuck",
                "exclamation-triangle",
                "Stuck or SLA-breached transactions; open them in the queue",
            ),
            kpi(
                "kpi-value-at-risk",
                "Value at risk",
                risk_value,
                risk_detail,
                "failed",
                "cash-stack",
                "Sum of the amounts of stuck or breached transactions, by currency",
            ),
            _inconsistent(totals, query),
        ],
        className="tl-kpis",
    )


def _inconsistent(totals: WorkflowFigures, query: Query) -> html.Div | None:
    """Transactions whose systems disagree on a value (`reconcile:`), when there are any."""
    mismatched, duplicated = totals.get("with_mismatches", 0), totals.get("with_duplicates", 0)
    if not mismatched and not duplicated:
        return None
    values = sorted(totals.get("mismatched_values", {}).items(), key=lambda item: -item[1])
    queue = href(QUEUE, {"workflow": query.get("workflow"), "issue": "mismatch"})
    return kpi(
        "kpi-mismatches",
        "Systems disagree",
        dcc.Link(fmt.count(mismatched), href=queue, className="tl-kpi-link"),
        [
            html.Span(
                " · ".join(f"{value} {fmt.count(count)}" for value, count in values), id="kpi-mismatched"
            ),
            f" · {fmt.count(duplicated)} possible duplicates" if duplicated else "",
        ],
        "failed",
        "intersect",
        "Transactions whose systems sent values that do not agree (the workflow's reconcile:)",
    )


def _trend(overview: Overview, theme: Palette) -> go.Figure:
    points = overview["trend"]
    if not points:
        return empty_figure(theme, "No transactions in this range")
    x = [point["start"] for point in points]
    in_progress = [
        max(p["started"] - p["completed"] - p["failed"] - p["stuck"], 0) for p in points
    ]  # open, not stuck
    figure = go.Figure()
    for name, values, color in (
        ("Completed", [p["completed"] for p in points], theme.completed),
        ("In progress", in_progress, theme.in_progress),
        ("Stuck", [p["stuck"] for p in points], theme.stuck),
        ("Failed", [p["failed"] for p in points], theme.failed),
    ):
        figure.add_bar(x=x, y=values, name=name, marker={"color": color, "line": {"width": 0}})
    figure.add_scatter(
        x=x,
        y=[p["breached"] for p in points],
        name="SLA breached",
        mode="lines+markers",
        line={"color": theme.breached, "width": 2},
        marker={"size": 5},
    )
    bucket = overview["trend_bucket_seconds"]
    figure.update_layout(
        **figure_layout(theme, barmode="stack", bargap=0.25, height=300),
        legend_traceorder="normal",
    )
    figure.update_xaxes(type="date", tickformat="%H:%M\n%d %b" if bucket < 86400 else "%d %b")
    figure.update_yaxes(rangemode="tozero", title_text="transactions")
    return figure


def _bottlenecks(bottlenecks: list[Bottleneck], query: Query) -> Any:
    """The step most transactions wait on, the system that holds up most (over the API's top ten)."""
    if not bottlenecks:
        body: Any = empty_state("No bottleneck", "Nothing open is waiting on a step.", "check2-all")
        return card("Bottlenecks", body, class_name="tl-span-4")
    top = bottlenecks[0]
    by_system: dict[str, list[int]] = {}
    for item in bottlenecks:
        totals = by_system.setdefault(item["system"] or "unknown", [0, 0])
        totals[0] += item["waiting"]
        totals[1] += item["stuck"]
    system, (system_waiting, system_stuck) = max(by_system.items(), key=lambda kv: (kv[1][1], kv[1][0]))
    most = max(item["waiting"] for item in bottlenecks) or 1
    rows = [
        html.Div(
            [
                html.Div(
                    [html.Span(item["step"], className="tl-mono"), tag(item["system"] or "unknown")],
                    className="tl-bar-label",
                ),
                html.Div(
                    [
                        html.Div(
                            className="tl-bar tl-bar-waiting",
                            style={"width": f"{100 * item['waiting'] / most:.1f}%"},
                        ),
                        html.Div(
                            className="tl-bar tl-bar-stuck",
                            style={"width": f"{100 * item['stuck'] / most:.1f}%"},
                        ),
                    ],
                    className="tl-bar-track",
                ),
                html.Span(f"{item['waiting']}", className="tl-bar-value", title="waiting (of which stuck)"),
            ],
            className="tl-bar-row",
        )
        for item in bottlenecks[:5]
    ]
    queue = href(QUEUE, {"workflow": query.get("workflow"), "system": top["system"] or ""})
    body = [
        html.Div(
            [
                html.Div("Top bottleneck step", className="tl-eyebrow"),
                html.Div(top["step"], id="top-bottleneck-step", className="tl-highlight tl-mono"),
                html.Div(
                    [
                        html.Strong(fmt.count(top["waiting"])),
                        " waiting · ",
                        html.Strong(fmt.count(top["stuck"]), className="tl-text-stuck"),
                        " stuck",
                    ],
                    className="tl-muted",
                ),
            ],
            className="tl-bottleneck-top",
        ),
        html.Div(
            [
                html.Div("Top bottleneck system", className="tl-eyebrow"),
                html.Div(
                    [icon("hdd-network", "me-2"), system],
                    id="top-bottleneck-system",
                    className="tl-highlight",
                ),
                html.Div(
                    [
                        html.Strong(fmt.count(system_waiting)),
                        " waiting · ",
                        html.Strong(fmt.count(system_stuck), className="tl-text-stuck"),
                        " stuck",
                    ],
                    className="tl-muted",
                ),
            ],
            className="tl-bottleneck-top",
        ),
        html.Div(rows, className="tl-bars"),
    ]
    actions = dcc.Link(["Open in queue ", icon("arrow-right")], href=queue, className="tl-link-action")
    return card("Bottlenecks", body, actions, "Open transactions waiting on a step", class_name="tl-span-4")


def _workflow_columns(first: str = "Workflow") -> list[dict[str, Any]]:
    return [
        column("workflow", first, flex=1.6, renderer="Link", minWidth=200),
        column("transactions", "Started", numeric=True, width=100),
        meter("completion", "Completion", 170),
        column("p50", "Cycle p50", numeric=True, width=110),
        column("p95", "Cycle p95", numeric=True, width=110),
        meter("sla", "SLA attainment", 170),
        column(
            "stuck",
            "Stuck",
            numeric=True,
            width=90,
            cellClassRules={"tl-cell-stuck": {"function": "params.value > 0"}},
        ),
        column(
            "failed",
            "Failed",
            numeric=True,
            width=90,
            cellClassRules={"tl-cell-failed": {"function": "params.value > 0"}},
        ),
        column(
            "breached",
            "Breached",
            numeric=True,
            width=100,
            cellClassRules={"tl-cell-breached": {"function": "params.value > 0"}},
        ),
        column("risk", "Value at risk", flex=1, numeric=True, minWidth=150),
    ]


def _workflow_rows(overview: Overview, query: Query) -> list[dict[str, Any]]:
    range_params = {key: query.get(key) for key in ("range", "since", "until")}
    return [
        {
            **_figure_cells(figures),
            "workflow": figures["workflow"],
            "href": href(workflow_path(figures["workflow"]), range_params),
        }
        for figures in overview["workflows"]
    ]


def _figure_cells(figures: WorkflowFigures | DimensionFigures) -> dict[str, Any]:
    """A row's cells but its name and link: a workflow's or a dimension value's figures."""
    return {
        "transactions": figures["transactions"],
        "completion": _meter(figures["completion_rate"], "share"),
        "p50": fmt.duration(figures["cycle_time_p50_seconds"]),
        "p95": fmt.duration(figures["cycle_time_p95_seconds"]),
        "sla": _meter(figures["sla_attainment"], "sla"),
        "stuck": figures["stuck"],
        "failed": figures["failed"],
        "breached": figures["breached"],
        "risk": " · ".join(fmt.money(v["amount"], v["currency"], True) for v in figures["value_at_risk"])
        or "—",
    }


def _meter(value: float | None, kind: str) -> dict[str, Any]:
    """A share for the ``Meter`` renderer: the number and its bar (AG Grid sorts by ``value``)."""
    return {"value": value, "text": fmt.percent(value), "kind": kind}


def _empty(context: PageContext, workflow: str, query: Query) -> Any:
    """A first-time user learns how to send an event; a narrow filter is told to widen."""
    anything = context.client.overview()["totals"]["transactions"] > 0
    if anything:
        wider = href(OVERVIEW, query.with_(range="all", since=None, until=None, workflow=None))
        return card(
            body=empty_state(
                "No transactions in this range",
                f"Nothing started {_range_label(query)}{' in ' + workflow if workflow else ''}.",
                "calendar-x",
                dcc.Link("Show all workflows, all time", href=wider, className="btn btn-primary"),
            )
        )
    api = context.client.base_url
    curl = (
        f"curl -X POST {api}/v1/events \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        '  -d \'{"events": [{\n'
        '        "correlation_id": "OPP-1001", "workflow": "quote-to-cash",\n'
        '        "step": "crm.opportunity.won", "system": "salesforce",\n'
        f'        "timestamp": "{context.now:%Y-%m-%dT%H:%M:%SZ}"}}]}}\''
    )
    sdk = (
        "from threadline import sdk\n\n"
        f'sdk.configure(service="crm-sync", system="salesforce", endpoint="{api}")\n'
        'sdk.event("quote-to-cash", "crm.opportunity.won", correlation_id="OPP-1001")\n'
        "sdk.flush(5)"
    )
    return card(
        body=html.Div(
            [
                empty_state(
                    "Send your first event",
                    [
                        "Threadline has not received any business event yet. Send one from an integration, "
                        "and it appears here within seconds. The collector listens at ",
                        html.Code(api),
                        ".",
                    ],
                    "send",
                ),
                html.Div(
                    [
                        html.Div(
                            [
                                html.Div("With curl", className="tl-eyebrow"),
                                html.Pre(curl, className="tl-code"),
                            ],
                            className="tl-onboard-step",
                        ),
                        html.Div(
                            [
                                html.Div("With the Python SDK", className="tl-eyebrow"),
                                html.Pre(sdk, className="tl-code"),
                            ],
                            className="tl-onboard-step",
                        ),
                    ],
                    className="tl-onboard",
                ),
                html.P(
                    [
                        "Any OpenTelemetry SDK works too: export spans with a ",
                        html.Code("threadline.correlation_id"),
                        " attribute to ",
                        html.Code(f"{api}/v1/traces"),
                        ".",
                    ],
                    className="tl-muted text-center mb-0",
                ),
            ],
            id="onboarding",
        )
    )


def register(app: dash.Dash) -> None:
    """The workflow filter writes itself into the URL; the router redraws from there."""

    @app.callback(
        Output("url", "search", allow_duplicate=True),
        Input("overview-workflow", "value"),
        Input("overview-group-by", "value"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def choose_workflow(workflow: str | None, group_by: str | None, search: str | None) -> str | NoUpdate:
        new = search_of(Query.parse(search).with_(workflow=workflow, group_by=group_by))
        return dash.no_update if new == (search or "") else new
