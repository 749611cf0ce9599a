"""Parking a call's task until an event for it comes, at the least cost each loop allows.

A parked call is most of what a busy runtime holds in memory, so its wait is the
cheapest one each backend has, with no event object of its own: a bare future on
asyncio, and on trio the task itself (``wait_task_rescheduled``). ``Parking.park``
returns what to await; ``Parking.notify`` resumes the waiter once, and does nothing if
no wait is pending (woken before, or cancelled). Cancellation reaches a parked task as
it reaches any other await, so cancel scopes keep working.

``Wait`` is the same wait with no coroutine frame at all: an awaitable that is its own
iterator, checking (``poll``) each time it runs and parking in between, so a call
parked in it keeps one small object where a coroutine would keep a frame (and, on
trio, the two frames of ``wait_task_rescheduled``).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, Final, Generic, NoReturn, TypeVar

import sniffio

if TYPE_CHECKING:
    import trio

__all__ = ["PARK", "LoopTimer", "Park", "Parking", "ScopeSleep", "Wait"]

T = TypeVar("T")


class Park:
    """The type of ``PARK``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "PARK"


#: What ``Wait.poll`` returns to park until the next ``notify``.
PARK: Final = Park()


@functools.cache
def _trio_trap() -> tuple[Callable[[], Any], Callable[[Any], Any]]:
    """trio's current task, and what makes the message that parks it (on first use)."""
    import trio

    def trap(abort: Any) -> Any:
        # The message trio's own ``wait_task_rescheduled`` yields, taken from it through
        # trio's public API: that coroutine is closed at once, where awaiting it would
        # keep it and the one under it alive all the while the task is parked.
        waiting = trio.lowlevel.wait_task_rescheduled(abort)  # noqa: ASYNC105
        message = waiting.send(None)
        waiting.close()
        return message

    return trio.lowlevel.current_task, trap


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

    def _trap(self, abort: Any) -> Any:
        """What a ``Wait`` yields to its event loop to park the current task here.

        asyncio: a new future, as ``await future`` yields it. trio: the message
        ``wait_task_rescheduled`` yields (the task is resumed with an ``outcome``,
        which the ``Wait`` unwraps), with ``abort`` called if trio cancels the task.
        """
        if sniffio.current_async_library() == "trio":
            current_task, trap = _trio_trap()
            self._wake = current_task()
            return trap(abort)
        self._wake = future = asyncio.get_running_loop().create_future()
        return next(iter(future.__await__()))  # the future, flagged as awaited

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


class Wait(Generic[T]):
    """Awaitable once: ``poll()`` until it returns a result, parked in between.

    Subclasses give ``poll`` (a result, or ``PARK`` to park until ``parking`` is
    notified) and ``finish`` (called once, however the wait ends: a result, an error,
    a cancellation). What the loop throws in (asyncio's cancellation) or resumes the
    task with (trio's outcome) is raised where the wait is awaited, as at any await.
    """

    __slots__ = ("_parking",)

    def __init__(self, parking: Parking) -> None:
        self._parking = parking

    def poll(self) -> T | Park:
        raise NotImplementedError

    def finish(self) -> None:
        """The wait is over (``parking`` holds no waker any more)."""
        self._parking._wake = None

    def __await__(self) -> Generator[Any, Any, T]:
        return self  # type: ignore[return-value]

    def send(self, resumed: Any = None) -> Any:
        try:
            if resumed is not None:
                resumed.unwrap()  # trio resumes a task with an outcome: raise its error
            result = self.poll()
        except BaseException:
            self.finish()
            raise
        if isinstance(result, Park):
            try:
                return self._parking._trap(self)
            except BaseException:
                self.finish()
                raise
        self.finish()
        raise StopIteration(result)

    __next__ = send

    def throw(self, kind: Any, value: Any = None, traceback: Any = None) -> Any:
        """asyncio throws its cancellation in here; it goes on to the awaiting frame."""
        self.finish()
        if value is None:
            value = kind() if isinstance(kind, type) else kind
        raise value.with_traceback(traceback) if traceback is not None else value

    def close(self) -> None:
        self.finish()

    def __call__(self, _raise_cancel: Any) -> Any:
        """trio cancels the parked task: it is no longer there to wake."""
        import trio

        self._parking._wake = None
        return trio.lowlevel.Abort.SUCCEEDED


