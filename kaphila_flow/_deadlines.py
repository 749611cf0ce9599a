"""``Deadlines``: one task wakes every call whose deadline has come.

A parked call costs no task or cancel scope of its own for its deadline: its wait is
pushed on a heap with the time, and the single timer task (``run``) wakes it when that
time comes on the event loop's clock (``anyio.current_time``), virtual time included.
A wait that ends first is dropped when it reaches the top: the heap keeps nothing else
per deadline.

The timer task sleeps in a cancel scope whose deadline is the earliest deadline still
wanted: a new earlier one moves that deadline, and one withdrawn (its wait ended first,
as most do) moves it later, neither costing a task step; so the task runs only when a
deadline truly comes, and a loop whose clock jumps never jumps to a deadline no one
waits for.
"""

from __future__ import annotations

import math
from typing import Any

import anyio

from ._session import EventWatch
from ._timers import TimerHeap
from ._wake import Parking

__all__ = ["Deadlines"]


class Deadlines:
    def __init__(self) -> None:
        self._timers: TimerHeap[EventWatch[Any]] = TimerHeap(alive=EventWatch.pending)
        self._sleeping_until = math.inf
        self._sleep: anyio.CancelScope | None = None
        self._task: anyio.CancelScope | None = None
        self._stopped = False

    def __len__(self) -> int:
        return len(self._timers)

    @property
    def next_at(self) -> float | None:
        return self._timers.next_at()

    def schedule(self, wait: EventWatch[Any], at: float) -> int:
        """Wake ``wait`` (``wait.wake()``) once the loop's clock reaches ``at``, unless
        it is over by then. Returns a ticket for ``withdraw``."""
        ticket = self._timers.push(at, wait)
        if at < self._sleeping_until:
            self._sleep_until(at)
        return ticket

    def withdraw(self, ticket: int) -> None:
        """The wait ``ticket`` was for is over (its ``pending()`` says so already):
        its deadline wakes no one."""
        if self._timers.withdraw(ticket):
            following = self._timers.next_at()
            self._sleep_until(math.inf if following is None else following)

    def stop(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()

    def _sleep_until(self, at: float) -> None:
        self._sleeping_until = at
        if self._sleep is not None:
            self._sleep.deadline = at

    async def run(self) -> None:
        """The timer task: runs until ``stop()`` or cancellation."""
        with anyio.CancelScope() as self._task:
            if self._stopped:
                return
            timers = self._timers
            parking = Parking()
            while True:
                now = anyio.current_time()
                while (wait := timers.pop_due(now)) is not None:
                    wait.wake()
                following = timers.next_at()
                self._sleeping_until = math.inf if following is None else following
                with anyio.CancelScope(deadline=self._sleeping_until) as self._sleep:
                    await parking.park()  # until the deadline (no timer at infinity)
                self._sleep = None
