"""The runtime's state for one call: its mailbox, its end, its transcript.

Everything here is synchronous except the waits (``event_wait``, ``next_event``,
``end_news``, ``first_word``); ``deliver`` never blocks, so a webhook is acknowledged at
once whatever the flow is doing.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import anyio

from . import _events as ev
from ._exceptions import CallEnded
from ._gathers import GatherLedger, provider_time
from ._result import MASK, TranscriptEntry
from ._wake import PARK, Park, Parking, Wait

if TYPE_CHECKING:
    from ._deadlines import Deadlines
    from ._metrics import DropBound

__all__ = ["CallHost", "CallSession", "Delivery", "EventWait", "EventWatch"]

#: Events kept for a flow that has not asked for them yet, per call.
INBOX_LIMIT = 256
#: Transcript entries and recording events kept per call; later ones are counted only.
TRANSCRIPT_LIMIT = 2_000
RECORDING_LIMIT = 64
#: Delivered events remembered per call to drop duplicates.
SEEN_LIMIT = 512
_DIGEST_SIZE = ev.DIGEST_SIZE

T = TypeVar("T")

_OUTCOMES: tuple[type[ev.Event], ...] = (ev.GatherComplete, ev.GatherTimeout, ev.GatherFailed)
_GATHER_EVENTS = (*_OUTCOMES, ev.GatherStarted, ev.GatherProgress, ev.DtmfReceived)

_INFORMATIONAL = (
    ev.DtmfReceived,
    ev.GatherProgress,
    ev.GatherStarted,
    ev.TtsPlayed,
    ev.CallInitiated,
    ev.UnknownEvent,
)


class _NoEvents(list[ev.Event]):
    """The inbox of every call with no event waiting: shared, so never added to."""

    __slots__ = ()

    def _refuse(self, *_args: object) -> None:
        raise TypeError("NO_EVENTS is shared by every empty inbox: give the call a list")

    append = extend = insert = __iadd__ = __setitem__ = _refuse  # type: ignore[assignment]


#: The inbox of a call with no event waiting (most parked calls): no list per call.
NO_EVENTS: list[ev.Event] = _NoEvents()


class Delivery(enum.Enum):
    """What ``Runtime.dispatch`` did with an event."""

    DELIVERED = "delivered"
    DUPLICATE = "duplicate"
    UNKNOWN_CALL = "unknown-call"
    FINISHED_CALL = "finished-call"
    REJECTED = "rejected"

    #: A member is a singleton, equal only to itself: hashed as such, a dict lookup by
    #: member (the intake and the metrics make two per webhook) calls no Python code.
    __hash__ = object.__hash__


class CallHost:
    """What every call of one runtime shares: its wall clock, its deadline timer, and
    what is told of each thing a bound dropped (one reference per call, not three)."""

    __slots__ = ("deadlines", "on_drop", "wall_time")

    def __init__(
        self,
        wall_time: Callable[[], float],
        deadlines: Deadlines | None = None,
        on_drop: Callable[[DropBound], None] | None = None,
    ) -> None:
        self.wall_time = wall_time
        #: The runtime's timer, which wakes a flow when its wait's deadline comes.
        self.deadlines = deadlines
        #: Told of each thing a bound dropped (the runtime's metrics).
        self.on_drop = on_drop


class CallSession(Parking):
    """One call from placement to result."""

    __slots__ = (
        "_kinds",
        "_seen",
        "amd",
        "answered_at",
        "call_id",
        "caller_id",
        "dropped",
        "end_event",
        "end_reason",
        "ended",
        "ended_by_flow",
        "flow_name",
        "flow_scope",
        "forwarded_to",
        "gather_progress",
        "gathers",
        "heard_from",
        "host",
        "inbox",
        "last_digits",
        "last_key_at",
        "number",
        "observer",
        "on_wait",
        "recordings",
        "sensitive",
        "shut_down",
        "started_at",
        "taken_outcomes",
        "task",
        "token",
        "transcript",
        "waiting_for",
    )

    def __init__(self, *, number: str, token: str, host: CallHost) -> None:
        self.number = number
        self.token = token
        self.host = host
        self.call_id: str | None = None
        self.caller_id: str | None = None  # the whitelisted number shown to the callee
        #: Events not taken yet: ``NO_EVENTS`` (shared) while there are none, a list of
        #: its own from the first one (a parked call usually has none).
        self.inbox: list[ev.Event] = NO_EVENTS
        #: Events and transcript entries dropped by the per-call bounds.
        self.dropped = 0
        #: Whether any webhook of this call has reached the runtime.
        self.heard_from = False
        #: Delivered events' identities: the first alone (most calls get few), then a dict.
        self._seen: bytes | dict[bytes, None] | None = None
        Parking.__init__(self)
        #: The kinds of event the parked flow waits for (``Parking`` does the waiting).
        self._kinds: tuple[type[ev.Event], ...] = ()
        self.ended = False
        self.ended_by_flow = False
        self.end_event: ev.Event | None = None
        self.end_reason: str | None = None
        #: The call's task (``TaskGroup.start_soon``), and the same while its flow runs:
        #: the call's end cancels it, no cancel scope of its own per flow.
        self.task: anyio.TaskHandle[None] | None = None
        self.flow_scope: anyio.TaskHandle[None] | None = None
        #: The flow's name in the call's log records (the session is its log context).
        self.flow_name = ""
        #: What the flow awaits, for people (str() it): a phone in a test, an error.
        self.waiting_for: object | None = None
        self.amd: ev.Amd | None = None
        self.started_at = host.wall_time()
        self.answered_at: float | None = None
        self.forwarded_to: str | None = None
        self.gather_progress = ""
        self.last_digits = ""
        #: The loop's time of the last key or gather progress (keeps a gather alive).
        self.last_key_at: float | None = None
        #: Identities of the gather outcomes earlier gathers took (made on first use).
        self.taken_outcomes: dict[bytes, None] | None = None
        #: Which gather an outcome belongs to (made by the first gather).
        self.gathers: GatherLedger | None = None
        self.sensitive = False
        self.shut_down = False  # ended by the runtime's shutdown: still to be hung up
        self.recordings: list[ev.Event] | None = None  # made on the first recording event
        self.transcript: list[TranscriptEntry] = []
        #: Called each time the flow starts waiting for an event (a test's phone).
        self.on_wait: Callable[[], None] | None = None
        self.observer: Callable[[CallSession, TranscriptEntry], None] | None = None

    def __repr__(self) -> str:
        return f"<CallSession {self.call_id or 'placing'} to {self.number}>"

    @property
    def ref(self) -> str:
        """The public half of the webhook token: the key of this call in the table."""
        return self.token.partition(".")[0]

    # -- inbound ---------------------------------------------------------------------

    def deliver(self, event: ev.Event, identity: bytes | None = None) -> Delivery:
        """Take ``event``; ``identity`` (a webhook id, the raw body) spots redeliveries."""
        self.heard_from = True
        key = identity if identity is not None else event.delivery_identity()
        if key is not None:
            if len(key) > _DIGEST_SIZE:
                # A raw body is remembered by its digest: 16 bytes, not the whole body.
                key = hashlib.blake2b(key, digest_size=_DIGEST_SIZE).digest()
            seen = self._seen
            if seen is None:
                self._seen = key  # the first alone; a dict from the second on
            elif isinstance(seen, bytes):
                if key == seen:
                    return Delivery.DUPLICATE
                self._seen = {seen: None, key: None}
            elif key in seen:
                return Delivery.DUPLICATE
            else:
                seen[key] = None
                if len(seen) > SEEN_LIMIT:
                    del seen[next(iter(seen))]  # the oldest (dicts keep order)
        self._observe(event)
        if isinstance(event, ev.CallEnded) or (
            isinstance(event, ev.CallTimeout) and self.answered_at is None
        ):
            self.mark_ended(
                event, reason=event.end_reason if isinstance(event, ev.CallEnded) else "no_answer"
            )
        ledger = self.gathers
        if (
            ledger is not None
            and ledger.owes
            and ledger.current is None
            and isinstance(event, _OUTCOMES)
            and not self.stale_outcome(event)
        ):
            # No gather in flight: an outcome now can only be an earlier gather's.
            owner = ledger.pay_oldest()
            self._note_late(event, owner.seq, owner.sensitive)
            return Delivery.DELIVERED
        if self.inbox is NO_EVENTS:
            self.inbox = [event]
        else:
            self.inbox.append(event)
        if len(self.inbox) > INBOX_LIMIT:
            self._drop_oldest_informational()
        # Only what the flow waits for resumes it: a key press, a playback's end or a
        # gather's progress is recorded while the flow stays parked (ended calls woke it).
        if self._wake is not None and isinstance(event, self._kinds):
            self.notify()
        return Delivery.DELIVERED

    def answer_news(self, first: ev.Event | None) -> tuple[bool, ev.Amd | None]:
        """Whether the call was answered, and its AMD, from everything known so far.

        ``first`` is the first news of the call's fate the runtime took. Not the order
        of arrival decides, but what the events say: a ``call.answered`` (queued or
        taken), or ``call.ended`` with ``wasAnswered: true``; without ``wasAnswered``, an
        AMD verdict of HUMAN or MACHINE. ``wasAnswered: false`` with no
        ``call.answered`` is not answered; ``callDuration`` is not used (it may count
        the ringing).
        """
        taken = first if isinstance(first, ev.CallAnswered) else self.take((ev.CallAnswered,))
        answer = taken if isinstance(taken, ev.CallAnswered) else None
        end = self.end_event if isinstance(self.end_event, ev.CallEnded) else None
        if end is None and isinstance(first, ev.CallEnded):
            end = first
        amd = (answer.amd if answer is not None else None) or (end.amd if end else None)
        if answer is not None:
            return True, amd
        if end is None:
            return False, None
        if end.was_answered is not None:
            return end.was_answered, amd
        verdict = (amd.status if amd else "").upper()
        return verdict in (ev.Amd.HUMAN, ev.Amd.MACHINE), amd

    def stale_outcome(self, outcome: ev.Event) -> bool:
        """Whether a gather outcome is a copy of one an earlier gather already took.

        The provider names no gather in its outcomes: an outcome identical to one
        already taken belongs to that earlier gather, never to the current one.
        """
        key = outcome.dedupe_key
        if self.taken_outcomes is None:
            self.taken_outcomes = {}
        if key in self.taken_outcomes:
            return True
        self.taken_outcomes[key] = None
        if len(self.taken_outcomes) > SEEN_LIMIT:
            del self.taken_outcomes[next(iter(self.taken_outcomes))]  # the oldest
        return False

    def gather_ledger(self) -> GatherLedger:
        if self.gathers is None:
            self.gathers = GatherLedger()
        return self.gathers

    def late_outcome(self, outcome: ev.Event) -> bool:
        """Whether ``outcome`` pays an earlier gather's debt (then it is noted as late)."""
        ledger = self.gathers
        if ledger is None or not ledger.owes:
            return False
        owner = ledger.claim(outcome, provider_time(outcome.timestamp))
        if owner is None:
            return False
        self._note_late(outcome, owner.seq, owner.sensitive)
        return True

    def settle_queued_outcomes(self) -> None:
        """Before a new gather: what is queued of gathers belongs to earlier ones.

        A queued outcome pays the oldest gather that still owes one (noted as late), or
        is noted as stale; queued progress and starts are dropped.
        """
        if not self.inbox:
            return
        ledger = self.gathers
        kept: list[ev.Event] = []
        for event in self.inbox:
            if isinstance(event, _OUTCOMES):
                if self.stale_outcome(event):
                    self.note("stale", f"{event.name} for an earlier gather, ignored")
                elif ledger is not None and ledger.owes:
                    owner = ledger.pay_oldest()
                    self._note_late(event, owner.seq, owner.sensitive)
                else:
                    self.note("stale", f"{event.name} for an earlier gather, ignored")
            elif not isinstance(event, ev.GatherProgress | ev.GatherStarted):
                kept.append(event)
        self.inbox = kept or NO_EVENTS

    def _note_late(self, outcome: ev.Event, seq: int, sensitive: bool) -> None:
        if isinstance(outcome, ev.GatherFailed):
            what = outcome.reason or "no reason given"
        else:
            digits = getattr(outcome, "digits", "")
            what = MASK if sensitive and digits else repr(digits)
        self.note("late", f"{outcome.name} of gather {seq}, no longer awaited: {what}")

    def _observe(self, event: ev.Event) -> None:
        if isinstance(event, ev.GatherProgress | ev.DtmfReceived):
            self.last_key_at = anyio.current_time()
        # AMD from whichever news brings it; call.answered's own verdict first.
        if (
            isinstance(event, ev.CallAnswered | ev.CallEnded)
            and event.amd is not None
            and (self.amd is None or isinstance(event, ev.CallAnswered))
        ):
            self.amd = event.amd
        ledger = self.gathers
        if ledger is not None and isinstance(event, _GATHER_EVENTS):
            stamp = provider_time(event.timestamp)
            ledger.observe(stamp, self.host.wall_time())
            if isinstance(event, ev.GatherStarted):
                ledger.started(stamp)
            elif isinstance(event, ev.GatherProgress) and not ledger.progress_is_current(stamp):
                return  # an earlier gather's keys: not the current one's fallback
        if isinstance(event, ev.GatherProgress):
            self.gather_progress = event.digits
        elif isinstance(event, (ev.RecordingStarted, ev.RecordingStopped, ev.RecordingCompleted)):
            if self.recordings is None:
                self.recordings = []
            if len(self.recordings) < RECORDING_LIMIT:
                self.recordings.append(event)
            else:
                self._dropped("recordings")
        elif isinstance(event, ev.DtmfReceived) and event.digit:
            self.note("keys", MASK if self.sensitive else event.digit)

    def _drop_oldest_informational(self) -> None:
        """Over the bound: the oldest informational event goes, else the oldest of any
        (recordings, gather outcomes, answers...), never ``call.ended``."""
        self._dropped("queue")
        for index, queued in enumerate(self.inbox):
            if isinstance(queued, _INFORMATIONAL):
                del self.inbox[index]
                return
        for index, queued in enumerate(self.inbox):
            if not isinstance(queued, ev.CallEnded):
                del self.inbox[index]
                return

    def _dropped(self, bound: DropBound) -> None:
        self.dropped += 1
        on_drop = self.host.on_drop
        if on_drop is not None:
            on_drop(bound)

    def mark_ended(self, event: ev.Event | None, *, reason: str | None) -> None:
        """The call is over: wake the flow's awaits with ``CallEnded``."""
        if self.ended:
            # The provider's own word of the end (call.ended) wins over other news of
            # it (call.timeout, a 404), whichever came first.
            if event is not None and (
                self.end_event is None
                or (
                    isinstance(event, ev.CallEnded) and not isinstance(self.end_event, ev.CallEnded)
                )
            ):
                self.end_event = event
            return
        self.ended = True
        self.end_event = event
        self.end_reason = reason
        if self.flow_scope is not None and not self.ended_by_flow:
            self.flow_scope.cancel()
        self.notify()

    async def _park(self, kinds: tuple[type[ev.Event], ...]) -> None:
        """Wait until ``notify``: an event of ``kinds``, the end, or a deadline."""
        self._kinds = kinds
        try:
            await self.park()
        finally:
            self._wake = None

    # -- waiting ---------------------------------------------------------------------

    def take(self, kinds: tuple[type[ev.Event], ...]) -> ev.Event | None:
        inbox = self.inbox
        for index, queued in enumerate(inbox):
            if isinstance(queued, kinds):
                del inbox[index]
                if not inbox:
                    self.inbox = NO_EVENTS  # the empty list goes
                return queued
        return None

    def event_wait(
        self,
        kinds: tuple[type[ev.Event], ...],
        *,
        until: float | None = None,
        end_raises: bool = True,
        waiting_for: object | None = None,
    ) -> EventWait:
        """The first queued or coming event of ``kinds``; ``None`` once ``until`` passes.

        Await it at once. An ``EventWait`` is no coroutine: a call parked in it keeps
        no coroutine frame for it. Await it from a coroutine that ends soon after
        (``Call.wait_for``, ``Runtime._connect`` while the call rings): the value it
        returns gives the awaiting frame a frame object (CPython), which a long-lived
        coroutine would keep; such a coroutine awaits ``next_event``. (``Call.gather``
        is an ``EventWatch`` itself, awaited by the flow.)
        """
        return EventWait(self, kinds, until, end_raises, waiting_for)

    async def next_event(
        self,
        kinds: tuple[type[ev.Event], ...],
        *,
        until: float | None = None,
        end_raises: bool = True,
        waiting_for: object | None = None,
    ) -> ev.Event | None:
        """``event_wait`` in a coroutine of its own, for long-lived callers."""
        return await EventWait(self, kinds, until, end_raises, waiting_for)

    async def end_news(self, until: float) -> None:
        """Wait, until ``until`` at most, for the provider's own word of the end
        (``call.ended``) after the runtime learnt of it another way (a 404, a
        ``call.timeout``)."""
        while not isinstance(self.end_event, ev.CallEnded) and anyio.current_time() < until:
            with anyio.move_on_after(until - anyio.current_time()):
                await self._park((ev.CallEnded, ev.CallTimeout))

    async def first_word(self, until: float) -> str | None:
        """Wait, until ``until`` at most, for a webhook at this call's own token; the
        call id it names (the proof a lost ``/makecall`` placed this call)."""
        while not self.inbox and anyio.current_time() < until:
            with anyio.move_on_after(until - anyio.current_time()):
                await self._park((ev.Event,))
        return self.inbox[0].call_id if self.inbox else None

    def end_for(self, cancelled: BaseException) -> BaseException | None:
        """What a flow gets instead of a cancellation: ``CallEnded`` once the call is over."""
        return self.ended_error() if self.ended else None

    def ended_error(self) -> CallEnded:
        return CallEnded(self.call_id or "(not placed)", self.end_reason or "ended")

    # -- transcript ------------------------------------------------------------------

    def note(self, kind: str, text: str) -> None:
        at = round(self.host.wall_time() - self.started_at, 3)
        entry = TranscriptEntry(at, kind, text)
        if len(self.transcript) < TRANSCRIPT_LIMIT:
            self.transcript.append(entry)
        elif kind == "ended":
            self.transcript[-1] = entry  # the end always shows
        else:
            self._dropped("transcript")
        if self.observer is not None:
            self.observer(self, entry)


