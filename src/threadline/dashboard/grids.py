"""AG Grid tables with the dashboard's look: themed, sortable, readable, links that navigate in-app.

The cell renderers named here (``StateBadge``, ``Link``, ...) are defined in
assets/dashAgGridComponentFunctions.js, where dash-ag-grid looks for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dash_ag_grid as dag

from .theme import GRID_THEME


def column(
    field: str,
    header: str,
    *,
    width: int | None = None,
    flex: float | None = None,
    renderer: str | None = None,
    numeric: bool = False,
    sort: str | None = None,
    tooltip: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One column definition; ``numeric`` right-aligns it and sorts it as a number."""
    definition: dict[str, Any] = {"field": field, "headerName": header}
    if width:
        definition["width"] = width
        definition["minWidth"] = width
    if flex:
        definition["flex"] = flex
        definition.setdefault("minWidth", 120)
    if renderer:
        definition["cellRenderer"] = renderer
    if numeric:
        definition["type"] = "rightAligned"
        definition["cellClass"] = "tl-num ag-right-aligned-cell"  # a cellClass replaces the type's own
    if sort:
        definition["sort"] = sort
    if tooltip:
        definition["tooltipField"] = tooltip
    definition.update(extra)
    return definition


def meter(field: str, header: str, width: int) -> dict[str, Any]:
    """A share drawn as its percentage and a bar; it sorts by the number.

    The row holds ``{"value": 0.87, "text": "87%", "kind": ...}`` under ``field``.
    """
    return column(
        field,
        header,
        width=width,
        renderer="Meter",
        valueGetter={"function": f"params.data.{field} ? params.data.{field}.value : null"},
        valueFormatter={"function": f"params.data.{field} ? params.data.{field}.text : ''"},
    )


def grid(
    id: str,
    columns: Sequence[dict[str, Any]],
    rows: Sequence[dict[str, Any]],
    *,
    row_id: str | None = None,
    height: int | None = None,
    clickable: bool = False,
    no_rows: str = "Nothing to show",
    pagination: bool = False,
) -> dag.AgGrid:
    """A grid of ``rows``; without ``height`` it grows with its rows (for short tables)."""
    options: dict[str, Any] = {
        "theme": GRID_THEME,
        "animateRows": False,
        "suppressCellFocus": True,
        "enableCellTextSelection": True,
        "tooltipShowDelay": 300,
        "localeText": {"noRowsToShow": no_rows},
    }
    if height is None:
        options["domLayout"] = "autoHeight"
    if pagination:
        options.update(pagination=True, paginationPageSize=50, paginationPageSizeSelector=[25, 50, 100, 200])
    return dag.AgGrid(
        id=id,
        columnDefs=list(columns),
        rowData=list(rows),
        defaultColDef={"sortable": True, "resizable": True, "suppressMovable": True},
        dashGridOptions=options,
        getRowId=f"params.data.{row_id}" if row_id else None,
        className="tl-grid" + (" tl-grid-clickable" if clickable else ""),
        style={"height": f"{height}px"} if height else {"height": None},
    )
