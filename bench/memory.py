"""The collector restarted on a store at the scale's size while 3 senders post (issue 14's figure).

The collector is the real command (``python -m threadline collector``) in its own process, with the
project's workflows file (alert rules included: the evaluator runs as in production, its first
round at start), on a copy of the generated data set (``bench/dataset.py``: 10 M events at full
scale). Sender processes plan their events first (the simulator's model, keys of their own, so
nothing collides with the stored ones), then post JSON batches of 1,000 from the moment ``/readyz``
first answers 200, for ``Plan.budget_s`` (3 minutes at full scale), waiting ``Retry-After`` on a
503 or 429 as the SDK does. Measured, per collector:

- the time from ``/readyz`` first answering 200 to the first batch acknowledged;
- events acknowledged per second over the budget (a batch answered after it does not count);
- the longest any request waited for its answer, a request still unanswered at the end counting
  its age then;
- the collector's peak resident set (``VmHWM`` in ``/proc/<pid>/status``), with its resident set
  when ``/readyz`` answered, before the first batch.

The baseline is the same senders, with the same events, for the same time, against a collector
started on a fresh empty store in the same run: what restarting on a large store costs.

Sending all 10 M events over HTTP would take far longer than the suite's budget on 2 cores, so the
store starts at full size and the senders add what fits in the budget: the memory the collector
needs at 10 M events, while ingesting, with its queries (dedup, alias linking, the alert evaluator)
running against 10 M events.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import dataset
from bench.report import Figure
from bench.server import free_port

MIB = 1024 * 1024
GOAL_BYTES = 1024 * MIB
GOAL_FIRST_ACK_S = 2.0
GOAL_RATIO = 0.5
GOAL_MAX_WAIT_S = 5.0
BACK_PRESSURE = (429, 503)  # "wait and send again", with Retry-After
RETRY_CAP_S = 5.0
START_TIMEOUT_S = 900.0  # a collector that is not ready by then failed to start
ROUNDS = ("restarted", "fresh")  # the store of the scale, then an empty one (the baseline)


@dataclass(frozen=True)
class Plan:
    senders: int
    transactions: int  # planned for the senders in all; more than they can send in the budget
    budget_s: float  # how long the senders post, against each collector
    batch: int = 1000
    # Each event dated when its batch is posted (in its planned order, 1 ms apart), as live
    # integrations send them; otherwise dated as planned, in the generated history (a backfill).
    live: bool = False


PLANS = {
    # Transactions: about 5.75 events each, enough for ~9,000 events/s over the budget (the fresh
    # store took 3,000-4,000 on a busy 2-core machine); a sender that runs out is reported.
    "small": Plan(senders=3, transactions=15_000, budget_s=10),
    "medium": Plan(senders=3, transactions=100_000, budget_s=60),
    "full": Plan(senders=3, transactions=300_000, budget_s=180),
}


@dataclass(frozen=True)
class Round:
    """What the senders saw of one collector, and its memory."""

    store: str  # "restarted" or "fresh"
    ready_s: float  # from the process's launch to /readyz answering 200
    first_ack_s: float | None  # from /readyz answering 200 to the first batch acknowledged
    acknowledged: int  # events acknowledged within the budget
    budget_s: float
    requests: int
    back_pressure: int  # answers 503/429, waited for and sent again
    max_wait_s: float  # the longest wait for an answer (unanswered at the end: its age then)
    unanswered: int  # requests still waiting at the end of the budget
    exhausted: int  # senders that sent every planned event before the end
    rss_ready: int  # VmRSS when /readyz answered, before the first batch
    hwm_ready: int  # VmHWM then
    peak: int  # VmHWM at the end

    @property
    def rate(self) -> float:
        return self.acknowledged / self.budget_s


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) * 1024
    return found


Body = Callable[[], bytes]  # a batch's request body, made when it is posted


def _as_planned(payload: bytes) -> bytes:
    return payload


def _dated_now(events: list[dict[str, Any]]) -> bytes:
    """The batch as a live integration posts it: its events dated up to now, 1 ms apart, in order."""
    now = dt.datetime.now(dt.UTC)
    last = len(events) - 1
    for n, event in enumerate(events):
        event["timestamp"] = (now - dt.timedelta(milliseconds=last - n)).isoformat()
    return orjson.dumps({"events": events})


def _post_for(url: str, bodies: list[tuple[Body, int]], deadline: float) -> dict[str, Any]:
    """Post the batches in order until ``deadline`` (``time.monotonic``); what the sender saw."""
    seen: dict[str, Any] = {
        "acknowledged": 0,
        "first_ack": None,
        "requests": 0,
        "back_pressure": 0,
        "max_wait_s": 0.0,
        "unanswered": 0,
        "exhausted": True,
    }
    with httpx.Client() as client:
        for body, count in bodies:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen["exhausted"] = False
                    return seen
                sent = time.monotonic()
                seen["requests"] += 1
                try:
                    response = client.post(
                        url + "/v1/events",
                        content=body(),
                        headers={"content-type": "application/json"},
                        timeout=remaining,
                    )
                    answered = time.monotonic()
                except httpx.TimeoutException:
                    answered = None
                if answered is None or answered > deadline:  # still unanswered at the end
                    seen["unanswered"] += 1
                    seen["max_wait_s"] = max(seen["max_wait_s"], deadline - sent)
                    seen["exhausted"] = False
                    return seen
                seen["max_wait_s"] = max(seen["max_wait_s"], answered - sent)
                if response.status_code not in BACK_PRESSURE:
                    break
                seen["back_pressure"] += 1
                wait = min(float(response.headers.get("retry-after", 1)), RETRY_CAP_S)
                time.sleep(max(0.0, min(wait, deadline - time.monotonic())))
            response.raise_for_status()
            seen["acknowledged"] += count
            if seen["first_ack"] is None:
                seen["first_ack"] = answered
    return seen


def send(
    task: dataset.ChunkTask,
    plan: Plan,
    planned: Event,
    goes: list[Event],
    port: Any,
    clock: Any,
    results: Any,
) -> None:
    """One sender: plan its events (before any collector starts), then one round per go.

    At each go, ``port`` is the collector's and ``clock`` the moment its ``/readyz`` answered 200
    (``time.monotonic``, the same clock in every process): the sender posts from the first of its
    events until ``clock + budget_s`` and puts what it saw on ``results``.
    """
    events = dataset.plan_chunk(task).events_json
    batches = [events[i : i + plan.batch] for i in range(0, len(events), plan.batch)]
    del events

    def body(events: list[dict[str, Any]]) -> Body:
        return (
            partial(_dated_now, events)
            if plan.live
            else partial(_as_planned, orjson.dumps({"events": events}))
        )

    bodies = [(body(events), len(events)) for events in batches]
    planned.set()
    for go in goes:
        go.wait()
        try:
            results.put(_post_for(f"http://127.0.0.1:{port.value}", bodies, clock.value + plan.budget_s))
        except Exception as error:  # reported, so that the run stops instead of waiting for it
            results.put({"error": f"{type(error).__name__}: {error}"})


def _wait_ready(url: str, collector: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            if httpx.get(url + "/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if collector.poll() is not None or time.monotonic() > deadline:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the collector did not start:\n{tail}")
        time.sleep(0.05)


def _collect(results: Any, processes: list[Any], count: int, timeout_s: float) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while len(answers) < count:
        try:
            answers.append(results.get(timeout=1))
        except queue.Empty:
            if time.monotonic() > deadline or any(p.exitcode not in (None, 0) for p in processes):
                raise RuntimeError("a sender process failed or did not answer") from None
    errors = [answer["error"] for answer in answers if "error" in answer]
    if errors:
        raise RuntimeError(f"a sender failed: {errors[0]}")
    return answers


@dataclass(frozen=True)
class Collector:
    """A ``threadline collector`` process that has answered ``/readyz``."""

    port: int
    pid: int
    launched: float  # time.monotonic() when the process was started
    ready: float  # when /readyz first answered 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def collector_on(store: Path, log_path: Path) -> Iterator[Collector]:
    """The real command on ``store``, the project's workflows file (alert rules on), until the block ends."""
    port = free_port()
    # Defaults for everything but the store and port: no THREADLINE_* of the caller's (the alert
    # interval among them) changes what is measured.
    env = {key: value for key, value in os.environ.items() if not key.startswith("THREADLINE_")}
    # This checkout's code, whatever the environment's installed copy points at (a worktree's bench).
    root = dataset.PROJECT_ROOT
    env["PYTHONPATH"] = os.pathsep.join(str(path) for path in (root / "src", root / "sdk" / "src", root))
    # BENCH_SLOW_S (a diagnosis, off by default): the same command, logging its slow statements.
    module = "bench.slow_statements" if os.environ.get("BENCH_SLOW_S") else "threadline"
    command = [sys.executable, "-m", module, "collector", "--port", str(port)]
    command += ["--store", f"chdb://{store}", "--workflows", str(dataset.WORKFLOWS)]
    with log_path.open("wb") as log:
        launched = time.monotonic()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            _wait_ready(f"http://127.0.0.1:{port}", process, log_path)
            yield Collector(port=port, pid=process.pid, launched=launched, ready=time.monotonic())
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass(frozen=True)
class Senders:
    """The sender processes, their events planned, with one go per round (see ``send``)."""

    plan: Plan
    shared: dict[str, Any]
    goes: list[Event]
    planned: list[Event]  # one per sender, set once its events are planned
    processes: list[Any]

    def wait_planned(self) -> None:
        deadline = time.monotonic() + 1800
        for ready in self.planned:
            while not ready.wait(1):
                if time.monotonic() > deadline or any(p.exitcode is not None for p in self.processes):
                    raise RuntimeError("a sender process failed while planning its events")

    def release(self, collector: Collector, go: Event) -> list[dict[str, Any]]:
        """Post to ``collector`` from its ``/readyz`` for the budget; what each sender saw."""
        self.shared["port"].value = collector.port
        self.shared["clock"].value = collector.ready
        go.set()
        return _collect(self.shared["results"], self.processes, self.plan.senders, self.plan.budget_s + 120)


