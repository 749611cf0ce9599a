"""A provider's host task and a runtime, opened and closed together, in virtual time.

What ``FakeKaphila`` and ``InProcessKaphila`` share: switch the loop's clock to
jumping (where it can), start the host's scheduler, enter the runtime; on the way out,
let the runtime finish its calls, then stop the host.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager, nullcontext
from typing import Any

import anyio
import anyio.abc

from .._runtime import Runtime
from ._virtual_time import virtual_time

__all__ = ["hosted"]


@asynccontextmanager
async def hosted(
    run_host: Callable[..., Coroutine[Any, Any, Any]], runtime: Runtime, *, virtual: bool = True
) -> AsyncIterator[bool]:
    """Yields whether virtual time is on."""
    with virtual_time() if virtual else nullcontext(False) as on:
        async with anyio.create_task_group() as tg:
            await tg.start(run_host)
            try:
                async with runtime:
                    yield on
            finally:
                tg.cancel_scope.cancel()
