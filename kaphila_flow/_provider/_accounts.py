"""Simulated Kaphila accounts: API keys, credits, whitelisted caller ids, the hourly limit."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .._exceptions import InsufficientCredits, RateLimited
from .._ratelimit import COUNTED_PATHS, WINDOW

__all__ = ["Account", "AccountState"]


@dataclass(frozen=True, slots=True)
class Account:
    """What a simulated API key may do."""

    credits: int = 100
    caller_ids: tuple[str, ...] = ()
    rate_limit: int = 100

    def __post_init__(self) -> None:
        if self.credits < 0 or self.rate_limit < 1:
            raise ValueError("credits must be >= 0 and rate_limit >= 1")


@dataclass(slots=True)
class AccountState:
    account: Account
    credits: int = 0
    calls: int = 0
    _sent: deque[float] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.credits = self.account.credits

    def count(self, path: str, now: float) -> None:
        """Count a request against the hourly window; 429 over the limit."""
        if path not in COUNTED_PATHS:
            return
        while self._sent and self._sent[0] <= now - WINDOW:
            self._sent.popleft()
        if len(self._sent) >= self.account.rate_limit:
            retry_after = max(1.0, self._sent[0] + WINDOW - now)
            raise RateLimited("Rate limit exceeded", retry_after=retry_after)
        self._sent.append(now)

    def require_credits(self) -> None:
        if self.credits <= 0:
            raise InsufficientCredits("Insufficient credits")

    @property
    def used_this_hour(self) -> int:
        return len(self._sent)
