"""System health (``/systems``), for integration owners: which system errs, retries or slows down.

Per system over the range (event time): events, error rate, retries and latency percentiles, as
tiles and a table, and the same over time as charts; and the schema drifts as of the range's end
(an attribute a step stopped sending, or began to). ``?system=`` narrows the charts and the drifts
to one system.
"""

from __future__ import annotations

from typing import Any

import dash
import plotly.graph_objects as go
from dash import Input, NoUpdate, Output, State, dcc, html

from .. import formatting as fmt
from ..components import card, empty_state, labelled, page_header, range_picker, select
from ..grids import column, grid
from ..page import PageContext, Rendered
from ..schema import SchemaDrift, SchemaDriftReport, SystemHealth
from ..theme import Palette, empty_figure, figure_layout
from ..urls import RANGES, SYSTEMS, Query, href, search_of, transaction_path

WARN_ERROR_RATE, BAD_ERROR_RATE = 0.02, 0.05


def health_tone(system: SystemHealth) -> str:
    """Green below 2 % errors, amber below 5 %, red above."""
    if system["error_rate"] >= BAD_ERROR_RATE:
        return "failed"
    if system["error_rate"] >= WARN_ERROR_RATE:
        return "stuck"
    return "completed"


def render(context: PageContext) -> Rendered:
    """Tiles, charts and a table per system, for the range in the URL."""
    query = context.query
    since, until = query.window(context.now)
    report = context.client.systems(since=since, until=until)
    drift = context.client.schema_drift(as_of=until)
    names = [system["system"] for system in report["systems"]]
    chosen = query.get("system")
    filters = html.Div(
        [
            labelled("System", select("systems-system", names, chosen or None, "All systems", width=180)),
            labelled("Events", range_picker(SYSTEMS, query)),
        ],
        className="tl-filters",
    )
    range_label = "custom range" if query.get("since") or query.get("until") else RANGES[query.range_key()][0]
    header = page_header(
        "System health",
        f"Errors, retries and latency of each system's steps · {range_label.lower()}",
        filters,
    )
    drifts = [d for d in drift["drifts"] if not chosen or d["system"] == chosen]
    if not report["systems"]:
        body = empty_state(
            "No events in this range",
            "Each system appears here once an event names it as the system that did a step.",
            "hdd-network",
        )
        return Rendered("Systems", [header, card(body=body), _drift_card(drift, drifts, context)])
    shown = [s for s in report["systems"] if not chosen or s["system"] == chosen] or report["systems"]
    theme = context.theme
    bucket = fmt.duration(report["bucket_seconds"])
    return Rendered(
        "Systems",
        [
            header,
            html.Div([_tile(system, query) for system in report["systems"]], className="tl-system-tiles"),
            html.Div(
                [
                    _chart(
                        "systems-error-rate",
                        "Error rate",
                        f"errors / events, per {bucket}",
                        _series(shown, theme, "error_rate"),
                    ),
                    _chart(
                        "systems-latency",
                        "Latency p95",
                        f"95th percentile of step duration, per {bucket}",
                        _series(shown, theme, "latency_p95_ms"),
                    ),
                    _chart("systems-events", "Events", f"per {bucket}", _series(shown, theme, "events")),
                    _chart(
                        "systems-retries",
                        "Retries",
                        f"retry attempts, per {bucket}",
                        _series(shown, theme, "retries"),
                    ),
                ],
                className="tl-chart-grid",
            ),
            _drift_card(drift, drifts, context),
            card(
                "All systems",
                grid("systems-grid", _columns(), [_row(s) for s in report["systems"]]),
                flush=True,
            ),
        ],
    )


