"""Peak memory of a collector process while it ingests over HTTP, on a store at the scale's size.

The collector is the real command (``python -m threadline collector``) in its own process, with the
project's workflows file (alert rules included: the evaluator runs as in production), on a copy of
the generated data set (``bench/dataset.py``: 10 M events at full scale). Sender processes post
JSON batches of events planned by the simulator's model (keys of their own, so nothing collides
with the stored ones) for as long as the time budget allows; the figure is the process's peak
resident set (``VmHWM`` in ``/proc/<pid>/status``), with its resident set before the first batch.

Sending all 10 M events over HTTP would take far longer than the suite's budget on 2 cores (JSON
ingest runs at a few thousand events a second there), so the store starts at full size and the
senders add what fits in ``Plan.budget_s``: the memory the collector needs at 10 M events, while
ingesting, with its queries (dedup, alias linking, the alert evaluator) running against 10 M events.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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
GRACE_S = 60.0  # how long past the budget a sender waits for its last batch's answer
BACK_PRESSURE = (429, 503)  # "wait and send again", with Retry-After
RETRY_CAP_S = 5.0


@dataclass(frozen=True)
class Plan:
    senders: int
    transactions: int  # planned for the senders in all; they stop earlier when the budget is spent
    budget_s: float
    batch: int = 1000


PLANS = {
    "small": Plan(senders=3, transactions=3_000, budget_s=10),
    "medium": Plan(senders=3, transactions=30_000, budget_s=60),
    "full": Plan(senders=3, transactions=200_000, budget_s=180),
}


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) * 1024
    return found


def send(
    url: str,
    task: dataset.ChunkTask,
    batch: int,
    budget_s: float,
    counters: Any,
    ready: Event,
    go: Event,
) -> None:
    """One sender: plan its events (before the clock starts), then post them until the budget is spent.

    ``counters`` is ``[events acknowledged, batches that timed out, answers to wait and retry]``. A
    batch still unanswered ``GRACE_S`` after the budget ends is given up (counted), and the sender
    stops. A 503 or 429 (the writer's queue is full, the store is busy) is the collector's
    back-pressure: the sender waits its ``Retry-After`` and sends the batch again, as the SDK does.
    """
    events = dataset.plan_chunk(task).events_json
    bodies = [orjson.dumps({"events": events[i : i + batch]}) for i in range(0, len(events), batch)]
    with httpx.Client(timeout=GRACE_S) as client:
        client.get(url + "/healthz").raise_for_status()
        ready.set()
        go.wait()
        deadline = time.monotonic() + budget_s
        for body, start in zip(bodies, range(0, len(events), batch), strict=True):
            while (remaining := deadline - time.monotonic()) > 0:
                try:
                    response = client.post(
                        url + "/v1/events",
                        content=body,
                        headers={"content-type": "application/json"},
                        timeout=remaining + GRACE_S,
                    )
                except httpx.TimeoutException:
                    with counters.get_lock():
                        counters[1] += 1
                    return
                if response.status_code not in BACK_PRESSURE:
                    break
                with counters.get_lock():
                    counters[2] += 1
                time.sleep(min(float(response.headers.get("retry-after", 1)), RETRY_CAP_S))
            else:
                return  # the budget is spent
            response.raise_for_status()
            with counters.get_lock():
                counters[0] += min(batch, len(events) - start)


def run(scale: str) -> list[Figure]:
    plan = PLANS[scale]
    data = dataset.prepare(scale, log=lambda line: print(line, flush=True))
    with tempfile.TemporaryDirectory(
        prefix="bench-memory-", dir=dataset.CACHE_ROOT, ignore_cleanup_errors=True
    ) as folder:
        store = Path(folder) / "store"
        shutil.copytree(data.path, store, symlinks=True)  # the engine links tables to their data
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = (Path(folder) / "collector.log").open("wb")
        collector = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "threadline",
                "collector",
                "--port",
                str(port),
                "--store",
                f"chdb://{store}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(dataset.PROJECT_ROOT)},
        )
        try:
            deadline = time.monotonic() + 900  # the first alert round holds the store at full scale
            while True:
                try:
                    if httpx.get(url + "/readyz", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if collector.poll() is not None or time.monotonic() > deadline:
                    tail = (Path(folder) / "collector.log").read_text()[-2000:]
                    raise RuntimeError(f"the collector did not start:\n{tail}")
                time.sleep(0.2)

            context = multiprocessing.get_context("spawn")
            counters = context.Array("q", 3)
            go = context.Event()
            readiness = [context.Event() for _ in range(plan.senders)]
            tasks = dataset.sender_tasks(
                dataset.SEED, plan.senders, plan.transactions, dataset.SCALES[scale].days
            )
            processes = [
                context.Process(target=send, args=(url, task, plan.batch, plan.budget_s, counters, ready, go))
                for task, ready in zip(tasks, readiness, strict=True)
            ]
            for process in processes:
                process.start()
            for ready in readiness:
                ready.wait(900)
            before = _status(collector.pid)["VmHWM"]  # start-up, the first alert round, planning time
            started = time.perf_counter()
            go.set()
            for process in processes:
                process.join()
            elapsed = time.perf_counter() - started
            status = _status(collector.pid)
            if any(process.exitcode != 0 for process in processes):
                raise RuntimeError("a sender process failed")
        finally:
            collector.send_signal(signal.SIGTERM)
            try:
                collector.wait(60)
            except subprocess.TimeoutExpired:
                collector.kill()
                collector.wait()
            log.close()

    ingested, stalled, retried = counters[0], counters[1], counters[2]
    peak = status["VmHWM"]
    store_events = f"{data.events / 1e6:.1f} M" if data.events >= 1e6 else f"{data.events / 1e3:.0f} k"
    print(
        f"  {ingested:,} events acknowledged in {elapsed:.0f} s ({ingested / elapsed:,.0f} events/s) "
        f"into a {store_events}-event store; {retried} answers of back-pressure (503/429) retried; "
        f"{stalled} of {plan.senders} senders gave up on a batch "
        f"unanswered after {plan.budget_s + GRACE_S:.0f} s; peak RSS {before / MIB:,.0f} MiB before the "
        f"first batch, {peak / MIB:,.0f} MiB in all",
        flush=True,
    )
    stall = f"; {stalled} batches unanswered after {plan.budget_s + GRACE_S:.0f} s" if stalled else ""
    return [
        Figure.absolute(
            f"peak collector memory, {store_events}-event store"
            f" + {ingested:,} events acknowledged over HTTP in {plan.budget_s:.0f} s{stall}",
            f"{peak / MIB:,.0f} MiB VmHWM ({before / MIB:,.0f} MiB before the first batch)",
            "< 1 GiB",
            peak < GOAL_BYTES,
        )
    ]
