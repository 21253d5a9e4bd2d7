"""The span waterfall of a technical trace: each span a bar from its start, indented under its parent.

It is how a person goes from a business event ("billing failed") to the call that failed and how
long each part of it took.
"""

from __future__ import annotations

import datetime as dt

import plotly.graph_objects as go

from . import formatting as fmt
from .schema import Span, SpanEvent, Trace
from .theme import Palette, figure_layout

NBSP = "\u00a0"
LABEL_SHARE = 0.3  # of the width, for the span names
EXCEPTION = "exception"  # the span event OpenTelemetry records an exception as
EVENTS_SHOWN = 3  # per span in its tooltip, exceptions first
EVENT_TEXT_LIMIT = 160  # characters of one event's line in a tooltip


def ordered(spans: list[Span]) -> list[tuple[Span, int]]:
    """Spans depth-first, children after their parent by start time, each with its depth."""
    ids = {span["span_id"] for span in spans}
    children: dict[str | None, list[Span]] = {}
    for span in spans:
        parent = span["parent_span_id"] if span["parent_span_id"] in ids else None
        children.setdefault(parent, []).append(span)
    result: list[tuple[Span, int]] = []

    def visit(parent: str | None, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: (s["start_time"], s["span_id"])):
            result.append((span, depth))
            visit(span["span_id"], depth + 1)

    visit(None, 0)
    return result


def _hover(span: Span, offset_ms: float, theme: Palette) -> str:
    """A span in a tooltip; names and messages are escaped (Plotly reads tooltips as HTML)."""
    text = (
        f"<b>{fmt.chart_text(span['name'])}</b><br>{fmt.chart_text(span['service'])} · {span['kind']}<br>"
        f"starts +{fmt.milliseconds(offset_ms)}, takes {fmt.milliseconds(span['duration_ms'])}"
    )
    if span["status_code"] == "error":
        text += (
            f"<br><span style='color:{theme.failed}'>error: {fmt.chart_text(span['status_message'])}</span>"
        )
    events = span.get("events", [])
    for event in sorted(events, key=lambda event: event["name"] != EXCEPTION)[:EVENTS_SHOWN]:
        text += f"<br>{fmt.chart_text(_event_line(event))}"
    if len(events) > EVENTS_SHOWN:
        text += f"<br>{fmt.plural(len(events) - EVENTS_SHOWN, 'more event')}"
    return text


def _event_line(event: SpanEvent) -> str:
    """An exception as its type and message (what was thrown is why the span failed), else its name."""
    if event["name"] != EXCEPTION:
        return event["name"]
    attributes = event["attributes"]
    thrown = f"{attributes.get('exception.type', EXCEPTION)}: {attributes.get('exception.message', '')}"
    return thrown if len(thrown) <= EVENT_TEXT_LIMIT else thrown[: EVENT_TEXT_LIMIT - 1] + "…"


def figure(trace: Trace, theme: Palette, tz: dt.tzinfo) -> go.Figure:
    """Bars from each span's start, coloured by service (red when it failed), names on the left."""
    rows = ordered(trace["spans"])
    start = min(
        fmt.parse_time(span["start_time"]) or dt.datetime.max.replace(tzinfo=dt.UTC) for span, _ in rows
    )
    services = list(dict.fromkeys(span["service"] for span, _ in rows))
    colors = {service: theme.series[i % len(theme.series)] for i, service in enumerate(services)}
    offsets = [
        ((fmt.parse_time(span["start_time"]) or start) - start).total_seconds() * 1000 for span, _ in rows
    ]
    fig = go.Figure()
    for service in services:
        chosen = [i for i, (span, _) in enumerate(rows) if span["service"] == service]
        fig.add_bar(
            y=chosen,
            x=[max(rows[i][0]["duration_ms"], 0.5) for i in chosen],
            base=[offsets[i] for i in chosen],
            orientation="h",
            name=fmt.chart_text(service),  # the legend
            marker={
                "color": [
                    theme.failed if rows[i][0]["status_code"] == "error" else colors[service] for i in chosen
                ],
                "line": {"width": 0},
                "cornerradius": 3,
            },
            text=[fmt.milliseconds(rows[i][0]["duration_ms"]) for i in chosen],
            textposition="outside",
            cliponaxis=False,
            textfont={"color": theme.muted, "size": 11},
            hovertext=[_hover(rows[i][0], offsets[i], theme) for i in chosen],
            hoverinfo="text",
        )
    end = max(offset + span["duration_ms"] for offset, (span, _) in zip(offsets, rows, strict=True))
    fig.update_layout(
        **figure_layout(
            theme,
            height=90 + 34 * len(rows),
            hovermode="closest",
            barmode="overlay",
            bargap=0.35,
            margin={"l": 16, "r": 24, "t": 36, "b": 36},
        )
    )
    # Names left-aligned in their own column, indented under their parent, service in grey.
    for index, (span, depth) in enumerate(rows):
        color = theme.failed if span["status_code"] == "error" else theme.text
        fig.add_annotation(
            x=0,
            xref="paper",
            y=index,
            yref="y",
            xanchor="left",
            showarrow=False,
            align="left",
            text=f"{NBSP * 4 * depth}{'└ ' if depth else ''}<span style='color:{color}'>"
            f"{fmt.chart_text(span['name'])}</span>  <span style='color:{theme.muted};font-size:11px'>"
            f"{fmt.chart_text(span['service'])}</span>",
            font={"size": 12},
        )
    fig.update_yaxes(
        autorange="reversed", showticklabels=False, showgrid=False, fixedrange=True, zeroline=False
    )
    fig.update_xaxes(
        domain=[LABEL_SHARE, 1],
        range=[0, end * 1.12 or 1],
        ticksuffix=" ms",
        title_text=f"from {fmt.clock(start, tz)}",
    )
    return fig
