"""``Runtime``: pairs each flow coroutine with its call id and resumes it on events.

One task per live call, a mailbox per call (``CallSession``), one timer task for every
deadline, and one entry for every inbound event: ``dispatch``.
"""

from __future__ import annotations

import heapq
import hmac
import inspect
import logging
import math
import secrets
import signal
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.abc
from anyio.abc import TaskGroup

from . import _events as ev
from ._call import Call
from ._clock import Clock, SystemClock
from ._commands import Command, Hangup, MakeCall, Voice
from ._exceptions import ApiError, CallEnded, CallNotFound, KaphilaError
from ._instruments import Instruments
from ._interrupt import drive
from ._logging import call_fields
from ._metrics import Metrics
from ._numbers import normalize_number
from ._reconcile import answer_was_lost, find_placed_call
from ._result import CallResult, CallStatus, TranscriptEntry, build_result
from ._session import CallSession, Delivery
from ._signing import WebhookSigner
from ._store import CallStore, SqliteCallStore, StoredCall
from ._tracing import TracerProvider
from ._transport import Transport

__all__ = ["CallHandle", "DeadLetter", "Flow", "Runtime"]

logger = logging.getLogger("kaphila_flow.runtime")
R = TypeVar("R")

#: A flow: ``async def flow(call: Call) -> Any``.
Flow = Callable[[Call], Awaitable[Any]]

