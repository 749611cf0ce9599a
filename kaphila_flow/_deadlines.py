"""``Deadlines``: one task wakes every call whose deadline has come.

A parked call costs no task or cancel scope of its own for its deadline: its session is
pushed on a heap with the time, and the single timer task (``run``) wakes it when that
time comes on the event loop's clock (``anyio.current_time``), virtual time included.

The timer task sleeps in a cancel scope whose deadline is the earliest deadline still
wanted: a new earlier one moves that deadline, and one withdrawn (its wait ended first,
as most do) moves it later, neither costing a task step; so the task runs only when a
deadline truly comes, and a loop whose clock jumps never jumps to a deadline no one
waits for.
"""

from __future__ import annotations

import heapq
import math

import anyio

from ._session import CallSession
from ._wake import Parking

__all__ = ["Deadlines"]


class Deadlines:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, CallSession]] = []
        #: Tickets of the deadlines still wanted; the heap drops the others lazily.
        self._wanted: set[int] = set()
        self._seq = 0
        self._sleeping_until = math.inf
        self._sleep: anyio.CancelScope | None = None
        self._task: anyio.CancelScope | None = None
        self._stopped = False

    def __len__(self) -> int:
        return len(self._wanted)

    @property
    def next_at(self) -> float | None:
        self._drop_withdrawn()
        return self._heap[0][0] if self._heap else None

    def schedule(self, session: CallSession, at: float) -> int:
        """Wake ``session`` (``session.notify()``) once the loop's clock reaches ``at``.

        Returns a ticket for ``withdraw``."""
        self._seq += 1
        ticket = self._seq
        heapq.heappush(self._heap, (at, ticket, session))
        self._wanted.add(ticket)
        if at < self._sleeping_until:
            self._sleep_until(at)
        return ticket

    def withdraw(self, ticket: int) -> None:
        """The wait ``ticket`` was for is over: its deadline wakes no one."""
        self._wanted.discard(ticket)
        heap = self._heap
        if heap and heap[0][1] == ticket:
            self._drop_withdrawn()
            self._sleep_until(heap[0][0] if heap else math.inf)

    def stop(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()

    def _drop_withdrawn(self) -> None:
        heap, wanted = self._heap, self._wanted
        while heap and heap[0][1] not in wanted:
            heapq.heappop(heap)

    def _sleep_until(self, at: float) -> None:
        self._sleeping_until = at
        if self._sleep is not None:
            self._sleep.deadline = at

    async def run(self) -> None:
        """The timer task: runs until ``stop()`` or cancellation."""
        with anyio.CancelScope() as self._task:
            if self._stopped:
                return
            heap, wanted = self._heap, self._wanted
            parking = Parking()
            while True:
                now = anyio.current_time()
                self._drop_withdrawn()
                while heap and heap[0][0] <= now:
                    _, ticket, session = heapq.heappop(heap)
                    if ticket in wanted:
                        wanted.discard(ticket)
                        session.notify()
                    self._drop_withdrawn()
                self._sleeping_until = heap[0][0] if heap else math.inf
                with anyio.CancelScope(deadline=self._sleeping_until) as self._sleep:
                    await parking.park()  # until the deadline (no timer at infinity)
                self._sleep = None
