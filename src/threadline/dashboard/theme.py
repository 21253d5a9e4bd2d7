"""The light and dark themes: status colours, chart templates, grid and process-map colours.

The page chrome follows Bootstrap's colour modes (``data-bs-theme`` on <html>, set in the browser);
what is drawn server-side (Plotly figures, the Cytoscape stylesheet) takes its colours from here, so
both follow the same palette. A status has one colour everywhere: stuck amber, failed red,
completed green, in progress blue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import plotly.graph_objects as go

ThemeName = Literal["light", "dark"]
FONT_FAMILY = (
    'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "Noto Sans", "Liberation Sans", '
    "Arial, sans-serif"
)
MONO_FAMILY = 'ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace'


@dataclass(frozen=True)
class Palette:
    """One theme's colours, for what Python draws (charts, the process map)."""

    name: ThemeName
    text: str
    muted: str
    grid: str
    surface: str
    border: str
    completed: str
    failed: str
    stuck: str
    in_progress: str
    breached: str
    violation: str
    neutral: str
    accent: str
    series: tuple[str, ...]

    def state(self, state: str) -> str:
        """The colour of a transaction state, step state or event status."""
        return {
            "completed": self.completed,
            "done": self.completed,
            "ok": self.completed,
            "failed": self.failed,
            "error": self.failed,
            "stuck": self.stuck,
            "retrying": self.stuck,
            "waiting": self.stuck,
            "in_progress": self.in_progress,
            "pending": self.in_progress,
            "missing": self.violation,
            "breached": self.breached,
        }.get(state, self.neutral)


LIGHT = Palette(
    name="light",
    text="#1e293b",
    muted="#64748b",
    grid="#e8edf3",
    surface="#ffffff",
    border="#dfe4ea",
    completed="#16a34a",
    failed="#dc2626",
    stuck="#d97706",
    in_progress="#2563eb",
    breached="#db2777",
    violation="#7c3aed",
    neutral="#94a3b8",
    accent="#4f46e5",
    series=("#4f46e5", "#0891b2", "#ea580c", "#db2777", "#0d9488", "#9333ea", "#475569", "#a16207"),
)
DARK = Palette(
    name="dark",
    text="#e2e8f0",
    muted="#94a3b8",
    grid="#263041",
    surface="#161d2b",
    border="#2a3446",
    completed="#22c55e",
    failed="#f87171",
    stuck="#fbbf24",
    in_progress="#60a5fa",
    breached="#f472b6",
    violation="#a78bfa",
    neutral="#64748b",
    accent="#818cf8",
    series=("#818cf8", "#22d3ee", "#fb923c", "#f472b6", "#2dd4bf", "#c084fc", "#94a3b8", "#facc15"),
)


def palette(name: str | None) -> Palette:
    """The palette of the browser's colour mode; light unless it is dark."""
    return DARK if name == "dark" else LIGHT


def figure_layout(theme: Palette, **overrides: Any) -> dict[str, Any]:
    """The layout every chart shares: transparent on the card, system font, quiet grid lines."""
    axis = {
        "gridcolor": theme.grid,
        "zerolinecolor": theme.grid,
        "linecolor": theme.border,
        "tickfont": {"color": theme.muted, "size": 11},
        "title": {"font": {"color": theme.muted, "size": 12}},
    }
    layout: dict[str, Any] = {
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"family": FONT_FAMILY, "color": theme.text, "size": 12},
        "colorway": list(theme.series),
        "margin": {"l": 48, "r": 16, "t": 12, "b": 36},
        "xaxis": dict(axis),
        "yaxis": dict(axis),
        "legend": {
            "orientation": "h",
            "yanchor": "bottom",
            "y": 1.02,
            "xanchor": "left",
            "x": 0,
            "font": {"color": theme.muted, "size": 11},
            "bgcolor": "rgba(0,0,0,0)",
        },
        "hoverlabel": {
            "bgcolor": theme.surface,
            "bordercolor": theme.border,
            "font": {"family": FONT_FAMILY, "color": theme.text, "size": 12},
        },
        "hovermode": "x unified",
    }
    layout.update(overrides)
    return layout


def empty_figure(theme: Palette, message: str) -> go.Figure:
    """A chart with nothing to draw says so, in place of the chart."""
    figure = go.Figure()
    figure.update_layout(
        **figure_layout(theme, hovermode=False),
        annotations=[
            {
                "text": message,
                "showarrow": False,
                "font": {"color": theme.muted, "size": 13},
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
            }
        ],
    )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return figure


# AG Grid's Quartz theme, its colours taken from Bootstrap's CSS variables so it follows the colour mode.
GRID_THEME = {
    "function": (
        "themeQuartz.withParams({"
        "backgroundColor: 'var(--bs-body-bg)', foregroundColor: 'var(--bs-body-color)', "
        "headerBackgroundColor: 'var(--tl-subtle-bg)', headerTextColor: 'var(--bs-secondary-color)', "
        "borderColor: 'var(--bs-border-color)', rowHoverColor: 'var(--tl-hover-bg)', "
        "accentColor: 'var(--bs-primary)', oddRowBackgroundColor: 'var(--bs-body-bg)', "
        "fontFamily: 'inherit', fontSize: 13, headerFontSize: 12, headerFontWeight: 600, "
        "wrapperBorderRadius: 10, rowHeight: 44, headerHeight: 40, spacing: 6, "
        "browserColorScheme: 'inherit'})"
    )
}
