"""``Deadlines``: one timer wakes every call whose deadline has come.

A parked call costs no task or cancel scope of its own for its deadline: its wait is
pushed on a heap with the time, and the single timer (``run``) wakes it when that time
comes on the event loop's clock (``anyio.current_time``), virtual time included. A wait
that ends first is dropped when it reaches the top: the heap keeps nothing else per
deadline.

The timer is armed for the earliest deadline still wanted: a new earlier one moves it,
and one withdrawn (its wait ended first, as most do) moves it later, neither costing a
task step; so it fires only when a deadline truly comes, and a loop whose clock jumps
never jumps to a deadline no one waits for. On asyncio it is a loop timer callback (a
move costs one timer handle, a firing one callback); on trio, which has no timer
callbacks, a task sleeping in trio's own cancel scope whose deadline the moves set
(anyio's wrapper would add its bookkeeping to each move), woken by that deadline
through its abort function rather than by a ``Cancelled`` raised and caught.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import anyio
import sniffio

from ._session import EventWatch
from ._timers import TimerHeap
from ._wake import LoopTimer, ScopeSleep

__all__ = ["Deadlines"]


class Deadlines:
    def __init__(self) -> None:
        self._timers: TimerHeap[EventWatch[Any]] = TimerHeap(alive=EventWatch.pending)
        self._sleeping_until = math.inf
        #: asyncio: the timer callback that wakes the due waits (armed while ``run`` runs).
        self._timer = LoopTimer(self._fire)
        self._task: anyio.CancelScope | None = None
        self._stopped = False
        #: trio: where the timer task sleeps (its scope's deadline is moved).
        self._sleeper = ScopeSleep()

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
        sleep = self._sleeper.scope
        if sleep is not None:  # trio's timer task sleeps: move its scope's deadline
            sleep.deadline = at
        elif self._timer.bound:  # asyncio's timer callback: arm it anew
            self._arm(at)

    def _ring(self, now: float) -> float:
        """Wake every wait due by ``now``; returns the next deadline (or infinity)."""
        timers = self._timers
        while (wait := timers.pop_due(now)) is not None:
            wait.wake()
        following = timers.next_at()
        self._sleeping_until = at = math.inf if following is None else following
        return at

    async def run(self) -> None:
        """The timer: runs until ``stop()`` or cancellation."""
        with anyio.CancelScope() as self._task:
            if self._stopped:
                return
            try:
                if sniffio.current_async_library() == "trio":
                    await self._run_in_task()
                else:
                    await self._run_on_timer()
            finally:
                self._timer.unbind()

    # -- asyncio: a loop timer callback ------------------------------------------------

    async def _run_on_timer(self) -> None:
        timer = self._timer
        timer.bind()
        self._fire()
        await timer.failure()  # until stop(), cancellation or a failure

    def _arm(self, at: float) -> None:
        if at == math.inf:
            self._timer.cancel()
        else:
            self._timer.at(at)

    def _fire(self) -> None:
        # A timer may fire a clock resolution early: then nothing is due, and it is
        # armed again for the same deadline.
        self._arm(self._ring(asyncio.get_running_loop().time()))

    # -- trio: a task sleeping in trio's own cancel scope -------------------------------

    async def _run_in_task(self) -> None:
        import trio

        sleeper = self._sleeper
        sleeper.bind()
        clock = trio.lowlevel.current_clock().current_time
        try:
            while True:
                due = self._ring(clock())
                with trio.CancelScope(deadline=due) as sleep:
                    while True:
                        await sleeper.sleep(sleep)  # until the scope's deadline
                        if sleeper.reached:
                            break
        finally:
            sleeper.unbind()
