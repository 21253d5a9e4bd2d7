"""Process map (``/workflows/<name>``): how a workflow really runs, for process owners.

Steps are nodes laid out left to right in the order the definition expects them; directly-follows
edges are as thick as they are frequent and labelled with the median time between the two steps. An
edge is *slow* (red) when that median exceeds the time the target step is allowed (its ``within``,
else the workflow's ``stuck_after``), and dashed when the definition does not expect it (the API's
``expected``: going back, skipping a required step, or a step the definition does not name). The
variants table lists each distinct path with how many transactions took it. The conformance card
gives the share of transactions whose path followed the definition and names each deviation with
its transactions (the API's ``conformance``); the variants are split into conforming and deviating
ones, and a click on a deviation highlights its variants and the edges around its steps. Workflows
seen in the events but not defined (a replayed log) have their map too, with nothing judged.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import dash
import dash_cytoscape as cyto
from dash import ALL, Input, NoUpdate, Output, State, dcc, html

from .. import formatting as fmt
from ..client import NotFound
from ..components import card, empty_state, icon, kpi, labelled, page_header, range_picker, select
from ..grids import column, grid, meter
from ..page import PageContext, Rendered
from ..schema import Conformance, MapEdge, ProcessMap, Workflow
from ..theme import FONT_FAMILY, MONO_FAMILY, Palette
from ..urls import WORKFLOWS, Query, href, page_path, tail, workflow_path

COLUMN_GAP, ROW_GAP = 290, 120
LINE_CHARS = 26  # a longer step name wraps after one of its dots
DEVIATION = "map-deviation"  # the pattern id type of the deviation buttons
HIGHLIGHT_CLASSES = frozenset({"highlight", "dimmed"})


def allowed_seconds(workflow: Workflow | None, step: str) -> float | None:
    """How long ``step`` may take once due: its ``within``, else the workflow's ``stuck_after``."""
    if workflow is None:
        return None
    definition = next((s for s in workflow["steps"] if s["name"] == step), None)
    if definition and definition["within_seconds"]:
        return definition["within_seconds"]
    return workflow["stuck_after_seconds"]


def edge_label(edge: MapEdge) -> str:
    """ "count · median" on one short line: it has to fit between two steps."""
    return f"{edge['count']:,} · {fmt.duration(edge['median_seconds'], parts=1)}"


def unexpected(edge: MapEdge, workflow: Workflow | None) -> bool:
    """The definition does not expect the edge (the collector decides: ``expected``); a repeated step
    is drawn as a loop instead, and a workflow without a definition has nothing to judge by."""
    return workflow is not None and not edge["expected"] and edge["source"] != edge["target"]


def is_slow(edge: MapEdge, workflow: Workflow | None) -> bool:
    """Its median is over the time the target step is allowed (a retry loop is never slow)."""
    limit = allowed_seconds(workflow, edge["target"])
    return limit is not None and edge["source"] != edge["target"] and edge["median_seconds"] > limit


