"""Wait until every other task is blocked: how the benchmarks let flows react.

anyio's ``wait_all_tasks_blocked`` sleeps 0.1 s on asyncio whenever a task is still
runnable, which would make each step of a fake call cost a tenth of a second. Trio's
own version is exact; on asyncio we yield until no task is runnable.
"""

from __future__ import annotations

import asyncio

import sniffio

__all__ = ["wait_all_tasks_blocked"]

#: After this many yields with a task still runnable (one that never blocks),
#: give the loop a millisecond per round instead of spinning.
_SPINS = 1000


def _blocked(task: asyncio.Task[object]) -> bool:
    waiter = getattr(task, "_fut_waiter", None)
    return waiter is not None and not waiter.done()


async def wait_all_tasks_blocked() -> None:
    if sniffio.current_async_library() == "trio":
        import trio.testing

        await trio.testing.wait_all_tasks_blocked()
        return
    this = asyncio.current_task()
    spins = 0
    while True:
        await asyncio.sleep(0 if spins < _SPINS else 0.001)
        spins += 1
        if all(task is this or task.done() or _blocked(task) for task in asyncio.all_tasks()):
            return