class ScopeSleep:
    """trio: a timer task sleeping in a cancel scope of its own, woken by the scope's
    deadline or by ``wake()``, with no ``Cancelled`` raised, unwound and caught when the
    deadline comes (``reached`` tells which woke it). Any other cancellation goes through.

    The task calls ``bind()`` once, then for each sleep enters a scope and awaits
    ``sleep(scope)`` at once; while it sleeps, ``scope`` is that scope (whose deadline
    can be moved), else ``None``.
    """

    __slots__ = ("_resume", "_wait", "reached", "scope")

    def __init__(self) -> None:
        self.scope: trio.CancelScope | None = None
        self.reached = False
        self._resume: Callable[[], None] | None = None
        self._wait: Callable[[Any], Awaitable[Any]] | None = None

    def bind(self) -> None:
        """The current trio task is the one that sleeps here."""
        import trio

        self._resume = functools.partial(trio.lowlevel.reschedule, trio.lowlevel.current_task())
        self._wait = trio.lowlevel.wait_task_rescheduled

    def unbind(self) -> None:
        self._resume = self._wait = None
        self.scope = None

    def sleep(self, scope: trio.CancelScope) -> Awaitable[Any]:
        """What the bound task awaits (at once) to sleep in ``scope``, which it entered."""
        assert self._wait is not None
        self.scope = scope
        self.reached = False
        return self._wait(self._abort)

    def wake(self) -> None:
        """Resume the sleeping task now (``reached`` stays false); nothing if it runs."""
        if self.scope is not None:
            self.scope = None
            assert self._resume is not None
            self._resume()

    def _abort(self, _raise_cancel: Any) -> Any:
        import trio

        scope, self.scope = self.scope, None
        if scope is not None and scope.cancel_called:
            # Only the deadline cancels this scope; an outer cancellation that came at
            # the same moment is still there at the next sleep, and raised there.
            self.reached = True
            assert self._resume is not None
            self._resume()
            return trio.lowlevel.Abort.FAILED  # resumed already, just above
        return trio.lowlevel.Abort.SUCCEEDED


class LoopTimer:
    """asyncio: a timer task's work as one loop timer callback, with no task step per
    firing. Its owner task calls ``bind()``, arms it (``at``, ``soon``, ``cancel``) and
    awaits ``failure()``, which raises what a firing raised, in the owner, where it
    belongs; ``unbind()`` on the way out. Each firing runs ``callback(*args)`` in the
    owner task's context, marked as asyncio's: a loop callback has no task for sniffio,
    hence anyio, to tell the backend by.
    """

    __slots__ = (
        "_callback",
        "_context",
        "_failure",
        "_handle",
        "_loop",
        "_parking",
        "_soon",
        "_sooner",
    )

    def __init__(self, callback: Callable[..., None]) -> None:
        self._callback = callback
        self._loop: asyncio.AbstractEventLoop | None = None
        self._context: contextvars.Context | None = None
        self._handle: asyncio.Handle | None = None
        self._soon: asyncio.Handle | None = None
        self._sooner: asyncio.TimerHandle | None = None
        self._failure: BaseException | None = None
        self._parking = Parking()

    @property
    def bound(self) -> bool:
        """Whether an owner task runs this timer (it can be armed)."""
        return self._loop is not None

    def bind(self) -> None:
        """The current asyncio task owns this timer from now on."""
        self._loop = asyncio.get_running_loop()
        self._context = contextvars.copy_context()
        self._context.run(sniffio.current_async_library_cvar.set, "asyncio")

    def unbind(self) -> None:
        self.cancel()
        self.cancel_sooner()
        soon, self._soon = self._soon, None
        if soon is not None:
            soon.cancel()
        self._loop = self._context = None

    def at(self, when: float, *args: Any) -> None:
        """Fire once the loop's clock reaches ``when`` (instead of what was armed)."""
        assert self._loop is not None
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._loop.call_at(when, self.fire, *args, context=self._context)

    def soon(self, *args: Any) -> None:
        """Fire in the loop's next round as well (once, however often asked before it
        does), leaving what ``at`` set armed: an owner that re-arms after each firing
        keeps a time that is still due without a new timer handle."""
        assert self._loop is not None
        if self._soon is None:
            self._soon = self._loop.call_soon(self._fire_soon, *args, context=self._context)

    def sooner(self, when: float, *args: Any) -> None:
        """Fire once the loop's clock reaches ``when`` as well (instead of what was set
        ``sooner`` before), leaving what ``at`` set armed for after it: an owner that
        re-arms after each firing keeps a time still due without a new timer handle."""
        assert self._loop is not None
        if self._sooner is not None:
            self._sooner.cancel()
        self._sooner = self._loop.call_at(when, self._fire_sooner, *args, context=self._context)

    def cancel(self) -> None:
        """Unset what ``at`` set (a ``soon`` or ``sooner`` firing still comes)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.cancel()

    def cancel_sooner(self) -> None:
        """Unset what ``sooner`` set."""
        handle, self._sooner = self._sooner, None
        if handle is not None:
            handle.cancel()

    def fire(self, *args: Any) -> None:
        """Run the callback now (the loop does, when the timer is due); what it raises
        goes to the owner's ``failure()``."""
        self._handle = None
        self._run(args)

    def _fire_soon(self, *args: Any) -> None:
        self._soon = None
        self._run(args)

    def _fire_sooner(self, *args: Any) -> None:
        self._sooner = None
        self._run(args)

    def _run(self, args: tuple[Any, ...]) -> None:
        try:
            self._callback(*args)
        except BaseException as error:
            self._failure = error
            self._parking.notify()

    async def failure(self) -> NoReturn:
        """Wait until a firing raises, and raise that (cancellation ends it too)."""
        while self._failure is None:
            await self._parking.park()
        failure, self._failure = self._failure, None
        raise failure
