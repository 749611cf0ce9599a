"""After a ``/makecall`` that failed: was it carried out, and is the call this runtime's?

Kaphila has no idempotency keys, so a lost answer is never retried (that could ring
someone twice). The reading (docs/security-reliability.md, "Requests that may or may
not have happened"):

* a request that never left the process (``ConnectError``: refused, connect timeout,
  no connection free in the pool) is a plain failure: nothing was sent;
* an answer from Kaphila itself saying it failed (its error envelope, ``{"success":
  false, "error": ...}``, with a 4xx or 5xx status; 503 "no trunks" and
  ``ORIGINATION_FAILED`` included) is not a lost answer: the provider said what it did,
  so no search is made. Only webhooks that already came to this call's own token can
  still show it was placed (then it is adopted);
* silence (a read timeout, a connection broken after sending), an answer that is not
  the documented JSON, or a 5xx without the envelope (a proxy's 502 or 504) is a lost
  answer: the call may be ringing.

A lost answer is reconciled by ownership, never by the number alone (another client of
the same account may be calling the same number at the same time):

1. webhooks that arrived at this call's per-call token URL name the call: only this
   runtime put that URL in a ``/makecall`` body;
2. ``GET /calls``: a live call whose listing shows the ``webhookUrl`` this runtime sent
   (and, when the listing has a creation time, one within the request's window);
3. else the runtime waits up to ``Runtime(reconcile_wait=...)`` seconds (5 by default)
   for the call's first webhook at its token (Kaphila sends ``call.initiated`` when it
   places a call).

Found: adopted. Not found: ``unknown``, and a webhook that comes later to that token is
answered by hanging the call up (``Runtime`` does it), so no call is left live with no
flow in charge.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import anyio

from ._api_types import CallInfo
from ._exceptions import (
    ApiError,
    ConnectError,
    KaphilaError,
    MalformedResponse,
    NetworkError,
    Timeout,
)
from ._listing import created_at, is_live, webhook_url
from ._session import CallSession

__all__ = ["RECONCILE_WAIT", "answer_was_lost", "find_placed_call", "placed_despite_error"]

logger = logging.getLogger("kaphila_flow.runtime")

#: How long a lost ``/makecall`` waits for its call's first webhook, in seconds.
RECONCILE_WAIT = 5.0
#: Clock difference allowed between a listing's creation time and the request's window.
CLOCK_SLACK = 60.0


def answer_was_lost(error: KaphilaError) -> bool:
    """The request may have been carried out though no usable answer came back."""
    if isinstance(error, ConnectError):
        return False  # never left the process
    if isinstance(error, ApiError):
        # Kaphila's own envelope says what it did; a bare 5xx page (a proxy's 502 or
        # 504) says nothing. A 503 means no trunk, or no backend reached: nothing done.
        return error.status_code >= 500 and error.status_code != 503 and not error.enveloped
    return isinstance(error, Timeout | NetworkError | MalformedResponse)


def placed_despite_error(session: CallSession) -> str | None:
    """The call id named by a webhook that already came to this call's own token."""
    for event in session.inbox:
        return event.call_id  # only this runtime gave Kaphila that URL
    return None


def sent_by_us(call: CallInfo, sent: str | None, window: tuple[float, float]) -> bool:
    """Whether a listed call shows the webhook URL this runtime sent, made in ``window``."""
    listed = webhook_url(call)
    if listed is None or sent is None:
        return False  # the number alone proves nothing
    if not hmac.compare_digest(listed.encode(), sent.encode()):
        return False
    stamp = created_at(call)
    if stamp is None:
        return True
    start, end = window
    return start - CLOCK_SLACK <= stamp[0] <= end + CLOCK_SLACK


async def find_placed_call(
    session: CallSession,
    transport: Any,
    owned: Collection[str],
    *,
    webhook_url: str | None,
    window: tuple[float, float],
    wait: float = RECONCILE_WAIT,
) -> str | None:
    """The call a lost ``/makecall`` placed, if it can be shown to be this runtime's."""
    found = placed_despite_error(session)
    if found is not None:
        return found
    list_calls: Callable[[], Awaitable[Any]] | None = getattr(transport, "list_calls", None)
    if list_calls is not None:
        try:
            listing = await list_calls()
        except KaphilaError as exc:
            logger.warning("could not list calls to reconcile a lost /makecall: %s", exc)
        else:
            candidates: list[str] = [
                call.call_id
                for call in listing.calls
                if is_live(call)
                and call.call_id not in owned
                and sent_by_us(call, webhook_url, window)
            ]
            if len(candidates) == 1:
                return candidates[0]
    if webhook_url is None:
        return None  # no webhook can ever say
    return await session.first_word(anyio.current_time() + wait)
