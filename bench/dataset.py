"""The data set of the query figures: the simulator's model, seeded, written to the store in bulk.

The simulator plans transactions exactly as its back-fill does (``History.traffic``: arrivals that
follow the working-hours intensity, the workflow mix, one fault drawn per transaction, slow-system
incidents, plus the showcases), and ``Planner.materialize`` gives each one its events. Instead of
sending them through the SDK and HTTP (hours for 10 M events), the rows go straight into the store
the way ingest would have left them once everything arrived:

- only events delivered before the anchor (the end of history) are stored, and a redelivered
  duplicate is stored once (ingest deduplicates by event id);
- each event's ``transaction_id`` is what ingest gives it on arrival: the transaction its
  correlation id belonged to then (``writes.TransactionKeys``, replayed in delivery order), so a
  billing event keyed by the sales order joins the opportunity; a late-alias fragment stored before
  its announcement keeps its own id, and the announcement links it (a ``transaction_links`` row), as
  ingest links it;
- the ``aliases`` rows are those announcements; sensitive attributes are hashed as the SDK does;
- the engine's materialized views fill the rollups and traces from these inserts, as from ingest's.

Planning is most of the cost (about 0.4 ms a transaction), so it runs in worker processes, one
chunk of transactions each, every chunk from its own seeded generator and its own key numbering;
the parent process inserts each chunk in blocks. The finished store is cached under
``.threadline/bench-store-<scale>-<seed>`` with a stamp (generator version, schema, workflows and
simulator sources): a re-run reuses it, any change to those regenerates it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import multiprocessing
import os
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from threadline.collector.config import EXAMPLE_WORKFLOWS
from threadline.collector.storage import Store, migrations
from threadline.collector.storage.columns import EVENT_COLUMNS
from threadline.collector.storage.writes import ALIAS_COLUMNS, LINK_COLUMNS, TransactionKeys
from threadline.collector.workflows import load
from threadline.contract.redaction import Redactor
from threadline.simulator import history as history_module
from threadline.simulator.faults import DAY_S, FaultMix, SlowSchedule, schema_changes
from threadline.simulator.history import HOUR_S, History, arrivals, pick_workflow
from threadline.simulator.ids import KeyFactory
from threadline.simulator.planner import PlannedEvent, Planner, Timeline, Transaction, TransactionSpec
from threadline.simulator.scenarios import scenarios_for

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = EXAMPLE_WORKFLOWS
CACHE_ROOT = PROJECT_ROOT / ".threadline"
GENERATOR_VERSION = 2
SEED = 7  # the seed of every figure: the same store, keys and answers in every run
TENANT = ""  # the anonymous tenant: what a collector without API keys reads and writes
# History ends here, so that a seed gives the very same store whenever it is generated; every
# query of the benchmark asks "as of" this moment.
ANCHOR = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
EVENTS_PER_TRANSACTION = 5.75  # the simulator's mean, faults and in-flight steps included
CHUNK_TRANSACTIONS = 20_000
INSERT_BLOCK = 100_000
SAMPLE_KEYS_PER_CHUNK = 200


@dataclass(frozen=True)
class Scale:
    events: int
    days: float  # the history the transactions start in


# "medium" rehearses "full" (the same history, a tenth of the traffic) in a few minutes.
SCALES = {
    "small": Scale(events=200_000, days=30),
    "medium": Scale(events=1_000_000, days=90),
    "full": Scale(events=10_000_000, days=90),
}


@dataclass(frozen=True)
class Dataset:
    path: Path
    anchor: dt.datetime
    events: int
    transactions: int
    aliases: int
    by_workflow: dict[str, int]  # events per workflow
    keys: list[str]  # a seeded sample of keys to look up: correlation ids and aliases
    generated_s: float | None  # None when the cached store was reused

    @property
    def dsn(self) -> str:
        return f"chdb://{self.path}"


@dataclass(frozen=True)
class ChunkTask:
    seed: int
    chunk: int
    transactions: int
    days: float
    showcases: bool = False
    keep_rows: bool = True  # False: return the events as wire-contract JSON dicts instead (senders)


@dataclass
class ChunkResult:
    chunk: int
    transactions: int
    event_rows: list[list[Any]]
    alias_rows: list[list[Any]]
    link_rows: list[list[Any]]
    keys: list[str]
    events_json: list[dict[str, Any]]


class _ChunkKeys(KeyFactory):
    """The simulator's record numbering, made unique across chunks: ``OPP-007104233`` is chunk 7's."""

    def __init__(self, rng: random.Random, chunk: int) -> None:
        super().__init__(rng)
        self.chunk = chunk

    def next(self, prefix: str) -> str:
        number = super().next(prefix)[len(prefix) + 1 :]
        return f"{prefix}-{self.chunk:03d}{number}"


@cache
def _planner(seed: int, days: float) -> Planner:
    definitions = load(WORKFLOWS)
    systems = tuple(sorted({s.system for d in definitions for s in d.steps if s.system}))
    anchor = ANCHOR.timestamp()
    span = (anchor - days * DAY_S, anchor - HOUR_S)
    slow = SlowSchedule(str(seed), systems, ensure=span)
    return Planner(scenarios_for(definitions), slow, schema_changes(anchor, definitions))


_REDACTOR = Redactor()


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _timelines(task: ChunkTask, planner: Planner) -> Iterator[Timeline]:
    """Like ``History.traffic`` (and, for chunk 0, its showcases), over this chunk's share."""
    anchor = ANCHOR.timestamp()
    rng = random.Random(f"{task.seed}/bench/{task.chunk}")
    scenarios = planner.scenarios
    for number, start in enumerate(arrivals(rng, anchor, task.days, task.transactions)):
        scenario = pick_workflow(rng, scenarios)
        fault = FaultMix(scenario.proportions).draw(rng, scenario.supported_faults())
        seed = f"{task.seed}/bench/{task.chunk}/{number}"
        yield planner.timeline(TransactionSpec(scenario.definition.name, start, fault, seed))
    if task.showcases:
        yield from History(planner, str(task.seed), anchor, task.days, 0).showcases()


