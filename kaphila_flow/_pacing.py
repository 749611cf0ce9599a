"""Even pacing: one placement every ``3600 / per_hour`` seconds, never a burst.

The client's ``HourlyLimiter`` keeps an account under its hourly limit and lets a burst
through while the hour has room; a campaign's ``calls_per_hour`` is a rate, so its
placements are spread evenly instead. Time is the runtime's clock (anyio time).
"""

from __future__ import annotations

import anyio

__all__ = ["Pacer"]


class Pacer:
    """Hands out turns ``interval`` seconds apart; the first one at once."""

    __slots__ = ("_next", "interval")

    def __init__(self, per_hour: float) -> None:
        if isinstance(per_hour, bool) or not isinstance(per_hour, int | float) or not per_hour > 0:
            raise ValueError(f"calls_per_hour must be a positive number, not {per_hour!r}")
        self.interval = 3600.0 / per_hour
        self._next: float | None = None

    def __repr__(self) -> str:
        return f"<Pacer one every {self.interval:g} s>"

    async def wait_turn(self) -> None:
        """Wait for the next free turn. Turns are taken in call order, with no lock:
        the turn is claimed before the first await."""
        now = anyio.current_time()
        turn = now if self._next is None else max(now, self._next)
        self._next = turn + self.interval
        if turn > now:
            await anyio.sleep_until(turn)
