"""Deliver a call's end to a flow as ``CallEnded`` at whatever it awaits.

The runtime cancels a flow's scope when its call ends. Cancellation would reach the
flow as the event loop's own exception (``asyncio.CancelledError``, ``trio.Cancelled``),
which flows should not have to catch. This trampoline drives the flow's coroutine and,
while the call is over, swaps that cancellation for ``CallEnded`` at the very await where
it lands, so ``except CallEnded`` and ``finally`` read like the phone call.

Cancellation stays level-triggered: every later await in the flow raises ``CallEnded``
too, until the flow returns. Any other cancellation passes through untouched.

The two backends deliver cancellation differently: asyncio throws it into the
outermost coroutine (here), trio resumes the task with an ``outcome.Error`` that the
innermost await unwraps; both are handled.
"""

from __future__ import annotations

import types
from collections.abc import Coroutine, Generator
from typing import Any, Protocol, TypeVar

import anyio
import outcome as _outcome  # trio's resumption values; installed with trio

T = TypeVar("T")

__all__ = ["drive"]


class Ending(Protocol):
    def end_for(self, cancelled: BaseException) -> BaseException | None:
        """What to raise instead of the loop's ``cancelled``, or ``None``: itself."""


@types.coroutine
def drive(coro: Coroutine[Any, Any, T], ending: Ending) -> Generator[Any, Any, T]:
    """Run ``coro``; where ``ending.end_for(exc)`` returns an exception, raise that one
    instead of the cancellation ``exc``. (An object with a method, not a bound method:
    a parked call keeps no bound method for it.)"""
    cancelled = anyio.get_cancelled_exc_class()
    to_send: Any = None
    to_throw: BaseException | None = None
    try:
        while True:
            try:
                if to_throw is not None:
                    exc, to_throw = to_throw, None
                    yielded = coro.throw(exc)
                else:
                    yielded = coro.send(to_send)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            try:
                # Handed on and not kept in a local while the task is parked: trio's
                # message is an object of its own, asyncio's future is the task's.
                to_send = yield (yielded, yielded := None)[0]
            except BaseException as exc:  # asyncio: cancellation is thrown in here
                to_send = None
                replacement = ending.end_for(exc) if isinstance(exc, cancelled) else None
                to_throw = replacement if replacement is not None else exc
            else:
                # trio: the task is resumed with an outcome that the flow unwraps
                if isinstance(to_send, _outcome.Error) and isinstance(to_send.error, cancelled):
                    replacement = ending.end_for(to_send.error)
                    if replacement is not None:
                        to_send = _outcome.Error(replacement)
    finally:
        coro.close()
