"""The ``threadline`` command."""

from __future__ import annotations

import runpy
from pathlib import Path

import typer

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Business-transaction tracing for integrations."
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@app.callback()
def main() -> None:
    """Threadline: follow every business transaction across CRM, CPQ, billing, support and ERP."""


@app.command()
def demo() -> None:
    """Run the instrumented example integration (a CRM → ERP hand-off over a queue)."""
    runpy.run_path(str(PROJECT_ROOT / "examples" / "queue_consumer.py"), run_name="__main__")
