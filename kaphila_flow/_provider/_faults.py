"""Fault switches: what a bad day at the provider looks like, on demand.

Webhooks can be delayed (all of them at random, or gather outcomes by a fixed time: a
late outcome, everything after it on the call waiting behind it), sent twice, swapped
with the next one, or lost; API requests can be refused before any work (429 or 500)
or carried out with their answer lost (the client sees a hang, then its read timeout).
A seeded random generator makes a run repeatable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .._exceptions import RateLimited, ServerError
from .._ratelimit import COUNTED_PATHS

__all__ = ["Faults"]


@dataclass(slots=True)
class Faults:
    """Fault switches: lost, late, repeated or reordered webhooks, refused or lost requests."""

    seed: int = 0
    webhook_delay: float = 0.0  # up to this many real seconds before each webhook
    outcome_delay: float = 0.0  # gather outcomes leave this much later (the call's order kept)
    duplicate: float = 0.0  # chance a webhook is delivered twice
    drop: float = 0.0  # chance a webhook is never delivered
    reorder: float = 0.0  # chance a webhook changes places with its call's next one
    api_error: float = 0.0  # chance a counted request is refused before any work
    api_error_status: int = 500  # 500 or 429
    lost_answer: float = 0.0  # chance a counted request is done but never answered
    paths: frozenset[str] = COUNTED_PATHS
    rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("duplicate", "drop", "reorder", "api_error", "lost_answer"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a chance between 0 and 1")
        if self.webhook_delay < 0 or self.outcome_delay < 0:
            raise ValueError("webhook_delay and outcome_delay must be seconds, not negative")
        if self.api_error_status not in (429, 500):
            raise ValueError("api_error_status must be 429 or 500")
        self.rng = random.Random(self.seed)

    @property
    def _webhooks_untouched(self) -> bool:
        """Whether every webhook goes out once, in order, on time (no webhook fault on)."""
        return not (
            self.drop or self.reorder or self.duplicate or self.webhook_delay or self.outcome_delay
        )

    def chance(self, probability: float) -> bool:
        return probability > 0 and self.rng.random() < probability

    def refuse(self, path: str) -> None:
        """Raise the provider's refusal for a request chosen to fail before any work."""
        if self.api_error and path in self.paths and self.chance(self.api_error):
            if self.api_error_status == 429:
                raise RateLimited("Rate limit exceeded", retry_after=0.0)
            raise ServerError("Internal server error (simulated fault)")

    def lose_answer(self, path: str) -> bool:
        return bool(self.lost_answer) and path in self.paths and self.chance(self.lost_answer)

    def delay(self) -> float:
        return self.rng.uniform(0, self.webhook_delay) if self.webhook_delay > 0 else 0.0