def _drift_card(report: SchemaDriftReport, drifts: list[SchemaDrift], context: PageContext) -> Any:
    """The attributes a step stopped sending or began to: what breaks a reconciliation or a report
    downstream while every step still succeeds."""
    learned = (
        f"learned per step over {fmt.plural(round(report['baseline_days']), 'day')}; a step needs "
        f"{report['min_before']} events before a change and {report['min_since']} since"
    )
    if not drifts:
        body = html.Div(
            [
                html.I(className="bi bi-check2-circle me-2"),
                "Every step sends the attributes it usually does.",
            ],
            className="tl-muted",
            id="systems-no-drift",
        )
        return card("Schema drift", body, subtitle=learned)
    columns = [
        column("system", "System", renderer="SystemName", width=140),
        column("step", "Step", flex=1.2, minWidth=220, cellClass="tl-mono"),
        column("attribute", "Attribute", width=150, cellClass="tl-mono"),
        column("change", "Change", renderer="Tags", width=120, sortable=False),
        column("since_text", "Since", width=150, tooltipField="since_title"),
        column("figures", "Events", flex=1.5, minWidth=260, tooltipField="figures"),
        column("key", "Example", renderer="Link", width=150, tooltipField="example_title"),
    ]
    rows = [_drift_row(d, context) for d in drifts]
    return card(
        "Schema drift",
        grid("systems-drift", columns, rows, row_id="id"),
        subtitle=f"{fmt.plural(len(drifts), 'change')} in what steps send · {learned}",
        flush=True,
    )


def _drift_row(drift: SchemaDrift, context: PageContext) -> dict[str, Any]:
    missing = drift["kind"] == "missing"
    share = drift["carrying_before"] if missing else drift["carrying_since"]
    if missing:
        figures = (
            f"missing in all {drift['events_since']:,} since; "
            f"in {fmt.percent(share / drift['events_before'])} of {drift['events_before']:,} before"
        )
    else:
        figures = (
            f"in {fmt.percent(share / drift['events_since'])} of {drift['events_since']:,} since; "
            f"in none of {drift['events_before']:,} before"
        )
    example = drift["example"]
    return {
        "id": f"{drift['system']}/{drift['step']}/{drift['attribute']}/{drift['kind']}",
        "tone": "stuck",  # the system name's dot: amber, a system that needs a look
        "system": drift["system"],
        "step": drift["step"],
        "attribute": drift["attribute"],
        "change": [{"text": "stopped" if missing else "new", "tone": "failed" if missing else "accent"}],
        "since_text": fmt.clock(drift["since"], context.tz, context.now),
        "since_title": fmt.full_time(drift["since"], context.tz),
        "figures": figures,
        "key": example["correlation_id"],
        "href": href(transaction_path(example["correlation_id"])),
        "example_title": f"{'First event without it' if missing else 'First event with it'}: "
        f"{example['event_id']}",
    }


def _tile(system: SystemHealth, query: Query) -> Any:
    tone = health_tone(system)
    active = query.get("system") == system["system"]
    target = href(SYSTEMS, query.with_(system=None if active else system["system"]))
    return dcc.Link(
        [
            html.Div(
                [
                    html.Span(className=f"tl-health-dot tl-fill-{tone}"),
                    html.Span(system["system"], className="tl-tile-name"),
                ],
                className="tl-tile-top",
            ),
            html.Div(
                [
                    html.Div(
                        [
                            html.Div(
                                fmt.percent(system["error_rate"]), className=f"tl-tile-value tl-text-{tone}"
                            ),
                            html.Div("errors", className="tl-eyebrow"),
                        ]
                    ),
                    html.Div(
                        [
                            html.Div(fmt.count(system["retries"]), className="tl-tile-value"),
                            html.Div("retries", className="tl-eyebrow"),
                        ]
                    ),
                    html.Div(
                        [
                            html.Div(fmt.milliseconds(system["latency_p95_ms"]), className="tl-tile-value"),
                            html.Div("p95", className="tl-eyebrow"),
                        ]
                    ),
                ],
                className="tl-tile-figures",
            ),
            html.Div(
                f"{system['events']:,} events · p50 {fmt.milliseconds(system['latency_p50_ms'])}",
                className="tl-fact-detail",
            ),
        ],
        href=target,
        className="tl-tile" + (" active" if active else ""),
        id=f"system-tile-{system['system']}",
    )


