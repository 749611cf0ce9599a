"""``CallTable``: the runtime's table of calls and the rules of who gets an event.

A call is in the table from the moment it is placed (keyed by the reference in its
webhook token) and by call id once ``/makecall`` answers. The rules, in one place:

* an event with a webhook token goes to that token's call, and only if its call id
  matches (a forged or misrouted event is a dead letter);
* an event for a call id not yet known, while calls are being placed, is kept for the
  call it names (it may come before the ``/makecall`` answer) and handed over on
  registration;
* an event for a finished call is a dead letter (``FINISHED_CALL``), so late webhooks
  are acknowledged and kept, never lost and never given to another call;
* duplicates are the session's business (``CallSession.deliver``).

Finished calls and their tokens are remembered up to ``TOMBSTONE_LIMIT``, orphans up to
``ORPHAN_LIMIT`` calls, dead letters up to ``dead_letter_limit``.
"""

from __future__ import annotations

import hmac
import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from . import _events as ev
from ._logging import call_fields
from ._session import CallSession, Delivery

__all__ = ["CallTable", "DeadLetter"]

logger = logging.getLogger("kaphila_flow.runtime")

TOMBSTONE_LIMIT = 10_000
ORPHAN_LIMIT = 1_000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event no live call took, kept so nothing is silently lost."""

    event: ev.Event
    reason: str
    received_at: float


class CallTable:
    """Live calls by token reference and by call id; finished ones as tombstones."""

    def __init__(self, *, dead_letter_limit: int, wall_time: Callable[[], float]) -> None:
        self.dead_letters: deque[DeadLetter] = deque(maxlen=dead_letter_limit)
        self._wall_time = wall_time
        self.by_ref: dict[str, CallSession] = {}
        self.by_id: dict[str, CallSession] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._finished_tokens: OrderedDict[str, str] = OrderedDict()
        self._orphans: OrderedDict[str, list[ev.Event]] = OrderedDict()
        #: Calls whose ``/makecall`` has not answered yet.
        self.placing = 0

    def __len__(self) -> int:
        return len(self.by_ref)

    # -- a call's life in the table --------------------------------------------------

    def add(self, session: CallSession) -> None:
        self.by_ref[session.ref] = session
        self.placing += 1

    def placed(self, session: CallSession, call_id: str | None) -> None:
        """``/makecall`` is over: registered under ``call_id``, or not placed (``None``)."""
        self.placing -= 1
        if call_id is not None:
            self._register(session, call_id)
        elif not self.placing:
            self._release_orphans()

    def _register(self, session: CallSession, call_id: str) -> None:
        session.call_id = call_id
        self.by_id[call_id] = session
        early = [e for e in session.inbox if e.call_id != call_id]
        for stray in early:  # came with this call's token but another call id
            session.inbox.remove(stray)
            self.dead_letter(stray, "call id does not match its webhook token")
        for orphan in self._orphans.pop(call_id, []):
            session.deliver(orphan)
        if not self.placing:
            self._release_orphans()

    def _release_orphans(self) -> None:
        for orphans in self._orphans.values():
            for orphan in orphans:
                self.dead_letter(orphan, "unknown call")
        self._orphans.clear()

    def finish(self, session: CallSession) -> None:
        """The call has its result: later events for it are dead letters."""
        ref = session.ref
        self.by_ref.pop(ref, None)
        self._finished_tokens[ref] = session.token
        if len(self._finished_tokens) > TOMBSTONE_LIMIT:
            self._finished_tokens.popitem(last=False)
        if session.call_id is not None:
            self.by_id.pop(session.call_id, None)
            self._finished[session.call_id] = None
            if len(self._finished) > TOMBSTONE_LIMIT:
                self._finished.popitem(last=False)

    # -- routing ---------------------------------------------------------------------

    def session_for_token(self, token: str) -> CallSession | None:
        """The live call a webhook token belongs to, compared in constant time."""
        ref, _, _secret = token.partition(".")
        session = self.by_ref.get(ref)
        if session is None:
            return None
        if not hmac.compare_digest(token.encode(), session.token.encode()):
            return None
        return session

    def finished_token(self, token: str) -> bool:
        """Whether ``token`` belonged to a call that has finished (late webhooks)."""
        ref, _, _secret = token.partition(".")
        known = self._finished_tokens.get(ref)
        return known is not None and hmac.compare_digest(token.encode(), known.encode())

    def route(self, event: ev.Event, token: str | None, identity: bytes | None = None) -> Delivery:
        """Hand ``event`` to its call under the rules above. Never blocks or raises."""
        if token is not None:
            session = self.session_for_token(token)
            if session is None:
                if self.finished_token(token):
                    self.dead_letter(event, "the call has finished")
                    return Delivery.FINISHED_CALL
                return Delivery.REJECTED
            if session.call_id is not None and session.call_id != event.call_id:
                self.dead_letter(event, "call id does not match its webhook token")
                return Delivery.UNKNOWN_CALL
            return session.deliver(event, identity)
        session = self.by_id.get(event.call_id)
        if session is not None:
            return session.deliver(event, identity)
        if event.call_id in self._finished:
            self.dead_letter(event, "the call has finished")
            return Delivery.FINISHED_CALL
        if self.placing:
            # It may belong to a call whose /makecall answer has not come back yet.
            self._orphans.setdefault(event.call_id, []).append(event)
            if len(self._orphans) > ORPHAN_LIMIT:
                _, dropped = self._orphans.popitem(last=False)
                for orphan in dropped:
                    self.dead_letter(orphan, "unknown call")
            return Delivery.UNKNOWN_CALL
        self.dead_letter(event, "unknown call")
        return Delivery.UNKNOWN_CALL

    def dead_letter(self, event: ev.Event, reason: str) -> None:
        logger.info(
            "event %s for call %s kept as a dead letter: %s",
            event.name,
            event.call_id,
            reason,
            extra=call_fields(event.call_id),
        )
        self.dead_letters.append(DeadLetter(event, reason, self._wall_time()))
