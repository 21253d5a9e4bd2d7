"""The Prometheus side of alerting: transaction gauges per workflow and state, and alert health.

Refreshed at each evaluation and swapped in whole, so a scrape never sees half of one evaluation,
and a workflow/state that no longer has transactions disappears instead of keeping a stale value.
Alertmanager rules can then alert on them directly (deploy/prometheus/threadline-rules.yml).

- ``threadline_transactions{tenant,workflow,state}``: transactions by state. ``stuck`` leaves out
  those an operator resolved (as the overview does); the other states are outcomes and keep them.
- ``threadline_transactions_breached{tenant,workflow,state}``: of those, SLA breached.
- ``threadline_transactions_resolved{tenant,workflow}``: resolved by an operator.
- ``threadline_value_at_risk{tenant,workflow,currency}``: amount of stuck or SLA-breached ones
  (not resolved), as the overview's value at risk.
- ``threadline_alerts_firing{tenant,rule,severity}``, ``threadline_alert_notifications_pending``,
  ``threadline_alert_deliveries_total{receiver,result}``,
  ``threadline_alert_last_evaluation_timestamp_seconds``.
- ``threadline_alert_evaluation_seconds{reads}``: the store time of each evaluation (its statements
  executing, waiting for the store not counted), the gauges' refresh apart in
  ``threadline_alert_gauges_refresh_seconds``. ``reads="changes"``: an evaluation of what changed
  since the last; ``reads="all"``: one that read every transaction (a rule seen for the first
  time, at a start or a reload): the two differ by orders of magnitude at 10 M events.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from ..metrics import TENANT_LABEL

# A gauge's label values, one per label: a tuple of a fixed length (Mapping keys are invariant).
LabelValues = TypeVar("LabelValues", bound=tuple[str, ...])


@dataclass(frozen=True)
class Snapshot:
    """Every gauge value of one evaluation."""

    transactions: Mapping[tuple[str, str, str], int] = field(default_factory=dict)  # tenant, workflow, state
    breached: Mapping[tuple[str, str, str], int] = field(default_factory=dict)
    resolved: Mapping[tuple[str, str], int] = field(default_factory=dict)  # tenant, workflow
    value_at_risk: Mapping[tuple[str, str, str], float] = field(
        default_factory=dict
    )  # tenant, workflow, currency
    firing: Mapping[tuple[str, str, str], int] = field(default_factory=dict)  # tenant, rule, severity
    evaluated_at: float | None = None  # Unix time


class AlertingMetrics(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self._snapshot = Snapshot()
        self._pending = 0
        self._lock = threading.Lock()
        registry.register(self)
        self.deliveries = Counter(
            "threadline_alert_deliveries",
            "Alert notification delivery attempts, by receiver and result (delivered, failed)",
            ["receiver", "result"],
            registry=registry,
        )
        buckets = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
        self.evaluation = Histogram(
            "threadline_alert_evaluation_seconds",
            "Store time of each alert evaluation (statements executing), the gauges' refresh apart, by "
            "what it read: every transaction (all) or what changed since the last (changes)",
            ["reads"],
            buckets=buckets,
            registry=registry,
        )
        self.gauges_refresh = Histogram(
            "threadline_alert_gauges_refresh_seconds",
            "Store time of each refresh of the transaction gauges (every transaction, in slices)",
            buckets=buckets,
            registry=registry,
        )

    def evaluated(self, store_s: float, gauges_s: float | None, read_all: bool) -> None:
        self.evaluation.labels(reads="all" if read_all else "changes").observe(store_s)
        if gauges_s is not None:
            self.gauges_refresh.observe(gauges_s)

    def update(self, snapshot: Snapshot) -> None:
        with self._lock:
            self._snapshot = snapshot

    def set_pending(self, count: int) -> None:
        with self._lock:
            self._pending = count

    def describe(self) -> Iterable[Metric]:
        return list(self._families(Snapshot(evaluated_at=0.0), 0))

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            snapshot, pending = self._snapshot, self._pending
        yield from self._families(snapshot, pending)

    @staticmethod
    def _families(snapshot: Snapshot, pending: int) -> Iterator[Metric]:
        def gauge(name: str, text: str, labels: list[str], values: Mapping[LabelValues, float]) -> Metric:
            family = GaugeMetricFamily(name, text, labels=labels)
            for key, value in sorted(values.items()):
                family.add_metric(list(key), value)
            return family

        yield gauge(
            "threadline_transactions",
            "Transactions by workflow and state (stuck: not resolved by an operator), at the last evaluation",
            [TENANT_LABEL, "workflow", "state"],
            snapshot.transactions,
        )
        yield gauge(
            "threadline_transactions_breached",
            "SLA-breached transactions by workflow and state, at the last evaluation",
            [TENANT_LABEL, "workflow", "state"],
            snapshot.breached,
        )
        yield gauge(
            "threadline_transactions_resolved",
            "Transactions an operator marked resolved, by workflow",
            [TENANT_LABEL, "workflow"],
            snapshot.resolved,
        )
        yield gauge(
            "threadline_value_at_risk",
            "Amount of stuck or SLA-breached transactions (not resolved), by workflow and currency",
            [TENANT_LABEL, "workflow", "currency"],
            snapshot.value_at_risk,
        )
        yield gauge(
            "threadline_alerts_firing",
            "Alerts firing, by rule and severity",
            [TENANT_LABEL, "rule", "severity"],
            snapshot.firing,
        )
        yield gauge(
            "threadline_alert_notifications_pending",
            "Alert notifications waiting to be delivered or retried",
            [],
            {(): pending},
        )
        if snapshot.evaluated_at is not None:
            yield gauge(
                "threadline_alert_last_evaluation_timestamp_seconds",
                "When alert rules were last evaluated successfully (Unix time)",
                [],
                {(): snapshot.evaluated_at},
            )
