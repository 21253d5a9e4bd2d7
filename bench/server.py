"""A collector over real HTTP inside this process (uvicorn on a thread), on a given store.

In-process, so that a profiler can see the request handlers; the clients still speak real HTTP.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from bench.dataset import TENANT
from threadline.collector.app import create_app
from threadline.collector.config import CollectorSettings
from threadline.collector.state import snapshot

# How long a start may take to settle: the state snapshot's first pass over 10 M events takes 10 minutes
# on two cores (after an upgrade that clears it: migration 18), and the figures measure reads of a
# kept snapshot.
SETTLE_TIMEOUT_S = 1800.0


def without_alerts(source: Path, target: Path) -> Path:
    """A copy of a workflows file without its alert rules: the same workflows, nothing to notify."""
    document = yaml.safe_load(source.read_text())
    document.pop("alerts", None)
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    return target


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class InProcessCollector:
    """``with InProcessCollector(dsn) as server:`` serves ``server.url`` until the block ends.

    ``alert_interval_s`` spaces the alert evaluator's rounds (``THREADLINE_ALERT_INTERVAL``). Each
    round derives the state of every transaction, holding the store for as long as an overview
    does, so the query figures wait for the first round to finish and set the interval past the
    end of the run: they measure the queries, not a query queued behind the evaluator. For the
    same reason answers are never shared (``shared_reads.py``): a repeated call would measure the
    kept answer, not the query; and a read may run past the shipped 10 s limit (a 503 would say
    only that it took longer).
    """

    def __init__(
        self, dsn: str, alert_interval_s: float | None = None, workflows: Path | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.alert_interval_s = alert_interval_s
        settings = CollectorSettings(store=dsn, port=self.port, shared_read_seconds=0, read_timeout=300)
        if workflows is not None:
            settings = settings.model_copy(update={"workflows": workflows})
        self.app = create_app(settings)
        config = uvicorn.Config(self.app, port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.first_evaluation_s: float | None = None
        self.ready_s: float | None = None
        self.snapshot_s: float | None = None

    @property
    def collector(self) -> Any:
        return self.app.state.collector

    def __enter__(self) -> InProcessCollector:
        previous = os.environ.get("THREADLINE_ALERT_INTERVAL")
        if self.alert_interval_s is not None:
            os.environ["THREADLINE_ALERT_INTERVAL"] = str(self.alert_interval_s)
        started = time.perf_counter()
        try:
            self.thread.start()
            while not self.server.started:
                if not self.thread.is_alive():
                    raise RuntimeError("the collector did not start")
                time.sleep(0.05)
        finally:
            if self.alert_interval_s is not None:
                if previous is None:
                    os.environ.pop("THREADLINE_ALERT_INTERVAL", None)
                else:
                    os.environ["THREADLINE_ALERT_INTERVAL"] = previous
        self.ready_s = time.perf_counter() - started
        # The state snapshot's first pass (once per store, at its first start after the upgrade that
        # brought it; the figures measure reads of a kept snapshot, as a running collector serves).
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while snapshot.read_mark(self.collector.store, TENANT) is None and time.monotonic() < deadline:
            time.sleep(0.5)
        self.snapshot_s = time.perf_counter() - started
        if snapshot.read_mark(self.collector.store, TENANT) is None:
            print(
                f"  the state snapshot was not kept after {self.snapshot_s:.0f} s: reads derive every state"
            )
        alerting = self.collector.alerting
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while alerting is not None and alerting.last_evaluation is None and time.monotonic() < deadline:
            time.sleep(0.05)  # a failed evaluation never sets it: give up waiting after a while
        self.first_evaluation_s = time.perf_counter() - started
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(60)
