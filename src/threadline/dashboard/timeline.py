"""The swimlane timeline of one transaction: one lane per system, every event on it.

Retries and errors stay visible (each attempt is its own mark, errors in red), the hand-offs between
systems are drawn as a line, and the steps still awaited run as dashed bars from when they became
due up to now, so a person sees at a glance where the transaction waits and for how long.
"""

from __future__ import annotations

import datetime as dt

import plotly.graph_objects as go

from . import formatting as fmt
from .schema import Event, TransactionDetail
from .theme import MONO_FAMILY, Palette, figure_layout

SYMBOLS = {"ok": "circle", "error": "x", "retrying": "diamond", "pending": "circle-open"}


def lanes(detail: TransactionDetail) -> list[str]:
    """Systems in the order the transaction first reached them, then the ones it waits on (as sent)."""
    order: list[str] = []
    for event in detail["events"]:
        if event["system"] not in order:
            order.append(event["system"])
    for waiting in detail["waiting_on"]:
        system = waiting["system"] or "unknown"
        if system not in order:
            order.append(system)
    return order


def lane(system: str) -> str:
    """A system's lane as the chart names it (its tick label): the name as sent, shown literally."""
    return fmt.chart_text(system)


def _hover(event: Event, tz: dt.tzinfo) -> str:
    """The event in a tooltip; what integrations sent is escaped (Plotly reads tooltips as HTML)."""
    lines = [
        f"<b>{fmt.chart_text(event['step'])}</b>",
        f"{fmt.chart_text(event['system'])} · {fmt.chart_text(event['status'])}"
        + (f" · attempt {event['attempt']}" if event["attempt"] else ""),
        fmt.full_time(event["timestamp"], tz),
    ]
    if event["duration_ms"] is not None:
        lines.append(f"took {fmt.milliseconds(event['duration_ms'])}")
    if event["error"]:
        lines.append(
            f"<span style='color:#ef4444'>{fmt.chart_text(event['error']['kind'])}: "
            f"{fmt.chart_text(event['error']['message'])}</span>"
        )
    if event["trace_id"]:
        lines.append("click to open its trace")
    return "<br>".join(lines)


def figure(detail: TransactionDetail, theme: Palette, tz: dt.tzinfo) -> go.Figure:
    """The swimlanes; each event's point carries its trace id, so a click can open the trace."""
    systems = lanes(detail)
    events = detail["events"]
    as_of = fmt.parse_time(detail["as_of"]) or dt.datetime.now(dt.UTC)
    fig = go.Figure()

    # The path of the work between systems, through the steps that succeeded.
    done = [event for event in events if event["status"] == "ok"]
    if len(done) > 1:
        fig.add_scatter(
            x=[fmt.parse_time(e["timestamp"]) for e in done],
            y=[lane(e["system"]) for e in done],
            mode="lines",
            line={"color": theme.neutral, "width": 1.5, "dash": "dot"},
            hoverinfo="skip",
            showlegend=False,
        )

    # What it waits on: a dashed bar from when the step became due until now.
    for waiting in detail["waiting_on"]:
        system = waiting["system"] or "unknown"
        due = fmt.parse_time(waiting["due_since"])
        color = theme.stuck if detail["state"] == "stuck" or waiting["overdue"] else theme.in_progress
        waited = fmt.duration((as_of - due).total_seconds()) if due else ""
        fig.add_scatter(
            x=[due, as_of],
            y=[lane(system)] * 2,
            mode="lines+markers+text",
            line={"color": color, "width": 3, "dash": "dash"},
            marker={
                "symbol": ["line-ns", "circle-open"],
                "size": [12, 16],
                "color": color,
                "line": {"width": 2.5},
            },
            text=["", f"waiting {waited}"],
            textposition="top left",
            textfont={"color": color, "size": 11},
            hovertext=f"<b>waiting on {fmt.chart_text(waiting['step'])}</b><br>"
            f"{fmt.chart_text(system)} · due for {waited}",
            hoverinfo="text",  # not a hovertemplate: a step named "%{x}" is a name, not a placeholder
            showlegend=False,
        )

    # Every event, one trace per status so the legend explains the colours.
    first_of_step: set[str] = set()
    labels: list[str] = []
    for event in events:
        label = event["step"] if event["step"] not in first_of_step else ""
        first_of_step.add(event["step"])
        labels.append(label)
    for status in ("ok", "retrying", "pending", "error"):
        chosen = [
            (event, label) for event, label in zip(events, labels, strict=True) if event["status"] == status
        ]
        if not chosen:
            continue
        fig.add_scatter(
            x=[fmt.parse_time(e["timestamp"]) for e, _ in chosen],
            y=[lane(e["system"]) for e, _ in chosen],
            mode="markers+text",
            name={"ok": "done", "error": "error", "retrying": "retrying", "pending": "pending"}[status],
            marker={
                "symbol": SYMBOLS[status],
                "size": 15 if status != "error" else 13,
                "color": theme.state(status),
                "line": {"width": 2.5 if status in ("error", "pending") else 2, "color": theme.surface}
                if status not in ("error", "pending")
                else {"width": 3, "color": theme.state(status)},
            },
            text=[fmt.chart_text(label) for _, label in chosen],
            textposition="top center",
            textfont={"family": MONO_FAMILY, "size": 11, "color": theme.text},
            customdata=[[e["trace_id"] or "", e["event_id"]] for e, _ in chosen],
            hovertext=[_hover(e, tz) for e, _ in chosen],
            hoverinfo="text",
        )

    fig.add_vline(x=as_of, line={"color": theme.muted, "width": 1, "dash": "dot"})
    fig.add_annotation(
        x=as_of, y=1, yref="paper", text="now", showarrow=False, yanchor="bottom", font={"color": theme.muted}
    )
    first = (fmt.parse_time(events[0]["timestamp"]) if events else None) or as_of
    last = max(as_of if detail["state"] in ("stuck", "in_progress") else first, _last(events) or first)
    pad = max((last - first) * 0.06, dt.timedelta(minutes=2))
    lead = max((last - first) * 0.1, dt.timedelta(minutes=3))  # room for the first step's name
    fig.update_layout(
        **figure_layout(
            theme,
            height=130 + 72 * len(systems),
            hovermode="closest",
            margin={"l": 110, "r": 24, "t": 36, "b": 40},
            legend={**figure_layout(theme)["legend"], "y": 1.08, "x": 1, "xanchor": "right"},
        )
    )
    fig.update_xaxes(type="date", range=[first - lead, last + pad], showgrid=True)
    fig.update_yaxes(
        type="category",
        categoryorder="array",
        categoryarray=[lane(system) for system in reversed(systems)],
        showgrid=True,
        gridcolor=theme.grid,
        tickfont={"size": 12, "color": theme.text},
        range=[-0.6, len(systems) - 0.4],
        fixedrange=True,
    )
    return fig


def _last(events: list[Event]) -> dt.datetime | None:
    return fmt.parse_time(events[-1]["timestamp"]) if events else None
