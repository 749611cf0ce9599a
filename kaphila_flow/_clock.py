"""Deprecated: the runtime's own clocks, before time became the event loop's.

Since 0.2 the runtime reads and waits on time only through anyio, and tests get virtual
time from the loop itself (``kaphila_flow.testing.VIRTUAL_TIME_BACKENDS``, the
``kaphila`` fixture). ``Runtime(clock=...)`` is ignored with a ``DeprecationWarning``;
these classes still work as before for code of your own, and warn when made.
"""

from __future__ import annotations

import math
import time
import warnings
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


def _deprecated(name: str) -> None:
    warnings.warn(
        f"kaphila_flow.{name} is deprecated: time is the event loop's (anyio); tests get "
        "virtual time from kaphila_flow.testing.VIRTUAL_TIME_BACKENDS",
        DeprecationWarning,
        stacklevel=3,
    )


class SystemClock:
    """Deprecated. Real time: the loop's clock for deadlines, the system's for timestamps."""

    def __init__(self) -> None:
        _deprecated("SystemClock")

    def now(self) -> float:
        return anyio.current_time()

    def wall_time(self) -> float:
        return time.time()

    async def sleep_until(self, deadline: float) -> None:
        if deadline == math.inf:
            await anyio.sleep_forever()
        await anyio.sleep_until(deadline)


class ScaledClock:
    """Deprecated. Real time sped up ``speed`` times."""

    def __init__(self, speed: float) -> None:
        _deprecated("ScaledClock")
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
    """Deprecated. A clock that moves only when told to (``advance_to``)."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        _deprecated("VirtualClock")
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
