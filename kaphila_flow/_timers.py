"""``TimerHeap``: due times with tickets, the earliest first; a withdrawn ticket is
dropped lazily, when it reaches the top. The runtime's deadlines and the provider
host's alarms both keep their timers here.

By default the heap remembers which tickets are still wanted (a set). Given ``alive``,
it asks each item instead (whether it still wants that ticket), and keeps nothing per
timer but its heap entry: the runtime's deadlines are the waits of parked calls, which
know when they are over. Once withdrawn entries are an eighth of the heap, it is
rebuilt without them (each rebuild follows as many withdrawals as an eighth of what it
keeps, so its cost spreads over them), and timers withdrawn long before they are due
(most are) do not pile up: an entry keeps its item alive (a call's finished wait)
until it goes.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["TimerHeap"]

T = TypeVar("T")

#: Withdrawn entries the heap keeps before it may rebuild itself without them.
_COMPACT_AFTER = 64
#: The heap is rebuilt once withdrawn entries are more than 1/_COMPACT_SHARE of it.
_COMPACT_SHARE = 8


class TimerHeap(Generic[T]):
    __slots__ = ("_alive", "_heap", "_seq", "_wanted", "_withdrawn")

    def __init__(self, alive: Callable[[T, int], bool] | None = None) -> None:
        self._heap: list[tuple[float, int, T]] = []
        #: Whether an item still wants its time (``None``: the tickets in ``_wanted``).
        self._alive = alive
        #: Tickets still wanted; the heap drops the others when they reach the top.
        self._wanted: set[int] | None = set() if alive is None else None
        self._seq = 0
        #: Withdrawn entries still in the heap.
        self._withdrawn = 0

    def __len__(self) -> int:
        if self._wanted is not None:
            return len(self._wanted)
        alive = self._alive
        assert alive is not None
        return sum(1 for _, ticket, item in self._heap if alive(item, ticket))

    def push(self, at: float, item: T) -> int:
        """Keep ``item`` until ``at``; returns its ticket for ``withdraw``."""
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, item))
        if self._wanted is not None:
            self._wanted.add(self._seq)
        return self._seq

    def withdraw(self, ticket: int) -> bool:
        """``ticket`` is no longer wanted; whether it was the earliest (the next time
        may have moved later). With ``alive``, its item says so already, and a ticket
        is withdrawn only while in the heap (not once ``pop_due`` gave its item)."""
        wanted, heap = self._wanted, self._heap
        if wanted is not None:
            if ticket not in wanted:
                return False  # spent (popped) or withdrawn before
            wanted.discard(ticket)
        earliest = bool(heap) and heap[0][1] == ticket
        self._withdrawn += 1
        if self._withdrawn > _COMPACT_AFTER and self._withdrawn * _COMPACT_SHARE > len(heap):
            heap[:] = [entry for entry in heap if self._live(entry)]
            heapq.heapify(heap)
            self._withdrawn = 0
        return earliest

    def _live(self, entry: tuple[float, int, T]) -> bool:
        if self._wanted is not None:
            return entry[1] in self._wanted
        assert self._alive is not None
        return self._alive(entry[2], entry[1])

    def next_at(self) -> float | None:
        """The earliest time still wanted, if any."""
        heap, wanted = self._heap, self._wanted
        if wanted is not None:  # (``_live``, inline: asked on every look)
            while heap and heap[0][1] not in wanted:
                heapq.heappop(heap)
                self._withdrawn = max(0, self._withdrawn - 1)
        else:
            alive = self._alive
            assert alive is not None
            while heap and not alive(heap[0][2], heap[0][1]):
                heapq.heappop(heap)
                self._withdrawn = max(0, self._withdrawn - 1)
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> T | None:
        """The earliest item due by ``now`` (its ticket spent), or ``None``."""
        at = self.next_at()
        if at is None or at > now:
            return None
        _, ticket, item = heapq.heappop(self._heap)
        if self._wanted is not None:
            self._wanted.discard(ticket)
        return item
