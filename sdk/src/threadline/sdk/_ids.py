"""Event ids: UUIDv7 (RFC 9562), time-ordered so that ids sort roughly by creation."""

from __future__ import annotations

import random
import threading
import time

_lock = threading.Lock()
_last_ms = 0
_sequence = 0


def uuid7() -> str:
    """A UUIDv7 string: 48 bits of Unix milliseconds, then a 12-bit sequence and 62 random bits.

    The sequence makes ids created in the same millisecond by this process strictly increasing.
    """
    global _last_ms, _sequence
    now_ms = time.time_ns() // 1_000_000
    with _lock:
        if now_ms <= _last_ms:
            _sequence = (_sequence + 1) & 0xFFF
            if _sequence == 0:  # 4096 ids in one millisecond: borrow the next millisecond
                _last_ms += 1
            now_ms = _last_ms
        else:
            _last_ms = now_ms
            _sequence = random.getrandbits(10)
        sequence = _sequence
    # Not a secret, only unique: the Mersenne Twister is re-seeded in a forked child by Python itself.
    random_bits = random.getrandbits(62)
    value = (now_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version 7
    value |= sequence << 64
    value |= 0b10 << 62  # RFC 9562 variant
    value |= random_bits
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
