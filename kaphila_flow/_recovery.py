"""After a crash: end every call a previous run on the same store left live.

The store holds two kinds of rows (``_store``):

* a call with its id: hung up (after the apology, if any), reported ``failed``;
* an intent with no call id: the process died between writing it and reading
  Kaphila's answer, so the call may or may not exist. It is looked for in ``GET
  /calls``: a live call this runtime placed is hung up; none found is reported
  ``unknown`` (never placed, or already over), and two or more that cannot be told
  apart are left alone and reported ``unknown`` with their ids.

Which listed call an intent placed is a reading (docs/api-readings.md): the number
must be the one sent; if the listing shows each call's ``webhookUrl``, it must carry
the intent's token reference, and that settles it; otherwise the call must have been
created within ``PlacementWindow`` of the moment the request left, by the listing's
``createdAt`` or, failing that, by the seconds in the call id (Kaphila's ids, like
``1758549398.181``, start with the second the call was made).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from ._api_types import CallInfo
from ._commands import Hangup, Voice
from ._exceptions import CallEnded, CallNotFound, KaphilaError
from ._listing import created_at, is_live, webhook_url
from ._logging import call_fields
from ._result import CallResult, CallStatus, build_result
from ._store import CallIntent, IntentStore, StoredCall

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ["PlacementWindow", "made_within", "placed_by", "recover"]

logger = logging.getLogger("kaphila_flow.runtime")


@dataclass(frozen=True, slots=True)
class PlacementWindow:
    """When a call listed by ``GET /calls`` may have been made by a ``/makecall``.

    From ``clock_skew`` seconds before the request left (the provider's clock and
    ours may differ; a creation time known only to the second gets one second more)
    to ``answer_within`` seconds after it (a request can wait for the hourly rate
    limit and the connection pool before it leaves).
    """

    clock_skew: float = 1.0
    answer_within: float = 600.0

    def __post_init__(self) -> None:
        for name in ("clock_skew", "answer_within"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"PlacementWindow {name} must be seconds >= 0, not {value!r}")


def _webhook_ref(call: CallInfo) -> str | None:
    url = webhook_url(call)
    if url is None:
        return None
    return url.rstrip("/").rsplit("/", 1)[-1].split(".", 1)[0]


def placed_by(call: CallInfo, intent: CallIntent, window: PlacementWindow) -> bool | None:
    """Whether ``call`` is the one ``intent`` placed: ``True``, ``False``, or ``None``
    when the listing says too little to tell (same number, no URL, no creation time)."""
    ref = _webhook_ref(call)
    if ref is not None and call.number == intent.number:
        return ref == intent.ref
    return made_within(call, intent.number, intent.placed_at, window)


def made_within(
    call: CallInfo, number: str, placed_at: float, window: PlacementWindow
) -> bool | None:
    """Whether ``call`` is to ``number`` and was made within ``window`` of ``placed_at``;
    ``None`` when the listing gives no creation time (the number alone fits)."""
    if call.number != number:
        return False
    made = created_at(call)
    if made is None:
        return None
    moment, precision = made
    earliest = placed_at - window.clock_skew - precision
    latest = placed_at + window.answer_within + window.clock_skew
    return earliest <= moment <= latest


@dataclass(frozen=True, slots=True)
class _Found:
    """What the listing says about one intent."""

    live: Sequence[str]
    ended: Sequence[str]


def _find(
    intent: CallIntent, calls: Sequence[CallInfo], window: PlacementWindow, claimed: set[str]
) -> _Found:
    live: list[str] = []
    ended: list[str] = []
    for call in calls:
        if call.call_id in claimed or placed_by(call, intent, window) is False:
            continue  # None (the listing cannot tell): a candidate by its number alone
        (live if is_live(call) else ended).append(call.call_id)
    return _Found(live, ended)


async def recover(runtime: Runtime) -> list[CallResult]:
    """End what the store's previous run left; one result per row, each row removed."""
    store = runtime.store
    if store is None:
        return []
    results = [await _end_call(runtime, stored) for stored in store.leftovers()]
    if isinstance(store, IntentStore):
        intents = store.intents()
        if intents:
            claimed = {r.call_id for r in results if r.call_id is not None}
            results += await _resolve_intents(runtime, store, intents, claimed)
    return results


