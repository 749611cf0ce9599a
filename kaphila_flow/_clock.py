"""Time for the runtime's own deadlines, real or virtual.

The runtime never calls ``anyio.sleep`` for its deadlines; it asks its clock, so the
in-memory fake can run a 10-second gather timeout in no real time.
"""

from __future__ import annotations

import math
import time
from typing import Protocol

import anyio

__all__ = ["Clock", "ScaledClock", "SystemClock", "VirtualClock"]


class Clock(Protocol):
    """Where the runtime reads and waits for time (deadlines, timestamps)."""

    def now(self) -> float:
        """Seconds on a clock that never goes back (for deadlines)."""

    def wall_time(self) -> float:
        """Seconds since the epoch (for timestamps in results)."""

    async def sleep_until(self, deadline: float) -> None:
        """Return once ``now() >= deadline``; ``math.inf`` sleeps until cancelled."""


class SystemClock:
    """Real time: the event loop's clock for deadlines, the system's for timestamps."""

    def now(self) -> float:
        return anyio.current_time()

    def wall_time(self) -> float:
        return time.time()

    async def sleep_until(self, deadline: float) -> None:
        if deadline == math.inf:
            await anyio.sleep_forever()
        await anyio.sleep_until(deadline)


class ScaledClock:
    """Real time sped up ``speed`` times: a runtime that keeps pace with a fast simulator."""

    def __init__(self, speed: float) -> None:
        if not speed > 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._origin = time.time()
        self._start: float | None = None

    def _real(self) -> float:
        now = anyio.current_time()
        if self._start is None:
            self._start = now
        return now - self._start

    def now(self) -> float:
        return self._real() * self.speed

    def wall_time(self) -> float:
        return self._origin + self.now()

    async def sleep_until(self, deadline: float) -> None:
        if deadline == math.inf:
            await anyio.sleep_forever()
        await anyio.sleep(max(0.0, (deadline - self.now()) / self.speed))


class VirtualClock:
    """A clock that moves only when told to (``advance_to``)."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = start
        self._moved = anyio.Event()

    def now(self) -> float:
        return self._now

    def wall_time(self) -> float:
        return self._now

    def advance_to(self, when: float) -> None:
        if when <= self._now:
            return
        self._now = when
        moved, self._moved = self._moved, anyio.Event()
        moved.set()

    def advance(self, seconds: float) -> None:
        self.advance_to(self._now + seconds)

    async def sleep_until(self, deadline: float) -> None:
        while self._now < deadline:
            await self._moved.wait()
