"""What one entry of ``GET /calls`` says about a call: over or live, when it was made,
where its webhooks go. Read in one place for both reconciliation (a lost ``/makecall``
answer) and recovery (a crash with a ``/makecall`` in flight).

Kaphila's documented listing has ``callId``, ``status`` and ``number``; the rest is
read when present (the simulator lists ``createdAt`` and ``webhookUrl``), and a call id
in Kaphila's form (``1758549398.181``, an Asterisk channel id) starts with the second
the call was made.
"""

from __future__ import annotations

import re

from ._api_types import CallInfo
from ._gathers import provider_time

__all__ = ["ENDED_STATUSES", "created_at", "is_live", "webhook_url"]

#: Listing statuses that mean the call is over.
ENDED_STATUSES = frozenset(
    {"ended", "completed", "failed", "no-answer", "busy", "canceled", "cancelled"}
)
_CREATED_FIELDS = ("createdAt", "created_at", "startTime", "startedAt", "timestamp")
_URL_FIELDS = ("webhookUrl", "webhook_url")
_EPOCH_ID = re.compile(r"^(\d{9,11})\.\d+$")


def is_live(call: CallInfo) -> bool:
    """Whether the listing shows ``call`` as not over."""
    return (call.status or "").lower() not in ENDED_STATUSES


def webhook_url(call: CallInfo) -> str | None:
    """The webhook URL the listing shows for ``call``, if it shows one."""
    for key in _URL_FIELDS:
        url = call.raw.get(key)
        if isinstance(url, str) and url:
            return url
    return None


def created_at(call: CallInfo) -> tuple[float, float] | None:
    """When the provider made ``call`` (epoch seconds) and to within how many seconds;
    ``None`` when the listing does not say."""
    for key in _CREATED_FIELDS:
        stamp = call.raw.get(key)
        if isinstance(stamp, str):
            moment = provider_time(stamp)
            if moment is not None:
                return moment
        elif isinstance(stamp, int | float) and not isinstance(stamp, bool):
            return float(stamp) / (1000.0 if stamp > 1e11 else 1.0), 0.001  # ms or s
    found = _EPOCH_ID.match(call.call_id)
    if found is not None:
        return float(found.group(1)), 1.0
    return None
