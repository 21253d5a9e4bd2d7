"""The ``threadline`` command: ``collector``, ``demo`` (and, as they land, the rest of DESIGN.md)."""

from __future__ import annotations

import logging
import runpy
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Business-transaction tracing for integrations."
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@app.callback()
def main() -> None:
    """Threadline: follow every business transaction across CRM, CPQ, billing, support and ERP."""


@app.command()
def collector(
    port: Annotated[
        int | None, typer.Option(help="Port (OTLP/HTTP standard: 4318) [env THREADLINE_PORT]")
    ] = None,
    store: Annotated[
        str | None, typer.Option(help="chdb://DIR (embedded) or http://host:8123 [env THREADLINE_STORE]")
    ] = None,
    workflows: Annotated[
        Path | None, typer.Option(help="Workflow definitions YAML [env THREADLINE_WORKFLOWS]")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on [env THREADLINE_HOST]")] = None,
) -> None:
    """Run the collector: OTLP/HTTP and JSON ingest, query API, /metrics."""
    import uvicorn

    from threadline.collector.app import create_app
    from threadline.collector.config import CollectorSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = CollectorSettings.from_environment(port=port, store=store, workflows=workflows, host=host)
    typer.echo(f"Threadline collector on http://{settings.host}:{settings.port} (store {settings.store})")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")


@app.command()
def demo() -> None:
    """Run the instrumented example integration (a CRM → ERP hand-off over a queue)."""
    runpy.run_path(str(PROJECT_ROOT / "examples" / "queue_consumer.py"), run_name="__main__")
