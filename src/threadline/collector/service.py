"""The running collector service: its settings, store, writer, metrics, definitions and alerting, in
one object every route is handed (``routes.dependencies.CollectorDep``)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from fastapi import Request

from threadline.contract.redaction import Redactor

from .admission import ReadAdmission
from .alerts.service import Alerting
from .auth import ANONYMOUS, ApiKeys, Principal
from .config import CollectorSettings
from .ingest.webhooks import Webhooks
from .ingest.writer import Writer
from .metrics import Metrics
from .schema import BusinessEvent
from .state.forecast import Forecasts
from .state.snapshot import StateKeeper
from .storage import Store
from .storage.retention import RetentionPolicy
from .workflows import WorkflowError, Workflows, load

logger = logging.getLogger("threadline.collector")


@dataclass
class Collector:
    settings: CollectorSettings
    store: Store
    writer: Writer
    metrics: Metrics
    workflows: Workflows
    alerting: Alerting  # evaluates alert rules and delivers notifications (alerts.service)
    forecasts: Forecasts  # each tenant's forecast model (state.forecast)
    snapshot: StateKeeper  # keeps the state snapshot; a read catches it up first (state.snapshot)
    keys: ApiKeys = field(default_factory=ApiKeys)
    webhooks: Webhooks = field(default_factory=Webhooks)  # the mappings of POST /v1/webhooks/{source}
    redactor: Redactor = field(default_factory=Redactor)
    _reload_lock: threading.Lock = field(default_factory=threading.Lock)
    reads: ReadAdmission = field(init=False)

    def __post_init__(self) -> None:
        self.reads = ReadAdmission(
            self.settings.reads_per_tenant,
            self.settings.reads_waiting_per_tenant,
            self.settings.reads_per_second_per_tenant,
        )

    @property
    def retention(self) -> RetentionPolicy:
        return RetentionPolicy.of(self.settings.retention_days, self.settings.ttl_days)

    def reload_workflows(self) -> Workflows:
        """Load the definitions file again; on any error the definitions in use stay as they are."""
        with self._reload_lock:
            try:
                fresh = load(self.settings.workflows)
            except WorkflowError as error:
                logger.error("threadline: workflows not reloaded, keeping the current ones: %s", error)
                raise
            self.workflows = fresh  # applied at query time: nothing stored depends on them
            logger.info("threadline: reloaded %d workflows from %s", len(fresh), fresh.source)
            return fresh

    def tenant_of(self, request: Request) -> str:
        """The tenant a request acts for (set by the auth dependency; one anonymous tenant without keys)."""
        return self.principal_of(request).tenant

    @staticmethod
    def principal_of(request: Request) -> Principal:
        return getattr(request.state, "principal", ANONYMOUS)

    def redact(self, events: list[BusinessEvent]) -> list[BusinessEvent]:
        """Personal data is stored only as a salted hash, whoever sent it: attribute values under
        sensitive keys (inside JSON text too), alias values of a sensitive kind, and a correlation
        id of a sensitive kind, hashed alike so that the alias still finds its transaction."""
        redactor, rules = self.redactor, self.workflows.key_rules
        redacted = []
        for event in events:
            changes: dict[str, object] = {}
            attributes = redactor.redact_texts(event.attributes)
            if attributes != event.attributes:
                changes["attributes"] = attributes
            aliases = redactor.redact(event.aliases)  # keyed by kind: a kind is checked as a key is
            if aliases != event.aliases:
                changes["aliases"] = aliases
            key = rules.stored_key(event, redactor)
            if key != event.correlation_id:
                changes["correlation_id"] = key
            redacted.append(event.model_copy(update=changes) if changes else event)
        return redacted


def get_collector(request: Request) -> Collector:
    collector: Collector = request.app.state.collector
    return collector
