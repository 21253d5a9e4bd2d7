"""Holding under load, against real collector processes: a read has a time limit, each tenant has a
bounded number of reads running and waiting, a client that gave up has its reads dropped, and
ingest is not held up by queued reads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from tests.support.collector_process import CollectorProcess
from tests.support.ingest import TRACEBACK_MARKERS, business_event, unique_key

ACME, GLOBEX = "tl_acme_reads", "tl_globex_reads"
KEYS = f"""
keys:
  - {{name: acme, key: {ACME}, tenant: acme, roles: [admin]}}
  - {{name: globex, key: {GLOBEX}, tenant: globex, roles: [admin]}}
"""
CALLS = 16
Answer = TypeVar("Answer")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def batch(size: int) -> dict[str, list[dict[str, str]]]:
    return {"events": [business_event(unique_key("LOAD")) for _ in range(size)]}


def at_once(calls: int, call: Callable[[], Answer]) -> list[Answer]:
    """``calls`` requests sent together from as many threads."""
    start = threading.Barrier(calls)
    answers: list[Answer] = []

    def run() -> None:
        start.wait(30)
        answers.append(call())

    threads = [threading.Thread(target=run) for _ in range(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return answers


@pytest.fixture
def collector(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[CollectorProcess]:
    keys = tmp_path / "keys.yaml"
    keys.write_text(KEYS)
    # Identical calls would share one answer (shared_reads): here each call must reach the store.
    env = {
        "THREADLINE_API_KEYS": str(keys),
        "THREADLINE_SHARED_READ_SECONDS": "0",
        **getattr(request, "param", {}),
    }
    running = CollectorProcess(store_dir=tmp_path / "store", env=env, isolated=True).start()
    yield running
    running.stop()


@pytest.mark.parametrize("collector", [{"THREADLINE_READ_TIMEOUT": "0.001"}], indirect=True)
def test_a_read_over_the_time_limit_answers_503_with_retry_after_in_words(
    collector: CollectorProcess,
) -> None:
    stored = httpx.post(collector.url + "/v1/events", json=batch(50), headers=bearer(ACME), timeout=60)
    assert stored.status_code == 200  # writes have no time limit

    answer = httpx.get(collector.url + "/api/overview", headers=bearer(ACME), timeout=60)

    assert answer.status_code == 503
    assert int(answer.headers["Retry-After"]) > 0
    body = answer.json()
    assert body["error"] == "query_timeout"
    assert "read time limit of 0.001 s" in body["message"]
    assert not any(marker in answer.text for marker in TRACEBACK_MARKERS)


@pytest.mark.parametrize(
    "collector",
    [{"THREADLINE_READS_PER_TENANT": "1", "THREADLINE_READS_WAITING_PER_TENANT": "1"}],
    indirect=True,
)
def test_a_tenant_over_its_reads_gets_429_while_another_tenants_lookup_is_answered(
    collector: CollectorProcess,
) -> None:
    for key in (ACME, GLOBEX):
        stored = httpx.post(collector.url + "/v1/events", json=batch(500), headers=bearer(key), timeout=60)
        assert stored.status_code == 200
    lookups: list[httpx.Response] = []
    first = threading.Lock()

    def acme_overview() -> httpx.Response:
        answer = httpx.get(collector.url + "/api/overview", headers=bearer(ACME), timeout=120)
        if first.acquire(blocking=False):  # one lookup of globex's, while acme's calls are in flight
            lookups.append(
                httpx.get(collector.url + "/api/transactions", headers=bearer(GLOBEX), timeout=120)
            )
        return answer

    answers = at_once(CALLS, acme_overview)

    statuses = sorted(answer.status_code for answer in answers)
    assert set(statuses) == {200, 429}, statuses  # at most one running and one waiting at a time
    refused = next(answer for answer in answers if answer.status_code == 429)
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.json()["error"] == "too_many_reads"
    assert lookups[0].status_code == 200, lookups[0].text
    assert lookups[0].json()["total"] == 500


@pytest.mark.parametrize("collector", [{"THREADLINE_READS_PER_SECOND_PER_TENANT": "0.1"}], indirect=True)
def test_a_tenant_over_its_read_rate_gets_429_saying_when_to_retry_while_another_is_answered(
    collector: CollectorProcess,
) -> None:
    def read(key: str) -> httpx.Response:
        return httpx.get(collector.url + "/api/transactions", headers=bearer(key), timeout=60)

    first, second = read(ACME), read(ACME)  # 0.1 a second: a burst of one, then one every ten seconds

    assert first.status_code == 200
    assert second.status_code == 429 and second.json()["error"] == "too_many_reads"
    assert "a second" in second.json()["message"] and int(second.headers["Retry-After"]) >= 5
    assert read(GLOBEX).status_code == 200  # another tenant's rate is its own


@pytest.mark.parametrize(
    "collector",
    [{"THREADLINE_READS_PER_TENANT": str(CALLS), "THREADLINE_READ_CONNECTIONS": "1"}],
    indirect=True,
)
def test_ingest_is_stored_while_many_reads_are_queued(collector: CollectorProcess) -> None:
    stored = httpx.post(collector.url + "/v1/events", json=batch(2000), headers=bearer(ACME), timeout=60)
    assert stored.status_code == 200
    reads_answered = 0
    answered_before_ingest: list[int] = []
    counting = threading.Lock()

    def overview() -> httpx.Response:
        nonlocal reads_answered
        answer = httpx.get(collector.url + "/api/overview", headers=bearer(ACME), timeout=300)
        with counting:
            reads_answered += 1
        return answer

    def ingest() -> None:
        response = httpx.post(
            collector.url + "/v1/events", json=batch(10), headers=bearer(GLOBEX), timeout=300
        )
        assert response.status_code == 200
        with counting:
            answered_before_ingest.append(reads_answered)

    ingest_thread = threading.Thread(target=ingest)
    readers = threading.Thread(target=lambda: answers.extend(at_once(CALLS, overview)))
    answers: list[httpx.Response] = []
    readers.start()
    while reads_answered == 0 and readers.is_alive():  # the reads are queued behind the first
        threading.Event().wait(0.01)
    ingest_thread.start()
    ingest_thread.join(300)
    readers.join(300)

    assert [answer.status_code for answer in answers] == [200] * CALLS
    # The write waited for the statement running when it came, not for the reads queued before it.
    assert answered_before_ingest[0] <= CALLS // 2, answered_before_ingest


@pytest.mark.parametrize("collector", [{"THREADLINE_READS_PER_TENANT": str(CALLS)}], indirect=True)
def test_the_reads_of_a_client_that_gave_up_are_dropped_before_they_start(
    collector: CollectorProcess,
) -> None:
    stored = httpx.post(collector.url + "/v1/events", json=batch(3000), headers=bearer(ACME), timeout=60)
    assert stored.status_code == 200

    def give_up_soon() -> httpx.Response | None:
        try:
            return httpx.get(collector.url + "/api/overview", headers=bearer(ACME), timeout=0.2)
        except httpx.TimeoutException:
            return None  # the client disconnects, as the dashboard does after its timeout

    answers = at_once(CALLS, give_up_soon)

    assert None in answers  # 16 overviews, one at a time, take longer than 0.2 s
    answer = httpx.get(collector.url + "/api/overview", headers=bearer(ACME), timeout=120)
    assert answer.status_code == 200  # after the dropped ones: the store is free again
    assert "the caller left before its read started on GET /api/overview; dropped" in collector.log()
