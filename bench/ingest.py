"""HTTP ingest throughput against a raw clickhouse-connect insert of the same rows, same engine, same run.

The collector runs in this process (uvicorn on a thread) so that the baseline can insert into the
very same embedded engine; the senders are separate processes speaking real HTTP. The OTLP figure
uses the official OpenTelemetry exporter in a separate process; the trace figure exports business
spans each with ``TECHNICAL_CHILDREN`` technical child spans, against a raw insert of the same spans
and events (their rows built by the collector's own conversion before the clock starts).
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import uvicorn

from bench import senders
from bench.report import Figure
from threadline.collector.app import create_app
from threadline.collector.config import CollectorSettings
from threadline.collector.ingest import otlp
from threadline.collector.schema import BusinessEvent
from threadline.collector.storage import Store
from threadline.collector.storage.columns import EVENT_COLUMNS, SPAN_COLUMNS, StoredEvent, event_row, span_row

JSON_GOAL = 0.7
OTLP_GOAL = 0.5
TRACE_GOAL = 0.5
TECHNICAL_CHILDREN = 10  # technical spans per business-event span in the trace figure
SPANS_PER_EXPORT = 1000  # what senders.export_spans sends per request
EVENT_SPACING_S = 0.01  # between two events of the JSON figure

STEPS = [
    ("crm.opportunity.won", "salesforce"),
    ("erp.customer.validated", "netsuite"),
    ("cpq.quote.approved", "cpq"),
    ("erp.order.created", "netsuite"),
]


def make_events(count: int, prefix: str) -> list[dict[str, object]]:
    """Events as live integrations send them: of the last minutes (10 ms apart, ending now), each
    transaction's steps agreeing on its amount. So the example alert rules fire only as they would
    on live traffic; events of months ago, amounts differing by step, made every transaction an
    alert (SLA breached, stuck, amounts disagree), and the evaluator and delivery took 1.5 cores."""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=count * EVENT_SPACING_S)
    events = []
    for n in range(count):
        step, system = STEPS[n % len(STEPS)]
        transaction = n // len(STEPS)
        events.append(
            {
                "correlation_id": f"{prefix}-{transaction}",
                "workflow": "quote-to-cash",
                "step": step,
                "system": system,
                "timestamp": (start + dt.timedelta(seconds=n * EVENT_SPACING_S)).isoformat(),
                "event_id": f"{prefix}-e{n}",
                "amount": 100.0 + transaction % 50,
                "currency": "USD",
                "attributes": {"region": "emea"},
            }
        )
    return events


class _Server:
    def __init__(self, store_dir: Path) -> None:
        with __import__("socket").socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        settings = CollectorSettings(store=f"chdb://{store_dir}", port=self.port)
        self.app = create_app(settings)
        self.server = uvicorn.Server(uvicorn.Config(self.app, port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        # The store must be closed before the next benchmark opens another in this process
        # (the embedded engine serves one folder per process).
        self.thread.join(300)
        if self.thread.is_alive():
            raise RuntimeError("the collector did not stop within 5 minutes")


# The collector's background work (the state keeper's passes over what was just ingested, alert
# evaluations) and the engine's merges go on after a round; each measured phase starts once they
# are over, so that the ingest rounds and the raw inserts compete with the same (nothing).
QUIET_S = 3.0  # no statement of the collector's own and no merge for this long
SETTLE_LIMIT_S = 180.0
MERGES = "SELECT count() FROM system.merges"


def settle(store: Store) -> None:
    """Wait until the collector's background work and the engine's merges are over."""
    deadline = time.monotonic() + SETTLE_LIMIT_S
    quiet_since, seen = time.monotonic(), -1
    while time.monotonic() < deadline:
        statements = sum(tally.statements for holder, tally in store.busy.items() if holder != "MainThread")
        merging = store.query(MERGES).result_rows[0][0]
        if statements != seen or merging:
            quiet_since, seen = time.monotonic(), statements
        elif time.monotonic() - quiet_since >= QUIET_S:
            return
        time.sleep(0.25)


def _timed(context: Any, jobs: list[tuple[Callable[..., None], tuple[Any, ...]]]) -> float:
    """Seconds from the moment every sender process is ready until the last one is done."""
    go = context.Event()
    readiness = [context.Event() for _ in jobs]
    processes = [
        context.Process(target=target, args=(*args, ready, go))
        for (target, args), ready in zip(jobs, readiness, strict=True)
    ]
    for process in processes:
        process.start()
    for ready in readiness:
        ready.wait(120)
    started = time.perf_counter()
    go.set()
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - started
    if any(process.exitcode != 0 for process in processes):
        raise RuntimeError("a sender process failed")
    return elapsed


def _raw_trace_insert(store: Store, events: int, prefix: str) -> tuple[int, float]:
    """Spans and the events among them, as the collector converts the official exporter's requests,
    inserted raw in the exporter's batches: how many spans, and the seconds the inserts took."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    spans = senders.traced_spans(events, prefix, TECHNICAL_CHILDREN)
    received = dt.datetime.now(dt.UTC)
    batches = []
    for start in range(0, len(spans), SPANS_PER_EXPORT):
        converted = otlp.convert(encode_spans(spans[start : start + SPANS_PER_EXPORT]), "raw-baseline")
        event_rows = [
            event_row(StoredEvent(event, "raw-baseline", event.correlation_id, "otlp", received, index, 1))
            for index, event in enumerate(converted.events)
        ]
        batches.append(([span_row(span) for span in converted.spans], event_rows))
    settle(store)
    started = time.perf_counter()
    for span_rows, event_rows in batches:
        store.insert("spans", span_rows, SPAN_COLUMNS)
        store.insert("events", event_rows, EVENT_COLUMNS)
    return len(spans), time.perf_counter() - started


