"""Dashboard users, senders and the example alert rules against one collector (issue 16's overload figure).

Two rounds, each a real ``threadline collector`` process (``bench.memory.collector_on``: the
project's workflows file, alert rules on, default settings) started for the first time on its own
fresh copy of the scale's store, so the example rules are seen for the first time in each:

1. ``senders-alone``: the restart benchmark's 3 senders (``bench.memory``: the same processes and
   planned events) post JSON batches of 1,000 from ``/readyz`` for the budget, as live
   integrations do: each event dated when its batch is posted (``Plan.live``). Dated in the
   generated history instead, every transaction they send arrives months late, so each is at once
   stuck, breached and an alert: a backfill, not the load a dashboard is read under;
2. ``loaded``: the same senders with the same events and, from the same ``/readyz``, 5 dashboard
   users (threads of this process: they only wait on HTTP), staggered by 30 s / 5, each loading
   every page every 30 s, one page after another.

A page load is the HTTP calls the dashboard's router callback makes for that page with no filter
in its URL: the page's own calls, in order (a Dash callback runs them one after another), then the
queue and alerts badges. Where a page has a helper that only fetches, it is called here; the rest
repeat the page's calls with its constants. The pages' clock is the end of the generated history
(``dataset.ANCHOR``), so "the last 7 days" holds the store's latest week, as it would on a live
collector; the collector itself judges state against its own clock, as always.

Measured: each page's data time (from its first call sent to its last call answered, a load with a
call answered non-2xx, 429 and 503 included, or not answered at all counting as +infinity), the
slowest page of each reader's first round (the first 30 s after the first start), events
acknowledged per second with the readers against the senders alone, calls that got no answer, and
the alert evaluator's cycles over 5 s of store time (``/metrics``, read before the collector stops).
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench import dataset, memory
from bench.report import Figure
from threadline.dashboard import audit_trail, exception_groups, router
from threadline.dashboard.actions import cannot_act
from threadline.dashboard.client import ApiError, QueryClient
from threadline.dashboard.page import PageContext
from threadline.dashboard.pages import alerts as alerts_page
from threadline.dashboard.pages import queue as queue_page
from threadline.dashboard.theme import palette
from threadline.dashboard.urls import ALERTS, OVERVIEW, QUEUE, SYSTEMS, TRANSACTIONS, WORKFLOWS, Query

READERS = 5
INTERVAL_S = 30.0  # each reader loads every page this often
CALL_TIMEOUT_S = 60.0
GOAL_PAGE_S = 3.0
GOAL_RATIO = 0.5
GOAL_CYCLE_S = 5.0  # an alert evaluation cycle's store time
ALERT_HISTOGRAM = "threadline_alert_evaluation_seconds"
BUSY_COUNTER = "threadline_store_busy_seconds"
ROUNDS = ("senders-alone", "loaded")

# Transactions planned: about 5.75 events each, more than the senders post in the budget alone.
PLANS = {
    "small": memory.Plan(senders=3, transactions=30_000, budget_s=20, live=True),
    "medium": memory.Plan(senders=3, transactions=100_000, budget_s=60, live=True),
    "full": memory.Plan(senders=3, transactions=300_000, budget_s=300, live=True),
}


@dataclass(frozen=True)
class Call:
    path: str
    sent: float  # time.monotonic()
    answered: float | None  # None: no answer (a timeout, a connection error)
    status: int | None


class _Recorder(httpx.BaseTransport):
    """HTTP as usual, each call's times and status kept (the body read before it counts as answered)."""

    def __init__(self) -> None:
        self._http = httpx.HTTPTransport()
        self.calls: list[Call] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        sent = time.monotonic()
        try:
            response = self._http.handle_request(request)
            response.read()
        except httpx.TransportError:
            self.calls.append(Call(request.url.path, sent, None, None))
            raise
        self.calls.append(Call(request.url.path, sent, time.monotonic(), response.status_code))
        return response

    def close(self) -> None:
        self._http.close()


