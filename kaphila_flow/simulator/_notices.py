"""Notices: what a watcher of the simulator sees, one value per request and per event.

``Simulator.watch()`` hands out a ``NoticeFeed``: the API requests the simulator
admitted and the webhook events its calls emitted, in order, plus a few summaries a
display needs (a call starts ringing, the gather's digits and deadline, the end). Each
feed has a bounded buffer: a watcher that falls behind loses the oldest notices and is
told how many (a ``DROPPED`` notice), so a slow page never holds the simulator up.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import anyio

from .. import _events as ev
from .._model import CallModel, Phase

__all__ = [
    "DEFAULT_FEED_LIMIT",
    "Notice",
    "NoticeFeed",
    "NoticeHub",
    "NoticeKind",
    "call_notices",
    "request_notice",
]

#: Notices a watcher may fall behind by before the oldest are dropped.
DEFAULT_FEED_LIMIT = 1_000

_GATHER_EVENTS = frozenset(
    {
        ev.GatherStarted.NAME,
        ev.GatherProgress.NAME,
        ev.GatherComplete.NAME,
        ev.GatherTimeout.NAME,
        ev.GatherFailed.NAME,
        ev.DtmfReceived.NAME,
    }
)


class NoticeKind(enum.Enum):
    """What a notice reports."""

    #: An API request the simulator admitted; ``name`` is its path, ``detail`` its body.
    REQUEST = "request"
    #: A call was placed and rings; ``detail``: number, callerId, ringTimeout,
    #: ringsUntil (simulated epoch seconds), useAmd, callee (its answer mode).
    RINGING = "ringing"
    #: A webhook event the call emitted; ``name`` is the event, ``detail`` its payload.
    EVENT = "event"
    #: The gather's state changed; ``detail``: active, digits, expected, until
    #: (deadline, simulated epoch seconds, or None), finishOnKey, validDigits.
    GATHER = "gather"
    #: The call ended; ``detail``: status, endReason, wasAnswered, amd, forwardedTo.
    ENDED = "ended"
    #: How the flow on the call finished. Not from the simulator: the host that runs the
    #: flow reports it (``kaphila_flow.devphone``).
    RESULT = "result"
    #: This feed fell behind; ``detail["count"]`` notices before this one were dropped.
    DROPPED = "dropped"


@dataclass(frozen=True, slots=True)
class Notice:
    """One thing a watcher sees; ``at`` is simulated time (epoch seconds)."""

    at: float
    call_id: str
    kind: NoticeKind
    name: str
    detail: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (the dev phone sends it to the page as is)."""
        return {
            "at": self.at,
            "callId": self.call_id,
            "kind": self.kind.value,
            "name": self.name,
            "detail": dict(self.detail),
        }


def _frozen(detail: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(detail))


def request_notice(now: float, path: str, body: Mapping[str, Any]) -> Notice:
    """The notice of an admitted API request (its call is the body's ``callId``)."""
    call_id = body.get("callId")
    return Notice(
        now,
        call_id if isinstance(call_id, str) else "",
        NoticeKind.REQUEST,
        path,
        _frozen(body),
    )


def call_notices(
    model: CallModel, events: Sequence[ev.Event], now: float, *, callee: str
) -> list[Notice]:
    """The notices for a batch of events one call just emitted."""
    out: list[Notice] = []
    gather_changed = False
    for event in events:
        if isinstance(event, ev.CallInitiated):
            request = model.request
            detail = {
                "number": request.number,
                "callerId": request.caller_id,
                "ringTimeout": request.ring_timeout,
                "ringsUntil": model.ring_deadline,
                "useAmd": request.use_amd,
                "callee": callee,
            }
            out.append(Notice(now, model.call_id, NoticeKind.RINGING, "ringing", _frozen(detail)))
        out.append(
            Notice(now, model.call_id, NoticeKind.EVENT, event.name, _frozen(event.to_payload()))
        )
        gather_changed = gather_changed or event.name in _GATHER_EVENTS
        if isinstance(event, ev.CallEnded):
            detail = {
                "status": event.status,
                "endReason": event.end_reason,
                "wasAnswered": bool(event.was_answered),
                "amd": event.amd.status if event.amd else None,
                "forwardedTo": model.forwarded_to,
            }
            out.append(Notice(now, model.call_id, NoticeKind.ENDED, "ended", _frozen(detail)))
    if gather_changed and model.phase is not Phase.ENDED:
        out.append(_gather_notice(model, now))
    return out