def _definition_depths(workflow: Workflow | None) -> dict[str, int]:
    """How many steps must come before each defined step (its ``after`` chain)."""
    after = {s["name"]: s["after"] for s in workflow["steps"]} if workflow else {}
    depth: dict[str, int] = {}

    def depth_of(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name not in depth:
            before = [b for b in after.get(name, []) if b in after and b not in seen]
            depth[name] = 1 + max((depth_of(b, seen | {name}) for b in before), default=-1)
        return depth[name]

    for name in after:
        depth_of(name)
    return depth


def columns(process: ProcessMap, workflow: Workflow | None) -> dict[str, int]:
    """A column per step, left to right as transactions really flow.

    The directly-follows graph is made acyclic by a depth-first walk that follows the busiest edges
    first (an edge back into the walk, like a retry or a step redone, is left out), then each step
    goes one column right of its furthest predecessor. Steps never reached keep their place in the
    definition.
    """
    outgoing: dict[str, list[tuple[int, str]]] = {}
    for edge in process["edges"]:
        if edge["source"] != edge["target"]:
            outgoing.setdefault(edge["source"], []).append((-edge["count"], edge["target"]))
    defined = [s["name"] for s in workflow["steps"]] if workflow else []
    starts = [variant["steps"][0] for variant in process["variants"] if variant["steps"]]
    order = list(dict.fromkeys([*starts, *defined, *(node["step"] for node in process["nodes"])]))
    forward: dict[str, list[str]] = {}
    finished: list[str] = []
    state: dict[str, int] = {}  # 1 on the walk, 2 done

    def walk(node: str) -> None:
        state[node] = 1
        for _, target in sorted(outgoing.get(node, [])):
            if state.get(target) == 1:
                continue  # a back edge: it would make a cycle
            forward.setdefault(node, []).append(target)
            if target not in state:
                walk(target)
        state[node] = 2
        finished.append(node)

    for node in order:
        if node not in state and node in outgoing:
            walk(node)
    column: dict[str, int] = {}
    for node in reversed(finished):  # topological order
        column.setdefault(node, 0)
        for target in forward.get(node, []):
            column[target] = max(column.get(target, 0), column[node] + 1)
    depths = _definition_depths(workflow)
    for name in order:
        column.setdefault(name, depths.get(name, 0))
    return column


def positions(process: ProcessMap, workflow: Workflow | None) -> dict[str, dict[str, float]]:
    """Where each step is drawn: its column, the busiest step of a column on the main row, failures below."""
    placed_columns = columns(process, workflow)
    failing = set(workflow["fail_on"]) if workflow else set()
    volume = {node["step"]: node["transactions"] for node in process["nodes"]}
    by_column: dict[int, list[str]] = {}
    for name, index in placed_columns.items():
        if name not in failing:
            by_column.setdefault(index, []).append(name)
    placed: dict[str, dict[str, float]] = {}
    for index, names in by_column.items():
        for row, name in enumerate(sorted(names, key=lambda n: -volume.get(n, 0))):
            placed[name] = {"x": index * COLUMN_GAP, "y": row * ROW_GAP}
    lowest = max((p["y"] for p in placed.values()), default=0)
    for name in failing:
        placed[name] = {"x": placed_columns.get(name, 0) * COLUMN_GAP, "y": lowest + ROW_GAP}
    return placed


def _wrap(step: str) -> str:
    """A step name on lines of at most LINE_CHARS, broken after dots (Cytoscape breaks on spaces only)."""
    lines = [""]
    for part in step.split("."):
        piece = part if not lines[-1] else "." + part
        if lines[-1] and len(lines[-1]) + len(piece) > LINE_CHARS:
            lines[-1] += "."
            lines.append(part)
        else:
            lines[-1] += piece
    return "\n".join(lines)


def elements(process: ProcessMap, workflow: Workflow | None) -> list[dict[str, Any]]:
    """Cytoscape's nodes (every defined or seen step) and edges, with the classes the stylesheet draws."""
    observed = [node["step"] for node in process["nodes"]]
    where = positions(process, workflow)
    failing = set(workflow["fail_on"]) if workflow else set()
    result: list[dict[str, Any]] = []
    seen = {node["step"]: node for node in process["nodes"]}
    systems = {s["name"]: s["system"] for s in workflow["steps"]} if workflow else {}
    for name in [*systems, *[n for n in observed if n not in systems]]:
        node = seen.get(name)
        system = (node and node["system"]) or systems.get(name) or "unknown"
        count = f"{node['transactions']:,} txn" if node else "never reached"
        classes = ["step"]
        if not node:
            classes.append("unreached")
        if name in failing:
            classes.append("failure")
        if node and not node["expected"]:
            classes.append("undefined")
        result.append(
            {
                "data": {"id": name, "label": f"{_wrap(name)}\n{system} · {count}"},
                "position": where.get(name, {"x": 0, "y": 0}),
                "classes": " ".join(classes),
            }
        )
    most = max((edge["count"] for edge in process["edges"]), default=1)
    for edge in process["edges"]:
        classes = ["flow"]
        if is_slow(edge, workflow):
            classes.append("slow")
        if unexpected(edge, workflow):
            classes.append("unexpected")
        if edge["source"] == edge["target"]:
            classes.append("loop")
        result.append(
            {
                "data": {
                    "id": f"{edge['source']}->{edge['target']}",
                    "source": edge["source"],
                    "target": edge["target"],
                    "label": edge_label(edge),
                    "width": 1.5 + 8.5 * edge["count"] / most,
                },
                "classes": " ".join(classes),
            }
        )
    return result


def stylesheet(theme: Palette) -> list[dict[str, Any]]:
    """Cytoscape's styles, drawn in the page's palette (it cannot read CSS variables)."""
    return [
        {
            "selector": "node.step",
            "style": {
                "shape": "round-rectangle",
                "label": "data(label)",
                "text-wrap": "wrap",
                "text-valign": "center",
                "text-halign": "center",
                "width": 210,
                "height": "label",
                "padding": "11px",
                "background-color": theme.surface,
                "border-width": 1.5,
                "border-color": theme.accent,
                "color": theme.text,
                "font-family": MONO_FAMILY,
                "font-size": 13,
                "line-height": 1.45,
            },
        },
        {"selector": "node.failure", "style": {"border-color": theme.failed, "border-style": "solid"}},
        {"selector": "node.undefined", "style": {"border-color": theme.violation, "border-style": "dashed"}},
        {
            "selector": "node.unreached",
            "style": {
                "border-style": "dashed",
                "border-color": theme.neutral,
                "color": theme.muted,
                "opacity": 0.8,
            },
        },
        {
            "selector": "edge.flow",
            "style": {
                "curve-style": "bezier",
                "control-point-step-size": 46,
                "width": "data(width)",
                "line-color": theme.muted,
                "target-arrow-color": theme.muted,
                "target-arrow-shape": "triangle",
                "arrow-scale": 0.9,
                "label": "data(label)",
                "font-family": FONT_FAMILY,
                "font-size": 11,
                "text-margin-y": -11,
                "color": theme.text,
                "text-background-color": theme.surface,
                "text-background-opacity": 0.95,
                "text-background-padding": "3px",
                "text-background-shape": "round-rectangle",
                "text-border-color": theme.border,
                "text-border-width": 1,
                "text-border-opacity": 1,
                "opacity": 0.9,
            },
        },
        {
            "selector": "edge.unexpected",
            "style": {
                "line-style": "dashed",
                "line-color": theme.violation,
                "target-arrow-color": theme.violation,
            },
        },
        {
            "selector": "edge.slow",
            "style": {
                "line-color": theme.failed,
                "target-arrow-color": theme.failed,
                "color": theme.failed,
                "font-weight": 600,
            },
        },
        {
            "selector": "edge.loop",
            "style": {
                "loop-direction": "0deg",
                "loop-sweep": "-50deg",
                "control-point-step-size": 70,
                "line-color": theme.stuck,
                "target-arrow-color": theme.stuck,
            },
        },
        # A chosen deviation: its steps and the edges its variants take around them stand out.
        {"selector": "edge.dimmed", "style": {"opacity": 0.15}},
        {
            "selector": "edge.highlight",
            "style": {
                "line-color": theme.violation,
                "target-arrow-color": theme.violation,
                "opacity": 1,
                "z-index": 10,
            },
        },
        {"selector": "node.highlight", "style": {"border-color": theme.violation, "border-width": 4}},
    ]


def render(context: PageContext) -> Rendered:
    """The map of the workflow the path names (the first one for ``/workflows/``)."""
    name = tail(context.pathname, WORKFLOWS).removesuffix("/")
    workflows = context.client.workflows()
    if not name and workflows:
        name = workflows[0]["name"]
    query = context.query
    since, until = query.window(context.now)
    definition = next((w for w in workflows if w["name"] == name and w.get("defined", True)), None)
    choices = [
        {"label": w["name"] if w.get("defined", True) else f"{w['name']} (not defined)", "value": w["name"]}
        for w in workflows
    ]
    filters = html.Div(
        [
            labelled("Workflow", select("map-workflow", choices, name or None, "Choose", width=240)),
            labelled("Started", range_picker(workflow_path(name), query)),
        ],
        className="tl-filters",
    )
    try:
        process = context.client.process_map(name, since=since, until=until)
    except NotFound:
        header = page_header("Process map", "No such workflow", filters)
        body = empty_state(
            f"No workflow named “{name}”", "It is neither defined nor seen in any event.", "diagram-3"
        )
        return Rendered("Process map", [header, card(body=body)])
    header = page_header(
        name,
        f"How {process['transactions']:,} transactions ran, step to step",
        filters,
        kicker="Process map",
    )
    if not process["transactions"]:
        body = empty_state(
            "No transaction in this range",
            "Widen the time range, or send events for this workflow.",
            "diagram-3",
            dcc.Link(
                "All time",
                href=href(workflow_path(name), query.with_(range="all")),
                className="btn btn-primary",
            ),
        )
        return Rendered(name, [header, None if definition else _not_defined(name), card(body=body)])
    slow = [edge for edge in process["edges"] if is_slow(edge, definition)]
    happy = process["variants"][0] if process["variants"] else None
    return Rendered(
        name,
        [
            header,
            None if definition else _not_defined(name),
            html.Div(
                [
                    kpi(
                        "map-transactions",
                        "Transactions",
                        fmt.count(process["transactions"]),
                        None,
                        "accent",
                        "arrow-left-right",
                    ),
                    kpi(
                        "map-variants",
                        "Variants",
                        fmt.count(len(process["variants"])),
                        "distinct paths",
                        "in_progress",
                        "signpost-split",
                    ),
                    kpi(
                        "map-top-variant",
                        "Most common path",
                        fmt.percent(happy["share"]) if happy else "—",
                        f"{happy['transactions']:,} transactions" if happy else None,
                        "completed",
                        "bezier2",
                    ),
                    kpi(
                        "map-slow",
                        "Slow hand-offs",
                        fmt.count(len(slow)),
                        "median over the time allowed",
                        "failed" if slow else "completed",
                        "hourglass-bottom",
                    ),
                ],
                className="tl-kpis tl-kpis-4",
            ),
            _conformance(process, definition),
            card(
                "Directly-follows graph",
                [
                    cyto.Cytoscape(
                        id="process-map",
                        elements=elements(process, definition),
                        stylesheet=stylesheet(context.theme),
                        layout={"name": "preset", "fit": True, "padding": 36},
                        style={"width": "100%", "height": f"{_map_height(process, definition)}px"},
                        minZoom=0.3,
                        maxZoom=2.5,
                        userZoomingEnabled=True,
                        autoungrabify=False,
                        responsive=True,
                    ),
                    _legend(),
                ],
                subtitle="Edge width: how many transactions went that way; label: count · median time "
                "between the steps",
                flush=True,
            ),
            *_variant_cards(process, definition),
        ],
    )


def _not_defined(name: str) -> html.Div:
    return html.Div(
        html.Div(
            [
                icon("question-diamond-fill", "tl-callout-icon"),
                html.Div(
                    [
                        html.Strong("Workflow not defined "),
                        html.Span(name, className="tl-mono"),
                        " is not in the workflow definitions: the map shows how its transactions ran, "
                        "with no expected order, time limits or state to judge them by.",
                    ]
                ),
            ],
            className="tl-callout tl-callout-violation",
            id="callout-map-undefined",
        ),
        className="tl-callouts",
    )


def _map_height(process: ProcessMap, workflow: Workflow | None) -> int:
    """Tall enough for the graph at the zoom its width allows (about 1,350 px wide), no taller."""
    placed = positions(process, workflow).values()
    width = max((p["x"] for p in placed), default=0) + 210
    height = max((p["y"] for p in placed), default=0) + 140  # the node, and the retry loops above it
    zoom = min(1.0, 1350 / width)
    return int(min(max(height * zoom + 110, 320), 640))


def _legend() -> html.Div:
    def item(swatch: str, text: str) -> html.Span:
        return html.Span(
            [html.Span(className=f"tl-legend-swatch {swatch}"), text], className="tl-legend-item"
        )

    return html.Div(
        [
            item("tl-swatch-flow", "expected order"),
            item("tl-swatch-slow", "slower than allowed"),
            item("tl-swatch-unexpected", "not in the defined order"),
            item("tl-swatch-loop", "repeated step (retries)"),
            item("tl-swatch-unreached", "never reached"),
            html.Span(
                [icon("mouse", "me-1"), "scroll to zoom, drag to pan"], className="tl-legend-item ms-auto"
            ),
        ],
        className="tl-legend",
    )


def _judged(process: ProcessMap, workflow: Workflow | None) -> Conformance | None:
    """The API's conformance, when the workflow is defined (an older collector's map has none)."""
    result = process.get("conformance")
    return result if workflow is not None and result and result["judged"] else None


def _conformance(process: ProcessMap, workflow: Workflow | None) -> Any:
    """The share that followed the definition, as a figure and a bar, and every deviation named."""
    result = _judged(process, workflow)
    if result is None:
        return None
    share = result["conforming_share"] or 0.0
    deviations = [
        html.Button(
            [
                html.Span(deviation["description"], className="tl-mono"),
                html.Span(
                    fmt.plural(deviation["transactions"], "transaction"), className="tl-deviation-count"
                ),
            ],
            id={"type": DEVIATION, "index": index},
            className="tl-deviation",
            n_clicks=0,
            title="Highlight its variants and edges",
        )
        for index, deviation in enumerate(result["deviations"])
    ]
    return card(
        "Conformance to the definition",
        [
            html.Div(
                [
                    html.Span(fmt.percent(result["conforming_share"]), id="map-conformance-share"),
                    html.Span(
                        f"{result['conforming']:,} of {fmt.plural(result['transactions'], 'transaction')} "
                        "followed the definition",
                        className="tl-muted",
                    ),
                ],
                className="tl-conformance-figure",
            ),
            html.Div(
                html.Div(className="tl-bar tl-bar-conforming", style={"width": f"{share * 100:.1f}%"}),
                className="tl-bar-track tl-conformance-bar",
            ),
            html.P(result["note"], className="tl-muted tl-conformance-note"),
            html.Div(deviations or "No deviation.", id="map-deviations", className="tl-deviations"),
            dcc.Store(id="map-deviation-targets", data=deviation_targets(process)),
        ],
        subtitle="Deviations, most transactions first: click one to highlight its variants and edges",
        id="map-conformance",
    )


def deviation_targets(process: ProcessMap) -> list[dict[str, list[str]]]:
    """Per ranked deviation: its steps (nodes), the edges its variants take into or out of them, and
    its variants' row ids."""
    conformance = process.get("conformance")
    targets = []
    for deviation in conformance["deviations"] if conformance else []:
        steps = {deviation["step"], deviation["other"]} - {None}
        variants = [
            (index, variant["steps"])
            for index, variant in enumerate(process["variants"])
            if any(
                found["description"] == deviation["description"] for found in variant.get("deviations", [])
            )
        ]
        edges = {
            f"{source}->{target}"
            for _, path in variants
            for source, target in pairwise(path)
            if source in steps or target in steps
        }
        targets.append(
            {
                "nodes": sorted(str(step) for step in steps),
                "edges": sorted(edges),
                "variants": [str(index + 1) for index, _ in variants],
            }
        )
    return targets


def _variant_cards(process: ProcessMap, workflow: Workflow | None) -> list[Any]:
    """One table of every variant, or (a defined workflow) the conforming apart from the deviating."""
    rows = _variant_rows(process)
    if _judged(process, workflow) is None:
        return [
            card(
                "Variants",
                _variants("variants-grid", rows, _variant_columns()),
                subtitle="Each distinct sequence of steps, most common first",
                flush=True,
            )
        ]
    conforming = [row for row in rows if row["conforming"]]
    deviating = [row for row in rows if not row["conforming"]]
    return [
        card(
            "Conforming variants",
            _variants("conforming-variants-grid", conforming, _variant_columns()),
            subtitle="Paths that followed the definition (an open one: so far), most common first",
            flush=True,
        ),
        card(
            "Deviating variants",
            _variants(
                "deviating-variants-grid",
                deviating,
                [*_variant_columns(), column("deviations", "Deviations", flex=0.7, wrapText=True)],
            ),
            subtitle="Paths with at least one deviation, named",
            flush=True,
        ),
    ]


def _variants(id: str, rows: list[dict[str, Any]], columns: list[dict[str, Any]]) -> Any:
    height = None if len(rows) <= 10 else 560
    table = grid(id, columns, rows, row_id="id", height=height, no_rows="No variant")
    table.dashGridOptions["getRowHeight"] = {"function": "params.data.height"}
    table.rowClassRules = {"tl-row-highlight": "params.data.highlighted"}
    return table


def _variant_columns() -> list[dict[str, Any]]:
    return [
        column("rank", "#", numeric=True, width=70),
        column("transactions", "Transactions", numeric=True, width=130, sort="desc"),
        meter("share", "Share", 180),
        column("steps", "Path", renderer="Path", flex=1, sortable=False),
    ]


def _variant_rows(process: ProcessMap) -> list[dict[str, Any]]:
    rows = []
    for index, variant in enumerate(process["variants"]):
        deviations = [found["description"] for found in variant.get("deviations", [])]
        rows.append(
            {
                "id": str(index + 1),
                "rank": index + 1,
                "transactions": variant["transactions"],
                "share": {"value": variant["share"], "text": fmt.percent(variant["share"]), "kind": "share"},
                "steps": variant["steps"],
                "conforming": variant.get("conforming"),
                "deviations": "; ".join(deviations),
                "highlighted": False,
                "height": max(_path_height(variant["steps"]), 20 + 22 * len(deviations)),
            }
        )
    return rows


def highlighted(element: dict[str, Any], target: dict[str, list[str]]) -> dict[str, Any]:
    """A Cytoscape element with the chosen deviation's classes: its steps and edges highlighted, the
    other edges dimmed."""
    classes = [name for name in element.get("classes", "").split() if name not in HIGHLIGHT_CLASSES]
    identity = element["data"]["id"]
    if "source" in element["data"]:
        classes.append("highlight" if identity in target["edges"] else "dimmed")
    elif identity in target["nodes"]:
        classes.append("highlight")
    return {**element, "classes": " ".join(classes)}


def _path_height(steps: list[str], width_px: int = 980) -> int:
    """Row height for a wrapped path (AG Grid's own auto height leaves gaps on first draw)."""
    lines, used = 1, 0.0
    for step in steps:
        size = len(step) * 7.3 + 34  # monospace chip and arrow
        if used and used + size > width_px:
            lines, used = lines + 1, 0
        used += size
    return 20 + 26 * lines


def register(app: dash.Dash) -> None:
    """Choosing another workflow opens its map, keeping the time range; choosing a deviation
    highlights it."""

    @app.callback(
        Output("process-map", "elements"),
        Output("deviating-variants-grid", "rowData"),
        Output({"type": DEVIATION, "index": ALL}, "className"),
        Input({"type": DEVIATION, "index": ALL}, "n_clicks"),
        State("map-deviation-targets", "data"),
        State("process-map", "elements"),
        State("deviating-variants-grid", "rowData"),
        prevent_initial_call=True,
    )
    def highlight(
        clicks: list[int | None],
        targets: list[dict[str, list[str]]],
        elements: list[dict[str, Any]],
        rows: list[dict[str, Any]],
    ) -> tuple[Any, ...]:
        """A click on a deviation; a button that is merely drawn (n_clicks 0) does nothing."""
        triggered = dash.ctx.triggered[0] if dash.ctx.triggered else {}
        if not triggered.get("value"):
            return dash.no_update, dash.no_update, [dash.no_update] * len(clicks)
        chosen = dash.ctx.triggered_id["index"]
        target = targets[chosen]
        return (
            [highlighted(element, target) for element in elements],
            [{**row, "highlighted": row["id"] in target["variants"]} for row in rows],
            [
                "tl-deviation tl-deviation-chosen" if index == chosen else "tl-deviation"
                for index in range(len(clicks))
            ],
        )

    @app.callback(
        Output("url", "href", allow_duplicate=True),
        Input("map-workflow", "value"),
        State("url", "pathname"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def choose(name: str | None, pathname: str | None, search: str | None) -> str | NoUpdate:
        if not name or tail(page_path(pathname or ""), WORKFLOWS) == name:
            return dash.no_update
        query = Query.parse(search)
        return href(workflow_path(name), {key: query.get(key) for key in ("range", "since", "until")})
