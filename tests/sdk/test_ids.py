from __future__ import annotations

import threading
import time
import uuid

from threadline.sdk._ids import uuid7


def test_uuid7_is_a_version_7_rfc_9562_uuid_carrying_the_time() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid.UUID(uuid7())
    after = time.time_ns() // 1_000_000
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert before <= value.int >> 80 <= after


def test_uuid7s_from_one_process_are_unique_and_increasing_across_threads() -> None:
    made: list[list[str]] = [[] for _ in range(4)]

    def make(into: list[str]) -> None:
        into.extend(uuid7() for _ in range(5000))

    threads = [threading.Thread(target=make, args=(bucket,)) for bucket in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [value for bucket in made for value in bucket]
    assert len(set(everything)) == 20_000
    for bucket in made:
        assert bucket == sorted(bucket)  # each thread sees strictly increasing ids
