"""Parking a call's task until an event for it comes, at the least cost each loop allows.

A parked call is most of what a busy runtime holds in memory, so its wait is the
cheapest one each backend has, with no event object of its own: a bare future on
asyncio, and on trio the task itself (``wait_task_rescheduled``). ``park`` returns what
to await and the waker to keep; ``wake`` resumes the waiter once, and does nothing
if the wait is already over (woken before, or cancelled). Cancellation reaches a
parked task as it reaches any other await, so cancel scopes keep working.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import sniffio

__all__ = ["park", "wake"]


def _abort(_raise_cancel: Any) -> Any:
    import trio

    return trio.lowlevel.Abort.SUCCEEDED


def park(owner: object) -> tuple[object, Awaitable[Any]]:
    """A waker for ``wake`` and the awaitable that parks the current task until then."""
    if sniffio.current_async_library() == "trio":
        import trio

        task = trio.lowlevel.current_task()
        # Trio clears this when the task resumes (woken or cancelled): a later ``wake``
        # finds a task no longer parked by ``owner`` and leaves it alone.
        task.custom_sleep_data = owner
        # Awaited by the caller at once: returned, not awaited here, to spare a frame.
        return task, trio.lowlevel.wait_task_rescheduled(_abort)  # noqa: ASYNC105
    future = asyncio.get_running_loop().create_future()
    return future, future


def wake(waker: object, owner: object) -> None:
    """Resume the task ``park(owner)`` returned ``waker`` for, if it still waits."""
    if isinstance(waker, asyncio.Future):
        if not waker.done():
            waker.set_result(None)
        return
    import trio

    task: Any = waker
    if task.custom_sleep_data is owner:
        trio.lowlevel.reschedule(task)