class EventWatch(Wait[T]):
    """What every wait for a call's events shares: the events of ``kinds`` taken from
    the inbox, a deadline ``until`` (the runtime's timer wakes the wait then), the
    call's end (``CallEnded`` with ``end_raises``). ``poll`` is the subclass's, and so
    are ``_kinds`` and ``_end_raises`` (a gather's are its class's: no slots for them)."""

    __slots__ = ("_ticket", "_until", "_waiting_for")

    _kinds: tuple[type[ev.Event], ...]
    _end_raises: bool

    def __init__(
        self, session: CallSession, until: float | None, waiting_for: object | None
    ) -> None:
        Wait.__init__(self, session)
        self._until = until
        self._waiting_for = waiting_for
        #: The timer's ticket for ``until`` once asked (0: none); -1 before the first
        #: poll, -2 once over.
        self._ticket = -1

    def next_event(self) -> ev.Event | Park | None:
        """The first queued event of ``kinds``; ``None`` at ``until`` (or the end,
        without ``end_raises``); else ``PARK``."""
        session: CallSession = self._parking  # type: ignore[assignment]
        kinds = self._kinds
        if self._ticket == -1:  # the first run: the flow starts waiting
            self._ticket = 0
            session.waiting_for = self._waiting_for
            if session.on_wait is not None:
                session.on_wait()
        found = session.take(kinds)
        if found is not None:
            return found
        if session.ended:
            if self._end_raises:
                raise session.ended_error()
            return None
        until = self._until
        if until is not None:
            if anyio.current_time() >= until:
                return None
            if not self._ticket and session.host.deadlines is not None:
                self._ticket = session.host.deadlines.schedule(self, until)
        session._kinds = kinds
        return PARK

    def restart(self) -> None:
        """Wait anew, as a new wait would (the flow starts waiting again)."""
        EventWatch.finish(self)
        self._ticket = -1

    def pending(self, ticket: int) -> bool:
        """Whether the wait still wants the deadline of ``ticket`` (a wait that waits
        anew, as a gather after a key, has a ticket of its own)."""
        return self._ticket == ticket

    def wake(self) -> None:
        """Its deadline has come (its ticket is spent): the wait runs again and sees
        the time."""
        if self._ticket >= 0:
            self._ticket = 0
            self._parking.notify()

    def finish(self) -> None:
        ticket, self._ticket = self._ticket, -2
        if ticket < 0:
            return  # never ran (closed unawaited), or over already: nothing to undo
        session: CallSession = self._parking  # type: ignore[assignment]
        session._wake = None
        session.waiting_for = None
        if ticket > 0 and session.host.deadlines is not None:
            session.host.deadlines.withdraw(ticket)  # no wake-up for a wait that is over


class EventWait(EventWatch["ev.Event | None"]):
    """``CallSession.next_event``: an event of ``kinds``, ``None`` at ``until``, or the
    call's end (``CallEnded`` with ``end_raises``, else ``None``)."""

    __slots__ = ("_end_raises", "_kinds")

    def __init__(
        self,
        session: CallSession,
        kinds: tuple[type[ev.Event], ...],
        until: float | None,
        end_raises: bool,
        waiting_for: object | None,
    ) -> None:
        EventWatch.__init__(self, session, until, waiting_for)
        self._kinds = kinds
        self._end_raises = end_raises

    poll = EventWatch.next_event