def _series(systems: list[SystemHealth], theme: Palette, field: str) -> go.Figure:
    figure = go.Figure()
    drawn = False
    for index, system in enumerate(systems):
        color = theme.series[index % len(theme.series)]
        points = system["series"]
        if field == "error_rate":
            values: list[Any] = [p["errors"] / p["events"] if p["events"] else None for p in points]
        else:
            values = [p[field] for p in points]  # type: ignore[literal-required]  # a series the caller names
        if not any(v is not None for v in values):
            continue
        drawn = True
        x = [p["start"] for p in points]
        if field in ("events", "retries"):
            figure.add_bar(
                x=x,
                y=values,
                name=fmt.chart_text(system["system"]),
                marker={"color": color, "line": {"width": 0}},
            )
        else:
            figure.add_scatter(
                x=x,
                y=values,
                name=fmt.chart_text(system["system"]),
                mode="lines+markers",
                connectgaps=True,
                line={"color": color, "width": 2},
                marker={"size": 4},
            )
    if not drawn:
        return empty_figure(theme, "Nothing to draw in this range")
    figure.update_layout(
        **figure_layout(theme, height=260, barmode="stack", bargap=0.2), legend_traceorder="normal"
    )
    figure.update_xaxes(type="date")
    if field == "error_rate":
        figure.update_yaxes(tickformat=".0%", rangemode="tozero")
    elif field == "latency_p95_ms":
        figure.update_yaxes(ticksuffix=" ms", rangemode="tozero")
    else:
        figure.update_yaxes(rangemode="tozero")
    return figure


def _chart(id: str, title: str, subtitle: str, figure: go.Figure) -> Any:
    graph = dcc.Graph(
        id=id, figure=figure, config={"displayModeBar": False, "responsive": True}, className="tl-graph"
    )
    return card(title, graph, subtitle=subtitle)


def _columns() -> list[dict[str, Any]]:
    return [
        column("system", "System", flex=1, renderer="SystemName", minWidth=160),
        column("events", "Events", numeric=True, width=110),
        column("errors", "Errors", numeric=True, width=100),
        column(
            "error_rate",
            "Error rate",
            numeric=True,
            width=120,
            sort="desc",
            valueFormatter={"function": "params.data.error_rate_text"},
            cellClassRules={
                "tl-cell-failed": {"function": f"params.value >= {BAD_ERROR_RATE}"},
                "tl-cell-stuck": {
                    "function": f"params.value >= {WARN_ERROR_RATE} && params.value < {BAD_ERROR_RATE}"
                },
            },
        ),
        column("retries", "Retries", numeric=True, width=100),
        column("p50", "p50", numeric=True, width=100, valueFormatter={"function": "params.data.p50_text"}),
        column("p95", "p95", numeric=True, width=100, valueFormatter={"function": "params.data.p95_text"}),
        column("p99", "p99", numeric=True, width=100, valueFormatter={"function": "params.data.p99_text"}),
    ]


def _row(system: SystemHealth) -> dict[str, Any]:
    return {
        "system": system["system"],
        "tone": health_tone(system),
        "events": system["events"],
        "errors": system["errors"],
        "error_rate": system["error_rate"],
        "error_rate_text": fmt.percent(system["error_rate"]),
        "retries": system["retries"],
        "p50": system["latency_p50_ms"],
        "p50_text": fmt.milliseconds(system["latency_p50_ms"]),
        "p95": system["latency_p95_ms"],
        "p95_text": fmt.milliseconds(system["latency_p95_ms"]),
        "p99": system["latency_p99_ms"],
        "p99_text": fmt.milliseconds(system["latency_p99_ms"]),
    }


def register(app: dash.Dash) -> None:
    """The system filter writes itself into the URL."""

    @app.callback(
        Output("url", "search", allow_duplicate=True),
        Input("systems-system", "value"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def choose_system(system: str | None, search: str | None) -> str | NoUpdate:
        new = search_of(Query.parse(search).with_(system=system))
        return dash.no_update if new == (search or "") else new
