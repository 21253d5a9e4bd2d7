"""Plan time versus wall time: history is written as it happened, the live part may run faster.

Every transaction is planned in *plan time* (Unix seconds). Up to the anchor (the moment the
simulator starts, or a pinned ``now``) plan time is event time: the back-fill writes history with
the timestamps it was planned with. After the anchor, ``speed`` compresses time: a step planned to
take 20 minutes takes 20/speed minutes of wall time, and its event carries that compressed time.
So ``speed=60`` shows an hour of business in a minute, while event times never lie in the future
(the collector judges state "as of now" and ignores events later than that).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Clock:
    anchor: float  # plan time (Unix seconds) where history ends and the live part starts
    anchor_wall: float  # time.time() when the live part's clock started
    speed: float = 1.0

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ValueError(f"speed must be above 0, got {self.speed!r}")

    def stamp(self, plan_time: float) -> float:
        """The event time (Unix seconds) of something planned at ``plan_time``."""
        if plan_time <= self.anchor:
            return plan_time
        return self.anchor + (plan_time - self.anchor) / self.speed

    def plan_time(self, wall_time: float) -> float:
        """The plan time that is due when the wall clock shows ``wall_time``."""
        return self.anchor + max(wall_time - self.anchor_wall, 0.0) * self.speed

    def wall_time(self, plan_time: float) -> float:
        """When, by the wall clock, something planned at ``plan_time`` is due."""
        return self.anchor_wall + max(plan_time - self.anchor, 0.0) / self.speed


def utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)