async def _hang_up(runtime: Runtime, call_id: str) -> bool:
    """Apology, then hangup; ``False`` if Kaphila says the call is already over."""
    try:
        if runtime.apology:
            with anyio.move_on_after(runtime.hangup_timeout):
                await runtime.send(Voice(call_id, runtime.apology))
        with anyio.move_on_after(runtime.hangup_timeout):
            await runtime.send(Hangup(call_id))
    except CallNotFound:
        return False
    except KaphilaError as exc:
        logger.error(
            "call %s: could not hang up after restart: %s",
            call_id,
            exc,
            extra=call_fields(call_id),
        )
    return True


async def _end_call(runtime: Runtime, stored: StoredCall) -> CallResult:
    assert runtime.store is not None
    live = await _hang_up(runtime, stored.call_id)
    reason = (
        "left live by a previous run; hung up on restart"
        if live
        else "left live by a previous run; already over"
    )
    runtime.store.remove(stored.call_id)
    return _report(runtime, stored.call_id, stored.number, stored.started_at, "failed", reason)


async def _resolve_intents(
    runtime: Runtime, store: IntentStore, intents: list[CallIntent], claimed: set[str]
) -> list[CallResult]:
    list_calls: Callable[[], Awaitable[Any]] | None = getattr(runtime.transport, "list_calls", None)
    results = []
    if list_calls is None:
        for intent in intents:
            store.remove_intent(intent.ref)
            results.append(
                _unplaced(
                    runtime,
                    intent,
                    "unknown",
                    "a previous run stopped before Kaphila answered its /makecall, and this "
                    "transport cannot list calls to look for it: it may be ringing",
                )
            )
        return results
    try:
        calls: list[CallInfo] = list((await list_calls()).calls)
    except KaphilaError as exc:
        # Kept for the next start: the call may be live and only the listing failed.
        logger.error(
            "could not list calls to settle %d /makecall(s) a previous run left unanswered "
            "(%s); they stay in the store for the next start",
            len(intents),
            exc,
        )
        return [
            _unplaced(
                runtime,
                intent,
                "unknown",
                f"a previous run stopped before Kaphila answered its /makecall, and GET "
                f"/calls failed ({type(exc).__name__}): kept to look again at the next start",
            )
            for intent in intents
        ]
    window = runtime.placement_window
    for intent in sorted(intents, key=lambda i: i.placed_at):
        found = _find(intent, calls, window, claimed)
        if len(found.live) == 1:
            call_id = found.live[0]
            claimed.add(call_id)
            live = await _hang_up(runtime, call_id)
            reason = "placed by a previous run that stopped before Kaphila's answer; " + (
                "found live and hung up on restart" if live else "already over"
            )
            results.append(
                _report(runtime, call_id, intent.number, intent.placed_at, "failed", reason)
            )
        elif found.live:
            results.append(
                _unplaced(
                    runtime,
                    intent,
                    "unknown",
                    f"a previous run stopped before Kaphila answered its /makecall; "
                    f"{len(found.live)} live calls to {intent.number} "
                    f"({', '.join(found.live)}) fit it and cannot be told apart: "
                    "none was hung up",
                )
            )
        elif len(found.ended) == 1:
            call_id = found.ended[0]
            claimed.add(call_id)
            results.append(
                _report(
                    runtime,
                    call_id,
                    intent.number,
                    intent.placed_at,
                    "failed",
                    "placed by a previous run that stopped before Kaphila's answer; already over",
                )
            )
        else:
            results.append(
                _unplaced(
                    runtime,
                    intent,
                    "unknown",
                    "a previous run stopped before Kaphila answered its /makecall, and no "
                    "live call of it is listed: it was never placed, or is already over",
                )
            )
        store.remove_intent(intent.ref)
    return results


def _unplaced(runtime: Runtime, intent: CallIntent, status: CallStatus, reason: str) -> CallResult:
    return _report(runtime, None, intent.number, intent.placed_at, status, reason)


def _report(
    runtime: Runtime,
    call_id: str | None,
    number: str,
    started_at: float,
    status: CallStatus,
    reason: str,
) -> CallResult:
    error = CallEnded(call_id or "(no call id)", reason)
    logger.warning(
        "call %s to %s: %s", call_id or "(no call id)", number, reason, extra=call_fields(call_id)
    )
    return build_result(
        call_id=call_id,
        number=number,
        status=status,
        value=None,
        error=error,
        amd=None,
        started_at=started_at,
        answered_at=None,
        ended_at=runtime.wall_time(),
        forwarded_to=None,
        end_reason=reason,
        transcript=[],
        recordings=[],
    )