def run(scale: str) -> list[Figure]:
    total, clients, batch = (8_000, 4, 1000) if scale == "small" else (40_000, 4, 1000)
    rounds = 3
    # Ingest and raw insert alternate, each round a pair: the figure is the median of the pairs'
    # ratios, so that the machine's drift between rounds (the raw insert alone went from 13.6 to
    # 28.4 k rows/s between runs of one day) weighs on both sides of a pair alike.
    json_rounds = 5
    otlp_spans = 4_000 if scale == "small" else 20_000
    trace_events = 400 if scale == "small" else 2_000  # each with TECHNICAL_CHILDREN spans
    context = multiprocessing.get_context("spawn")
    ingest_s, raw_s = [], []
    with tempfile.TemporaryDirectory() as folder, _Server(Path(folder) / "store") as server:
        url = f"http://127.0.0.1:{server.port}"
        store = server.app.state.collector.store
        for round_ in range(json_rounds):
            events = make_events(total, f"R{round_}")
            bodies = [orjson.dumps({"events": events[i : i + batch]}) for i in range(0, total, batch)]
            shares = [bodies[c::clients] for c in range(clients)]
            settle(store)
            ingest_s.append(_timed(context, [(senders.post_batches, (url, share)) for share in shares]))

            received = dt.datetime.now(dt.UTC)
            rows = [
                event_row(
                    StoredEvent(
                        BusinessEvent.model_validate({**e, "event_id": f"raw-{e['event_id']}"}),
                        "raw-baseline",
                        str(e["correlation_id"]),
                        "json",
                        received,
                        index,
                        1,
                    )
                )
                for index, e in enumerate(events)
            ]
            settle(store)
            started = time.perf_counter()
            for i in range(0, total, batch):
                store.insert("events", rows[i : i + batch], EVENT_COLUMNS)
            raw_s.append(time.perf_counter() - started)
            print(
                f"  JSON round {round_ + 1}: ingest {total / ingest_s[-1]:,.0f} events/s, raw insert "
                f"{total / raw_s[-1]:,.0f} rows/s, {raw_s[-1] / ingest_s[-1]:.2f}x",
                flush=True,
            )

        settle(store)
        before = server.app.state.collector.metrics.spans_stored._value.get()
        otlp_s = _timed(context, [(senders.export_spans, (url, otlp_spans, 0, "OT"))])
        stored = server.app.state.collector.metrics.spans_stored._value.get() - before
        assert stored == otlp_spans, f"{stored} of {otlp_spans} spans stored"

        trace_rounds, raw_trace_rounds = [], []
        for round_ in range(rounds):
            settle(store)
            before = server.app.state.collector.metrics.spans_stored._value.get()
            trace = (url, trace_events, TECHNICAL_CHILDREN, f"TR{round_}")
            trace_rounds.append(_timed(context, [(senders.export_spans, trace)]))
            trace_spans = int(server.app.state.collector.metrics.spans_stored._value.get() - before)
            raw_spans, raw_trace_s = _raw_trace_insert(store, trace_events, f"RAWTR{round_}")
            assert trace_spans == raw_spans, f"{trace_spans} of {raw_spans} spans stored"
            raw_trace_rounds.append(raw_trace_s)
    trace_s, raw_trace_s = statistics.median(trace_rounds), statistics.median(raw_trace_rounds)

    ingest, raw = statistics.median(ingest_s), statistics.median(raw_s)
    ratio = statistics.median(r / i for i, r in zip(ingest_s, raw_s, strict=True))
    return [
        Figure(
            name=f"HTTP ingest, JSON batches of {batch}, {clients} clients ({total} events, median of "
            f"{json_rounds} rounds' ratios)",
            value=f"{total / ingest:,.0f} events/s",
            baseline=f"raw insert {total / raw:,.0f} rows/s",
            ratio=ratio,
            goal=f">= {JSON_GOAL}",
            met=ratio >= JSON_GOAL,
        ),
        Figure(
            name=f"OTLP protobuf ingest, official exporter ({otlp_spans} spans)",
            value=f"{otlp_spans / otlp_s:,.0f} spans/s",
            baseline=f"raw insert {total / raw:,.0f} rows/s",
            ratio=(otlp_spans / otlp_s) / (total / raw),
            goal=f">= {OTLP_GOAL}",
            met=(otlp_spans / otlp_s) / (total / raw) >= OTLP_GOAL,
        ),
        Figure(
            name=f"OTLP trace ingest, official exporter, {TECHNICAL_CHILDREN} technical spans per business "
            f"event ({trace_events} events, {trace_spans} spans, median of {rounds} rounds)",
            value=f"{trace_spans / trace_s:,.0f} spans/s",
            baseline=f"raw insert of the same spans and events {raw_spans / raw_trace_s:,.0f} spans/s",
            ratio=raw_trace_s / trace_s,
            goal=f">= {TRACE_GOAL}",
            met=raw_trace_s / trace_s >= TRACE_GOAL,
        ),
    ]
