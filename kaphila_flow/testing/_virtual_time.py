"""Virtual time: the event loop's own clock jumps ahead whenever every task waits.

Library code reads and waits on time only through anyio, so a test that runs on a loop
whose clock can jump runs every deadline, every timeout and every ``anyio.sleep`` a flow
makes in no real time, in the order real time would have them.

* asyncio: ``VirtualTimeEventLoop``, a selector event loop whose ``time()`` carries an
  offset. When jumping is on and no callback is ready, it moves the offset to the next
  timer instead of sleeping in ``select``.
* trio: ``trio.testing.MockClock(rate=1.0)``, whose ``autojump_threshold`` is set to 0
  (and ``rate`` to 0) while jumping is on.

While jumping is on the clock moves only by jumps, so a test's outcome never depends
on how fast or busy the machine is.

Both keep real pace until ``virtual_time()`` switches jumping on, so tests that talk to
real sockets on the same loop are unaffected. ``VIRTUAL_TIME_BACKENDS`` is the value to
give anyio's ``anyio_backend`` fixture; the ``kaphila`` fixture switches jumping on for
its test.
"""

from __future__ import annotations

import asyncio
import math
import selectors
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sniffio

__all__ = [
    "VIRTUAL_TIME_BACKENDS",
    "VirtualTimeEventLoop",
    "virtual_time",
    "virtual_time_backend",
    "virtual_time_available",
]


class _JumpingSelector(selectors.BaseSelector):
    """A selector that, when its loop jumps, turns an idle wait into a clock jump."""

    def __init__(self, loop: VirtualTimeEventLoop) -> None:
        self._inner = selectors.DefaultSelector()
        self._loop = loop

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        loop = self._loop
        if not loop.jumping or timeout is None or timeout <= 0:
            # Nothing scheduled at all (None) waits for real I/O, e.g. another thread.
            return self._inner.select(timeout)
        ready = self._inner.select(0)
        if not ready:
            loop.jump(timeout)  # every task waits: the next timer is due now
        return ready

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._inner.get_map()

    def close(self) -> None:
        self._inner.close()


class VirtualTimeEventLoop(asyncio.SelectorEventLoop):
    """An asyncio loop whose clock can jump ahead (``jumping = True``).

    While it jumps, its clock stands still but for the jumps: what a test sees
    happen does not depend on how fast the machine runs it.
    """

    def __init__(self) -> None:
        self._jumping = False
        self._offset = 0.0
        self._frozen = 0.0
        super().__init__(_JumpingSelector(self))

    @property
    def jumping(self) -> bool:
        return self._jumping

    @jumping.setter
    def jumping(self, on: bool) -> None:
        if on == self._jumping:
            return
        now = self.time()
        self._jumping = on
        if on:
            self._frozen, self._offset = now, 0.0
        else:
            self._offset = now - time.monotonic()  # real pace again, from where it stood

    def time(self) -> float:
        if self._jumping:
            return self._frozen + self._offset
        return time.monotonic() + self._offset

    def jump(self, seconds: float) -> None:
        """Move this loop's clock ``seconds`` ahead (never back)."""
        if seconds > 0 and math.isfinite(seconds):
            self._offset += seconds


def _trio_clock() -> Any:
    import trio
    import trio.testing

    clock = trio.lowlevel.current_clock()
    return clock if isinstance(clock, trio.testing.MockClock) else None


def virtual_time_available() -> bool:
    """Whether the running loop's clock can jump (see ``VIRTUAL_TIME_BACKENDS``)."""
    if sniffio.current_async_library() == "trio":
        return _trio_clock() is not None
    return isinstance(asyncio.get_running_loop(), VirtualTimeEventLoop)


@contextmanager
def virtual_time() -> Iterator[bool]:
    """Inside this block the running loop's clock jumps ahead whenever every task waits.

    Yields whether virtual time is on: ``False`` on a loop that cannot jump (then time is
    real), which ``anyio_backend = VIRTUAL_TIME_BACKENDS`` avoids.
    """
    if sniffio.current_async_library() == "trio":
        clock = _trio_clock()
        if clock is None:
            yield False
            return
        before = clock.autojump_threshold, clock.rate
        clock.autojump_threshold, clock.rate = 0, 0.0  # only jumps move it
        try:
            yield True
        finally:
            clock.autojump_threshold, clock.rate = before
        return
    loop = asyncio.get_running_loop()
    if not isinstance(loop, VirtualTimeEventLoop):
        yield False
        return
    before_jumping = loop.jumping
    loop.jumping = True
    try:
        yield True
    finally:
        loop.jumping = before_jumping


def virtual_time_backend(name: str) -> tuple[str, dict[str, Any]]:
    """anyio's backend spec for ``name`` ("asyncio" or "trio") on a loop that can jump."""
    if name == "asyncio":
        return ("asyncio", {"loop_factory": VirtualTimeEventLoop})
    if name == "trio":
        import trio.testing

        return ("trio", {"clock": trio.testing.MockClock(rate=1.0)})
    raise ValueError(f"no virtual time for backend {name!r}: use 'asyncio' or 'trio'")


#: ``anyio_backend`` params for both backends on loops that can jump::
#:
#:     @pytest.fixture(params=VIRTUAL_TIME_BACKENDS, ids=["asyncio", "trio"])
#:     def anyio_backend(request): return request.param
VIRTUAL_TIME_BACKENDS = [virtual_time_backend("asyncio"), virtual_time_backend("trio")]
