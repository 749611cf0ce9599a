"""The menu every end-to-end side runs, and the callees that answer it.

Call ``n`` goes to ``number(n)``; its callee answers at once and presses ``keys(n, digits)``
in the gather: its own key sequence (with 4 digits, distinct for up to 10,000 calls), so
a key lost or handed to another call shows up as a wrong answer. The flow: say
``WELCOME``, gather ``digits`` keys, say ``THANKS``, hang up: five requests per call
(``/makecall``, ``/voice``, ``/gather``, ``/voice``, ``/hangup``) on every side.
"""

from __future__ import annotations

from dataclasses import dataclass

KEY = "ak_bench"
WELCOME = "Welcome to our company."
MENU = "Please enter your code."
THANKS = "Thank you, goodbye."
#: What the provider allows a gather (ms): generous, so only a lost key times out.
GATHER_TIMEOUT_MS = 30_000
#: The runtime's defaults, which every side keeps: /makecall and requests in flight.
DIALS_IN_FLIGHT = 20
REQUESTS_IN_FLIGHT = 100
MAX_CALLS = 10_000


def number(n: int) -> str:
    return f"1608555{n:04d}"


def index_of(number_: str) -> int:
    return int(number_[-4:])


def keys(n: int, digits: int) -> str:
    """Call ``n``'s own keys: its index, the last ``digits`` of it."""
    return f"{n:04d}"[-digits:]


@dataclass(frozen=True, slots=True)
class Plan:
    """``calls`` calls, each gathering ``digits`` keys: all at once, or one every
    ``pace`` seconds (well below saturation: what one step costs, not the queue)."""

    calls: int
    digits: int = 1
    pace: float = 0.0

    def __post_init__(self) -> None:
        if not 1 <= self.calls <= MAX_CALLS:
            raise ValueError(f"calls must be 1 to {MAX_CALLS}")
        if not 1 <= self.digits <= 4:
            raise ValueError("digits must be 1 to 4")

    def simulator_config(self) -> str:
        """The simulator's TOML: instant speed, one callee per number with its keys."""
        lines = [
            'speed = "instant"',
            f"[accounts.{KEY}]",
            "credits = 100000000",
            "rate_limit = 100000000",
        ]
        for n in range(self.calls):
            lines += [
                f'[callees."{number(n)}"]',
                'answer = "human"',
                "answer_after = 0.0",
                f'keys = [{{ press = "{keys(n, self.digits)}", after = 0.0 }}]',
            ]
        return "\n".join(lines) + "\n"


@dataclass(slots=True)
class Tally:
    """What one side saw: calls that got their own keys, and every one that did not."""

    plan: Plan
    completed: int = 0
    failures: list[str] | None = None

    def check(self, n: int, got: str | None) -> None:
        want = keys(n, self.plan.digits)
        if got == want:
            self.completed += 1
        else:
            if self.failures is None:
                self.failures = []
            self.failures.append(f"call {n}: wanted keys {want!r}, got {got!r}")

    def failed(self, n: int, why: str) -> None:
        if self.failures is None:
            self.failures = []
        self.failures.append(f"call {n}: {why}")