@dataclass(frozen=True)
class View:
    """What a page load needs: the reader's client, a page context, the transaction key to open."""

    context: PageContext
    key: str

    @property
    def client(self) -> QueryClient:
        return self.context.client

    @property
    def window(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        return self.context.query.window(self.context.now)


def _overview(view: View) -> None:
    since, until = view.window
    view.client.workflows()
    overview = view.client.overview(since=since, until=until)
    view.client.retention()
    view.client.whoami()  # whose data the page says anyone reaching it sees (no sign-in configured)
    if overview["totals"]["transactions"] == 0:
        view.client.overview()  # the page's empty state asks whether anything was ever sent


def _queue(view: View) -> None:
    if any(workflow.get("dimensions") for workflow in view.client.workflows()):
        view.client.dimensions()  # the dimension filter's choices
    queue_page._fetch(view.context, [], [], "", "", [])
    exception_groups.panel(view.context, "", "")


def _alerts(view: View) -> None:
    view.client.alert_rules()
    view.client.alerts(limit=alerts_page.LIMIT)
    view.client.alerts(status="firing", limit=alerts_page.FIRING_SCAN)
    view.client.workflows()


def _process_map(view: View) -> None:
    since, until = view.window
    workflows = view.client.workflows()  # /workflows/ opens the first one
    view.client.process_map(workflows[0]["name"], since=since, until=until)


def _systems(view: View) -> None:
    since, until = view.window
    view.client.systems(since=since, until=until)


def _transaction(view: View) -> None:
    detail = view.client.transaction(view.key)
    view.client.workflows()
    if audit_trail.entries(view.context, detail["correlation_id"]) is not None:
        cannot_act(view.client)  # the resolve action asks whether the dashboard's key may act


# The pages in the order of the navigation (their paths), each as its router callback loads it.
PAGES: dict[str, tuple[str, Callable[[View], None]]] = {
    "overview": (OVERVIEW, _overview),
    "queue": (QUEUE, _queue),
    "alerts": (ALERTS, _alerts),
    "process map": (WORKFLOWS, _process_map),
    "systems": (SYSTEMS, _systems),
    "transaction": (TRANSACTIONS, _transaction),
}


@dataclass(frozen=True)
class Load:
    page: str
    reader: int
    cycle: int  # 0: the reader's first round of pages
    seconds: float  # first call sent to last call answered; +inf for a failed load
    calls: tuple[Call, ...]

    @property
    def statuses(self) -> list[int | None]:
        return [call.status for call in self.calls]

    @property
    def failed(self) -> bool:
        return math.isinf(self.seconds)


def load_time(calls: list[Call]) -> float:
    """From the first call sent to the last answered; +inf when any call failed or got no answer."""
    if not calls or any(call.answered is None or not 200 <= (call.status or 0) < 300 for call in calls):
        return math.inf
    return max(call.answered or 0.0 for call in calls) - min(call.sent for call in calls)


def p95(seconds: list[float]) -> float:
    """Nearest rank (the value at rank ceil(0.95 n)), so a failed load (+inf) counts, as the slowest."""
    if not seconds:
        return math.inf
    ordered = sorted(seconds)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


def _read(reader: int, url: str, ready: float, budget_s: float, keys: list[str]) -> list[Load]:
    """One dashboard user: every page every ``INTERVAL_S`` from its turn, until the budget ends."""
    recorder = _Recorder()
    client = QueryClient(url, timeout=CALL_TIMEOUT_S, transport=recorder)
    loads: list[Load] = []
    deadline = ready + budget_s
    first = ready + reader * INTERVAL_S / READERS
    try:
        cycle = 0
        while (begin := first + cycle * INTERVAL_S) < deadline:
            time.sleep(max(0.0, begin - time.monotonic()))  # a round that overran starts the next at once
            key = keys[(reader + READERS * cycle) % len(keys)]
            for name, (path, page) in PAGES.items():
                if time.monotonic() >= deadline:
                    break
                context = PageContext(client, path, Query.parse(""), palette(None), dt.UTC, dataset.ANCHOR)
                recorder.calls.clear()
                try:  # the router callback: the page, then the badges
                    page(View(context, key))
                    router._queue_badge(client)
                    router._alerts_badge(client)
                except ApiError:  # the router draws its banner instead: this load failed, its calls say why
                    pass
                calls = list(recorder.calls)
                loads.append(Load(name, reader, cycle, load_time(calls), tuple(calls)))
            cycle += 1
    finally:
        client.close()
    return loads


@dataclass
class Readings:
    """What the readers saw in the loaded round, and the collector's metrics at its end."""

    loads: list[Load] = field(default_factory=list)
    metrics: str = ""


@contextmanager
def _readers(
    collector: memory.Collector, budget_s: float, keys: list[str], readings: Readings
) -> Iterator[None]:
    with ThreadPoolExecutor(READERS, thread_name_prefix="reader") as pool:
        users = [
            pool.submit(_read, reader, collector.url, collector.ready, budget_s, keys)
            for reader in range(READERS)
        ]
        yield  # the senders post meanwhile
        readings.loads = [load for user in users for load in user.result()]
    readings.metrics = _metrics(collector)


@contextmanager
def _metrics_at_end(collector: memory.Collector, readings: Readings) -> Iterator[None]:
    yield  # the senders post meanwhile
    readings.metrics = _metrics(collector)


def _metrics(collector: memory.Collector) -> str:
    answer = httpx.get(collector.url + "/metrics", timeout=CALL_TIMEOUT_S)
    answer.raise_for_status()
    return answer.text


@dataclass(frozen=True)
class AlertCycles:
    cycles: int  # evaluations of what changed since the last (the cycles)
    over: int | None  # of those, over GOAL_CYCLE_S; None when the histogram has no such bucket
    first: int = 0  # evaluations that read every transaction (a rule seen for the first time)
    first_seconds: float = 0.0  # their store time, together


def alert_cycles(metrics: str) -> AlertCycles | None:
    """The evaluator's cycles (``reads="changes"``), how many took over 5 s of store time, and the
    evaluations that read every transaction apart; None when not exported."""
    families = [
        family for family in text_string_to_metric_families(metrics) if family.name == ALERT_HISTOGRAM
    ]
    if not families:
        return None
    samples = [sample for family in families for sample in family.samples]  # none before an evaluation

    def total(suffix: str, reads: str, le: float | None = None) -> list[float]:
        return [
            s.value
            for s in samples
            if s.name == f"{ALERT_HISTOGRAM}_{suffix}"
            and s.labels.get("reads") == reads
            and (le is None or float(s.labels["le"]) == le)
        ]

    cycles = sum(total("count", "changes"))
    within = total("bucket", "changes", GOAL_CYCLE_S)
    return AlertCycles(
        int(cycles),
        int(cycles - sum(within)) if within or not cycles else None,
        int(sum(total("count", "all"))),
        sum(total("sum", "all")),
    )


def run(scale: str) -> list[Figure]:
    plan = PLANS[scale]
    data = dataset.prepare(scale, log=lambda line: print(line, flush=True))
    readings, alone = Readings(), Readings()  # the loaded round's, the senders-alone round's metrics
    rounds: dict[str, memory.Round] = {}
    readers = partial(_readers, budget_s=plan.budget_s, keys=data.keys, readings=readings)
    with (
        tempfile.TemporaryDirectory(
            prefix="bench-overload-", dir=dataset.CACHE_ROOT, ignore_cleanup_errors=True
        ) as folder,
        memory.planning_senders(scale, plan, len(ROUNDS)) as senders,
    ):
        senders.wait_planned()  # their planning takes the cores: not while the first start is read
        first_start = _first_start(data, Path(folder) / "first-start", scale)
        for line in _page_lines(first_start, "first start"):
            print(line, flush=True)
        for name, go in zip(ROUNDS, senders.goes, strict=True):
            store = Path(folder) / name
            memory.copy_store(data, store)  # a first start on it: the rules are new to it
            senders.wait_planned()
            alongside = readers if name == "loaded" else partial(_metrics_at_end, readings=alone)
            log_path = dataset.CACHE_ROOT / f"bench-overload-{scale}-{name}.log"
            rounds[name] = memory.run_round(name, store, log_path, senders, go, alongside)
            shutil.rmtree(store, ignore_errors=True)  # two copies of the 10 M store need not coexist
            print(memory.describe(rounds[name]), flush=True)
            for line in memory.notable(log_path):
                print(f"    log: {line}", flush=True)
    for line in [*_page_lines(readings.loads), _busy_line(readings.metrics, plan.budget_s)]:
        print(line, flush=True)
    return [
        _first_start_figure(first_start, data.events),
        *figures(rounds["senders-alone"], rounds["loaded"], readings, data.events, plan),
        _cycles_figure(alone.metrics, "senders alone"),
    ]


def _first_start(data: dataset.Dataset, store: Path, scale: str) -> list[Load]:
    """The issue's first start: a collector on a fresh copy of the store (its alert rules new to it),
    one user loading every page once from ``/readyz``, nothing else running."""
    memory.copy_store(data, store)
    log_path = dataset.CACHE_ROOT / f"bench-overload-{scale}-first-start.log"
    try:
        with memory.collector_on(store, log_path) as collector:
            return _read(0, collector.url, collector.ready, INTERVAL_S - 1, data.keys)
    finally:
        shutil.rmtree(store, ignore_errors=True)


def _first_start_figure(loads: list[Load], store_events: int) -> Figure:
    slowest = max(loads, key=lambda load: load.seconds, default=None)
    return Figure.absolute(
        f"overload: first start, slowest page ({memory.store_size(store_events)}-event store, the "
        f"collector started for the first time with the alert rules on, one user loading every page "
        f"once from /readyz, no senders; {len(loads)} loads)",
        f"{_seconds(slowest.seconds)} ({slowest.page})" if slowest else "no load",
        f"<= {GOAL_PAGE_S:.0f} s",
        slowest is not None and slowest.seconds <= GOAL_PAGE_S,
    )


def _seconds(value: float, loads: int = 1) -> str:
    if not loads:
        return "none loaded"
    return "failed" if math.isinf(value) else f"{value:.2f} s"


def _page_lines(loads: list[Load], round_name: str = "loaded") -> list[str]:
    """Per page: p95, median, answers, and its slowest call (where the time went)."""
    lines = [f"  {round_name}:"]
    for name in PAGES:
        mine = [load for load in loads if load.page == name]
        times = sorted(load.seconds for load in mine)
        answers = Counter(status for load in mine for status in load.statuses)
        median = times[(len(times) - 1) // 2] if times else math.inf
        waits = [
            (call.answered - call.sent, call.path) for load in mine for call in load.calls if call.answered
        ]
        slowest = max(waits, default=None)
        lines.append(
            f"  {name}: p95 {_seconds(p95(times), len(times))}, median {_seconds(median, len(times))}, "
            f"n={len(times)}, answers {dict(sorted(answers.items(), key=str))}"
            + (f", slowest call {slowest[1]} {slowest[0]:.2f} s" if slowest else "")
        )
    return lines


def _busy_line(metrics: str, budget_s: float) -> str:
    """What held the store in the loaded round (``threadline_store_busy_seconds``), by holder."""
    busy = {
        sample.labels["holder"]: sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == BUSY_COUNTER
        for sample in family.samples
        if sample.name == f"{BUSY_COUNTER}_total"
    }
    held = ", ".join(
        f"{holder} {seconds:,.0f} s" for holder, seconds in sorted(busy.items(), key=lambda i: -i[1])
    )
    return f"  store busy over the {budget_s:.0f} s round, by holder: {held or 'not exported'}"


def figures(
    alone: memory.Round, loaded: memory.Round, readings: Readings, store_events: int, plan: memory.Plan
) -> list[Figure]:
    loads = readings.loads
    window = f"{plan.budget_s / 60:.0f} min" if plan.budget_s >= 60 else f"{plan.budget_s:.0f} s"
    setup = (
        f"{memory.store_size(store_events)}-event store, first start, {READERS} dashboard users loading "
        f"every page every {INTERVAL_S:.0f} s, {plan.senders} senders, alert rules on, {window}"
    )
    by_page = {name: [load.seconds for load in loads if load.page == name] for name in PAGES}
    p95s = {name: p95(times) for name, times in by_page.items()}
    worst = max(p95s, key=lambda name: p95s[name])
    detail = ", ".join(
        f"{name} {_seconds(p95s[name], len(times))} n={len(times)}"
        + (f" ({sum(math.isinf(t) for t in times)} failed)" if any(math.isinf(t) for t in times) else "")
        for name, times in by_page.items()
    )
    failed = sum(load.failed for load in loads)
    firsts = [load for load in loads if load.cycle == 0]
    slowest = max(firsts, key=lambda load: load.seconds, default=None)
    statuses = [status for load in loads for status in load.statuses]
    unanswered = sum(status is None for status in statuses)
    refused = Counter(status for status in statuses if status is not None and not 200 <= status < 300)
    ratio = loaded.rate / alone.rate if alone.rate else 0.0
    ran_out = "; a sender ran out of planned events" if alone.exhausted or loaded.exhausted else ""
    return [
        Figure.absolute(
            f"overload: page data p95, worst page ({setup}; {failed} of {len(loads)} loads failed)",
            f"{_seconds(p95s[worst], len(by_page[worst]))} ({worst}); {detail}",
            f"<= {GOAL_PAGE_S:.0f} s",
            p95s[worst] <= GOAL_PAGE_S,
        ),
        Figure.absolute(
            f"overload: first round after start, slowest page (each user's first load of every page, "
            f"{len(firsts)} loads)",
            f"{_seconds(slowest.seconds)} ({slowest.page}, user {slowest.reader + 1})"
            if slowest
            else "no load",
            f"<= {GOAL_PAGE_S:.0f} s",
            slowest is not None and slowest.seconds <= GOAL_PAGE_S,
        ),
        Figure(
            name=f"overload: ingest with readers / alone (events acknowledged, batches of {plan.batch:,}"
            f"{ran_out})",
            value=f"{loaded.rate:,.0f} events/s ({loaded.acknowledged:,})",
            baseline=f"senders alone {alone.rate:,.0f} events/s ({alone.acknowledged:,})",
            ratio=ratio,
            goal=f">= {GOAL_RATIO}",
            met=ratio >= GOAL_RATIO,
        ),
        Figure.absolute(
            f"overload: unanswered calls (of the users' {len(statuses)}; refused: "
            f"{dict(sorted(refused.items())) or 'none'}; senders' requests in flight at the end: "
            f"{loaded.unanswered})",
            f"{unanswered}",
            "0",
            unanswered == 0,
        ),
        _cycles_figure(readings.metrics, "loaded round"),
    ]


def _cycles_figure(metrics: str, round_name: str) -> Figure:
    cycles = alert_cycles(metrics)
    if cycles is None:
        value, met = "not exported", False
    elif cycles.cycles == 0:  # not one evaluation finished within the round: nothing met
        value, met = "no evaluation finished within the round", False
    elif cycles.over is None:
        value, met = f"{cycles.cycles} cycles, no le={GOAL_CYCLE_S} bucket", False
    else:
        value, met = f"{cycles.over} of {cycles.cycles} cycles", cycles.over == 0
    if cycles is not None and cycles.first:
        value += (
            f"; apart, {cycles.first} first evaluation{'s' if cycles.first > 1 else ''} reading every "
            f"transaction: {cycles.first_seconds:.1f} s of store time"
        )
    return Figure.absolute(
        f"overload: alert cycles over {GOAL_CYCLE_S:.0f} s of store time ({round_name})", value, "0", met
    )