TOMBSTONE_LIMIT = 10_000
ORPHAN_LIMIT = 1_000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event no live call took, kept so nothing is silently lost."""

    event: ev.Event
    reason: str
    received_at: float


class CallHandle:
    """A call started with ``Runtime.start``; ``await handle.result()`` for its end."""

    # Events are made only when someone waits: a parked call should cost little.
    __slots__ = ("_done", "_placed", "_placed_set", "_result", "_session")

    def __init__(self, session: CallSession) -> None:
        self._session = session
        self._done: anyio.Event | None = None
        self._placed: anyio.Event | None = None
        self._placed_set = False
        self._result: CallResult | None = None

    def __repr__(self) -> str:
        return f"<CallHandle {self.call_id or 'placing'} to {self.number}>"

    @property
    def call_id(self) -> str | None:
        return self._session.call_id

    @property
    def number(self) -> str:
        return self._session.number

    @property
    def done(self) -> bool:
        return self._result is not None

    async def placed(self) -> str | None:
        """Wait for ``/makecall``: the call id, or ``None`` if the call was not placed."""
        if not self._placed_set:
            if self._placed is None:
                self._placed = anyio.Event()
            await self._placed.wait()
        return self._session.call_id

    async def result(self) -> CallResult:
        if self._result is None:
            if self._done is None:
                self._done = anyio.Event()
            await self._done.wait()
        assert self._result is not None
        return self._result

    def _mark_placed(self) -> None:
        self._placed_set = True
        if self._placed is not None:
            self._placed.set()

    def _finish(self, result: CallResult) -> None:
        self._result = result
        self._mark_placed()
        if self._done is not None:
            self._done.set()


def _only_call_ended(exc: BaseException) -> bool:
    if isinstance(exc, CallEnded):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_call_ended(inner) for inner in exc.exceptions)
    return False


class Runtime:
    """Runs flows: ``async with Runtime(transport) as runtime: await runtime.dial(...)``."""

    def __init__(
        self,
        transport: Transport,
        *,
        webhook_url: str | None = None,
        caller_id: str | None = None,
        voice_name: str | None = None,
        clock: Clock | None = None,
        gather_grace: float = 5.0,
        ring_grace: float = 15.0,
        hangup_timeout: float = 10.0,
        dead_letter_limit: int = 1_000,
        owns_transport: bool = False,
        on_transcript: Callable[[CallHandle, TranscriptEntry], None] | None = None,
        webhook_secrets: Sequence[str] | None = None,
        store: CallStore | str | Path | None = None,
        apology: str | None = None,
        metrics: Metrics | None = None,
        tracing: bool | TracerProvider = False,
    ) -> None:
        self.transport = transport
        self._instruments = Instruments(transport, metrics, tracing)
        #: Prometheus metrics of this runtime and its client, served at ``/metrics``.
        self.metrics = self._instruments.metrics
        self.webhook_url = webhook_url.rstrip("/") if webhook_url else None
        self.caller_id = normalize_number(caller_id) if caller_id else None
        self.voice_name = voice_name
        self.clock: Clock = clock or SystemClock()
        self.gather_grace = gather_grace
        self.ring_grace = ring_grace
        self.hangup_timeout = hangup_timeout
        self.dead_letters: deque[DeadLetter] = deque(maxlen=dead_letter_limit)
        self._owns_transport = owns_transport
        #: Live calls on disk, so a restarted process can hang up what it owned.
        self.store: CallStore | None = (
            SqliteCallStore(store) if isinstance(store, str | Path) else store
        )
        #: Spoken to calls found live after a restart, before they are hung up.
        self.apology = apology
        #: Results of calls a previous process left live, hung up by this one.
        self.recovered: list[CallResult] = []
        self._accepting = True
        self._idle: anyio.Event | None = None
        #: Standard Webhooks signature check, on when secrets are given.
        self.webhook_signer = WebhookSigner(webhook_secrets) if webhook_secrets else None
        #: Called with each transcript entry as it happens (progress displays, logs).
        self.on_transcript = on_transcript
        self._calls: dict[str, CallSession] = {}
        self._by_ref: dict[str, CallSession] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._finished_tokens: OrderedDict[str, str] = OrderedDict()
        self._orphans: OrderedDict[str, list[ev.Event]] = OrderedDict()
        self._placing = 0
        self._task_group: TaskGroup | None = None
        self._stack: AsyncExitStack | None = None
        self._timers: list[tuple[float, int, CallSession]] = []
        self._timer_seq = 0
        self._timer_scope: anyio.CancelScope | None = None
        self._timer_at = math.inf
        self._timer_task_scope: anyio.CancelScope | None = None
        self._closing = False

    def __repr__(self) -> str:
        return f"<Runtime live_calls={len(self._calls)}>"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **options: Any) -> Runtime:
        """A runtime over the real API, configured by ``KAPHILA_*`` variables."""
        from ._client import KaphilaClient
        from ._config import Settings

        settings = Settings.from_env(env)
        client = KaphilaClient(settings.api_key, base_url=settings.base_url)
        options.setdefault("webhook_url", settings.webhook_url)
        options.setdefault("caller_id", settings.caller_id)
        options.setdefault("voice_name", settings.voice_name)
        options.setdefault("gather_grace", settings.gather_grace)
        return cls(client, owns_transport=True, **options)

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> Runtime:
        if self._task_group is not None:
            raise RuntimeError("this Runtime is already running")
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            self._task_group = await stack.enter_async_context(anyio.create_task_group())
            self._closing = False
            self._timer_task_scope = anyio.CancelScope()
            self._task_group.start_soon(self._run_timers)
            self._accepting = True
            await self._recover()
        except BaseException:
            await stack.__aexit__(None, None, None)
            raise
        self._stack = stack
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        stack, self._stack = self._stack, None
        try:
            # Live calls run to their end; the timer task stops with the last of them.
            self._closing = True
            self._stop_timers_when_idle()
            if stack is not None:
                return await stack.__aexit__(*exc_info)
            return None
        finally:
            self._task_group = None
            if self._owns_transport:
                await self.transport.aclose()

    def _stop_timers_when_idle(self) -> None:
        if self._closing and not self._by_ref and self._timer_task_scope is not None:
            self._timer_task_scope.cancel()

    async def aclose(self) -> None:
        await self.transport.aclose()

    # -- the webhook receiver ----------------------------------------------------------

    def receiver(self, *, path: str = "/webhooks", app_class: Any = None) -> Any:
        """The webhook receiver as a Quart (ASGI) app, to serve or mount."""
        from ._receiver import create_receiver

        extra: dict[str, Any] = {"app_class": app_class} if app_class else {}
        return create_receiver(self, path=path, signer=self.webhook_signer, **extra)

    @property
    def asgi_app(self) -> Any:
        return self.receiver()

    async def serve(
        self,
        bind: str = "127.0.0.1:8080",
        *,
        path: str = "/webhooks",
        handle_signals: bool = False,
        shutdown_grace: float = 30.0,
        task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve the receiver with hypercorn and run the runtime until cancelled.

        Works under asyncio and trio. ``task_status`` reports the bound URL of the
        webhook path (useful with port 0). With ``handle_signals`` (main thread only),
        SIGTERM or SIGINT stops new calls, lets live flows finish within
        ``shutdown_grace`` seconds, hangs up the rest, and returns.
        """
        if self._task_group is None:
            async with self:
                await self._serve(bind, path, handle_signals, shutdown_grace, task_status)
        else:
            await self._serve(bind, path, handle_signals, shutdown_grace, task_status)

    async def _serve(
        self,
        bind: str,
        path: str,
        handle_signals: bool,
        grace: float,
        task_status: anyio.abc.TaskStatus[str],
    ) -> None:
        from ._serve import serve_receiver

        async with anyio.create_task_group() as tg:
            url = await tg.start(partial(serve_receiver, self, bind, path=path))
            task_status.started(url)
            if not handle_signals:
                await anyio.sleep_forever()
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for signum in signals:
                    logger.warning("%s: shutting down", signal.Signals(signum).name)
                    break
            # The receiver stays up while live flows finish: they still need webhooks.
            await self.shutdown(grace)
            tg.cancel_scope.cancel()

    async def shutdown(self, grace: float = 30.0) -> None:
        """Stop placing calls, give live flows ``grace`` seconds, then hang up the rest.

        Every call still gets its result (``failed``, ``CallEnded("runtime shut down")``
        for those cut short); none is left live with no flow in charge.
        """
        self._accepting = False
        if not self._by_ref:
            return
        self._idle = anyio.Event()
        with anyio.move_on_after(grace):
            await self._idle.wait()
        for session in list(self._by_ref.values()):
            logger.warning(
                "call %s: shutting down, hanging up",
                session.call_id or "(placing)",
                extra=call_fields(session.call_id),
            )
            session.shut_down = True
            session.mark_ended(None, reason="runtime shut down")
        if self._by_ref:
            with anyio.move_on_after(self.hangup_timeout + 1):
                await self._idle.wait()

    async def _recover(self) -> None:
        if self.store is None:
            return
        for stored in self.store.leftovers():
            error = CallEnded(stored.call_id, "left live by a previous run; hung up on restart")
            try:
                if self.apology:
                    with anyio.move_on_after(self.hangup_timeout):
                        await self.send(Voice(stored.call_id, self.apology))
                with anyio.move_on_after(self.hangup_timeout):
                    await self.send(Hangup(stored.call_id))
            except CallNotFound:
                error = CallEnded(stored.call_id, "left live by a previous run; already over")
            except KaphilaError as exc:
                logger.error(
                    "call %s: could not hang up after restart: %s",
                    stored.call_id,
                    exc,
                    extra=call_fields(stored.call_id),
                )
            self.store.remove(stored.call_id)
            logger.warning(
                "call %s to %s: %s",
                stored.call_id,
                stored.number,
                error.reason,
                extra=call_fields(stored.call_id),
            )
            self.recovered.append(
                build_result(
                    call_id=stored.call_id,
                    number=stored.number,
                    status="failed",
                    value=None,
                    error=error,
                    amd=None,
                    started_at=stored.started_at,
                    answered_at=None,
                    ended_at=self.clock.wall_time(),
                    forwarded_to=None,
                    end_reason=error.reason,
                    transcript=[],
                    recordings=[],
                )
            )

    # -- placing calls ---------------------------------------------------------------

    async def start(
        self,
        number: str,
        flow: Flow,
        *,
        caller_id: str | None = None,
        use_amd: bool = False,
        voice: str | None = None,
        ring_timeout: int = 30,
        on_machine: Flow | str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> CallHandle:
        """Place a call and run ``flow`` on it in the background."""
        if self._task_group is None:
            raise RuntimeError("start() needs a running runtime: use `async with runtime:`")
        if not self._accepting:
            raise RuntimeError("the runtime is shutting down: no new calls")
        if not callable(flow):
            raise TypeError(f"flow must be an async function taking a Call, not {flow!r}")
        if isinstance(ring_timeout, bool) or not isinstance(ring_timeout, int) or ring_timeout < 1:
            raise ValueError(
                f"ring_timeout must be a whole number of seconds, not {ring_timeout!r}"
            )
        target = normalize_number(number)
        from_number = normalize_number(caller_id) if caller_id else self.caller_id
        ref = secrets.token_hex(8)
        session = CallSession(
            number=target, token=f"{ref}.{secrets.token_urlsafe(24)}", clock=self.clock
        )
        session.on_deadline = self._schedule
        self._by_ref[ref] = session
        session.caller_id = from_number
        request = MakeCall(
            number=target,
            webhook_url=f"{self.webhook_url}/{session.token}" if self.webhook_url else None,
            caller_id=from_number,
            use_amd=use_amd,
            voice_name=voice or self.voice_name,
            ring_timeout=ring_timeout,
        )
        handle = CallHandle(session)
        if self.on_transcript is not None:
            observer = self.on_transcript
            session.observer = lambda _session, entry: observer(handle, entry)
        self._placing += 1
        self._task_group.start_soon(
            self._run_call, session, request, flow, on_machine, data, handle
        )
        return handle

    async def dial(self, number: str, flow: Flow, **options: Any) -> CallResult:
        """Place a call, run ``flow`` on it, and return how it ended."""
        if self._task_group is None:
            async with self:
                return await self.dial(number, flow, **options)
        handle = await self.start(number, flow, **options)
        return await handle.result()

    # -- inbound events --------------------------------------------------------------

    def dispatch(self, event: ev.Event, *, token: str | None = None) -> Delivery:
        """Hand an event to its call. Never blocks; never raises for an unknown call.

        ``token`` is the per-call secret from the webhook URL; when given, the event
        must belong to that call.
        """
        return self._instruments.webhook(event, self._dispatch(event, token))

    def _dispatch(self, event: ev.Event, token: str | None) -> Delivery:
        if token is not None:
            session = self.session_for_token(token)
            if session is None:
                if self.finished_token(token):
                    self._dead_letter(event, "the call has finished")
                    return Delivery.FINISHED_CALL
                return Delivery.REJECTED
            if session.call_id is not None and session.call_id != event.call_id:
                self._dead_letter(event, "call id does not match its webhook token")
                return Delivery.UNKNOWN_CALL
            return session.deliver(event)
        session = self._calls.get(event.call_id)
        if session is not None:
            return session.deliver(event)
        if event.call_id in self._finished:
            self._dead_letter(event, "the call has finished")
            return Delivery.FINISHED_CALL
        if self._placing:
            # It may belong to a call whose /makecall answer has not come back yet.
            self._orphans.setdefault(event.call_id, []).append(event)
            if len(self._orphans) > ORPHAN_LIMIT:
                _, dropped = self._orphans.popitem(last=False)
                for orphan in dropped:
                    self._dead_letter(orphan, "unknown call")
            return Delivery.UNKNOWN_CALL
        self._dead_letter(event, "unknown call")
        return Delivery.UNKNOWN_CALL

    def session_for_token(self, token: str) -> CallSession | None:
        """The call a webhook token belongs to, compared in constant time."""
        ref, _, _secret = token.partition(".")
        session = self._by_ref.get(ref)
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

    @property
    def live_calls(self) -> int:
        return len(self._by_ref)

    # -- outbound commands -----------------------------------------------------------

    async def send(self, command: Command[R]) -> R:
        """Every command leaves through here (one place for limits and logging)."""
        with self._instruments.command(command):
            return await self.transport.send(command)

    # -- one call --------------------------------------------------------------------

    async def _run_call(
        self,
        session: CallSession,
        request: MakeCall,
        flow: Flow,
        on_machine: Flow | str | None,
        data: Mapping[str, Any] | None,
        handle: CallHandle,
    ) -> None:
        self._instruments.call_started(flow)
        status: CallStatus = "failed"
        value: Any = None
        error: BaseException | None = None
        placed = False
        try:
            try:
                call_id = await self._place(session, request)
            except KaphilaError as exc:
                error = exc
                # Silence (a timeout, a broken connection) leaves the call's fate open;
                # a provider that answered 5xx said it failed, even if it cannot be sure.
                if answer_was_lost(exc) and not isinstance(exc, ApiError):
                    status = "unknown"
                    session.note("ended", "placement unknown: the /makecall answer was lost")
                return
            finally:
                self._placing -= 1
            placed = True
            self._register(session, call_id)
            handle._mark_placed()
            answer = await session.next_event(
                (ev.CallAnswered, ev.CallEnded, ev.CallTimeout),
                until=self.clock.now() + request.ring_timeout + self.ring_grace,
                end_raises=False,
                waiting_for="the callee to answer",
            )
            if not isinstance(answer, ev.CallAnswered):
                if session.shut_down:
                    error = session.ended_error()
                    return
                status = "no-answer"
                session.note("ended", "no answer")
                return
            session.answered_at = self.clock.wall_time()
            session.amd = answer.amd
            session.note("answered", f"AMD {answer.amd.status}" if answer.amd else "")
            chosen = self._choose_flow(session, flow, on_machine)
            status, value, error = await self._run_flow(session, chosen, data)
        except BaseException as exc:  # cancelled by shutdown: record, then re-raise
            error = exc
            status = "failed"
            raise
        finally:
            with anyio.CancelScope(shield=True):
                if placed:
                    await self._hang_up_if_live(session)
                self._finish(session, handle, status, value, error)

    async def _place(self, session: CallSession, request: MakeCall) -> str:
        """``/makecall``, never repeated; a lost answer is reconciled, not retried."""
        try:
            reply = await self.send(request)
        except KaphilaError as exc:
            if not answer_was_lost(exc):
                logger.warning("call to %s could not be placed: %s", session.number, exc)
                raise
            found = await find_placed_call(session, self.transport, self._calls.keys())
            if found is None:
                logger.error(
                    "call to %s: the /makecall answer was lost (%s) and no placed call was "
                    "found; it may or may not be ringing",
                    session.number,
                    type(exc).__name__,
                )
                raise
            logger.warning(
                "call to %s: the /makecall answer was lost; adopted call %s", session.number, found
            )
            return found
        return reply.call_id

    def _choose_flow(self, session: CallSession, flow: Flow, on_machine: Flow | str | None) -> Flow:
        if on_machine is None or session.amd is None or not session.amd.is_machine:
            return flow
        if isinstance(on_machine, str):
            message = on_machine

            async def leave_voicemail(call: Call) -> str:
                await call.leave_voicemail(message)
                return "voicemail"

            return leave_voicemail
        return on_machine

    async def _run_flow(
        self, session: CallSession, flow: Flow, data: Mapping[str, Any] | None
    ) -> tuple[CallStatus, Any, BaseException | None]:
        call = Call(self, session, data)
        coro = flow(call)
        if not inspect.iscoroutine(coro):
            raise TypeError(f"flow {flow!r} must be an `async def` function taking a Call")
        scope = anyio.CancelScope()
        session.flow_scope = scope
        try:
            with scope:
                value = await drive(coro, session.end_for)
            cut_short = session.ended_error() if session.shut_down else None
            return self._status_after_flow(session), value, cut_short
        except Exception as exc:
            if _only_call_ended(exc):
                status = self._status_after_flow(session)
                return status, None, exc if session.shut_down else None
            logger.error(
                "flow on call %s raised %s", session.call_id, type(exc).__name__, exc_info=exc
            )
            return "failed", None, exc
        finally:
            session.flow_scope = None

    @staticmethod
    def _status_after_flow(session: CallSession) -> CallStatus:
        if session.shut_down:
            return "failed"
        return "hung-up" if session.ended and not session.ended_by_flow else "completed"

    async def _hang_up_if_live(self, session: CallSession) -> None:
        if session.forwarded_to is not None or session.call_id is None:
            return
        if session.ended and not session.shut_down:
            return
        session.ended_by_flow = True
        with anyio.move_on_after(self.hangup_timeout):
            try:
                await self.send(Hangup(session.call_id))
                session.note("hangup", "by the runtime")
            except CallNotFound:
                pass  # already gone
            except KaphilaError as exc:
                logger.error("call %s: hangup failed: %s", session.call_id, exc)
        session.mark_ended(None, reason="hung up by the runtime")

    def _register(self, session: CallSession, call_id: str) -> None:
        session.call_id = call_id
        self._instruments.call_placed(call_id)
        self._calls[call_id] = session
        if self.store is not None:
            self.store.add(StoredCall(call_id, session.number, session.started_at))
        early = [e for e in session.inbox if e.call_id != call_id]
        for stray in early:  # came with this call's token but another call id
            session.inbox.remove(stray)
            self._dead_letter(stray, "call id does not match its webhook token")
        for orphan in self._orphans.pop(call_id, []):
            session.deliver(orphan)
        if not self._placing:
            for orphans in self._orphans.values():
                for orphan in orphans:
                    self._dead_letter(orphan, "unknown call")
            self._orphans.clear()

    def _finish(
        self,
        session: CallSession,
        handle: CallHandle,
        status: CallStatus,
        value: Any,
        error: BaseException | None,
    ) -> None:
        ref = session.token.partition(".")[0]
        self._by_ref.pop(ref, None)
        self._finished_tokens[ref] = session.token
        if len(self._finished_tokens) > TOMBSTONE_LIMIT:
            self._finished_tokens.popitem(last=False)
        if session.call_id is not None:
            self._calls.pop(session.call_id, None)
            if self.store is not None:
                self.store.remove(session.call_id)
            self._finished[session.call_id] = None
            if len(self._finished) > TOMBSTONE_LIMIT:
                self._finished.popitem(last=False)
        end = session.end_event
        if status != "no-answer":
            session.note("ended", status)
        result = build_result(
            call_id=session.call_id,
            number=session.number,
            status=status,
            value=value,
            error=error,
            amd=session.amd,
            started_at=session.started_at,
            answered_at=session.answered_at,
            ended_at=self.clock.wall_time(),
            forwarded_to=session.forwarded_to,
            end_reason=(end.end_reason if isinstance(end, ev.CallEnded) else None)
            or session.end_reason,
            transcript=session.transcript,
            recordings=session.recordings,
        )
        handle._finish(result)
        self._instruments.call_finished(session.call_id, status, error)
        self._stop_timers_when_idle()
        if not self._by_ref and self._idle is not None:
            self._idle.set()

    def _dead_letter(self, event: ev.Event, reason: str) -> None:
        logger.info(
            "event %s for call %s kept as a dead letter: %s",
            event.name,
            event.call_id,
            reason,
            extra=call_fields(event.call_id),
        )
        self.dead_letters.append(DeadLetter(event, reason, self.clock.wall_time()))

    # -- deadlines -------------------------------------------------------------------

    def _schedule(self, session: CallSession, at: float) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (at, self._timer_seq, session))
        if at < self._timer_at and self._timer_scope is not None:
            self._timer_scope.cancel()

    async def _run_timers(self) -> None:
        assert self._timer_task_scope is not None
        with self._timer_task_scope:
            await self._timer_loop()

    async def _timer_loop(self) -> None:
        while True:
            now = self.clock.now()
            while self._timers and self._timers[0][0] <= now:
                _, _, session = heapq.heappop(self._timers)
                session.notify()
            self._timer_at = self._timers[0][0] if self._timers else math.inf
            with anyio.CancelScope() as scope:
                self._timer_scope = scope
                await self.clock.sleep_until(self._timer_at)
            self._timer_scope = None
