"""Epoch seconds that follow the event loop's clock, virtual time included.

Results and transcripts carry wall-clock moments; deadlines use the loop's clock. A
``WallClock`` reads the system's wall clock once, at its first use, and from then on
adds the loop's elapsed time, so in a test on virtual time a call "lasts" its virtual
seconds and a campaign's calling hours move with the loop.
"""

from __future__ import annotations

import time

import anyio

__all__ = ["WallClock"]


class WallClock:
    """``wall_clock()``: seconds since the epoch, following ``anyio.current_time()``."""

    __slots__ = ("_loop_start", "origin")

    def __init__(self, origin: float | None = None) -> None:
        #: The epoch moment at the first reading (``None``: the system's, then).
        self.origin = origin
        self._loop_start: float | None = None

    def __call__(self) -> float:
        try:
            now = anyio.current_time()
        except RuntimeError:  # outside any event loop (a dead letter from a sync caller)
            return time.time() if self.origin is None else self.origin

        if self._loop_start is None:
            self._loop_start = now
            if self.origin is None:
                self.origin = time.time()
        assert self.origin is not None
        return self.origin + (now - self._loop_start)
