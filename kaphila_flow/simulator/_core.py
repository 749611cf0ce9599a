"""The simulator: the provider model served over HTTP, in real time scaled by a speed.

A thin host over ``Provider`` (the same model ``FakeKaphila`` hosts in memory): the
HTTP layer (``_http.py``) turns requests into commands for it, the shared
``ProviderHost`` lets its time pass, and each call's webhooks go out to its
``webhookUrl`` in order, retried until acknowledged, as Kaphila's at-least-once
delivery does. Deliveries run through a bounded pool (``delivery_concurrency`` at
once, one connection each), so thousands of calls never queue inside httpx.
A person may hold a phone (``Callee(answer="held")``) and act through ``answer_call``,
``decline_call``, ``press_keys`` and ``callee_hangs_up``; ``watch()`` shows every
admitted request and emitted event as it happens (the dev phone's feed).
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, TypeVar

import anyio
import anyio.abc
import httpx

from .. import _events as ev
from .._callees import Callee
from .._commands import Command, MakeCall, MakeCallReply, Play, PlaybackReply, Voice
from .._metrics import SimulatorMetrics
from .._model import SpeechTiming
from .._numbers import normalize_number
from .._provider import DEFAULT_KEY, Account, AccountState, Faults, Provider, ProviderCall, Webhook
from .._provider._host import ProviderHost
from .._signing import sign
from ._delivery import Delivery
from ._notices import (
    DEFAULT_FEED_LIMIT,
    Notice,
    NoticeFeed,
    NoticeHub,
    call_notices,
    request_notice,
)
from ._wire11 import DeliveryFailed, HttpxPoster, Poster

__all__ = ["DEFAULT_KEY", "INSTANT", "USER_AGENT", "Simulator"]

logger = logging.getLogger("kaphila_flow.simulator")

R = TypeVar("R")

USER_AGENT = "Kaphila-API-API/2.0"
#: A speed at which a 30-second call takes about 30 milliseconds.
INSTANT = 1000.0
#: Webhook POSTs in flight at once per receiver (each worker owns one connection).
DELIVERY_CONCURRENCY = 64
#: Events remembered in ``events`` (every webhook the simulator sent or tried).
EVENT_LOG_LIMIT = 100_000
#: How a person answers: themselves, their voicemail, or so that AMD cannot tell.
AnswerHow = Literal["human", "machine", "unknown"]


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
        delivery_concurrency: int = DELIVERY_CONCURRENCY,
        faults: Faults | None = None,
        webhook_secret: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not speed > 0:
            raise ValueError("speed must be a positive factor (1 = real time)")
        if delivery_concurrency < 1:
            raise ValueError("delivery_concurrency must be at least 1")
        self.provider = Provider(
            accounts=accounts,
            callees=callees,
            default_callee=default_callee,
            speech=speech,
            faults=faults,
        )
        self.host = ProviderHost(
            self.provider, origin=time.time(), speed=speed, on_webhooks=self._enqueue
        )
        self.delivery_attempts = delivery_attempts
        self.delivery_timeout = delivery_timeout
        self.delivery_concurrency = delivery_concurrency
        #: Sign webhooks (Standard Webhooks) with this secret, as a signing proxy would.
        self.webhook_secret = webhook_secret
        #: Requests admitted (past auth, limits and refusals): (path, body), in order.
        self.requests: list[tuple[str, dict[str, Any]]] = []
        #: Every webhook event the simulator sent or tried to send, in order.
        self.events: deque[ev.Event] = deque(maxlen=EVENT_LOG_LIMIT)
        #: Webhooks that were never acknowledged after every attempt (or were dropped).
        self.undelivered: list[ev.Event] = []
        self._transport = transport
        self._delivery = Delivery(
            self._send,
            concurrency=delivery_concurrency,
            timeout=delivery_timeout,
            transport=transport,
        )
        #: Its own Prometheus counters, served at ``/metrics``.
        self.metrics = SimulatorMetrics()
        self._webhook_serial = 0
        self._notices = NoticeHub()
        self.provider.on_events = self._events_emitted

    def __repr__(self) -> str:
        return f"<Simulator {len(self.calls)} calls, speed {self.speed:g}>"

    # -- the model's state -----------------------------------------------------------

    @property
    def speed(self) -> float:
        return self.host.speed

    @property
    def accounts(self) -> dict[str, AccountState]:
        return self.provider.accounts

    @property
    def callees(self) -> dict[str, Callee]:
        return self.provider.callees

    @property
    def default_callee(self) -> Callee:
        return self.provider.default_callee

    @property
    def faults(self) -> Faults:
        return self.provider.faults

    @property
    def speech(self) -> SpeechTiming:
        return self.provider.speech

    @property
    def calls(self) -> dict[str, ProviderCall]:
        return self.provider.calls

    def now(self) -> float:
        """Simulated time: wall time at start plus the loop's time elapsed times ``speed``."""
        return self.host.now()

    def callee(self, number: str, callee: Callee) -> None:
        """Set what the phone at ``number`` does."""
        self.provider.callees[normalize_number(number)] = callee

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

    def _events_emitted(self, call: ProviderCall, events: list[ev.Event], now: float) -> None:
        if self._notices.watched:
            self._notify(call_notices(call.model, events, now, callee=call.run.callee.answer))

    def record_request(self, path: str, body: dict[str, Any]) -> None:
        """An admitted request's body, read: kept in ``requests`` and shown to watchers."""
        self.requests.append((path, body))
        if self._notices.watched:
            self._notify([request_notice(self.now(), path, body)])

    # -- requests (each may raise an ApiError, which the HTTP layer turns into JSON) ---

    def authenticate(self, api_key: str | None) -> AccountState:
        return self.provider.authenticate(api_key)

    def admit(self, account: AccountState, path: str) -> None:
        """The one place an API request is admitted (rate limit; fault switches)."""
        self.provider.admit(account, path, self.now())

    def make_call(self, account: AccountState, command: MakeCall) -> MakeCallReply:
        reply = self.handle(account, command)
        self.metrics.call_placed()
        return reply

    async def playback(self, account: AccountState, command: Voice | Play) -> PlaybackReply:
        """``/voice`` and ``/play`` answer once the playback is over (404 if cut)."""
        return await self.host.request(account, command)

    def handle(self, account: AccountState, command: Command[R]) -> R:
        """Any request but a playback: carried out now."""
        return self.host.handle(account, command)

    def snapshot(self, call_id: str) -> dict[str, Any]:
        return self.provider.snapshot(call_id)

    # -- the callee, by hand (the dev phone) -------------------------------------------

    def answer_call(self, call_id: str, how: AnswerHow = "human") -> None:
        """The person at the phone picks up."""
        self.provider.answer_call(call_id, self.now(), how)
        self.host.poke()

    def decline_call(self, call_id: str) -> None:
        """The person at the phone rejects the ringing call (busy)."""
        self.provider.decline_call(call_id, self.now())
        self.host.poke()

    def press_keys(self, call_id: str, keys: str) -> None:
        """The person presses ``keys``, one after another."""
        self.provider.press_keys(call_id, keys, self.now())
        self.host.poke()

    def callee_hangs_up(self, call_id: str) -> None:
        """The person at the phone hangs up."""
        self.provider.callee_hangs_up(call_id, self.now())
        self.host.poke()

    # -- running ---------------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Play every call until cancelled (webhook delivery included)."""
        async with anyio.create_task_group() as tg:
            await tg.start(self._delivery.run)
            await tg.start(self.host.run)
            task_status.started()
            await anyio.sleep_forever()

    # -- webhooks --------------------------------------------------------------------

    def _enqueue(self, webhooks: list[Webhook]) -> None:
        """Due webhooks: each call's go out one at a time, in order."""
        for webhook in webhooks:
            self.events.append(webhook.event)
            self._delivery.put(webhook)

    async def _send(self, webhook: Webhook, poster: Poster) -> None:
        acknowledged = await self.deliver(
            webhook.url, webhook.event, webhook.message_id, poster=poster
        )
        self.metrics.webhook(acknowledged)
        if not acknowledged:
            self.undelivered.append(webhook.event)

    async def deliver(
        self, url: str, event: ev.Event, message_id: str = "", *, poster: Poster | None = None
    ) -> bool:
        """POST one webhook until a 2xx comes back (the one place webhooks leave)."""
        if poster is None:
            async with httpx.AsyncHTTPTransport() as own:
                transport = self._transport or own
                return await self.deliver(
                    url, event, message_id, poster=HttpxPoster(transport, self.delivery_timeout)
                )
        body = json.dumps(event.to_payload()).encode()
        if not message_id:
            self._webhook_serial += 1
            message_id = f"msg_x{self._webhook_serial}"
        msg_id = message_id
        for attempt in range(self.delivery_attempts):
            headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json"}
            if self.webhook_secret is not None:
                stamp = int(self.now())
                headers["webhook-id"] = msg_id
                headers["webhook-timestamp"] = str(stamp)
                headers["webhook-signature"] = sign(self.webhook_secret, msg_id, stamp, body)
            try:
                status = await poster.post(url, body, headers)
                if 200 <= status < 300:
                    return True
                reason = f"HTTP {status}"
            except DeliveryFailed as exc:
                reason = str(exc)
            logger.warning(
                "webhook %s for call %s to %s failed (%s), attempt %d of %d",
                event.name,
                event.call_id,
                _redacted(url),
                reason,
                attempt + 1,
                self.delivery_attempts,
                extra={"call_id": event.call_id},
            )
            await anyio.sleep(min(2.0, 0.05 * 2**attempt) / max(1.0, self.speed / 10))
        return False


def _redacted(url: str) -> str:
    """A webhook URL without its per-call secret (the part after the last dot)."""
    base, _, token = url.rpartition("/")
    ref = token.partition(".")[0]
    return f"{base}/{ref}.<secret>" if "." in token else url
