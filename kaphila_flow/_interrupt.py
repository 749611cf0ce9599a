"""Deliver a call's end to a flow as ``CallEnded`` at whatever it awaits.

The runtime cancels a flow's scope when its call ends. Cancellation would reach the
flow as the event loop's own exception (``asyncio.CancelledError``, ``trio.Cancelled``),
which flows should not have to catch. This trampoline drives the flow's coroutine and,
while the call is over, swaps that cancellation for ``CallEnded`` at the very await where
it lands, so ``except CallEnded`` and ``finally`` read like the phone call.

Cancellation stays level-triggered: every later await in the flow raises ``CallEnded``
too, until the flow returns. Any other cancellation passes through untouched.

The two backends deliver cancellation differently: asyncio throws it into the
outermost awaitable (``drive.throw``), trio resumes the task with an ``outcome.Error``
that the innermost await unwraps (``drive.send`` swaps the error inside it); both are
handled. ``drive`` is a small awaitable object, not a generator: a parked call keeps
its two references instead of a suspended frame.
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from typing import Any, Generic, Protocol, TypeVar

import anyio
import outcome as _outcome  # trio's resumption values; installed with trio

T = TypeVar("T")

__all__ = ["drive"]


class Ending(Protocol):
    def end_for(self, cancelled: BaseException) -> BaseException | None:
        """What to raise instead of the loop's ``cancelled``, or ``None``: itself."""


class drive(Generic[T]):  # awaited as the function it was: `await drive(coro, ending)`
    """Run ``coro``; where ``ending.end_for(exc)`` returns an exception, raise that one
    instead of the cancellation ``exc``. (An object with a method, not a bound method:
    a parked call keeps no bound method for it.)

    An awaitable that is its own iterator, with no frame of its own: what the flow
    yields goes to the loop untouched and is kept nowhere here, so a parked call keeps
    these two references and nothing more.
    """

    __slots__ = ("_coro", "_ending")

    def __init__(self, coro: Coroutine[Any, Any, T], ending: Ending) -> None:
        self._coro = coro
        self._ending = ending

    def __await__(self) -> Generator[Any, Any, T]:
        return self  # type: ignore[return-value]

    def send(self, resumed: Any) -> Any:
        """trio: the task is resumed with an outcome that the flow unwraps."""
        if isinstance(resumed, _outcome.Error) and isinstance(
            resumed.error, anyio.get_cancelled_exc_class()
        ):
            replacement = self._ending.end_for(resumed.error)
            if replacement is not None:
                resumed = _outcome.Error(replacement)
        return self._coro.send(resumed)  # its StopIteration is the flow's value

    def __next__(self) -> Any:
        return self._coro.send(None)

    def throw(self, kind: Any, value: Any = None, traceback: Any = None) -> Any:
        """asyncio: cancellation is thrown into the outermost awaitable, here."""
        if value is None:
            value = kind() if isinstance(kind, type) else kind
        if traceback is not None:
            value = value.with_traceback(traceback)
        if isinstance(value, anyio.get_cancelled_exc_class()):
            replacement = self._ending.end_for(value)
            if replacement is not None:
                value = replacement
        return self._coro.throw(value)

    def close(self) -> None:
        self._coro.close()
