"""The store's busy time by holder as Prometheus series (``Store.busy``), read when scraped."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from .connection import Store


class StoreBusy(Collector):
    """How long each holder kept the store busy (``Store.busy``), read when scraped."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        seconds = CounterMetricFamily(
            "threadline_store_busy_seconds",
            "Time the store spent executing statements, by holder (api: API reads; otherwise the "
            "collector's thread: the ingest writer, the state keeper, the alert evaluator)",
            labels=["holder"],
        )
        statements = CounterMetricFamily(
            "threadline_store_statements", "Statements the store executed, by holder", labels=["holder"]
        )
        for holder, spent in sorted(dict(self._store.busy).items()):
            seconds.add_metric([holder], spent.seconds)
            statements.add_metric([holder], spent.statements)
        yield seconds
        yield statements
