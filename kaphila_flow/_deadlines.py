"""``Deadlines``: one task wakes every call whose deadline has come.

A parked call costs no task or cancel scope of its own for its deadline: its session is
pushed on a heap with the time, and the single timer task (``run``) wakes it when that
time comes on the event loop's clock (``anyio.current_time``), virtual time included.
"""

from __future__ import annotations

import heapq
import math

import anyio

from ._session import CallSession

__all__ = ["Deadlines"]


class Deadlines:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, CallSession]] = []
        self._seq = 0
        self._sleeping_until = math.inf
        self._sleep: anyio.CancelScope | None = None
        self._task: anyio.CancelScope | None = None
        self._stopped = False

    def __len__(self) -> int:
        return len(self._heap)

    @property
    def next_at(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def schedule(self, session: CallSession, at: float) -> None:
        """Wake ``session`` (``session.notify()``) once the loop's clock reaches ``at``."""
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, session))
        if at < self._sleeping_until and self._sleep is not None:
            self._sleep.cancel()

    def stop(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()

    async def run(self) -> None:
        """The timer task: runs until ``stop()`` or cancellation."""
        with anyio.CancelScope() as self._task:
            if self._stopped:
                return
            heap = self._heap
            while True:
                now = anyio.current_time()
                while heap and heap[0][0] <= now:
                    heapq.heappop(heap)[2].notify()
                self._sleeping_until = heap[0][0] if heap else math.inf
                with anyio.CancelScope() as scope:
                    self._sleep = scope
                    if heap:
                        await anyio.sleep_until(self._sleeping_until)
                    else:
                        await anyio.sleep_forever()
                self._sleep = None
