"""The simulator through the real SDK into a real OTLP/HTTP receiver: what arrives, and in what order."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.simulator.conftest import NOW
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan
from threadline.collector.workflows import Workflows
from threadline.simulator import PlannedEvent, SimulationStats, simulate
from threadline.simulator.systems import KNOWN

SEED = 20260304


@dataclass
class Recorder:
    """The events in the order the simulator handed them to the SDK, with their timestamps."""

    sent: list[tuple[PlannedEvent, float]] = field(default_factory=list)

    def __call__(self, event: PlannedEvent, timestamp: float) -> None:
        self.sent.append((event, timestamp))

    def of(self, transaction: str) -> list[tuple[PlannedEvent, float]]:
        return [(event, at) for event, at in self.sent if event.transaction == transaction]


@dataclass
class Run:
    stats: SimulationStats
    recorder: Recorder
    spans: list[ReceivedSpan]

    def events(self) -> list[ReceivedSpan]:
        return [span for span in self.spans if "threadline.correlation_id" in span.attributes]


def backfill(endpoint: str, spool: Path, seed: int = SEED) -> tuple[SimulationStats, Recorder]:
    recorder = Recorder()
    stats = simulate(
        endpoint,
        rate=0,
        seed=seed,
        backfill_days=1,
        backfill_per_day=60,
        duration_s=0,
        spool_dir=spool,
        now=NOW,
        observer=recorder,
    )
    return stats, recorder


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    receiver = OtlpReceiver().start()
    stats, recorder = backfill(receiver.endpoint, tmp_path_factory.mktemp("spool"))
    spans = list(receiver.spans)
    receiver.stop()
    yield Run(stats, recorder, spans)


def test_every_event_reaches_the_collector_through_the_sdk(run: Run) -> None:
    stats = run.stats
    assert stats.delivered
    # A customer onboarded twice is two transactions; the second may come after history's end.
    twins = stats.by_fault["duplicate_entity"]
    assert twins >= 1  # the showcase
    assert stats.transactions == 60 + len(stats.examples) + twins
    events = run.events()
    assert len(events) == stats.events_sent == len(run.recorder.sent)
    assert len({span.event_id for span in events}) == stats.events_sent - stats.duplicates_sent


def test_the_showcases_go_first_so_every_state_shows_at_once(run: Run) -> None:
    showcases = {key for ref in run.stats.examples.values() for key in (ref.correlation_id, ref.twin) if key}
    sent = [event.transaction in showcases for event, _ in run.recorder.sent]
    first_traffic = sent.index(False)
    assert first_traffic > 0 and not any(sent[first_traffic:])


def test_each_fake_system_is_its_own_integration(run: Run) -> None:
    systems = {span.attributes["threadline.system"]: span.resource["service.name"] for span in run.events()}
    assert systems == {name: cls.service for name, cls in KNOWN.items()}


def test_business_events_are_children_of_the_integrations_api_calls(run: Run) -> None:
    by_id = {span.span_id: span for span in run.spans}
    for event in run.events()[:200]:
        call = by_id[event.parent_span_id]
        assert call.trace_id == event.trace_id
        assert call.name.split(" ")[0] in ("POST", "PATCH")
        assert call.start_ns <= event.start_ns and call.end_ns >= event.end_ns
        assert event.attributes["threadline.duration_ms"] == pytest.approx(
            (event.end_ns - event.start_ns) / 1e6
        )


def test_event_times_are_history_and_personal_data_is_redacted(run: Run) -> None:
    starts = [span.start_ns / 1e9 for span in run.events()]
    assert max(starts) <= NOW.timestamp()
    assert min(starts) < NOW.timestamp() - 20 * 3600
    emails = [s.attributes["billing_email"] for s in run.events() if "billing_email" in s.attributes]
    assert emails and not any("@" in value for value in emails)


def test_every_workflow_of_the_example_file_runs(run: Run, workflows: Workflows) -> None:
    seen: dict[str, set[str]] = defaultdict(set)
    for span in run.events():
        seen[span.attributes["threadline.workflow"]].add(span.name)
    assert set(seen) == {definition.name for definition in workflows}
    for definition in workflows:  # every step, failures included
        assert seen[definition.name] == set(definition.step_names())


def test_transient_errors_are_retried(run: Run) -> None:
    ref = run.stats.examples["transient"]
    attempts = sorted(
        (span.attributes["threadline.attempt"], span.attributes["threadline.status"],
         span.attributes.get("threadline.error.kind"))
        for span in run.events()
        if span.attributes["threadline.event_id"] in ref.event_ids and "threadline.attempt" in span.attributes
    )  # fmt: skip
    assert attempts[0] == (1, "error", "transient")
    assert attempts[-1][1:] == ("ok", None) and attempts[-1][0] >= 2


def test_duplicates_carry_the_same_event_id(run: Run) -> None:
    counts = Counter(span.event_id for span in run.events())
    duplicated = [event_id for event_id, count in counts.items() if count == 2]
    assert len(duplicated) == run.stats.duplicates_sent >= 1
    assert set(duplicated) & set(run.stats.examples["duplicate"].event_ids)


def test_out_of_order_sends_a_later_step_first(run: Run) -> None:
    ref = run.stats.examples["out_of_order"]
    sent = [(event.step, at) for event, at in run.recorder.of(ref.correlation_id) if not event.redelivery]
    assert [at for _, at in sent] != sorted(at for _, at in sent)


def test_late_aliases_join_keys_that_were_sent_apart(run: Run) -> None:
    ref = run.stats.examples["late_alias"]
    sales_order = ref.aliases["erp.sales_order"]
    sent = [event for event, _ in run.recorder.of(ref.correlation_id)]
    order = next(i for i, e in enumerate(sent) if e.step == "erp.order.created")
    announced = next(i for i, e in enumerate(sent) if e.aliases.get("erp.sales_order") == sales_order)
    assert sent[order].correlation_id == sales_order and not sent[order].aliases
    assert sent[announced].correlation_id == ref.correlation_id
    assert order < announced


def test_a_credit_posted_before_approval_is_sent(run: Run) -> None:
    ref = run.stats.examples["violation"]
    at = {event.step: stamp for event, stamp in run.recorder.of(ref.correlation_id)}
    assert at["billing.credit.posted"] < at.get("erp.credit.approved", float("inf"))


def test_history_has_rejections_stuck_transactions_and_a_slow_system(run: Run, workflows: Workflows) -> None:
    stats = run.stats
    assert {ref.outcome for label, ref in stats.examples.items() if label.endswith(":failed")} == {"failed"}
    assert {ref.outcome for label, ref in stats.examples.items() if label.endswith(":stuck")} == {"open"}
    slow = stats.examples["slow_system"]
    assert slow.slowed_steps
    assert stats.by_fault["slow_system"] >= 1
    for fault in ("transient", "rejection", "stuck", "violation", "duplicate", "out_of_order", "late_alias"):
        assert stats.by_fault[fault] >= 1, fault


def test_the_same_seed_sends_the_same_events(run: Run, receiver: OtlpReceiver, tmp_path: Path) -> None:
    stats, recorder = backfill(receiver.endpoint, tmp_path / "spool")
    first = [(e.event_id, e.correlation_id, e.step, e.status, at) for e, at in run.recorder.sent]
    again = [(e.event_id, e.correlation_id, e.step, e.status, at) for e, at in recorder.sent]
    assert again == first
    received = sorted(span.event_id or "" for span in receiver.wait_for(len(set(first))))
    assert received == sorted(span.event_id or "" for span in run.events())
    assert stats.examples == run.stats.examples


def test_another_seed_sends_other_events(run: Run, receiver: OtlpReceiver, tmp_path: Path) -> None:
    _, recorder = backfill(receiver.endpoint, tmp_path / "spool", seed=SEED + 1)
    assert not {e.event_id for e, _ in recorder.sent} & {e.event_id for e, _ in run.recorder.sent}


def test_live_traffic_starts_transactions_at_the_rate_and_stops_on_request(
    receiver: OtlpReceiver, tmp_path: Path
) -> None:
    recorder = Recorder()
    stop = threading.Event()
    threading.Timer(3.0, stop.set).start()
    began = time.time()
    stats = simulate(
        receiver.endpoint,
        rate=300,  # a transaction every 0.2 s on average
        seed=SEED,
        backfill_days=0,
        spool_dir=tmp_path / "spool",
        speed=3000,  # 3 s of wall time are 2.5 hours of business
        stop=stop,
        observer=recorder,
    )
    took = time.time() - began
    assert 3.0 <= took < 8.0
    assert stats.backfill_transactions == 0 and 5 <= stats.live_transactions <= 30
    assert stats.delivered
    stamps = [at for _, at in recorder.sent]
    assert all(began - 1 <= at <= began + took for at in stamps)
    assert len(receiver.wait_for(len({e.event_id for e, _ in recorder.sent}))) >= len(stamps)
    progressed = Counter(event.transaction for event, _ in recorder.sent)
    assert max(progressed.values()) >= 3  # transactions move through their steps, not just start


def test_history_counts_only_transactions_it_sent_an_event_of(receiver: OtlpReceiver, tmp_path: Path) -> None:
    # With seed 7, at this end of history one transaction's first delivery is delayed past it: it
    # is the live part's to send, not history (the demo's overview counted one transaction short).
    recorder = Recorder()
    stats = simulate(
        receiver.endpoint,
        rate=0,
        seed=7,
        backfill_days=2,
        backfill_per_day=60,
        duration_s=0,
        spool_dir=tmp_path / "spool",
        now=dt.datetime(2026, 11, 27, 13, 40, tzinfo=dt.UTC),
        observer=recorder,
    )

    sent = {event.transaction for event, _ in recorder.sent}
    assert (stats.backfill_transactions, stats.live_transactions, len(sent)) == (146, 1, 146)
