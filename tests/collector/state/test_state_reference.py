"""A real collector answers what the state rules, applied the slow, obvious way, derive from the events.

``tests/support/reference_state.py`` is the contract (docs/architecture.md, "Where each rule is
decided") in plain Python over the events as they were sent. A real collector process receives the
same seeded random batches over HTTP (``tests/support/traffic.py``: the example workflows,
retries, errors, redeliveries, shuffled arrival, aliases announced before and after the events
keyed by them, alias chains and conflicts, merged transactions, ties in event time, workflows no
definition names, events from the future) and is restarted on its store between two batches.

Right after several acknowledgements (nothing acknowledged may be missing) and at the end (as of
now, as of a moment in the past, after the events from the future, and exactly at the boundaries
of the stuck and SLA rules), the test compares each transaction (found by its id and by its other
keys), the operations queue (every filter, every page), the overview's counts and each workflow's
process map. Every mismatch is collected and reported with the checkpoint, the key or query, the
field, the expected and the received value.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import re
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.collector_process import CollectorProcess
from tests.support.reference_state import STATES, Event, Reference, moment
from tests.support.traffic import NOW, UNDEFINED_WORKFLOW, Traffic
from threadline.collector.config import EXAMPLE_WORKFLOWS
from threadline.collector.workflows import load

pytestmark = pytest.mark.slow

SEED = 20261127
TRANSACTIONS = 400
BATCH_SIZE = 250
CHECK_EVERY = 3  # batches
SAMPLE = 12  # keys looked up one by one at a checkpoint during ingest
UNKNOWN_KEY = "NO-SUCH-KEY-0000"
EVENT_FIELDS = ("correlation_id", "workflow", "step", "system", "status", "timestamp", "attempt", "amount")


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def show(value: Any) -> Any:
    """A value as a message shows it: datetimes as text, sets and counters sorted."""
    if isinstance(value, dt.datetime):
        return iso(value)
    if isinstance(value, Mapping):
        return {k: show(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [show(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(show(v) for v in value)
    return value


def same_number(expected: float, got: float) -> bool:
    return math.isclose(expected, got, rel_tol=1e-9, abs_tol=1e-6)


def differences(expected: Any, got: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(field, expected, got) for every field of ``expected`` that ``got`` answers otherwise.

    Only the fields the reference knows are compared; datetimes are parsed from the API's text;
    floats compare with a tolerance, nothing else does.
    """
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping):
            return [(path, expected, got)]
        found = []
        for key, value in expected.items():
            field = f"{path}.{key}" if path else key
            if key not in got:
                found.append((field, value, "<absent>"))
            else:
                found += differences(value, got[key], field)
        return found
    if isinstance(expected, list):
        if not isinstance(got, list) or len(got) != len(expected):
            return [(path, expected, got)]
        return [
            d
            for i, (e, g) in enumerate(zip(expected, got, strict=True))
            for d in differences(e, g, f"{path}[{i}]")
        ]
    if isinstance(expected, dt.datetime):
        try:
            parsed = moment(got) if isinstance(got, str) else None
        except ValueError:
            parsed = None
        return [] if parsed == expected else [(path, expected, got)]
    if isinstance(expected, bool) or isinstance(got, bool) or expected is None or got is None:
        return [] if expected == got and type(expected) is type(got) else [(path, expected, got)]
    if isinstance(expected, float) or isinstance(got, float):
        ok = isinstance(got, int | float) and same_number(float(expected), float(got))
        return [] if ok else [(path, expected, got)]
    return [] if expected == got else [(path, expected, got)]


@dataclass(frozen=True)
class Mismatch:
    checkpoint: str
    subject: str  # the key or the query
    field: str
    expected: Any
    got: Any

    @property
    def kind(self) -> str:
        """The field without indices or names, to group mismatches of one cause."""
        field = re.sub(r"\[\d+\]", "[]", self.field)
        field = re.sub(r" \(\d+\)$| from position \d+$", "", field)
        return re.sub(r"^(edge|variant) .*|^event [^.]*\.", lambda m: m.group(1) or "event field ", field)

    def __str__(self) -> str:
        return (
            f"[{self.checkpoint}] {self.subject}: {self.field}: "
            f"expected {show(self.expected)!r}, got {show(self.got)!r}"
        )