def _rows(
    transaction: Transaction, anchor: float, ids: random.Random
) -> tuple[list[list[Any]], list[list[Any]], list[list[Any]], list[PlannedEvent]]:
    """The event, alias and link rows ingest would hold once every event delivered before ``anchor`` is in."""
    delivered = [e for e in transaction.events if e.deliver_at <= anchor and not e.redelivery]
    links = TransactionKeys({})
    announced_at: dict[str, float] = {}
    stored_under: set[str] = set()
    linked: dict[str, tuple[str, float]] = {}  # absorbed transaction → (where it went, when)
    # The columns of ``columns.event_row``, filled straight from the planned event: validating (or
    # even constructing) 10 M ``BusinessEvent`` models to reuse it would cost more than planning them did.
    event_rows = []
    for event in delivered:  # in delivery order, as ingest sees them
        for kind, alias in event.aliases.items():
            links.announce(event.correlation_id, kind, alias)
            announced_at.setdefault(alias, event.deliver_at)
            if alias in stored_under and links.transaction_of(alias) != alias and alias not in linked:
                linked[alias] = (links.transaction_of(alias), event.deliver_at)
        for earlier, (_, at) in list(linked.items()):  # a link is one hop, as ingest keeps it
            linked[earlier] = (links.transaction_of(earlier), at)
        stored_under.add(links.transaction_of(event.correlation_id))
        error = event.error or {}
        record = {
            "tenant": TENANT,
            "transaction_id": links.transaction_of(event.correlation_id),
            "correlation_id": event.correlation_id,
            "event_id": event.event_id,
            "workflow": event.workflow,
            "step": event.step,
            "system": event.system,
            "status": event.status,
            "timestamp": _utc(event.at),
            "received_at": _utc(event.deliver_at),
            "seq": int(event.deliver_at * 1_000_000) * 1000,
            "duration_ms": event.duration_ms,
            "attempt": event.attempt,
            "error_kind": error.get("kind", ""),
            "error_message": error.get("message", ""),
            "error_type": error.get("type", ""),
            "error_stacktrace": error.get("stacktrace", ""),
            "amount": event.amount,
            "currency": event.currency or "",
            "aliases": dict(event.aliases),
            "attributes": _REDACTOR.redact(dict(event.attributes)),
            "trace_id": f"{ids.getrandbits(128):032x}",
            "span_id": f"{ids.getrandbits(64):016x}",
            "source": "otlp",
            "version": int(event.deliver_at * 1_000_000),
        }
        event_rows.append([record[column] for column in EVENT_COLUMNS])
    alias_rows = [
        [
            TENANT,
            alias,
            kind,
            links.transaction_of(alias),
            announced_by,
            _utc(announced_at[alias]),
            int(announced_at[alias] * 1_000_000),
        ]
        for alias, (kind, announced_by) in links.new_aliases.items()
    ]
    link_rows = [
        [TENANT, earlier, into, _utc(at), int(at * 1_000_000)] for earlier, (into, at) in linked.items()
    ]
    return event_rows, alias_rows, link_rows, delivered


