"""Parking a call's task until an event for it comes, at the least cost each loop allows.

A parked call is most of what a busy runtime holds in memory, so its wait is the
cheapest one each backend has, with no event object of its own: a bare future on
asyncio, and on trio the task itself (``wait_task_rescheduled``). ``Parking.park``
returns what to await; ``Parking.notify`` resumes the waiter once, and does nothing if
no wait is pending (woken before, or cancelled). Cancellation reaches a parked task as
it reaches any other await, so cancel scopes keep working.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import sniffio

__all__ = ["Parking"]


class Parking:
    """One task at a time parks here until ``notify``."""

    __slots__ = ("_wake",)

    def __init__(self) -> None:
        #: A future (asyncio) or a task (trio) while a task is parked, else ``None``.
        self._wake: object | None = None

    @property
    def parked(self) -> bool:
        """Whether a task is parked here and nothing has woken it yet."""
        return self._wake is not None

    def park(self) -> Awaitable[Any]:
        """What the current task awaits to park here (await it at once)."""
        if sniffio.current_async_library() == "trio":
            import trio

            self._wake = trio.lowlevel.current_task()
            # Returned, not awaited here, to spare a frame per parked task.
            return trio.lowlevel.wait_task_rescheduled(self._abandon)  # noqa: ASYNC105
        self._wake = future = asyncio.get_running_loop().create_future()
        return future

    def _abandon(self, _raise_cancel: Any) -> Any:
        """Trio cancels the parked task: it is no longer here to wake."""
        import trio

        self._wake = None
        return trio.lowlevel.Abort.SUCCEEDED

    def notify(self) -> None:
        """Resume the parked task, if any."""
        waker, self._wake = self._wake, None
        if waker is None:
            return
        if isinstance(waker, asyncio.Future):
            if not waker.done():  # not cancelled meanwhile
                waker.set_result(None)
            return
        import trio

        trio.lowlevel.reschedule(waker)  # type: ignore[arg-type]
