"""The runtime's state for one call: its mailbox, its end, its transcript.

Everything here is synchronous except ``next_event``; ``deliver`` never blocks, so a
webhook is acknowledged at once whatever the flow is doing.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from . import _events as ev
from ._exceptions import CallEnded
from ._result import MASK, TranscriptEntry

if TYPE_CHECKING:
    from ._clock import Clock

__all__ = ["CallSession", "Delivery"]

#: Events kept for a flow that has not asked for them yet, per call.
INBOX_LIMIT = 256
#: Delivered events remembered per call to drop duplicates.
SEEN_LIMIT = 512

_INFORMATIONAL = (
    ev.DtmfReceived,
    ev.GatherProgress,
    ev.GatherStarted,
    ev.TtsPlayed,
    ev.CallInitiated,
    ev.UnknownEvent,
)


class Delivery(enum.Enum):
    """What ``Runtime.dispatch`` did with an event."""

    DELIVERED = "delivered"
    DUPLICATE = "duplicate"
    UNKNOWN_CALL = "unknown-call"
    FINISHED_CALL = "finished-call"
    REJECTED = "rejected"


class CallSession:
    """One call from placement to result."""

    __slots__ = (
        "_seen",
        "_wake",
        "amd",
        "answered_at",
        "call_id",
        "caller_id",
        "clock",
        "end_event",
        "end_reason",
        "ended",
        "ended_by_flow",
        "flow_scope",
        "forwarded_to",
        "gather_progress",
        "inbox",
        "last_digits",
        "number",
        "observer",
        "on_deadline",
        "recordings",
        "sensitive",
        "shut_down",
        "started_at",
        "token",
        "transcript",
        "waiting_for",
    )

    def __init__(self, *, number: str, token: str, clock: Clock) -> None:
        self.number = number
        self.token = token
        self.clock = clock
        self.call_id: str | None = None
        self.caller_id: str | None = None  # the whitelisted number shown to the callee
        # Plain list and dict: small per call (a parked call should cost little).
        self.inbox: list[ev.Event] = []
        self._seen: dict[bytes, None] = {}
        self._wake: anyio.Event | None = None
        self.ended = False
        self.ended_by_flow = False
        self.end_event: ev.Event | None = None
        self.end_reason: str | None = None
        self.flow_scope: anyio.CancelScope | None = None
        #: What the flow awaits, for people (str() it): a phone in a test, an error.
        self.waiting_for: object | None = None
        self.amd: ev.Amd | None = None
        self.started_at = clock.wall_time()
        self.answered_at: float | None = None
        self.forwarded_to: str | None = None
        self.gather_progress = ""
        self.last_digits = ""
        self.sensitive = False
        self.shut_down = False  # ended by the runtime's shutdown: still to be hung up
        self.recordings: list[ev.Event] = []
        self.transcript: list[TranscriptEntry] = []
        self.on_deadline: Callable[[CallSession, float], None] | None = None
        self.observer: Callable[[CallSession, TranscriptEntry], None] | None = None

    def __repr__(self) -> str:
        return f"<CallSession {self.call_id or 'placing'} to {self.number}>"

    # -- inbound ---------------------------------------------------------------------

    def deliver(self, event: ev.Event) -> Delivery:
        key = event.dedupe_key
        if key in self._seen:
            return Delivery.DUPLICATE
        self._seen[key] = None
        if len(self._seen) > SEEN_LIMIT:
            del self._seen[next(iter(self._seen))]  # the oldest (dicts keep insertion order)
        self._observe(event)
        if isinstance(event, ev.CallEnded) or (
            isinstance(event, ev.CallTimeout) and self.answered_at is None
        ):
            self.mark_ended(
                event, reason=event.end_reason if isinstance(event, ev.CallEnded) else "no_answer"
            )
        self.inbox.append(event)
        if len(self.inbox) > INBOX_LIMIT:
            self._drop_oldest_informational()
        self.notify()
        return Delivery.DELIVERED

    def _observe(self, event: ev.Event) -> None:
        if isinstance(event, ev.GatherProgress):
            self.gather_progress = event.digits
        elif isinstance(event, (ev.RecordingStarted, ev.RecordingStopped, ev.RecordingCompleted)):
            self.recordings.append(event)
        elif isinstance(event, ev.DtmfReceived) and event.digit:
            self.note("keys", MASK if self.sensitive else event.digit)

    def _drop_oldest_informational(self) -> None:
        for index, queued in enumerate(self.inbox):
            if isinstance(queued, _INFORMATIONAL):
                del self.inbox[index]
                return

    def mark_ended(self, event: ev.Event | None, *, reason: str | None) -> None:
        """The call is over: wake the flow's awaits with ``CallEnded``."""
        if self.ended:
            if event is not None and self.end_event is None:
                self.end_event = event
            return
        self.ended = True
        self.end_event = event
        self.end_reason = reason
        if self.flow_scope is not None and not self.ended_by_flow:
            self.flow_scope.cancel()
        self.notify()

    def notify(self) -> None:
        wake, self._wake = self._wake, None
        if wake is not None:
            wake.set()

    def discard(self, *kinds: type[ev.Event]) -> None:
        """Drop queued events of these kinds (stale outcomes of an earlier gather)."""
        if self.inbox:
            self.inbox[:] = [e for e in self.inbox if not isinstance(e, kinds)]

    # -- waiting ---------------------------------------------------------------------

    def take(self, kinds: tuple[type[ev.Event], ...]) -> ev.Event | None:
        for index, queued in enumerate(self.inbox):
            if isinstance(queued, kinds):
                del self.inbox[index]
                return queued
        return None

    async def next_event(
        self,
        kinds: tuple[type[ev.Event], ...],
        *,
        until: float | None = None,
        end_raises: bool = True,
        waiting_for: object | None = None,
    ) -> ev.Event | None:
        """The first queued or coming event of ``kinds``; ``None`` once ``until`` passes."""
        scheduled = False
        self.waiting_for = waiting_for
        try:
            while True:
                found = self.take(kinds)
                if found is not None:
                    return found
                if self.ended:
                    if end_raises:
                        raise self.ended_error()
                    return None
                if until is not None and self.clock.now() >= until:
                    return None
                if until is not None and not scheduled and self.on_deadline is not None:
                    self.on_deadline(self, until)
                    scheduled = True
                self._wake = wake = anyio.Event()
                await wake.wait()
        finally:
            self.waiting_for = None

    def end_for(self, cancelled: BaseException) -> BaseException | None:
        """What a flow gets instead of a cancellation: ``CallEnded`` once the call is over."""
        return self.ended_error() if self.ended else None

    def ended_error(self) -> CallEnded:
        return CallEnded(self.call_id or "(not placed)", self.end_reason or "ended")

    # -- transcript ------------------------------------------------------------------

    def note(self, kind: str, text: str) -> None:
        at = round(self.clock.wall_time() - self.started_at, 3)
        entry = TranscriptEntry(at, kind, text)
        self.transcript.append(entry)
        if self.observer is not None:
            self.observer(self, entry)
