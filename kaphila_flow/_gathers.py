"""Which gather an outcome belongs to, from order and time (sans-IO).

Kaphila names no gather in ``gather.complete``, ``gather.timeout`` or ``gather.failed``.
The reading (docs/api-readings.md, "which gather an outcome belongs to"):

* the provider runs one gather at a time per call: a gather starts (``gather.started``)
  only after the one before it has ended, and each gather it started emits exactly one
  outcome, no later than the next gather's start;
* the runtime numbers its gathers; a gather the flow stopped waiting for before its
  outcome came (the runtime gave up, the flow cancelled it) still **owes** one outcome;
* ``gather.started`` events are matched to the runtime's gathers in order;
* while gather N waits and an earlier gather owes, an outcome belongs to the oldest
  debt when its provider ``timestamp`` is before gather N's ``gather.started`` (or before
  the latest start seen, or before the moment gather N was sent, in the provider's clock
  as far as it is known); it is gather N's when stamped after gather N's start;
* with no usable timestamp: once gather N's start has been seen, the outcome is gather
  N's (the older one would have come before it); otherwise the first outcome after a
  give-up pays the debt, unless it cannot be the older gather's (more digits than it
  asked for, a key it did not accept).

An outcome that pays a debt is recorded in the transcript (``late``, digits masked when
that gather was sensitive) and never handed to a later gather.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from . import _events as ev

__all__ = ["GatherLedger", "GatherTicket", "provider_time"]

#: Gathers remembered as owing an outcome, per call; older debts are forgotten.
OWED_LIMIT = 16


def provider_time(stamp: str | None) -> tuple[float, float] | None:
    """A webhook's ``timestamp`` as (epoch seconds, resolution), ``None`` if unusable.

    The resolution is how much later the moment may have been than the stamp says:
    a second for whole-second stamps (the provider's examples), a millisecond otherwise.
    """
    if not stamp or not isinstance(stamp, str):
        return None
    text = stamp.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None  # a local time of unknown zone says nothing comparable
    _, _, clock = stamp.partition("T")
    return moment.timestamp(), (0.001 if "." in clock else 1.0)


@dataclass(slots=True, eq=False)
class GatherTicket:
    """One gather the runtime sent, as the ledger knows it."""

    seq: int
    num_digits: int
    valid_digits: str | None
    finish_on_key: str | None
    sensitive: bool
    #: The runtime's wall-clock time just before the ``/gather`` request left.
    sent_at: float
    #: Provider time of the ``gather.started`` matched to this gather, once seen.
    started: float | None = None

    def could_produce(self, outcome: ev.Event) -> bool:
        """Whether ``outcome`` fits what this gather asked for."""
        digits = getattr(outcome, "digits", "") or ""
        keys = digits.rstrip(self.finish_on_key) if self.finish_on_key else digits
        if len(keys) > self.num_digits:
            return False
        allowed = self.valid_digits
        return allowed is None or all(k in allowed or k == self.finish_on_key for k in digits)


class GatherLedger:
    """The gathers of one call: the current one, the ones that still owe an outcome."""

    __slots__ = ("_owed", "_seq", "_unstarted", "current", "latest_start", "offset_floor")

    def __init__(self) -> None:
        self._seq = 0
        self.current: GatherTicket | None = None
        # A list made by the first gather given up (most calls give up none): a few
        # entries at most, and an empty deque costs a parked call ten times a list.
        self._owed: list[GatherTicket] | None = None
        #: How many of the latest gathers sent have not been seen starting: the oldest
        #: of them is the one the next ``gather.started`` reports, and the current
        #: gather is the newest (only its start time is ever read).
        self._unstarted = 0
        #: The latest ``gather.started`` stamp seen (provider time).
        self.latest_start: float | None = None
        #: A lower bound of (provider clock - runtime clock), from stamps vs arrivals.
        self.offset_floor: float | None = None

    # -- the runtime's side ----------------------------------------------------------

    def open(
        self,
        *,
        num_digits: int,
        valid_digits: str | None,
        finish_on_key: str | None,
        sensitive: bool,
        sent_at: float,
    ) -> GatherTicket:
        self._seq += 1
        ticket = GatherTicket(
            self._seq, num_digits, valid_digits, finish_on_key, sensitive, sent_at
        )
        self.current = ticket
        # Beyond the limit, the oldest is forgotten: no gather.started ever came.
        self._unstarted = min(self._unstarted + 1, OWED_LIMIT)
        return ticket

    @property
    def owes(self) -> bool:
        """Whether an earlier gather still owes an outcome."""
        return bool(self._owed)

    def pay_oldest(self) -> GatherTicket:
        """The oldest gather that owes an outcome, which has it now (``owes`` first)."""
        assert self._owed
        return self._owed.pop(0)

    def answered(self, ticket: GatherTicket) -> None:
        """The gather took its outcome."""
        if self.current is ticket:
            self.current = None

    def gave_up(self, ticket: GatherTicket) -> None:
        """The flow stopped waiting without an outcome: the gather still owes one."""
        if self.current is ticket:
            self.current = None
        if self._owed is None:
            self._owed = []
        self._owed.append(ticket)
        while len(self._owed) > OWED_LIMIT:
            self._owed.pop(0)

    def not_sent(self, ticket: GatherTicket) -> None:
        """The ``/gather`` request failed: nothing of this gather is expected."""
        if ticket.seq == self._seq and self._unstarted:  # the newest sent, taken back
            self._unstarted -= 1
        if self.current is ticket:
            self.current = None

    # -- the provider's side ---------------------------------------------------------

    def observe(self, stamp: tuple[float, float] | None, received_at: float) -> None:
        """A webhook stamped ``stamp`` arrived at ``received_at`` (runtime clock)."""
        if stamp is not None:
            floor = stamp[0] - received_at  # sent no later than received
            if self.offset_floor is None or floor > self.offset_floor:
                self.offset_floor = floor

    def started(self, stamp: tuple[float, float] | None) -> None:
        """A ``gather.started``: the oldest gather not yet seen starting is this one."""
        moment = stamp[0] if stamp is not None else None
        if self._unstarted:
            self._unstarted -= 1
            if not self._unstarted and self.current is not None:
                self.current.started = moment  # the oldest not seen starting was the newest
        if moment is not None and (self.latest_start is None or moment > self.latest_start):
            self.latest_start = moment

    def claim(self, outcome: ev.Event, stamp: tuple[float, float] | None) -> GatherTicket | None:
        """The earlier gather ``outcome`` pays its debt to, or ``None``: the current one's."""
        if not self._owed:
            return None
        current = self.current
        if current is None or self._before(current, stamp):
            return self._owed.pop(0)
        if current.started is not None and (stamp is None or stamp[0] > current.started):
            return None  # after the current gather's start, or in order after it
        debt = self._owed[0]
        if not debt.could_produce(outcome):
            return None
        return self._owed.pop(0)

    def progress_is_current(self, stamp: tuple[float, float] | None) -> bool:
        """Whether a ``gather.progress`` reports the current gather's keys."""
        current = self.current
        if current is None:
            return False
        if not self._owed:
            return True
        if current.started is None:
            return False  # an earlier gather's start-to-outcome still comes first
        return not self._before(current, stamp)

    def _before(self, current: GatherTicket, stamp: tuple[float, float] | None) -> bool:
        """Whether a moment stamped ``stamp`` was provably before ``current`` started."""
        if stamp is None:
            return False
        moment, resolution = stamp
        latest = moment + resolution
        if current.started is not None and latest <= current.started:
            return True
        if self.latest_start is not None and latest <= self.latest_start:
            return True
        return self.offset_floor is not None and latest <= current.sent_at + self.offset_floor