@contextmanager
def planning_senders(scale: str, plan: Plan, rounds: int) -> Iterator[Senders]:
    """Sender processes started now, planning their events; stopped when the block ends.

    The caller copies its stores meanwhile, waits for the planning, then releases them once per round.
    """
    context = multiprocessing.get_context("spawn")
    shared = {"port": context.Value("i", 0), "clock": context.Value("d", 0.0), "results": context.Queue()}
    goes = [context.Event() for _ in range(rounds)]  # one per collector, shared by the senders
    planned = [context.Event() for _ in range(plan.senders)]
    tasks = dataset.sender_tasks(dataset.SEED, plan.senders, plan.transactions, dataset.SCALES[scale].days)
    handles = (shared["port"], shared["clock"], shared["results"])
    processes = [
        context.Process(target=send, args=(task, plan, ready, goes, *handles))
        for task, ready in zip(tasks, planned, strict=True)
    ]
    try:
        for process in processes:
            process.start()  # they plan while the caller copies its stores
        yield Senders(plan, shared, goes, planned, processes)
        for process in processes:
            process.join(60)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(10)


def run_round(
    name: str,
    store: Path,
    log_path: Path,
    senders: Senders,
    go: Event,
    alongside: Callable[[Collector], AbstractContextManager[Any]] | None = None,
) -> Round:
    """One collector on ``store``, the senders posting to it for the budget from its ``/readyz``.

    ``alongside`` is entered just before the senders start and left once they have all answered,
    the collector still running: what else runs against it meanwhile.
    """
    with collector_on(store, log_path) as collector:
        before = _status(collector.pid)
        with alongside(collector) if alongside else nullcontext():
            answers = senders.release(collector, go)
        peak = _status(collector.pid)["VmHWM"]
    firsts = [answer["first_ack"] for answer in answers if answer["first_ack"] is not None]
    return Round(
        store=name,
        ready_s=collector.ready - collector.launched,
        first_ack_s=min(firsts) - collector.ready if firsts else None,
        acknowledged=sum(answer["acknowledged"] for answer in answers),
        budget_s=senders.plan.budget_s,
        requests=sum(answer["requests"] for answer in answers),
        back_pressure=sum(answer["back_pressure"] for answer in answers),
        max_wait_s=max(answer["max_wait_s"] for answer in answers),
        unanswered=sum(answer["unanswered"] for answer in answers),
        exhausted=sum(answer["exhausted"] for answer in answers),
        rss_ready=before["VmRSS"],
        hwm_ready=before["VmHWM"],
        peak=peak,
    )