class Comparison:
    """Asks the collector, asks the reference, and keeps every disagreement."""

    def __init__(self, client: httpx.Client, reference: Reference, workflows: list[str]) -> None:
        self.client = client
        self.reference = reference
        self.workflows = workflows
        self.mismatches: list[Mismatch] = []
        self.compared: Counter[str] = Counter()
        self.timings: list[tuple[str, float]] = []

    def differ(self, checkpoint: str, subject: str, found: list[tuple[str, Any, Any]]) -> None:
        self.mismatches += [Mismatch(checkpoint, subject, *d) for d in found]

    def get(self, checkpoint: str, subject: str, path: str, **params: Any) -> Any | None:
        response = self.client.get(path, params=params)
        if response.status_code != 200:
            self.differ(
                checkpoint, subject, [("HTTP status", 200, f"{response.status_code} {response.text[:300]}")]
            )
            return None
        return response.json()

    # --- One transaction ------------------------------------------------------------------------

    def transaction(self, checkpoint: str, key: str, as_of: dt.datetime) -> None:
        self.compared["transaction lookups"] += 1
        subject = f"GET /api/transactions/{key}"
        response = self.client.get(f"/api/transactions/{key}", params={"as_of": iso(as_of)})
        expected = self.reference.detail(key, as_of)
        if expected is None:
            if response.status_code != 404:
                self.differ(
                    checkpoint,
                    subject,
                    [("HTTP status", 404, f"{response.status_code} {response.text[:300]}")],
                )
            return
        if response.status_code != 200:
            self.differ(
                checkpoint, subject, [("HTTP status", 200, f"{response.status_code} {response.text[:300]}")]
            )
            return
        got = response.json()
        summary = {k: v for k, v in expected.items() if k not in ("aliases", "events")}
        self.differ(checkpoint, subject, differences(summary, got))
        self.differ(checkpoint, subject, alias_differences(expected["aliases"], got.get("aliases")))
        self.differ(checkpoint, subject, event_differences(expected["events"], got.get("events") or []))

    # --- The operations queue -------------------------------------------------------------------

    def queue(
        self,
        checkpoint: str,
        as_of: dt.datetime | None,
        page_size: int = 1000,
        items: bool = False,
        **filters: Any,
    ) -> None:
        """``GET /api/transactions`` with ``filters`` (workflow, state, breached), every page of it.

        ``as_of=None`` leaves it to the collector (now) and derives the reference at the moment the
        answer names. ``items``: compare each summary, not only which transactions, in which order.
        """
        self.compared["queue queries"] += 1
        shown = {k: str(v).lower() if isinstance(v, bool) else v for k, v in filters.items()}
        params: dict[str, Any] = {**shown, "limit": page_size}
        if as_of is not None:
            params["as_of"] = iso(as_of)
        subject = "GET /api/transactions?" + "&".join(f"{k}={v}" for k, v in params.items() if k != "as_of")
        received: list[dict[str, Any]] = []
        total = None
        cursor = None
        for _ in range(100):
            body = self.get(
                checkpoint, subject, "/api/transactions", **params, **({"cursor": cursor} if cursor else {})
            )
            if body is None:
                return
            if total is None:
                total = body["total"]
                as_of = as_of or moment(body["as_of"])
            received += body["items"]
            cursor = body["next_cursor"]
            if not cursor:
                break
        assert as_of is not None
        expected = self.reference.page(as_of, **filters)
        if total != len(expected):
            self.differ(checkpoint, subject, [("total", len(expected), total)])
        expected_ids = [item["correlation_id"] for item in expected]
        got_ids = [item.get("correlation_id") for item in received]
        if expected_ids != got_ids:
            missing = [key for key in expected_ids if key not in set(got_ids)]
            extra = [key for key in got_ids if key not in set(expected_ids)]
            if missing:
                self.differ(
                    checkpoint, subject, [(f"transactions missing ({len(missing)})", missing[:8], None)]
                )
            if extra:
                self.differ(
                    checkpoint, subject, [(f"transactions not expected ({len(extra)})", None, extra[:8])]
                )
            if not missing and not extra:
                first = next(i for i, (e, g) in enumerate(zip(expected_ids, got_ids, strict=True)) if e != g)
                self.differ(
                    checkpoint,
                    subject,
                    [
                        (
                            f"order from position {first}",
                            expected_ids[first : first + 4],
                            got_ids[first : first + 4],
                        )
                    ],
                )
        if items:
            by_id = {item.get("correlation_id"): item for item in received}
            for summary in expected:
                if summary["correlation_id"] in by_id:
                    self.compared["queue items"] += 1
                    self.differ(
                        checkpoint,
                        f"{summary['correlation_id']} in the queue",
                        differences(summary, by_id[summary["correlation_id"]]),
                    )

    # --- Aggregates -----------------------------------------------------------------------------

    def overview(
        self,
        checkpoint: str,
        as_of: dt.datetime,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        workflow: str = "",
    ) -> None:
        self.compared["overviews"] += 1
        window = {
            name: iso(value) for name, value in (("since", since), ("until", until)) if value is not None
        }
        filters = {**window, **({"workflow": workflow} if workflow else {})}
        subject = f"GET /api/overview {filters}" if filters else "GET /api/overview"
        body = self.get(checkpoint, subject, "/api/overview", as_of=iso(as_of), **filters)
        if body is None:
            return
        got = {"": body["totals"], **{row["workflow"]: row for row in body["workflows"]}}
        expected = self.reference.overview(as_of, since, until, workflow)
        if workflow:  # the workflow's own row and the totals: the same transactions
            got = {name: row for name, row in got.items() if name in ("", workflow)}
        for name in sorted(expected.keys() | got.keys()):
            where = f"{subject} {'totals' if not name else 'workflow ' + name}"
            if name not in got or name not in expected:
                self.differ(checkpoint, where, [("present", name in expected, name in got)])
                continue
            want, have = expected[name], got[name]
            counts = {k: v for k, v in want.items() if k not in ("value_at_risk", "cycle_times")}
            self.differ(checkpoint, where, differences(counts, have))
            risk = {row["currency"]: row for row in have.get("value_at_risk", [])}
            self.differ(
                checkpoint,
                where,
                differences({"value_at_risk": want["value_at_risk"]}, {"value_at_risk": risk}),
            )
            if set(risk) != set(want["value_at_risk"]):
                self.differ(
                    checkpoint, where, [("value_at_risk currencies", set(want["value_at_risk"]), set(risk))]
                )
            # Percentiles are the engine's estimate: only within the cycle times there are.
            times = want["cycle_times"]
            for field in ("cycle_time_p50_seconds", "cycle_time_p95_seconds"):
                value = have.get(field)
                if not times:
                    ok = value is None
                else:
                    ok = value is not None and times[0] - 1e-6 <= value <= times[-1] + 1e-6
                if not ok:
                    self.differ(
                        checkpoint,
                        where,
                        [(field, f"within [{times[:1]}, {times[-1:]}]" if times else None, value)],
                    )

    def process_map(self, checkpoint: str, workflow: str) -> None:
        self.compared["process maps"] += 1
        subject = f"GET /api/workflows/{workflow}/map"
        body = self.get(checkpoint, subject, f"/api/workflows/{workflow}/map")
        if body is None:
            return
        got_edges = Counter({(row["source"], row["target"]): row["count"] for row in body["edges"]})
        got_variants = Counter({tuple(row["steps"]): row["transactions"] for row in body["variants"]})
        expected = self.reference.process_map(workflow)
        found = []
        if body["transactions"] != expected["transactions"]:
            found.append(("transactions", expected["transactions"], body["transactions"]))
        for pair in sorted(expected["edges"].keys() | got_edges.keys()):
            if expected["edges"][pair] != got_edges[pair]:
                found.append((f"edge {pair[0]} -> {pair[1]}", expected["edges"][pair], got_edges[pair]))
        for trace in sorted(expected["variants"].keys() | got_variants.keys()):
            if expected["variants"][trace] != got_variants[trace]:
                found.append(
                    (f"variant {' > '.join(trace)}", expected["variants"][trace], got_variants[trace])
                )
        if found and expected["tied"]:
            by_event_id = self.reference.process_map(workflow, tie_break="event_id")
            if by_event_id["edges"] == got_edges and by_event_id["variants"] == got_variants:
                found = [
                    (
                        "ties in event time",
                        f"in arrival order ({expected['tied']} transactions have ties between steps)",
                        "in event id order",
                    )
                ]
        self.differ(checkpoint, subject, found)

    # --- A whole checkpoint ---------------------------------------------------------------------

    def checkpoint(
        self, name: str, as_of: dt.datetime, keys: list[str], filters: bool = True, maps: bool = True
    ) -> None:
        started = time.perf_counter()
        self.queue(name, as_of, items=True)
        if filters:
            self.queue(name, as_of, page_size=97)  # the cursor walks the same queue
            for state in STATES:
                self.queue(name, as_of, state=state)
            for workflow in self.workflows:
                self.queue(name, as_of, workflow=workflow)
            self.queue(name, as_of, breached=True)
            self.queue(name, as_of, breached=False)
            self.overview(name, as_of)
            # Started in a window that cuts through the traffic: each transaction on its side of it.
            self.overview(
                name, as_of, since=as_of - dt.timedelta(hours=40), until=as_of - dt.timedelta(hours=6)
            )
            self.overview(name, as_of, since=as_of - dt.timedelta(hours=30), workflow=self.workflows[0])
        if maps:
            for workflow in self.workflows:
                self.process_map(name, workflow)
        for key in keys:
            self.transaction(name, key, as_of)
        self.timings.append((name, time.perf_counter() - started))

    def report(self, limit_per_kind: int = 4) -> str:
        kinds: dict[str, list[Mismatch]] = defaultdict(list)
        for mismatch in self.mismatches:
            kinds[mismatch.kind].append(mismatch)
        lines = [f"{len(self.mismatches)} mismatches between the collector and the reference, by field:"]
        for kind, found in sorted(kinds.items(), key=lambda item: -len(item[1])):
            checkpoints = sorted({m.checkpoint for m in found})
            lines.append(f"- {kind}: {len(found)} (at {', '.join(checkpoints)})")
            lines += [f"    {m}" for m in found[:limit_per_kind]]
        return "\n".join(lines)