def _gather_notice(model: CallModel, now: float) -> Notice:
    command = model.gathering
    deadline = model.next_timer(kinds=frozenset({"gather"}))
    detail: dict[str, Any] = {
        "active": command is not None,
        "digits": model.gather_digits,
        "expected": command.num_digits if command else None,
        "until": deadline.at if deadline else None,
        "finishOnKey": command.finish_on_key if command else None,
        "validDigits": command.valid_digits if command else None,
    }
    return Notice(now, model.call_id, NoticeKind.GATHER, "gather", _frozen(detail))


class NoticeFeed:
    """One watcher's notices: an async iterator over a bounded buffer.

    When the buffer is full the oldest notice goes; the next one read is then a
    ``DROPPED`` notice counting what was lost. ``dropped`` counts every loss.
    """

    __slots__ = ("_buffer", "_closed", "_limit", "_missed", "_ready", "dropped")

    def __init__(self, limit: int = DEFAULT_FEED_LIMIT) -> None:
        if limit < 1:
            raise ValueError("a feed holds at least one notice")
        self._limit = limit
        self._buffer: deque[Notice] = deque()
        self._missed = 0
        self._ready: anyio.Event | None = None
        self._closed = False
        self.dropped = 0

    def put(self, notice: Notice) -> None:
        if self._closed:
            return
        if len(self._buffer) >= self._limit:
            self._buffer.popleft()
            self._missed += 1
            self.dropped += 1
        self._buffer.append(notice)
        if self._ready is not None:
            self._ready.set()

    def close(self) -> None:
        """No more notices: the reader gets what is buffered, then the end."""
        self._closed = True
        if self._ready is not None:
            self._ready.set()

    @property
    def closed(self) -> bool:
        return self._closed

    def __aiter__(self) -> NoticeFeed:
        return self

    async def __anext__(self) -> Notice:
        notice = await self.next_within(None)
        if notice is None:
            raise StopAsyncIteration
        return notice

    async def next_within(self, seconds: float | None) -> Notice | None:
        """The next notice; ``None`` if ``seconds`` pass first or the feed is closed."""
        with anyio.move_on_after(seconds if seconds is not None else float("inf")):
            while not self._buffer:
                if self._closed:
                    return None
                self._ready = anyio.Event()
                await self._ready.wait()
        if not self._buffer:
            return None
        if self._missed:
            count, self._missed = self._missed, 0
            first = self._buffer[0]
            return Notice(first.at, "", NoticeKind.DROPPED, "dropped", _frozen({"count": count}))
        return self._buffer.popleft()


class NoticeHub:
    """Hands each published notice to every open feed; optionally keeps a history
    that a new feed starts with (so a page opened late sees the calls so far)."""

    __slots__ = ("_closed", "_feeds", "_history")

    def __init__(self, *, history: int = 0) -> None:
        self._feeds: set[NoticeFeed] = set()
        self._history: deque[Notice] | None = deque(maxlen=history) if history else None
        self._closed = False

    @property
    def watched(self) -> bool:
        """Whether anyone would see a notice (build them only then)."""
        return bool(self._feeds) or self._history is not None

    @property
    def watchers(self) -> int:
        return len(self._feeds)

    def publish(self, notices: Iterable[Notice]) -> None:
        for notice in notices:
            if self._history is not None:
                self._history.append(notice)
            for feed in self._feeds:
                feed.put(notice)

    def close(self) -> None:
        """End every feed (each reader gets what is buffered first), now and later."""
        self._closed = True
        for feed in self._feeds:
            feed.close()

    @asynccontextmanager
    async def watch(self, *, limit: int = DEFAULT_FEED_LIMIT) -> AsyncIterator[NoticeFeed]:
        feed = NoticeFeed(max(limit, len(self._history or ())))
        for notice in self._history or ():
            feed.put(notice)
        if self._closed:
            feed.close()
        self._feeds.add(feed)
        try:
            yield feed
        finally:
            self._feeds.discard(feed)
            feed.close()
