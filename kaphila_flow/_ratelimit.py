"""A client-side limiter so normal operation never meets Kaphila's 429.

Kaphila counts ``/makecall``, ``/batchcall``, ``/voice``, ``/play``, ``/gather`` and
``/hangup`` against one window of one hour per API key (100 by default; ``rateLimit``
in ``/api/me``). Clients sharing a key share a limiter.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable

import anyio

__all__ = ["COUNTED_PATHS", "HourlyLimiter", "limiter_for_key"]

COUNTED_PATHS = frozenset({"/makecall", "/batchcall", "/voice", "/play", "/gather", "/hangup"})
WINDOW = 3600.0


class HourlyLimiter:
    """At most ``limit`` requests in any ``window`` seconds (a sliding log)."""

    def __init__(
        self,
        limit: int = 100,
        *,
        window: float = WINDOW,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError("a rate limit must allow at least one request")
        self.limit = limit
        self.window = window
        self._clock = clock or anyio.current_time
        self._sleep = sleep
        self._sent: deque[float] = deque()

    def __repr__(self) -> str:
        return f"<HourlyLimiter {len(self._sent)}/{self.limit} per {self.window:g} s>"

    def set_limit(self, limit: int) -> None:
        if limit >= 1:
            self.limit = limit

    @property
    def remaining(self) -> int:
        self._forget(self._clock())
        return max(0, self.limit - len(self._sent))

    def wait_time(self) -> float:
        """Seconds until one more request may go (0 when it may go now)."""
        now = self._clock()
        self._forget(now)
        if len(self._sent) < self.limit:
            return 0.0
        return max(0.0, self._sent[len(self._sent) - self.limit] + self.window - now)

    async def acquire(self) -> float:
        """Wait for a slot, then take it; returns the seconds waited (0 without a wait).
        No lock: the check and the take happen without an await between them, and a
        limiter may serve several event loops."""
        waited = 0.0
        while (wait := self.wait_time()) > 0:
            if self._sleep is not None:
                await self._sleep(wait)  # type: ignore[misc]
            else:
                await anyio.sleep(wait)
            waited += wait
        self._sent.append(self._clock())
        return waited

    def _forget(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()
        # Keep the log no longer than the limit: older entries no longer matter.
        while len(self._sent) > self.limit:
            self._sent.popleft()


_LIMITERS: dict[str, HourlyLimiter] = {}


def limiter_for_key(api_key: str, limit: int = 100) -> HourlyLimiter:
    """The limiter shared by every client of this process using ``api_key``."""
    digest = hashlib.sha256(api_key.encode()).hexdigest()  # never keep the key itself
    limiter = _LIMITERS.get(digest)
    if limiter is None:
        limiter = _LIMITERS[digest] = HourlyLimiter(limit)
    return limiter
