"""What every request handler needs, in one object, injected with ``Depends(get_collector)``."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from fastapi import Request

from .config import CollectorSettings
from .metrics import Metrics
from .storage import Store
from .workflows import WorkflowError, Workflows, load
from .writer import Writer

logger = logging.getLogger("threadline.collector")


@dataclass
class Collector:
    settings: CollectorSettings
    store: Store
    writer: Writer
    metrics: Metrics
    workflows: Workflows
    _reload_lock: threading.Lock = field(default_factory=threading.Lock)

    def reload_workflows(self) -> Workflows:
        """Load the definitions file again; on any error the definitions in use stay as they are."""
        with self._reload_lock:
            try:
                fresh = load(self.settings.workflows)
            except (OSError, WorkflowError) as error:
                logger.error("threadline: workflows not reloaded, keeping the current ones: %s", error)
                raise
            self.workflows = fresh
            logger.info("threadline: reloaded %d workflows from %s", len(fresh), fresh.source)
            return fresh

    def tenant_of(self, request: Request) -> str:
        """The tenant a request acts for; one tenant ("") until API keys are configured."""
        return ""


def get_collector(request: Request) -> Collector:
    collector: Collector = request.app.state.collector
    return collector