def alias_differences(expected: Mapping[str, set[str]], got: Any) -> list[tuple[str, Any, Any]]:
    if not isinstance(got, Mapping):
        return [("aliases", expected, got)]
    if set(got) != set(expected):
        return [("aliases", expected, got)]
    return [
        (f"aliases.{kind}", expected[kind], got[kind]) for kind in expected if got[kind] not in expected[kind]
    ]


def event_differences(expected: list[Event], got: list[dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    """Every stored event up to as_of, once, in event-time order, as it was first sent."""
    found: list[tuple[str, Any, Any]] = []
    wanted = {event.event_id: event for event in expected}
    have: dict[Any, dict[str, Any]] = {event.get("event_id"): event for event in got}  # ids as answered
    missing = sorted(wanted.keys() - have.keys())
    extra = sorted(have.keys() - wanted.keys())
    if missing:
        found.append((f"events missing ({len(missing)})", missing[:5], None))
    if extra:
        found.append((f"events not expected ({len(extra)})", None, extra[:5]))
    if len(got) != len(expected):  # an id reused in another transaction that later joined is two events
        found.append(("events listed", f"{len(expected)} listed", f"{len(got)} listed, {len(have)} distinct"))
    times = [moment(event["timestamp"]) for event in got if isinstance(event.get("timestamp"), str)]
    if times != sorted(times):
        found.append(("events order", "event-time order", [iso(t) for t in times]))
    for event_id in sorted(wanted.keys() & have.keys()):
        event = wanted[event_id]
        sent = {field: getattr(event, field) for field in EVENT_FIELDS}
        sent["currency"] = event.currency
        sent["aliases"] = dict(event.aliases)
        sent["error"] = dict(event.error) if event.error else None
        found += [(f"event {event_id}.{f}", e, g) for f, e, g in differences(sent, have[event_id])]
    return found


def keys_of(sent: list[dict[str, Any]]) -> list[str]:
    """Every key the traffic used: correlation ids and announced aliases."""
    keys = {event["correlation_id"] for event in sent}
    keys |= {alias for event in sent for alias in (event.get("aliases") or {}).values()}
    return sorted(keys)


@pytest.fixture
def workflows_file(tmp_path: Path) -> Path:
    copy = tmp_path / "workflows.yaml"
    shutil.copy(EXAMPLE_WORKFLOWS, copy)
    return copy


@pytest.fixture
def collector(tmp_path: Path, workflows_file: Path) -> Iterator[CollectorProcess]:
    process = CollectorProcess(
        store_dir=tmp_path / "store",
        workflows=workflows_file,
        # Some traffic is stamped hours ahead on purpose (as_of answers before and after it). Every
        # answer is compared right after the batch before it: none may be an expensive answer shared
        # from before that batch (shared_reads.py), as happened on a busy machine.
        env={
            "THREADLINE_ALERT_INTERVAL": "0",
            "THREADLINE_MAX_FUTURE_SKEW": "1d",
            "THREADLINE_SHARED_READ_SECONDS": "0",
        },
        isolated=True,
    ).start()
    yield process
    process.stop()


# Thousands of comparisons through HTTP: about 4 minutes on a quiet 2-core machine, more on a busy one.
@pytest.mark.timeout(900)
def test_every_answer_is_what_the_rules_derive_from_the_events(
    collector: CollectorProcess, workflows_file: Path, tmp_path: Path
) -> None:
    definitions = load(workflows_file)
    traffic = Traffic(definitions, seed=SEED)
    reference = Reference(definitions)
    picker = random.Random(SEED)  # which keys to look up: apart from the traffic's own generator
    batches = list(traffic.batches(transactions=TRANSACTIONS, size=BATCH_SIZE))
    restart_after = len(batches) // 2
    workflows = [d.name for d in definitions] + [UNDEFINED_WORKFLOW]
    started = time.perf_counter()

    with httpx.Client(base_url=collector.url, timeout=60) as client:
        compare = Comparison(client, reference, workflows)
        sent: list[dict[str, Any]] = []
        for number, batch in enumerate(batches, start=1):
            response = client.post("/v1/events", json={"events": batch})
            assert response.status_code == 200, response.text
            counted = reference.send(batch)
            sent += batch
            got = response.json()
            compare.differ(
                f"batch {number}",
                "POST /v1/events",
                differences({"accepted": counted.accepted, "duplicates": counted.duplicates}, got),
            )
            if number % CHECK_EVERY == 1 or number == len(batches):
                keys = [*picker.sample(keys_of(sent), SAMPLE), UNKNOWN_KEY]
                compare.checkpoint(f"after batch {number}/{len(batches)}", NOW, keys)
            if number == restart_after:
                collector.stop()
                collector.start()
                keys = picker.sample(keys_of(sent), SAMPLE)
                compare.checkpoint(f"after the restart (batch {number})", NOW, keys)

        # Every key that is not a transaction's own id, and a sample of those that are.
        every_key = keys_of(sent)
        other_keys = [key for key in every_key if reference.transaction_of(key) != key]
        own_keys = picker.sample([key for key in every_key if reference.transaction_of(key) == key], 100)
        compare.checkpoint("end, as of now", NOW, [*other_keys, *own_keys, UNKNOWN_KEY])
        compare.queue("end, as of the collector's now", None, items=True)

        # A moment 30 h back that is exactly an event's time: that event counts (timestamp <= as_of).
        past = min(
            (e.timestamp for e in reference.events.values()),
            key=lambda t: abs(t - (NOW - dt.timedelta(hours=30))),
        )
        compare.checkpoint("end, as of 30 h ago", past, picker.sample(every_key, 40), maps=False)
        future = max(e.timestamp for e in reference.events.values()) + dt.timedelta(minutes=5)
        assert future > NOW
        compare.checkpoint(
            "end, after the events from the future", future, picker.sample(every_key, 40), maps=False
        )

        # Exactly stuck_after without progress is stuck; exactly the SLA is not yet breached.
        stuck = reference.stuck_boundaries()
        breach = reference.sla_boundaries()
        for label, boundaries in (("stuck", stuck), ("SLA", breach)):
            for key, as_of in picker.sample(boundaries, min(3, len(boundaries))):
                name = f"end, {label} boundary of {key} at {iso(as_of)}"
                compare.checkpoint(name, as_of, [key], filters=False, maps=False)

    elapsed = time.perf_counter() - started
    log = tmp_path / "mismatches.txt"
    log.write_text("\n".join(str(m) for m in compare.mismatches) + "\n")
    summary = (
        f"{len(sent)} events sent in {len(batches)} batches, {len(reference.events)} stored, "
        f"compared {dict(compare.compared)} in {elapsed:.0f} s "
        f"({', '.join(f'{name}: {seconds:.1f} s' for name, seconds in compare.timings)})"
    )
    print(summary)
    # The traffic still covers what the contract spells out (else the comparison proves less).
    now = reference.summaries(NOW)
    covered = {
        **{f"state {state}": sum(s["state"] == state for s in now.values()) for state in STATES},
        "undefined workflow": sum(s["workflow"] == UNDEFINED_WORKFLOW for s in now.values()),
        "SLA breached": sum(s["sla"]["breached"] for s in now.values()),
        "violations": sum(bool(s["violations"]) for s in now.values()),
        "missing steps": sum(bool(s["missing_steps"]) for s in now.values()),
        "events after now": sum(e.timestamp > NOW for e in reference.events.values()),
        "open 30 h ago": sum(
            s["state"] in ("stuck", "in_progress") for s in reference.summaries(past).values()
        ),
        "stuck boundaries": len(stuck),
        "SLA boundaries": len(breach),
        **reference.coverage,
    }
    expected_cases = (
        "duplicate",
        "duplicate with other content",
        "duplicate under another key",
        "alias conflict",
        "alias announced after events keyed by it",
        "event keyed by a known alias",
        "transaction with aliases absorbed",
        "alias of another started transaction refused",
    )
    assert all(covered.get(case) for case in expected_cases), covered
    assert all(covered.values()), covered
    assert collector.running, f"the collector died:\n{collector.log()[-4000:]}"
    assert not compare.mismatches, f"{compare.report()}\n(all of them in {log})\n{summary}"
