"""The simulator's host: ``CallModel``s in real time, scaled by a speed factor.

Commands come in from the HTTP layer; one scheduler task lets model time pass (ring
timeouts, playbacks, gather timeouts) and plays each callee's script; each call's
events go out to its ``webhookUrl`` in order, retried until acknowledged, as Kaphila's
at-least-once delivery does. Everything a fault switch may change passes through
``deliver`` (webhooks) and ``admit`` (API requests). A person may hold a phone
(``Callee(answer="held")``) and act through ``answer_call``, ``decline_call``,
``press_keys`` and ``callee_hangs_up``; ``watch()`` shows every admitted request and
emitted event as it happens.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from typing import Any, Literal

import anyio
import anyio.abc
import httpx
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .. import _events as ev
from .._callees import Callee, CalleeRun
from .._commands import (
    ForwardCall,
    ForwardReply,
    Gather,
    GatherReply,
    HangupReply,
    MakeCall,
    MakeCallReply,
    Play,
    PlaybackReply,
    StopRecordingReply,
    Voice,
)
from .._exceptions import AuthenticationError, BadRequest, CallNotFound
from .._model import KEYS, CallModel, Phase, SpeechTiming, iso_timestamp
from .._numbers import normalize_number
from .._signing import sign
from ._accounts import Account, AccountState
from ._faults import Faults
from ._notices import (
    DEFAULT_FEED_LIMIT,
    Notice,
    NoticeFeed,
    NoticeHub,
    call_notices,
    request_notice,
)

__all__ = ["INSTANT", "USER_AGENT", "Simulator"]

logger = logging.getLogger("kaphila_flow.simulator")

USER_AGENT = "Kaphila-API-API/2.0"
#: A speed at which a 30-second call takes about 30 milliseconds.
INSTANT = 1000.0
DEFAULT_KEY = "ak_simulator"
#: How a person answers: themselves, their voicemail, or so that AMD cannot tell.
AnswerHow = Literal["human", "machine", "unknown"]


@dataclass(slots=True)
class _Call:
    model: CallModel
    run: CalleeRun
    account: AccountState
    outbox: MemoryObjectSendStream[ev.Event] | None
    charged: bool = False


class Simulator:
    """A Kaphila of its own: accounts, scripted callees, calls, webhooks."""

    def __init__(
        self,
        *,
        accounts: Mapping[str, Account] | None = None,
        callees: Mapping[str, Callee] | None = None,
        default_callee: Callee | None = None,
        speed: float = 1.0,
        speech: SpeechTiming | None = None,
        delivery_attempts: int = 5,
        delivery_timeout: float = 5.0,
        faults: Faults | None = None,
        webhook_secret: str | None = None,
    ) -> None:
        if not speed > 0:
            raise ValueError("speed must be a positive factor (1 = real time)")
        self.accounts = {
            key: AccountState(account)
            for key, account in (accounts or {DEFAULT_KEY: Account()}).items()
        }
        self.callees: dict[str, Callee] = dict(callees or {})
        self.default_callee = default_callee or Callee()
        self.speed = speed
        self.speech = speech or SpeechTiming()
        self.delivery_attempts = delivery_attempts
        self.delivery_timeout = delivery_timeout
        self.faults = faults or Faults()
        #: Sign webhooks (Standard Webhooks) with this secret, as a signing proxy would.
        self.webhook_secret = webhook_secret
        #: Requests admitted (past auth, limits and refusals): (path, body), in order.
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.calls: dict[str, _Call] = {}
        #: Every event each call emitted, delivered or not, in order.
        self.events: list[ev.Event] = []
        #: Webhooks that were never acknowledged after every attempt.
        self.undelivered: list[ev.Event] = []
        self._epoch = time.time()
        self._t0 = time.monotonic()
        self._serial = 0
        self._webhook_serial = 0
        self._waiters: dict[str, anyio.Event] = {}
        self._changed: anyio.Event | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._http: httpx.AsyncHTTPTransport | None = None
        self._notices = NoticeHub()

    def __repr__(self) -> str:
        return f"<Simulator {len(self.calls)} calls, speed {self.speed:g}>"

    # -- time ------------------------------------------------------------------------

    def now(self) -> float:
        """Simulated time: wall time at start plus real time elapsed times ``speed``."""
        return self._epoch + (time.monotonic() - self._t0) * self.speed

    def callee(self, number: str, callee: Callee) -> None:
        """Set what the phone at ``number`` does."""
        self.callees[normalize_number(number)] = callee

    # -- watching --------------------------------------------------------------------

    def watch(self, *, limit: int = DEFAULT_FEED_LIMIT) -> AbstractAsyncContextManager[NoticeFeed]:
        """Every admitted request and emitted event from now on, in order, as ``Notice``s.

            async with simulator.watch() as notices:
                async for notice in notices:
                    ...

        Use it on the simulator's event loop. A watcher more than ``limit`` notices
        behind loses the oldest ones (and reads a ``DROPPED`` notice counting them): it
        never holds the simulator up.
        """
        return self._notices.watch(limit=limit)

    def _notify(self, notices: Sequence[Notice]) -> None:
        self._notices.publish(notices)

    # -- requests (each may raise an ApiError, which the HTTP layer turns into JSON) ---

    def authenticate(self, api_key: str | None) -> AccountState:
        if not api_key:
            raise AuthenticationError("Missing API key: send Authorization: Bearer ak_...")
        state = self.accounts.get(api_key)
        if state is None:
            raise AuthenticationError("Invalid API key")
        return state

    def admit(self, account: AccountState, path: str) -> None:
        """The one place an API request is admitted (rate limit; fault switches)."""
        account.count(path, self.now())
        self.faults.refuse(path)

    def record_request(self, path: str, body: dict[str, Any]) -> None:
        """An admitted request's body, read: kept in ``requests`` and shown to watchers."""
        self.requests.append((path, body))
        if self._notices.watched:
            self._notify([request_notice(self.now(), path, body)])

    def make_call(self, account: AccountState, command: MakeCall) -> MakeCallReply:
        number = _kaphila_number(command.number, "number")
        caller_id = command.caller_id
        if caller_id is not None:
            caller_id = _kaphila_number(caller_id, "callerId")
            if caller_id not in account.account.caller_ids:
                raise BadRequest(f"callerId {caller_id} is not whitelisted for this account")
        if not 1 <= command.ring_timeout <= 300:
            raise BadRequest("ringTimeout must be between 1 and 300 seconds")
        account.require_credits()
        now = self.now()
        self._serial += 1
        call_id = f"{now:.0f}.{self._serial}"
        callee = self.callees.get(number, self.default_callee)
        model = CallModel(call_id, command, now, speech=self.speech)
        outbox = None
        if command.webhook_url and self._tg is not None:
            send, receive = anyio.create_memory_object_stream[ev.Event](math.inf)
            outbox = send
            self._tg.start_soon(self._deliver_in_order, command.webhook_url, receive)
        self.calls[call_id] = _Call(model, CalleeRun(callee), account, outbox)
        account.calls += 1
        self._flush(self.calls[call_id])
        self._poke()
        return MakeCallReply(
            call_id=call_id,
            status="ringing",
            amd_enabled=command.use_amd,
            voice_name=command.voice_name or "en-US-Neural2-A",
            credits=account.credits,
            ring_timeout=command.ring_timeout,
            trunk="sim-trunk-1",
            trunk_attempts=1,
            total_trunks=1,
            timestamp=iso_timestamp(now),
        )

    async def playback(self, command: Voice | Play) -> PlaybackReply:
        """``/voice`` and ``/play`` answer once the playback is over (404 if cut)."""
        call = self._call(command.call_id)
        now = self.now()
        if isinstance(command, Voice):
            playback = call.model.voice(command, now)
        else:
            playback = call.model.play(command, now)
        waiter = self._waiters.setdefault(playback.playback_id, anyio.Event())
        self._poke()
        await waiter.wait()
        return call.model.playback_reply(playback)

    def gather(self, command: Gather) -> GatherReply:
        call = self._call(command.call_id)
        reply = call.model.gather(command, self.now())
        self._after(call)
        return reply

    def forward(self, command: ForwardCall) -> ForwardReply:
        target = _kaphila_number(command.forward_number, "forwardNumber")
        call = self._call(command.call_id)
        reply = call.model.forward(ForwardCall(command.call_id, target), self.now())
        self._after(call)
        return reply

    def hangup(self, call_id: str) -> HangupReply:
        call = self._call(call_id)
        reply = call.model.hangup(self.now())
        self._after(call)
        return reply

    def stop_recording(self, call_id: str) -> StopRecordingReply:
        call = self._call(call_id)
        reply = call.model.stop_recording(self.now())
        self._after(call)
        return reply

    # -- a person at the phone (callees with answer="held") --------------------------

    def answer_call(self, call_id: str, how: AnswerHow = "human") -> None:
        """The person answers the ringing call: as ``human``, or their voicemail picks
        up (``machine``), or AMD cannot tell (``unknown``); AMD reports it when on."""
        if how not in ("human", "machine", "unknown"):
            raise ValueError(f"how must be human, machine or unknown, not {how!r}")
        call = self._call(call_id)
        model = call.model
        if model.phase is not Phase.RINGING:
            raise ValueError(f"call {call_id} is not ringing: it was answered already")
        model.answer(self.now(), machine=how == "machine")
        events = model.take_events()
        if how == "unknown" and model.amd is not None:
            model.amd = ev.Amd(ev.Amd.UNKNOWN, "NOTSURE", 0.5)
            events = [
                replace(e, amd=model.amd) if isinstance(e, ev.CallAnswered) else e for e in events
            ]
        self._after(call, events)

    def decline_call(self, call_id: str) -> None:
        """The person declines the ringing call (busy): it ends unanswered."""
        call = self._call(call_id)
        if call.model.phase is not Phase.RINGING:
            raise ValueError(f"call {call_id} is not ringing: hang up instead")
        call.model.caller_hangs_up(self.now())
        self._after(call)

    def press_keys(self, call_id: str, keys: str) -> None:
        """The person presses ``keys`` now, one after another (0-9, * and #)."""
        if not isinstance(keys, str) or not keys or any(k not in KEYS for k in keys):
            raise ValueError(f"keys must be telephone keys (0-9, * and #), not {keys!r}")
        call = self._call(call_id)
        if call.model.phase is Phase.RINGING:
            raise ValueError(f"call {call_id} is not answered yet")
        now = self.now()
        for key in keys:
            call.model.press(key, now)
        self._after(call)

    def callee_hangs_up(self, call_id: str) -> None:
        """The person hangs up (while it rings, that declines the call)."""
        call = self._call(call_id)
        call.model.caller_hangs_up(self.now())
        self._after(call)

    def snapshot(self, call_id: str) -> dict[str, Any]:
        return self._call(call_id, live_only=False).model.snapshot()

    def _call(self, call_id: str, *, live_only: bool = True) -> _Call:
        call = self.calls.get(call_id)
        if call is None or (live_only and call.model.phase is Phase.ENDED):
            raise CallNotFound("Call not found or already ended")
        return call

    # -- running ---------------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Play every call until cancelled (webhook delivery included)."""
        # The bare transport, not a client: a client logs each URL, and a webhook URL
        # carries the call's secret token.
        async with httpx.AsyncHTTPTransport() as http, anyio.create_task_group() as tg:
            self._http = http
            self._tg = tg
            task_status.started()
            try:
                await self._schedule()
            finally:
                self._tg = None

    async def _schedule(self) -> None:
        while True:
            self._changed = anyio.Event()
            self._step(self.now())
            next_at = self._next_due()
            if next_at is None:
                await self._changed.wait()
                continue
            delay = (next_at - self.now()) / self.speed
            with anyio.move_on_after(max(0.0, delay)):
                await self._changed.wait()

    def _step(self, now: float) -> None:
        """Apply everything due by ``now``, earliest first."""
        while True:
            due: tuple[float, _Call, Any] | None = None
            for call in self.calls.values():
                timer = call.model.next_timer()
                if timer is not None and timer.at <= now and (due is None or timer.at < due[0]):
                    due = (timer.at, call, None)
                action = call.run.next_action(call.model)
                if action is not None and action[0] <= now and (due is None or action[0] < due[0]):
                    due = (action[0], call, action[1])
            if due is None:
                return
            at, call, action = due
            if action is None:
                call.model.advance(at)
            else:
                call.run.apply(call.model, action, at)
            self._after(call)

    def _next_due(self) -> float | None:
        moments: list[float] = []
        for call in self.calls.values():
            timer = call.model.next_timer()
            if timer is not None:
                moments.append(timer.at)
            action = call.run.next_action(call.model)
            if action is not None:
                moments.append(action[0])
        return min(moments) if moments else None

    def _after(self, call: _Call, taken: Sequence[ev.Event] = ()) -> None:
        if call.model.answered_at is not None and not call.charged:
            call.charged = True  # Kaphila deducts credits when a call is answered
            call.account.credits = max(0, call.account.credits - 1)
        self._flush(call, taken)
        self._poke()

    def _flush(self, call: _Call, taken: Sequence[ev.Event] = ()) -> None:
        """Send out the call's new events (``taken``: ones already taken from it)."""
        events = call.model.take_events()
        if taken:
            events = [*taken, *events]
        for event in events:
            self.events.append(event)
            if call.outbox is not None:
                call.outbox.send_nowait(event)
        if events and self._notices.watched:
            self._notify(
                call_notices(call.model, events, self.now(), callee=call.run.callee.answer)
            )
        for playback in call.model.take_finished():
            waiter = self._waiters.pop(playback.playback_id, None)
            if waiter is not None:
                waiter.set()
        if call.model.phase is Phase.ENDED and call.outbox is not None:
            call.outbox.close()
            call.outbox = None

    def _poke(self) -> None:
        if self._changed is not None:
            self._changed.set()

    # -- webhooks --------------------------------------------------------------------

    async def _deliver_in_order(
        self, url: str, events: MemoryObjectReceiveStream[ev.Event]
    ) -> None:
        async with events:
            held: ev.Event | None = None
            async for event in events:
                if held is None and self.faults.chance(self.faults.reorder):
                    held = event  # goes out after the next one
                    continue
                await self._send_webhook(url, event)
                if held is not None:
                    await self._send_webhook(url, held)
                    held = None
            if held is not None:
                await self._send_webhook(url, held)

    async def _send_webhook(self, url: str, event: ev.Event) -> None:
        faults = self.faults
        if faults.chance(faults.drop):
            self.undelivered.append(event)  # lost on the way
            return
        if (pause := faults.delay()) > 0:
            await anyio.sleep(pause)
        if not await self.deliver(url, event):
            self.undelivered.append(event)
        if faults.chance(faults.duplicate):
            await self.deliver(url, event)

    async def deliver(self, url: str, event: ev.Event) -> bool:
        """POST one webhook until a 2xx comes back (the one place webhooks leave)."""
        assert self._http is not None
        body = json.dumps(event.to_payload()).encode()
        timeout = {key: self.delivery_timeout for key in ("connect", "read", "write", "pool")}
        self._webhook_serial += 1
        msg_id = f"msg_{self._webhook_serial}"
        for attempt in range(self.delivery_attempts):
            headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json"}
            if self.webhook_secret is not None:
                stamp = int(time.time())
                headers["webhook-id"] = msg_id
                headers["webhook-timestamp"] = str(stamp)
                headers["webhook-signature"] = sign(self.webhook_secret, msg_id, stamp, body)
            request = httpx.Request(
                "POST", url, content=body, headers=headers, extensions={"timeout": timeout}
            )
            try:
                response = await self._http.handle_async_request(request)
                await response.aread()
                await response.aclose()
                if 200 <= response.status_code < 300:
                    return True
                reason = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                reason = type(exc).__name__
            logger.info(
                "webhook %s for call %s not acknowledged (%s), attempt %d",
                event.name,
                event.call_id,
                reason,
                attempt + 1,
            )
            await anyio.sleep(min(2.0, 0.05 * 2**attempt))
        return False


def _kaphila_number(value: str, field: str) -> str:
    """Kaphila's own rule (10-15 digits, no +), then a real validity check."""
    if not value.isdigit() or not 10 <= len(value) <= 15:
        raise BadRequest(f"Invalid {field}: use 10-15 digits without + (e.g. 16089270862)")
    try:
        return normalize_number(value)
    except ValueError:
        raise BadRequest(f"Invalid {field}: {value} is not a valid phone number") from None
