"""After a ``/makecall`` whose answer was lost: find the call, if it was placed.

Kaphila has no idempotency keys, so a lost answer is never retried (that could ring
someone twice). Instead the runtime looks: first at webhooks that arrived with this
call's own token (they name the call), then at ``GET /calls`` for one live call to the
same number that no flow owns. Exactly one match is adopted; anything else is reported
as ``unknown``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from ._exceptions import (
    ConnectError,
    KaphilaError,
    MalformedResponse,
    NetworkError,
    OriginationFailed,
    ServerError,
    Timeout,
)
from ._session import CallSession

__all__ = ["answer_was_lost", "find_placed_call"]

logger = logging.getLogger("kaphila_flow.runtime")

_ENDED = frozenset({"ended", "completed", "failed", "no-answer", "busy", "canceled", "cancelled"})


def answer_was_lost(error: KaphilaError) -> bool:
    """The request may have been carried out though no usable answer came back."""
    if isinstance(error, ConnectError | OriginationFailed):
        return False  # nothing was sent, or Kaphila says no trunk placed it
    return isinstance(error, Timeout | NetworkError | ServerError | MalformedResponse)


async def find_placed_call(
    session: CallSession, transport: Any, owned: Collection[str]
) -> str | None:
    for event in session.inbox:
        return event.call_id  # delivered to this call's own webhook URL
    list_calls: Callable[[], Awaitable[Any]] | None = getattr(transport, "list_calls", None)
    if list_calls is None:
        return None
    try:
        listing = await list_calls()
    except KaphilaError as exc:
        logger.warning("could not list calls to reconcile a lost /makecall: %s", exc)
        return None
    candidates = [
        call.call_id
        for call in listing.calls
        if call.number == session.number
        and (call.status or "").lower() not in _ENDED
        and call.call_id not in owned
    ]
    return candidates[0] if len(candidates) == 1 else None
