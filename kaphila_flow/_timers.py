"""``TimerHeap``: due times with tickets, the earliest first; a withdrawn ticket is
dropped lazily, when it reaches the top. The runtime's deadlines and the provider
host's alarms both keep their timers here."""

from __future__ import annotations

import heapq
from typing import Generic, TypeVar

__all__ = ["TimerHeap"]

T = TypeVar("T")


class TimerHeap(Generic[T]):
    __slots__ = ("_heap", "_seq", "_wanted")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, T]] = []
        #: Tickets still wanted; the heap drops the others when they reach the top.
        self._wanted: set[int] = set()
        self._seq = 0

    def __len__(self) -> int:
        return len(self._wanted)

    def push(self, at: float, item: T) -> int:
        """Keep ``item`` until ``at``; returns its ticket for ``withdraw``."""
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, item))
        self._wanted.add(self._seq)
        return self._seq

    def withdraw(self, ticket: int) -> bool:
        """``ticket`` is no longer wanted; whether it was the earliest (the next time
        may have moved later)."""
        self._wanted.discard(ticket)
        return bool(self._heap) and self._heap[0][1] == ticket

    def next_at(self) -> float | None:
        """The earliest time still wanted, if any."""
        heap, wanted = self._heap, self._wanted
        while heap and heap[0][1] not in wanted:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> T | None:
        """The earliest item due by ``now`` (its ticket spent), or ``None``."""
        at = self.next_at()
        if at is None or at > now:
            return None
        _, ticket, item = heapq.heappop(self._heap)
        self._wanted.discard(ticket)
        return item
