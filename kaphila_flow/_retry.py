"""Which failed requests are retried, and when. The table lives in one place: here.

| failure                          | retried for                                   |
|----------------------------------|-----------------------------------------------|
| could not connect (nothing sent) | every endpoint                                |
| 429 rate limited (no work done)  | every endpoint, after ``Retry-After`` or a    |
|                                  | full-jitter backoff                           |
| 5xx, read timeout, broken link   | reads (GET) and ``/hangup`` / recording stop  |
|                                  | only: never ``/makecall``, ``/batchcall``,    |
|                                  | ``/voice``, ``/play``, ``/gather``,           |
|                                  | ``/forwardcall`` (a repeat could ring someone |
|                                  | twice or speak twice)                         |
| any other 4xx                    | never                                         |

The client retries nothing more. What a failed ``/makecall`` means for the call (not
placed, or a lost answer to reconcile) is read in ``_reconcile.py``: Kaphila's own
error envelope, whatever its status, says the request failed (``ApiError.enveloped``);
a 5xx without it (a proxy's page), a timeout or a broken connection is a lost answer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ._exceptions import (
    ApiError,
    ConnectError,
    KaphilaError,
    NetworkError,
    RateLimited,
    ServerError,
    Timeout,
)

__all__ = ["NO_RETRIES", "RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many tries a request gets and how long to wait between them."""

    attempts: int = 4
    backoff: float = 0.5  # first backoff ceiling, seconds; doubles each try
    max_backoff: float = 30.0
    max_retry_after: float = 120.0  # a longer Retry-After is not waited for
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")

    def retryable(self, error: KaphilaError, *, repeatable: bool) -> bool:
        """Whether ``error`` may be retried for a request that is (not) ``repeatable``."""
        if isinstance(error, ConnectError | RateLimited):
            return True
        if isinstance(error, ServerError | Timeout | NetworkError):
            return repeatable
        if isinstance(error, ApiError) and error.status_code >= 500:
            return repeatable
        return False

    def delay(self, attempt: int, error: KaphilaError) -> float | None:
        """Seconds to wait before try ``attempt + 1``; ``None`` to give up."""
        if attempt >= self.attempts:
            return None
        if isinstance(error, RateLimited) and error.retry_after is not None:
            if error.retry_after > self.max_retry_after:
                return None
            return error.retry_after
        ceiling = min(self.max_backoff, self.backoff * (2 ** (attempt - 1)))
        return self.rng.uniform(0, ceiling)  # full jitter


#: One try, no retries.
NO_RETRIES = RetryPolicy(attempts=1)
