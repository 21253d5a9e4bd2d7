"""One table of benchmark figures, printed and written to bench/results.md."""

from __future__ import annotations

import datetime as dt
import os
import platform
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).with_name("results.md")


@dataclass(frozen=True)
class Figure:
    name: str
    value: str
    baseline: str
    ratio: float | None
    goal: str
    met: bool

    @classmethod
    def absolute(cls, name: str, value: str, goal: str, met: bool) -> Figure:
        """A figure held to a fixed goal, with no baseline to divide by (latencies, memory)."""
        return cls(name=name, value=value, baseline="—", ratio=None, goal=goal, met=met)


def table(figures: list[Figure]) -> str:
    lines = [
        "| figure | measured | baseline (same run) | ratio | goal | met |",
        "|---|---|---|---|---|---|",
    ]
    for figure in figures:
        ratio = f"{figure.ratio:.2f}x" if figure.ratio is not None else "—"
        met = "yes" if figure.met else "**no**"
        lines.append(
            f"| {figure.name} | {figure.value} | {figure.baseline} | {ratio} | {figure.goal} | {met} |"
        )
    return "\n".join(lines)


def write(figures: list[Figure], scale: str, elapsed_s: float | None = None) -> str:
    took = f", the whole run took {elapsed_s / 60:.1f} min" if elapsed_s is not None else ""
    header = (
        f"# Benchmark results\n\nScale `{scale}`, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores{took}.\n"
        "Ratios and medians are measured in the same run (see bench/README.md for what bounds each).\n\n"
    )
    text = table(figures)
    RESULTS.write_text(header + text + "\n")
    return text