NOTABLE = ("WARNING", "ERROR", "CRITICAL", "Traceback", "backfill", "alerts:")


def notable(log_path: Path, limit: int = 20) -> list[str]:
    """The collector's log lines worth a look: warnings, errors, the backfill, alerts fired."""
    text = log_path.read_text(errors="replace")
    lines = [line for line in text.splitlines() if any(word in line for word in NOTABLE)]
    if len(lines) > limit:
        lines = [*lines[: limit // 2], f"... {len(lines) - limit} more ...", *lines[-limit // 2 :]]
    return lines


def describe(round_: Round) -> str:
    first = f"{round_.first_ack_s:.2f} s" if round_.first_ack_s is not None else "never"
    exhausted = f"; {round_.exhausted} senders ran out of planned events" if round_.exhausted else ""
    return (
        f"  {round_.store} store: /readyz 200 after {round_.ready_s:.1f} s, first batch acknowledged "
        f"{first} later; {round_.acknowledged:,} events acknowledged in {round_.budget_s:.0f} s "
        f"({round_.rate:,.0f} events/s), {round_.requests} requests, {round_.back_pressure} answers "
        f"of back-pressure (503/429) retried, longest wait {round_.max_wait_s:.2f} s, "
        f"{round_.unanswered} still in flight at the end{exhausted}; RSS {round_.rss_ready / MIB:,.0f} MiB "
        f"(VmHWM {round_.hwm_ready / MIB:,.0f} MiB) at /readyz, peak {round_.peak / MIB:,.0f} MiB"
    )


def run(scale: str) -> list[Figure]:
    plan = PLANS[scale]
    data = dataset.prepare(scale, log=lambda line: print(line, flush=True))
    rounds: list[Round] = []
    with (
        tempfile.TemporaryDirectory(
            prefix="bench-memory-", dir=dataset.CACHE_ROOT, ignore_cleanup_errors=True
        ) as folder,
        planning_senders(scale, plan, len(ROUNDS)) as senders,
    ):
        restarted = Path(folder) / "store"
        copy_store(data, restarted)
        senders.wait_planned()
        stores = {"restarted": restarted, "fresh": Path(folder) / "fresh"}
        for name, go in zip(ROUNDS, senders.goes, strict=True):
            log_path = dataset.CACHE_ROOT / f"bench-collector-{scale}-{name}.log"
            rounds.append(run_round(name, stores[name], log_path, senders, go))
            print(describe(rounds[-1]), flush=True)
            for line in notable(log_path):
                print(f"    log: {line}", flush=True)
    return figures(rounds[0], rounds[1], data.events, plan)


def copy_store(data: dataset.Dataset, target: Path) -> None:
    """A copy of the scale's cached store, for one collector to start on and change."""
    shutil.copytree(data.path, target, symlinks=True)  # the engine links tables to their data


def store_size(events: int) -> str:
    """``10.0 M`` or ``200 k``: a store's size in figure names."""
    return f"{events / 1e6:.1f} M" if events >= 1e6 else f"{events / 1e3:.0f} k"


def figures(restarted: Round, fresh: Round, store_events: int, plan: Plan) -> list[Figure]:
    what = f"collector restarted on a {store_size(store_events)}-event store, {plan.senders} senders posting"
    window = f"{plan.budget_s / 60:.0f} min" if plan.budget_s >= 60 else f"{plan.budget_s:.0f} s"

    def first(round_: Round) -> str:
        return f"{round_.first_ack_s:.2f} s" if round_.first_ack_s is not None else f"none in {window}"

    ratio = restarted.rate / fresh.rate if fresh.rate else 0.0
    floor = "; a sender ran out of planned events" if restarted.exhausted or fresh.exhausted else ""
    return [
        Figure(
            name=f"{what}: /readyz 200 to the first batch acknowledged",
            value=first(restarted),
            baseline=f"fresh store {first(fresh)}",
            ratio=None,
            goal=f"<= {GOAL_FIRST_ACK_S:.0f} s",
            met=restarted.first_ack_s is not None and restarted.first_ack_s <= GOAL_FIRST_ACK_S,
        ),
        Figure(
            name=f"{what}: events acknowledged over the first {window}, batches of {plan.batch:,}{floor}",
            value=f"{restarted.rate:,.0f} events/s ({restarted.acknowledged:,})",
            baseline=f"fresh empty store {fresh.rate:,.0f} events/s ({fresh.acknowledged:,})",
            ratio=ratio,
            goal=f">= {GOAL_RATIO}",
            met=ratio >= GOAL_RATIO,
        ),
        Figure(
            name=(
                f"{what}: longest wait for an answer ({restarted.requests} requests, "
                f"{restarted.back_pressure} answered 503/429, "
                f"{restarted.unanswered} still in flight at the end)"
            ),
            value=f"{restarted.max_wait_s:.2f} s",
            baseline=f"fresh store {fresh.max_wait_s:.2f} s",
            ratio=None,
            goal=f"<= {GOAL_MAX_WAIT_S:.0f} s",
            met=restarted.max_wait_s <= GOAL_MAX_WAIT_S,
        ),
        Figure(
            name=f"{what}: peak collector memory (alert rules on)",
            value=(
                f"{restarted.peak / MIB:,.0f} MiB VmHWM "
                f"({restarted.rss_ready / MIB:,.0f} MiB resident before the first batch)"
            ),
            baseline=f"fresh store {fresh.peak / MIB:,.0f} MiB",
            ratio=None,
            goal="< 1 GiB",
            met=restarted.peak < GOAL_BYTES,
        ),
    ]