def wire_event(row: list[Any]) -> dict[str, Any]:
    """An event row as the JSON wire contract of ``POST /v1/events`` (for the HTTP senders)."""
    record = dict(zip(EVENT_COLUMNS, row, strict=True))
    event: dict[str, Any] = {
        "correlation_id": record["correlation_id"],
        "workflow": record["workflow"],
        "step": record["step"],
        "system": record["system"],
        "timestamp": record["timestamp"].isoformat(),
        "status": record["status"],
        "event_id": record["event_id"],
        "duration_ms": record["duration_ms"],
        "attributes": record["attributes"],
        "trace_id": record["trace_id"],
        "span_id": record["span_id"],
    }
    if record["aliases"]:
        event["aliases"] = record["aliases"]
    if record["error_kind"]:
        event["error"] = {"kind": record["error_kind"], "message": record["error_message"]}
    if record["attempt"] is not None:
        event["attempt"] = record["attempt"]
    if record["amount"] is not None:
        event["amount"] = record["amount"]
        event["currency"] = record["currency"]
    return event


def plan_chunk(task: ChunkTask) -> ChunkResult:
    planner = _planner(task.seed, task.days)
    keys = _ChunkKeys(random.Random(f"{task.seed}/bench/{task.chunk}/keys"), task.chunk)
    ids = random.Random(f"{task.seed}/bench/{task.chunk}/ids")
    sample = random.Random(f"{task.seed}/bench/{task.chunk}/sample")
    anchor = ANCHOR.timestamp()
    result = ChunkResult(task.chunk, 0, [], [], [], [], [])
    wire: list[tuple[float, dict[str, Any]]] = []
    for timeline in _timelines(task, planner):
        transaction = planner.materialize(timeline, keys)
        event_rows, alias_rows, link_rows, delivered = _rows(transaction, anchor, ids)
        result.transactions += 1
        if task.keep_rows:
            result.event_rows.extend(event_rows)
        else:
            wire.extend((e.deliver_at, wire_event(row)) for e, row in zip(delivered, event_rows, strict=True))
        result.alias_rows.extend(alias_rows)
        result.link_rows.extend(link_rows)
        if delivered and len(result.keys) < SAMPLE_KEYS_PER_CHUNK and sample.random() < 0.05:
            result.keys.append(sample.choice(delivered).correlation_id)
    # Senders post in delivery order across their transactions, as the integrations would.
    result.events_json = [event for _, event in sorted(wire, key=lambda pair: pair[0])]
    return result


# The migrations a store was generated with: a later one is applied in place when a collector opens
# the store, as it is to a user's store after an upgrade (a migration that changes what the stored
# rows mean, rather than adding to them, raises GENERATOR_VERSION instead).
GENERATED_WITH_MIGRATIONS = 9


