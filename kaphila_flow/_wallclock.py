"""Epoch seconds that follow the event loop's clock, virtual time included.

Results and transcripts carry wall-clock moments; deadlines use the loop's clock. A
``WallClock`` reads the system's wall clock once, at its first use, and from then on
adds the loop's elapsed time, so in a test on virtual time a call "lasts" its virtual
seconds and a campaign's calling hours move with the loop.

While a runtime runs, its ``WallClock`` reads the running loop's clock itself
(``running_clock``, bound with ``follow``): what ``anyio.current_time()`` reads, without
the backend lookup anyio makes on each reading.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import anyio
import sniffio

__all__ = ["WallClock", "running_clock"]


def running_clock() -> Callable[[], float]:
    """The running event loop's clock: what ``anyio.current_time()`` reads (virtual
    time included), as one call to make while that loop runs."""
    if sniffio.current_async_library() == "trio":
        import trio

        return trio.lowlevel.current_clock().current_time
    return asyncio.get_running_loop().time


class WallClock:
    """``wall_clock()``: seconds since the epoch, following ``anyio.current_time()``."""

    __slots__ = ("_loop_start", "_reader", "origin")

    def __init__(self, origin: float | None = None) -> None:
        #: The epoch moment at the first reading (``None``: the system's, then).
        self.origin = origin
        self._loop_start: float | None = None
        #: The running loop's clock while bound (``follow``), else ``None``: anyio's.
        self._reader: Callable[[], float] | None = None

    def follow(self, reader: Callable[[], float] | None) -> None:
        """Read ``reader`` (``running_clock()``, while its loop runs) rather than
        ``anyio.current_time()``; ``None`` goes back to anyio's."""
        self._reader = reader

    def __call__(self) -> float:
        reader = self._reader
        if reader is not None:
            now = reader()
        else:
            try:
                now = anyio.current_time()
            except RuntimeError:  # outside any event loop (a sync caller's dead letter)
                return time.time() if self.origin is None else self.origin

        if self._loop_start is None:
            self._loop_start = now
            if self.origin is None:
                self.origin = time.time()
        assert self.origin is not None
        return self.origin + (now - self._loop_start)
