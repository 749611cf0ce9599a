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
import contextvars
import math
from collections.abc import Callable
from typing import Any

import anyio
import sniffio

from ._session import EventWatch
from ._timers import TimerHeap
from ._wake import Parking, ScopeSleep

__all__ = ["Deadlines"]


class Deadlines:
    def __init__(self) -> None:
        self._timers: TimerHeap[EventWatch[Any]] = TimerHeap(alive=EventWatch.pending)
        self._sleeping_until = math.inf
        #: asyncio: moves the armed timer to a new time while ``run`` runs.
        self._move: Callable[[float], None] | None = None
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
        elif self._move is not None:  # asyncio's timer callback: arm it anew
            self._move(at)

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
                self._move = None

    # -- asyncio: a loop timer callback ------------------------------------------------

    async def _run_on_timer(self) -> None:
        loop = asyncio.get_running_loop()
        # The context the callback runs in: the task's, known to be asyncio's (a loop
        # callback has no task for sniffio, hence anyio, to tell by).
        context = contextvars.copy_context()
        context.run(sniffio.current_async_library_cvar.set, "asyncio")
        timer: asyncio.TimerHandle | None = None
        parking = Parking()
        failure: BaseException | None = None

        def move(at: float) -> None:
            nonlocal timer
            if timer is not None:
                timer.cancel()
                timer = None
            if at != math.inf:
                timer = loop.call_at(at, fire, context=context)

        def fire() -> None:
            nonlocal timer, failure
            timer = None
            try:
                # A timer may fire a clock resolution early: then nothing is due, and
                # it is armed again for the same deadline.
                move(self._ring(loop.time()))
            except BaseException as error:  # raised by the run task, where it belongs
                failure = error
                parking.notify()

        self._move = move
        try:
            move(self._ring(loop.time()))
            while failure is None:
                await parking.park()  # until stop(), cancellation or a failure
            raise failure
        finally:
            self._move = None
            if timer is not None:
                timer.cancel()

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
