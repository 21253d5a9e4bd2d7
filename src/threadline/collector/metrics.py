"""The collector's own Prometheus metrics (``GET /metrics``).

Each collector app has its own registry, so several apps in one process (tests) never collide.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
TENANT_LABEL = "tenant"


class TenantMetrics(Collector):
    """One tenant's view of a registry: its own series (labelled with its tenant) and nothing else.

    The series without a tenant label (events received, store latency, pending events, deliveries)
    add up every tenant's traffic: a tenant could take its own share away and learn the others'.
    They are the platform's, like the series of other tenants.
    """

    def __init__(self, registry: CollectorRegistry, tenant: str) -> None:
        self._registry = registry
        self._tenant = tenant

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            samples = [sample for sample in family.samples if sample.labels.get(TENANT_LABEL) == self._tenant]
            if samples:
                mine = Metric(family.name, family.documentation, family.type, family.unit)
                mine.samples = samples
                yield mine


class Metrics:
    def __init__(self, *collectors: Collector) -> None:
        """``collectors``: series read when scraped (the store's busy time, ``storage.busy``)."""
        self.registry = CollectorRegistry()
        for collector in collectors:
            self.registry.register(collector)
        self.events_received = Counter(
            "threadline_events_received",
            "Business events received, by endpoint",
            ["endpoint"],
            registry=self.registry,
        )
        self.events_accepted = Counter(
            "threadline_events_accepted",
            "Business events stored (duplicates excluded)",
            ["endpoint"],
            registry=self.registry,
        )
        self.events_rejected = Counter(
            "threadline_events_rejected",
            "Business events refused, by endpoint and reason (invalid: every event of a refused batch; "
            "malformed: a body that is not a batch at all, counted once; unmatched: a webhook no mapping "
            "matches; bad_signature: a webhook whose signature does not verify)",
            ["endpoint", "reason"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "threadline_events_duplicates_dropped",
            "Events already stored (same event_id), not stored again",
            ["endpoint"],
            registry=self.registry,
        )
        self.events_undefined = Counter(
            "threadline_events_undefined",
            "Business events stored whose workflow (reason undefined_workflow) or step (undefined_step) "
            "the definitions do not name, so no rule judges them; by endpoint and reason",
            ["endpoint", "reason"],
            registry=self.registry,
        )
        self.spans_stored = Counter(
            "threadline_spans_stored", "Technical spans stored", registry=self.registry
        )
        self.transactions_linked = Counter(
            "threadline_transactions_linked",
            "Transactions with stored events that joined another through a later alias",
            registry=self.registry,
        )
        self.alias_conflicts = Counter(
            "threadline_alias_conflicts",
            "Aliases claimed by a second transaction (the first claim stands)",
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "threadline_ingest_batch_seconds",
            "Time to accept one ingest request, from body read to stored",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.insert_seconds = Histogram(
            "threadline_store_insert_seconds",
            "Time of one store write (dedup, aliases and insert)",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.pending_events = Gauge(
            "threadline_ingest_pending_events", "Events waiting for the store writer", registry=self.registry
        )