def _fingerprint() -> str:
    """Changes whenever the store schema it was generated with, the workflows or the simulator's
    model change."""
    digest = hashlib.sha256(f"generator {GENERATOR_VERSION}".encode())
    digest.update(repr(migrations.migrations()[:GENERATED_WITH_MIGRATIONS]).encode())
    digest.update(WORKFLOWS.read_bytes())
    simulator = Path(history_module.__file__).parent
    for source in sorted(simulator.glob("*.py")):
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def _chunks(scale: Scale, seed: int) -> list[ChunkTask]:
    transactions = round(scale.events / EVENTS_PER_TRANSACTION)
    count = max(2, -(-transactions // CHUNK_TRANSACTIONS))
    share, extra = divmod(transactions, count)
    return [
        ChunkTask(seed, chunk, share + (chunk < extra), scale.days, showcases=chunk == 0)
        for chunk in range(count)
    ]


def workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def prepare(scale_name: str, seed: int = SEED, log: Any = print) -> Dataset:
    """The cached store of ``scale_name`` for ``seed``, generated first if missing or stale."""
    scale = SCALES[scale_name]
    path = CACHE_ROOT / f"bench-store-{scale_name}-{seed}"
    stamp = path / "bench-stamp.json"
    fingerprint = _fingerprint()
    if stamp.exists():
        meta = json.loads(stamp.read_text())
        if meta.get("fingerprint") == fingerprint:
            return _dataset(path, meta, None)
        log(f"  cached store {path.name} is stale (schema, workflows or simulator changed): regenerating")
    if path.exists():
        shutil.rmtree(path)
    started = time.perf_counter()
    meta = _generate(path, scale, seed, log)
    meta["fingerprint"] = fingerprint
    stamp.write_text(json.dumps(meta))  # written last: a half-built store is never reused
    return _dataset(path, meta, time.perf_counter() - started)


def _dataset(path: Path, meta: dict[str, Any], generated_s: float | None) -> Dataset:
    return Dataset(
        path=path,
        anchor=dt.datetime.fromisoformat(meta["anchor"]),
        events=meta["events"],
        transactions=meta["transactions"],
        aliases=meta["aliases"],
        by_workflow=meta["by_workflow"],
        keys=meta["keys"],
        generated_s=generated_s,
    )


def _generate(path: Path, scale: Scale, seed: int, log: Any) -> dict[str, Any]:
    tasks = _chunks(scale, seed)
    log(f"  generating ~{scale.events:,} events in {len(tasks)} chunks on {workers()} processes -> {path}")
    store = Store(f"chdb://{path}").open()
    planned = 0
    keys: list[str] = []
    started = time.perf_counter()
    try:
        with multiprocessing.get_context("spawn").Pool(workers()) as pool:
            for done, result in enumerate(pool.imap_unordered(plan_chunk, tasks), start=1):
                for start in range(0, len(result.event_rows), INSERT_BLOCK):
                    store.insert("events", result.event_rows[start : start + INSERT_BLOCK], EVENT_COLUMNS)
                store.insert("aliases", result.alias_rows, ALIAS_COLUMNS)
                store.insert("transaction_links", result.link_rows, LINK_COLUMNS)
                planned += result.transactions
                keys.extend(result.keys)
                if done % 10 == 0 or done == len(tasks):
                    log(
                        f"    {done}/{len(tasks)} chunks, {planned:,} transactions, "
                        f"{time.perf_counter() - started:.0f} s"
                    )
        counts = store.rows(
            "SELECT workflow, count() AS events FROM events WHERE tenant = {tenant:String} GROUP BY workflow",
            {"tenant": TENANT},
        )
        totals = store.rows(
            "SELECT (SELECT count() FROM events) AS events,"
            " (SELECT count() FROM transaction_rollups FINAL)"
            " - (SELECT count() FROM transaction_links FINAL) AS transactions,"
            " (SELECT count() FROM aliases) AS aliases"
        )[0]
    finally:
        store.close()
    random.Random(f"{seed}/bench/keys").shuffle(keys)
    return {
        "anchor": ANCHOR.isoformat(),
        "seed": seed,
        "events": totals["events"],
        "transactions": totals["transactions"],
        "aliases": totals["aliases"],
        "by_workflow": {row["workflow"]: row["events"] for row in counts},
        "keys": keys[:2000],
    }


def sender_tasks(seed: int, senders: int, transactions: int, days: float) -> list[ChunkTask]:
    """Chunks for HTTP senders: numbered after every chunk the stores use, so keys never collide."""
    share = -(-transactions // senders)
    return [
        dataclasses.replace(ChunkTask(seed, 900 + n, share, days), keep_rows=False) for n in range(senders)
    ]


__all__ = ["SCALES", "Dataset", "prepare", "sender_tasks", "wire_event"]
