"""The shared importer: local validation exactly as ingest, batches, retries, and what stops a replay.

The collector here is ``FakeIngest``: ingest's own ``parse_batch`` behind an in-process transport,
so that answers a live collector gives only under load (429, 503, 413) can be produced at will.
The same flows against a real collector process are in ``test_end_to_end``.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import httpx
import orjson
import pytest

from tests.replay.support import (
    CSV_BAD_TIME,
    ONBOARDING_XES,
    ORDERS_CSV,
    ORDERS_OCEL,
    FakeIngest,
    orders_mapping,
)
from threadline.collector.schema import parse_batch
from threadline.replay import CollectorRefused, ReplayError, RowProblem, detect_format, format_report, replay
from threadline.replay.csv_log import CsvLog
from threadline.replay.importer import Importer
from threadline.replay.report import ReplayReport
from threadline.replay.sender import CollectorClient, retry_after

CSV_OPTIONS = {"mapping": orders_mapping(), "workflow": "quote-to-cash", "timezone": "Europe/Berlin"}


def replay_csv(ingest: FakeIngest, **options: object) -> ReplayReport:
    with ingest.client() as client:
        return replay(ORDERS_CSV, "http://collector:4318", client=client, **CSV_OPTIONS, **options)  # type: ignore[arg-type]


def test_good_rows_are_sent_in_batches_and_the_bad_one_reported() -> None:
    ingest = FakeIngest()
    report = replay_csv(ingest, batch_size=2, api_key="tl_test_key")

    assert (report.imported, report.duplicates, report.batches) == (6, 0, 3)
    assert report.rejected_rows == 1
    assert report.rejected == [RowProblem(6, "timestamp", CSV_BAD_TIME)]
    assert [len(batch) for batch in ingest.sent_batches()] == [2, 2, 2]
    request = ingest.requests[0]
    assert request.url == "http://collector:4318/v1/events"
    assert request.headers["authorization"] == "Bearer tl_test_key"
    assert request.headers["content-encoding"] == "gzip"


def test_what_is_sent_is_exactly_what_ingest_accepts_and_means_the_same() -> None:
    ingest = FakeIngest()
    replay_csv(ingest)
    [batch] = ingest.sent_batches()
    events = parse_batch(gzip.decompress(ingest.requests[0].content))
    assert len(events) == len(batch) == 6
    first = events[0]
    assert (first.correlation_id, first.amount, first.currency) == ("CSV-1001", 1250.0, "EUR")
    assert first.timestamp.isoformat() == "2024-05-01T07:00:00+00:00"
    log = hashlib.sha256(ORDERS_CSV.read_bytes()).hexdigest()[:32]
    assert first.event_id == f"replay:{log}:000000000001"  # the log's identity and the row's place in it


def test_replaying_the_same_file_again_imports_nothing_new() -> None:
    ingest = FakeIngest()
    first = replay_csv(ingest)
    again = replay_csv(ingest)
    assert (again.imported, again.duplicates) == (0, first.imported)
    assert again.rejected == first.rejected


def test_a_file_that_breaks_off_still_imports_what_came_before(tmp_path: Path) -> None:
    text = ONBOARDING_XES.read_text()
    cut = tmp_path / "cut.xes"
    cut.write_text(text[: text.index("XES-GLOBEX-2")])
    ingest = FakeIngest()
    with ingest.client() as client, pytest.raises(ReplayError, match="not well-formed XML") as caught:
        replay(cut, "http://collector:4318", client=client)
    assert caught.value.report is not None
    assert (caught.value.report.imported, caught.value.report.rejected_rows) == (2, 1)


def test_a_batch_over_the_body_limit_is_sent_in_halves() -> None:
    ingest = FakeIngest(answers=[httpx.Response(413, json={"error": "body_too_large", "message": "too big"})])
    report = replay_csv(ingest)
    assert [len(batch) for batch in ingest.sent_batches()] == [6, 3, 3]
    assert (report.imported, report.batches) == (6, 2)


def test_a_batch_the_collector_refuses_is_a_bug_named_by_line() -> None:
    problem = {"index": 1, "field": "timestamp", "reason": "must be between 1970-01-01 and 2261-12-31"}
    refusal = httpx.Response(
        400, json={"error": "invalid_events", "message": "1 problem(s)", "problems": [problem]}
    )
    ingest = FakeIngest(answers=[refusal])
    with pytest.raises(CollectorRefused, match=r"passed local validation.*this is a bug") as caught:
        replay_csv(ingest)
    assert caught.value.problems == [RowProblem(3, "timestamp", "must be between 1970-01-01 and 2261-12-31")]
    assert caught.value.report is not None and caught.value.report.imported == 0


def test_busy_answers_are_retried_after_retry_after() -> None:
    business_event = {
        "correlation_id": "X",
        "workflow": "w",
        "step": "s",
        "system": "s",
        "timestamp": "2024-01-01T00:00:00Z",
    }
    waits: list[float] = []
    ingest = FakeIngest(
        answers=[
            httpx.Response(503, headers={"Retry-After": "5"}, json={"message": "store unavailable"}),
            httpx.Response(429, headers={"Retry-After": "2"}, json={"message": "over the limit"}),
        ]
    )
    with (
        ingest.client() as http,
        CollectorClient("http://c:4318/", client=http, sleep=waits.append) as collector,
    ):
        answer = collector.send([orjson.dumps(business_event)])
    assert (answer.accepted, answer.duplicates) == (1, 0)
    assert waits == [5.0, 2.0]


def test_retries_are_bounded_and_waits_capped() -> None:
    waits: list[float] = []
    busy = [
        httpx.Response(503, headers={"Retry-After": "3600"}, json={"message": "overloaded"}) for _ in range(3)
    ]
    ingest = FakeIngest(answers=busy)
    with (
        ingest.client() as http,
        CollectorClient(
            "http://c", client=http, sleep=waits.append, max_attempts=3, max_wait_s=10
        ) as collector,
        pytest.raises(ReplayError, match=r"kept answering 503 \(3 attempts\): overloaded"),
    ):
        collector.send([b"{}"])
    assert waits == [10, 10]


def test_a_lost_connection_is_retried_and_an_absent_collector_reported() -> None:
    calls = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ReadTimeout("no answer", request=request)
        return httpx.Response(200, json={"accepted": 0, "duplicates": 1})

    with httpx.Client(transport=httpx.MockTransport(flaky)) as http:
        answer = CollectorClient("http://c", client=http, sleep=lambda _: None).send([b"{}"])
    assert (answer.accepted, answer.duplicates, len(calls)) == (0, 1, 2)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with (
        httpx.Client(transport=httpx.MockTransport(down)) as http,
        pytest.raises(ReplayError, match="cannot be reached"),
    ):
        CollectorClient("http://c", client=http, sleep=lambda _: None, max_attempts=2).send([b"{}"])


def test_a_refused_api_key_stops_the_replay() -> None:
    ingest = FakeIngest(
        answers=[httpx.Response(401, json={"error": "unauthorized", "message": "unknown API key"})]
    )
    with pytest.raises(ReplayError, match=r"refused the API key \(401\): unknown API key"):
        replay_csv(ingest)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after("7", 1.0) == 7.0
    assert retry_after(None, 1.5) == 1.5
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1.0) == 0.0  # in the past: at once
    assert retry_after("soon", 2.0) == 2.0


def test_the_format_comes_from_the_file_name(tmp_path: Path) -> None:
    assert detect_format(Path("log.csv")) == "csv"
    assert detect_format(Path("log.CSV.gz")) == "csv"
    assert detect_format(Path("BPI_2012.xes.gz")) == "xes"
    assert detect_format(Path("orders.jsonocel")) == "ocel"
    assert detect_format(Path("orders.json")) == "ocel"
    with pytest.raises(ReplayError, match=r"cannot tell the format of log\.parquet"):
        detect_format(Path("log.parquet"))


def test_options_that_do_not_apply_are_refused_not_ignored(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="object_type applies to OCEL"):
        replay(ORDERS_CSV, "http://c", object_type="orders", **CSV_OPTIONS)  # type: ignore[arg-type]
    with pytest.raises(ReplayError, match="column mapping applies to CSV and XES"):
        replay(ORDERS_OCEL, "http://c", mapping={"step": "type"})
    with pytest.raises(ReplayError, match="no such file"):
        replay(tmp_path / "missing.csv", "http://c")
    with pytest.raises(ReplayError, match="unknown format 'parquet'"):
        replay(ORDERS_CSV, "http://c", format="parquet")


def test_the_report_lists_bad_rows_up_to_a_limit_and_hints_at_missing_systems() -> None:
    report = ReplayReport(source="log.xes", format="xes", imported=3, batches=1)
    for line in (10, 20, 30):
        report.rejected_rows += 1
        report.add_problem(RowProblem(line, "system", "is required"))
    report.add_problem(RowProblem(40, "timestamp", "'x' is not an ISO 8601 time", "event #4 (id e4)"))
    report.rejected_rows += 1

    assert format_report(report, limit=2).splitlines() == [
        "log.xes (xes): 3 imported, 0 duplicates, 4 rows rejected, 0 skipped, 1 batch",
        "line 10: system: is required",
        "line 20: system: is required",
        "and 2 more",
        "hint: no system for some rows: map a column (system=COLUMN) or pass a system for all rows",
    ]
    assert "line 40, event #4 (id e4): timestamp: 'x' is not an ISO 8601 time" in format_report(report)


def test_an_unreachable_collector_stops_the_replay_after_bounded_attempts() -> None:
    calls: list[httpx.Request] = []

    def down(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("connection refused", request=request)

    source = CsvLog(ORDERS_CSV, orders_mapping(), workflow="quote-to-cash", timezone="Europe/Berlin")
    report = ReplayReport(source="orders.csv", format="csv")
    with (
        httpx.Client(transport=httpx.MockTransport(down)) as http,
        CollectorClient("http://c", client=http, sleep=lambda _: None, max_attempts=2) as collector,
        pytest.raises(ReplayError, match=r"cannot be reached \(2 attempts\)") as caught,
    ):
        Importer(source, collector, report, batch_size=4).run()
    assert len(calls) == 2  # the first batch only: nothing is sent after the collector is given up
    assert caught.value.report is report
    assert (report.imported, report.batches) == (0, 0)


def test_text_json_cannot_carry_rejects_its_row_not_the_batch(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    path.write_text(
        '{"objects": [{"id": "o-1", "type": "order"}], "events": [\n'
        '{"id": "e1", "type": "a", "time": "2024-01-01T00:00:00Z", "relationships": [{"objectId": "o-1"}],'
        ' "attributes": [{"name": "note", "value": "broken \\ud800 text"}]},\n'
        '{"id": "e2", "type": "b", "time": "2024-01-01T00:01:00Z", "relationships": [{"objectId": "o-1"}]}]}'
    )
    ingest = FakeIngest()
    with ingest.client() as client:
        report = replay(path, "http://c", system="erp", client=client)
    assert report.imported == 1
    [problem] = report.rejected
    assert (problem.line, problem.field, problem.ref) == (2, "attributes.note", "event #1 (id e1)")
    assert "unicode" in problem.reason  # a lone surrogate (\ud800) is no text ingest could store
