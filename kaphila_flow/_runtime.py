"""``Runtime``: pairs each flow coroutine with its call id and resumes it on events.

One task per live call, a mailbox per call (``CallSession``), and one entry for every
inbound event: ``dispatch``. The parts, each with one job:

* ``_calls.CallTable``: the table of calls and the rules of who gets an event;
* ``_deadlines.Deadlines``: the one timer task for every call's deadline;
* ``_intake.receive_webhook``: a webhook POST in, a status out (the receiver's logic);
* ``_serve``: hypercorn, and shutting down on signals;
* this module: placing calls and running flows on them.

Time is the event loop's (``anyio.current_time``); wall-clock moments in results come
from a ``WallClock`` that follows it, so tests run in virtual time.
"""

from __future__ import annotations

import inspect
import logging
import secrets
import warnings
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

import anyio
import anyio.abc
from anyio.abc import TaskGroup

from . import _events as ev
from ._call import Call, WaitingForKeys
from ._calls import TOMBSTONE_LIMIT, CallTable, DeadLetter
from ._commands import Command, Hangup, MakeCall
from ._deadlines import Deadlines
from ._exceptions import CallEnded, CallNotFound, KaphilaError
from ._instruments import Instruments
from ._intake import MAX_BODY_BYTES, IntakeReply, receive_webhook
from ._interrupt import drive
from ._logging import call_fields
from ._metrics import Metrics
from ._numbers import check_region, normalize_number
from ._reconcile import (
    RECONCILE_WAIT,
    answer_was_lost,
    find_placed_call,
    placed_despite_error,
)
from ._recovery import PlacementWindow, recover
from ._result import CallResult, CallStatus, TranscriptEntry, build_result
from ._session import CallHost, CallSession, Delivery
from ._signing import WebhookSigner
from ._store import CallIntent, CallStore, IntentStore, SqliteCallStore, StoredCall
from ._tracing import TracerProvider
from ._transport import Transport
from ._wallclock import WallClock, running_clock

__all__ = ["CallHandle", "DeadLetter", "Flow", "Runtime"]

logger = logging.getLogger("kaphila_flow.runtime")
R = TypeVar("R")

#: A flow: ``async def flow(call: Call) -> Any``.
Flow = Callable[[Call], Awaitable[Any]]


class CallHandle:
    """A call started with ``Runtime.start``; ``await handle.result()`` for its end."""

    # Events are made only when someone waits: a parked call should cost little.
    __slots__ = (
        "_callbacks",
        "_done",
        "_placed",
        "_result",
        "_session",
        "webhook_url",
    )

    def __init__(self, session: CallSession, webhook_url: str | None = None) -> None:
        self._session = session
        #: Where this call's webhooks go (its token is the last path segment); a secret.
        self.webhook_url = webhook_url
        self._callbacks: list[Callable[[CallHandle], None]] | None = None
        self._done: anyio.Event | None = None
        #: ``True`` once ``/makecall`` is over, else the event a ``placed()`` waits on
        #: (``None`` while no one waits).
        self._placed: anyio.Event | bool | None = None
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

    @property
    def outcome(self) -> CallResult | None:
        """The call's result once it has ended, else ``None`` (never waits)."""
        return self._result

    @property
    def transcript(self) -> list[TranscriptEntry]:
        """What happened on the call so far."""
        return list(self._session.transcript)

    @property
    def queued(self) -> int:
        """Events of this call waiting for the flow to take them (at most 256)."""
        return len(self._session.inbox)

    @property
    def dropped(self) -> int:
        """Events and transcript entries this call's memory bounds dropped so far."""
        return self._session.dropped

    @property
    def waiting_for(self) -> str | None:
        """What the flow awaits right now, in words (``None`` when it is not waiting)."""
        waiting = self._session.waiting_for
        return None if waiting is None else str(waiting)

    @property
    def parked(self) -> bool:
        """Whether the flow is blocked waiting for an event and nothing has woken it."""
        return self._session.parked and self._session.waiting_for is not None

    @property
    def awaiting_keys(self) -> bool:
        """Whether the flow waits right now for the outcome of a gather (the caller's keys)."""
        session = self._session
        return session.parked and isinstance(session.waiting_for, WaitingForKeys)

    def add_wait_callback(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` each time the flow starts waiting for an event."""
        self._session.on_wait = callback

    def add_done_callback(self, callback: Callable[[CallHandle], None]) -> None:
        """Call ``callback(handle)`` when the call has its result (at once if it has)."""
        if self._result is not None:
            callback(self)
            return
        if self._callbacks is None:
            self._callbacks = []
        self._callbacks.append(callback)

    async def placed(self) -> str | None:
        """Wait for ``/makecall``: the call id, or ``None`` if the call was not placed."""
        placed = self._placed
        if placed is not True:
            if not isinstance(placed, anyio.Event):
                self._placed = placed = anyio.Event()
            await placed.wait()
        return self._session.call_id

    async def result(self) -> CallResult:
        if self._result is None:
            if self._done is None:
                self._done = anyio.Event()
            await self._done.wait()
        assert self._result is not None
        return self._result

    def _mark_placed(self) -> None:
        placed, self._placed = self._placed, True
        if isinstance(placed, anyio.Event):
            placed.set()

    def _finish(self, result: CallResult) -> None:
        self._result = result
        self._mark_placed()
        if self._done is not None:
            self._done.set()
        for callback in self._callbacks or ():
            callback(self)


#: How a call ended: status, value, error, and whether its placement is unsettled.
_Ending = tuple[CallStatus, Any, "BaseException | None", bool]
_FAILED: _Ending = ("failed", None, None, False)
#: What ends the ringing (one tuple for every call, not one per ring).
_RING_NEWS: tuple[type[ev.Event], ...] = (ev.CallAnswered, ev.CallEnded, ev.CallTimeout)
#: Every call task's name (a name spelt once, not formatted per call).
_CALL_TASK = "kaphila_flow.Runtime._run_call"
#: Seconds the receiver waits for a request's whole body (Kaphila's own timeout is 5 s).
BODY_TIMEOUT = 10.0
#: How long a call ended on the other side waits for the provider's call.ended.
END_NEWS_GRACE = 2.0


class _Placing(NamedTuple):
    """What a call's task needs to place the call: its flow, what runs on a machine,
    and the ``/makecall`` options it sends (a tuple: no more memory than one)."""

    flow: Flow
    on_machine: Flow | str | None
    use_amd: bool
    voice_name: str | None
    ring_timeout: int


def _name(flow: object) -> str:
    return getattr(flow, "__qualname__", None) or repr(flow)


def check_flow(flow: object, *, name: str = "flow") -> None:
    """Refuse, at once and in the caller's task, what cannot be a flow."""
    if not callable(flow):
        raise TypeError(f"{name} must be an async function taking a Call, not {flow!r}")
    target: Any = flow
    while isinstance(target, partial):
        target = target.func
    if inspect.isclass(target):
        raise TypeError(f"{name} must be an async function taking a Call, not the class {flow!r}")
    dunder_call = getattr(target, "__call__", None)  # noqa: B004
    is_async = inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(dunder_call)
    if not is_async and (inspect.isfunction(target) or inspect.ismethod(target)):
        raise TypeError(
            f"{name} {_name(flow)} is a plain function: write it as `async def "
            f"{getattr(target, '__name__', 'flow')}(call: Call)` so it can await the call"
        )


async def _take(limiter: anyio.CapacityLimiter) -> None:
    """A token of ``limiter``: one free now is taken with no loop round (the request
    that follows is the checkpoint), else the task waits its turn."""
    try:
        limiter.acquire_nowait()
    except anyio.WouldBlock:
        await limiter.acquire()


def _only_cancelled(exc: BaseException) -> bool:
    """Whether ``exc`` is the loop's cancellation, alone or grouped by task groups."""
    cancelled = anyio.get_cancelled_exc_class()
    if isinstance(exc, BaseExceptionGroup):
        _, rest = exc.split(cancelled)
        return rest is None
    return isinstance(exc, cancelled)


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
        clock: object | None = None,
        gather_grace: float = 5.0,
        ring_grace: float = 15.0,
        hangup_timeout: float = 10.0,
        dead_letter_limit: int = 1_000,
        owns_transport: bool = False,
        on_transcript: Callable[[CallHandle, TranscriptEntry], None] | None = None,
        webhook_secrets: Sequence[str] | None = None,
        store: CallStore | str | Path | None = None,
        apology: str | None = None,
        start_time: float | None = None,
        default_region: str | None = None,
        metrics: Metrics | None = None,
        tracing: bool | TracerProvider = False,
        max_dials_in_flight: int = 20,
        max_requests_in_flight: int = 100,
        placement_window: PlacementWindow | None = None,
        finished_call_limit: int = TOMBSTONE_LIMIT,
        body_timeout: float = BODY_TIMEOUT,
        max_body_bytes: int = MAX_BODY_BYTES,
        reconcile_wait: float = RECONCILE_WAIT,
    ) -> None:
        for name, limit in (
            ("max_dials_in_flight", max_dials_in_flight),
            ("max_requests_in_flight", max_requests_in_flight),
            ("finished_call_limit", finished_call_limit),
            ("max_body_bytes", max_body_bytes),
        ):
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, not {limit!r}")
        for name, seconds in (("body_timeout", body_timeout), ("reconcile_wait", reconcile_wait)):
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
                raise ValueError(f"{name} must be a number of seconds, not {seconds!r}")
        if not body_timeout > 0:
            raise ValueError(
                f"body_timeout must be a positive number of seconds, not {body_timeout!r}"
            )
        #: Seconds a lost ``/makecall`` waits for its call's first webhook (reconciliation).
        self.reconcile_wait = float(reconcile_wait)
        #: Seconds the receiver waits for a request's body before answering 408.
        self.body_timeout = float(body_timeout)
        #: Largest webhook body the receiver reads; a larger one gets 413.
        self.max_body_bytes = max_body_bytes
        self.transport = transport
        #: ``/makecall`` requests in flight at once: more calls started wait their turn here.
        self.dial_limit = anyio.CapacityLimiter(max_dials_in_flight)
        #: Provider requests in flight at once (the client's connection pool holds 100):
        #: calls started by the thousand queue in the runtime, not inside the HTTP pool.
        self.request_limit = anyio.CapacityLimiter(max_requests_in_flight)
        self._instruments = Instruments(transport, metrics, tracing)
        #: Prometheus metrics of this runtime and its client, served at ``/metrics``.
        self.metrics = self._instruments.metrics
        self.webhook_url = webhook_url.rstrip("/") if webhook_url else None
        #: Where numbers written without a country code are (``"US"``); see normalize_number.
        self.default_region = check_region(default_region)
        self.caller_id = (
            normalize_number(caller_id, default_region=self.default_region) if caller_id else None
        )
        self.voice_name = voice_name
        if clock is not None:
            warnings.warn(
                "Runtime(clock=...) is deprecated and ignored: the runtime reads the event "
                "loop's time (anyio), so tests get virtual time from the loop itself "
                "(see kaphila_flow.testing.VIRTUAL_TIME_BACKENDS)",
                DeprecationWarning,
                stacklevel=2,
            )
        #: Wall-clock seconds following the event loop's time (virtual time included).
        self.wall_time = WallClock(start_time)
        self.gather_grace = gather_grace
        self.ring_grace = ring_grace
        self.hangup_timeout = hangup_timeout
        self._table = CallTable(
            dead_letter_limit=dead_letter_limit,
            wall_time=self.wall_time,
            on_stray_call=self._stray_call,
            finished_call_limit=finished_call_limit,
            on_forget=self.metrics.forgotten,
        )
        self._deadlines = Deadlines()
        #: What every call shares (one bound ``on_drop`` for all, none made per call).
        self._call_host = CallHost(self.wall_time, self._deadlines, self.metrics.dropped)
        self._owns_transport = owns_transport
        #: Live calls on disk, so a restarted process can hang up what it owned.
        self.store: CallStore | None = (
            SqliteCallStore(store) if isinstance(store, str | Path) else store
        )
        #: Spoken to calls found live after a restart, before they are hung up.
        self.apology = apology
        #: How a call in ``GET /calls`` is matched to a ``/makecall`` a crash left
        #: unanswered (recovery from the store).
        self.placement_window = placement_window or PlacementWindow()
        #: Results of calls a previous process left live, hung up by this one.
        self.recovered: list[CallResult] = []
        self._accepting = True
        self._idle: anyio.Event | None = None
        #: Names this runtime to its own receiver (the start-up check of the webhook URL).
        self.instance = secrets.token_hex(8)
        #: Whether the webhook URL was found to reach this receiver (None: not checked).
        self.webhook_url_reaches_receiver: bool | None = None
        #: Standard Webhooks signature check, on when secrets are given.
        self.webhook_signer = WebhookSigner(webhook_secrets) if webhook_secrets else None
        #: Called with each transcript entry as it happens (progress displays, logs).
        self.on_transcript = on_transcript
        self._task_group: TaskGroup | None = None
        self._stack: AsyncExitStack | None = None
        self._closing = False

    def __repr__(self) -> str:
        return f"<Runtime live_calls={len(self._table)}>"

    @property
    def forgotten_calls(self) -> int:
        """Finished calls forgotten to stay under ``finished_call_limit`` (a late
        webhook of one of them gets 403 instead of 2xx)."""
        return self._table.forgotten

    @property
    def dead_letters(self) -> deque[DeadLetter]:
        """Events no live call took (late, unknown or misrouted), newest last."""
        return self._table.dead_letters

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
        options.setdefault("default_region", settings.default_region)
        return cls(client, owns_transport=True, **options)

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> Runtime:
        if self._task_group is not None:
            raise RuntimeError("this Runtime is already running")
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            # Calls read the loop's clock itself while the runtime runs (to the end of
            # the last call): anyio's lookup of the backend at each reading adds up.
            self.wall_time.follow(running_clock())
            stack.callback(self.wall_time.follow, None)
            self._task_group = await stack.enter_async_context(anyio.create_task_group())
            self._closing = False
            self._deadlines = self._call_host.deadlines = Deadlines()
            self._task_group.start_soon(self._deadlines.run)
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
        if self._closing and not self._table:
            self._deadlines.stop()

    async def aclose(self) -> None:
        await self.transport.aclose()

    # -- the webhook receiver ----------------------------------------------------------

    @property
    def webhook_path(self) -> str:
        """The path the receiver serves: the configured webhook URL's, else ``/webhooks``."""
        if self.webhook_url:
            path = urlsplit(self.webhook_url).path.rstrip("/")
            if path:
                return path
        return "/webhooks"

    def receiver(self, *, path: str | None = None, app_class: Any = None) -> Any:
        """The webhook receiver as a Quart (ASGI) app, to serve or mount."""
        from ._receiver import create_receiver

        extra: dict[str, Any] = {"app_class": app_class} if app_class else {}
        return create_receiver(
            self,
            path=path or self.webhook_path,
            max_body_bytes=self.max_body_bytes,
            body_timeout=self.body_timeout,
            **extra,
        )

    @property
    def asgi_app(self) -> Any:
        return self.receiver()

    async def serve(
        self,
        bind: str = "127.0.0.1:8080",
        *,
        path: str | None = None,
        handle_signals: bool = False,
        shutdown_grace: float = 30.0,
        task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve the receiver with hypercorn and run the runtime until cancelled.

        ``path`` defaults to the configured webhook URL's path (``/webhooks`` without
        one). With a webhook URL configured, it checks at start that the URL reaches
        this receiver (a request to itself) and logs an error naming it if not.
        Works under asyncio and trio. ``task_status`` reports the bound URL of the
        webhook path (useful with port 0). With ``handle_signals`` (main thread only),
        SIGTERM or SIGINT stops new calls, lets live flows finish within
        ``shutdown_grace`` seconds, hangs up the rest, and returns.
        """
        if self._task_group is None:
            async with self:
                await self._serve(
                    bind, path or self.webhook_path, handle_signals, shutdown_grace, task_status
                )
        else:
            await self._serve(
                bind, path or self.webhook_path, handle_signals, shutdown_grace, task_status
            )

    async def _serve(
        self,
        bind: str,
        path: str,
        handle_signals: bool,
        grace: float,
        task_status: anyio.abc.TaskStatus[str],
    ) -> None:
        from ._serve import serve_until_signalled

        await serve_until_signalled(
            self,
            bind,
            path=path,
            handle_signals=handle_signals,
            grace=grace,
            task_status=task_status,
        )

    async def shutdown(self, grace: float = 30.0) -> None:
        """Stop placing calls, give live flows ``grace`` seconds, then hang up the rest.

        Every call still gets its result (``failed``, ``CallEnded("runtime shut down")``
        for those cut short); none is left live with no flow in charge.
        """
        self._accepting = False
        if not self._table.by_ref:
            return
        self._idle = anyio.Event()
        with anyio.move_on_after(grace):
            await self._idle.wait()
        for session in list(self._table.by_ref.values()):
            logger.warning(
                "call %s: shutting down, hanging up",
                session.call_id or "(placing)",
                extra=call_fields(session.call_id),
            )
            session.shut_down = True
            session.mark_ended(None, reason="runtime shut down")
        if self._table.by_ref:
            with anyio.move_on_after(self.hangup_timeout + 1):
                await self._idle.wait()

    async def _recover(self) -> None:
        self.recovered.extend(await recover(self))

    # -- placing calls ---------------------------------------------------------------

    async def start(
        self,
        number: str,
        flow: Flow,
        *,
        caller_id: str | None = None,
        use_amd: bool | None = None,
        voice: str | None = None,
        ring_timeout: int = 30,
        on_machine: Flow | str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> CallHandle:
        """Place a call and run ``flow`` on it in the background.

        ``on_machine`` (a flow, or a message to leave) runs instead of ``flow`` when
        answering machine detection reports a machine; it turns AMD on.
        """
        if self._task_group is None:
            raise RuntimeError("start() needs a running runtime: use `async with runtime:`")
        if not self._accepting:
            raise RuntimeError("the runtime is shutting down: no new calls")
        if callable(number) and isinstance(flow, str):
            raise TypeError(
                "start(number, flow): the number comes first, then the flow "
                f"(got the flow {_name(number)} as the number)"
            )
        check_flow(flow)
        if on_machine is not None and not isinstance(on_machine, str):
            check_flow(on_machine, name="on_machine")
        if isinstance(ring_timeout, bool) or not isinstance(ring_timeout, int) or ring_timeout < 1:
            raise ValueError(
                f"ring_timeout must be a whole number of seconds, not {ring_timeout!r}"
            )
        if on_machine is not None:
            if use_amd is False:
                raise ValueError(
                    "on_machine needs answering machine detection: drop use_amd=False "
                    "(on_machine turns it on)"
                )
            use_amd = True
        target = normalize_number(number, default_region=self.default_region)
        from_number = (
            normalize_number(caller_id, default_region=self.default_region)
            if caller_id
            else self.caller_id
        )
        # 72 random bits in 12 characters: the reference (a table key) and the token
        # (kept per call) each fit the allocator's next smaller block.
        ref = secrets.token_urlsafe(9)
        session = CallSession(
            number=target, token=f"{ref}.{secrets.token_urlsafe(24)}", host=self._call_host
        )
        session.caller_id = from_number
        handle = CallHandle(
            session, f"{self.webhook_url}/{session.token}" if self.webhook_url else None
        )
        if self.on_transcript is not None:
            observer = self.on_transcript
            session.observer = lambda _session, entry: observer(handle, entry)
        self._table.add(session)
        # The /makecall request is made by the call's task as it dials, not here: calls
        # started by the thousand hold no request each while they wait to be dialled.
        placing = _Placing(flow, on_machine, bool(use_amd), voice or self.voice_name, ring_timeout)
        session.task = self._task_group.start_soon(
            self._run_call, session, placing, data, handle, name=_CALL_TASK
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

    def dispatch(
        self, event: ev.Event, *, token: str | None = None, identity: bytes | None = None
    ) -> Delivery:
        """Hand an event to its call. Never blocks; never raises for an unknown call.

        ``token`` is the per-call secret from the webhook URL; when given, the event
        must belong to that call. ``identity`` marks redeliveries of one webhook (its
        ``webhook-id``, or its raw body). The rules are ``CallTable``'s.
        """
        return self._instruments.webhook(event, self._table.route(event, token, identity))

    def receive_webhook(
        self,
        token: str,
        body: bytes,
        *,
        content_type: str | None = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> IntakeReply:
        """Take one webhook POST as the receiver does, without HTTP framing."""
        return receive_webhook(self, token, body, content_type=content_type, headers=headers or {})

    def session_for_token(self, token: str) -> CallSession | None:
        """The call a webhook token belongs to, compared in constant time."""
        return self._table.session_for_token(token)

    def finished_token(self, token: str) -> bool:
        """Whether ``token`` belonged to a call that has finished (late webhooks)."""
        return self._table.finished_token(token)

    @property
    def live_calls(self) -> int:
        return len(self._table)

    # -- outbound commands -----------------------------------------------------------

    async def send(self, command: Command[R]) -> R:
        """Every command leaves through here (one place for limits and logging)."""
        limiter = self.request_limit
        await _take(limiter)
        try:
            with self._instruments.command(command):
                return await self.transport.send(command)
        finally:
            limiter.release()

    # -- one call --------------------------------------------------------------------

    async def _run_call(
        self,
        session: CallSession,
        placing: _Placing,
        data: Mapping[str, Any] | None,
        handle: CallHandle,
    ) -> None:
        """One call from placement to result. This frame stays alive while the flow
        runs, so what comes before the flow (``_connect``) and after it (``_conclude``)
        is in helpers: a parked call keeps a frame with few locals."""
        ending: _Ending = _FAILED
        try:
            connecting = self._connect(session, placing, handle)
            del placing  # ``_connect``'s alone: it goes once the flow is chosen
            chosen = await connecting
            del connecting  # a parked call keeps no more than it needs
            if isinstance(chosen, tuple):
                ending = chosen
                return
            # The call's end cancels the call's own task while the flow runs (what
            # follows the flow is shielded): no second cancel scope per call.
            session.flow_scope = session.task
            try:
                value = await self._drive_flow(session, chosen, data)
                ending = self._flow_returned(session, value)
            except Exception as exc:
                ending = (*self._flow_raised(session, exc), False)
            finally:
                session.flow_scope = None
        except BaseException as exc:  # cancelled by shutdown: record, then re-raise
            ending = self._cut(session, exc)
            raise
        finally:
            await self._conclude(session, handle, ending)

    async def _connect(
        self,
        session: CallSession,
        placing: _Placing,
        handle: CallHandle,
    ) -> Flow | _Ending:
        """Placement and answer: the flow to run, or how the call ended without one.
        (A small frame: it waits while the call rings, and its work is in helpers.)"""
        ended = await self._dial(session, placing, handle)
        if ended is not None:
            return ended
        until = anyio.current_time() + placing.ring_timeout + self.ring_grace
        flow, on_machine = placing.flow, placing.on_machine
        del placing  # a ringing call keeps its flows, not what placed it
        # Awaited here, not in ``_run_call``: this frame ends once the call is answered.
        answer = await session.event_wait(
            _RING_NEWS, until=until, end_raises=False, waiting_for="the callee to answer"
        )
        return self._answered(session, answer, flow, on_machine)

    async def _dial(
        self, session: CallSession, placing: _Placing, handle: CallHandle
    ) -> _Ending | None:
        """Place the call; how it ended if it could not be placed, else ``None``."""
        self._instruments.call_started(session, placing.flow)
        # Made here and gone once sent: no request is kept per call while it rings.
        request = MakeCall(
            number=session.number,
            webhook_url=handle.webhook_url,
            caller_id=session.caller_id,
            use_amd=placing.use_amd,
            voice_name=placing.voice_name,
            ring_timeout=placing.ring_timeout,
        )
        call_id: str | None = None
        try:
            call_id = await self._place(session, request)
        except KaphilaError as exc:
            # Silence (a timeout, a broken connection, a proxy's bare 5xx) leaves
            # the call's fate open; Kaphila's own error answer says it failed.
            if answer_was_lost(exc):
                session.note("ended", "placement unknown: the /makecall answer was lost")
                return "unknown", None, exc, False
            return "failed", None, exc, False
        finally:
            self._table.placed(session, call_id)
        self._instruments.call_placed(call_id)
        if self.store is not None:
            self.store.add(StoredCall(call_id, session.number, session.started_at, ref=session.ref))
        handle._mark_placed()
        return None

    def _answered(
        self,
        session: CallSession,
        answer: ev.Event | None,
        flow: Flow,
        on_machine: Flow | str | None,
    ) -> Flow | _Ending:
        """The ringing is over (``answer``, or ``None`` at the ring timeout): the flow
        to run, or how the call ended unanswered."""
        answered, amd = session.answer_news(answer)
        if not answered:
            if session.shut_down:
                return "failed", None, session.ended_error(), False
            if not session.heard_from and answer is None:
                # Placed, and silence: not "no answer" but webhooks that never came.
                logger.warning(
                    "call %s to %s: Kaphila placed it, but none of its webhooks reached "
                    "this runtime; is %s the URL that reaches the receiver?",
                    session.call_id,
                    session.number,
                    self.webhook_url or "(no webhook URL set)",
                    extra=call_fields(session.call_id),
                )
                session.note("ended", "no webhook arrived")
                return "no-webhooks", None, None, False
            session.note("ended", "no answer")
            return "no-answer", None, None, False
        session.answered_at = self.wall_time()
        session.amd = amd = amd or session.amd
        session.note("answered", f"AMD {amd.status}" if amd else "")
        return self._choose_flow(session, flow, on_machine)

    def _flow_returned(self, session: CallSession, value: Any) -> _Ending:
        status = self._status_after_flow(session)
        return status, value, session.ended_error() if session.shut_down else None, False

    def _cut(self, session: CallSession, exc: BaseException) -> _Ending:
        """How a call cut by ``exc`` (a cancellation, mostly) ended."""
        placed = session.call_id is not None
        if placed and session.ended and _only_cancelled(exc):
            # The end reached the flow as a bare cancellation (from an inner scope or a
            # task group of the flow's, where the trampoline could not swap it): the
            # result says the call ended; the cancellation still goes on.
            return (*self._flow_raised(session, session.ended_error()), False)
        # Cut while /makecall was in flight: the call may exist, so its intent stays in
        # the store for the next start to look for.
        return "failed", None, exc, not placed

    async def _conclude(self, session: CallSession, handle: CallHandle, ending: _Ending) -> None:
        """After the flow (shielded): hang up what it left live, wait for the provider's
        word of the end, and finish the call's result."""
        status, value, error, unsettled = ending
        placed = session.call_id is not None
        with anyio.CancelScope(shield=True):
            if placed and await self._hang_up_if_live(session) and status == "completed":
                # The caller hung up as the flow finished: the same verdict whether
                # call.ended came before the flow's last answer or after it.
                status = "hung-up"
            if placed and session.ended and not session.ended_by_flow:
                # Ended on the other side and learnt from a 404 or a call.timeout: the
                # result carries what call.ended reports, whichever came first.
                await session.end_news(anyio.current_time() + END_NEWS_GRACE)
            self._finish(session, handle, status, value, error, keep_intent=unsettled)

    def _stray_call(self, call_id: str) -> None:
        """A call whose ``/makecall`` failed came to light at its token: hang it up."""
        if self._task_group is not None:
            self._task_group.start_soon(self._hang_up_stray, call_id)

    async def _hang_up_stray(self, call_id: str) -> None:
        logger.warning(
            "call %s: placed by a /makecall whose answer was lost, found after its result; "
            "hanging it up",
            call_id,
            extra=call_fields(call_id),
        )
        with anyio.move_on_after(self.hangup_timeout):
            try:
                await self.send(Hangup(call_id))
            except CallNotFound:
                pass  # already over
            except KaphilaError as exc:
                logger.error("call %s: hangup failed: %s", call_id, exc)

    async def _place(self, session: CallSession, request: MakeCall) -> str:
        """``/makecall``, never repeated; a lost answer is reconciled, not retried."""
        try:
            await _take(self.dial_limit)
            try:
                sent_at = self.wall_time()
                # (``is not None`` first: a protocol check is slow, and most runtimes
                # have no store)
                if self.store is not None and isinstance(self.store, IntentStore):
                    # On disk before the request leaves: a crash from here on leaves a
                    # row the next start looks for in GET /calls.
                    self.store.add_intent(CallIntent(session.ref, session.number, sent_at))
                reply = await self.send(request)
            finally:
                self.dial_limit.release()
        except KaphilaError as exc:
            if not answer_was_lost(exc):
                # Kaphila said it failed (or nothing left): no search. Only webhooks
                # already at this call's own token could show otherwise.
                adopted = placed_despite_error(session)
                if adopted is not None:
                    logger.warning(
                        "call to %s: /makecall answered %s, but the call's own webhooks "
                        "show it was placed; adopted call %s",
                        session.number,
                        type(exc).__name__,
                        adopted,
                    )
                    return adopted
                logger.warning("call to %s could not be placed: %s", session.number, exc)
                raise
            found = await find_placed_call(
                session,
                self.transport,
                self._table.by_id.keys(),
                webhook_url=request.webhook_url,
                window=(sent_at, self.wall_time()),
                wait=self.reconcile_wait,
            )
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

    def _drive_flow(
        self, session: CallSession, flow: Flow, data: Mapping[str, Any] | None
    ) -> drive[Any]:
        """The flow's coroutine on this call, driven (awaited in ``_run_call``'s own
        frame: a parked call keeps one coroutine frame less than with a helper)."""
        coro = flow(Call(self, session, data))
        if not inspect.iscoroutine(coro):
            raise TypeError(
                f"flow {_name(flow)} returned {type(coro).__name__}, not a coroutine: "
                "a flow is an `async def` function taking a Call"
            )
        return drive(coro, session)

    def _flow_raised(
        self, session: CallSession, exc: Exception
    ) -> tuple[CallStatus, Any, BaseException | None]:
        """The status, value and error of a flow that raised ``exc``."""
        if _only_call_ended(exc):
            status = self._status_after_flow(session)
            misuse = session.ended_by_flow and session.forwarded_to is None
            if misuse:
                logger.warning(
                    "call %s: the flow used the call after it hung up (%s); "
                    "return after hangup() instead",
                    session.call_id,
                    exc,
                    extra=call_fields(session.call_id),
                )
            return status, None, exc if session.shut_down or misuse else None
        logger.error("flow on call %s raised %s", session.call_id, type(exc).__name__, exc_info=exc)
        return "failed", None, exc

    @staticmethod
    def _status_after_flow(session: CallSession) -> CallStatus:
        if session.shut_down:
            return "failed"
        return "hung-up" if session.ended and not session.ended_by_flow else "completed"

    async def _hang_up_if_live(self, session: CallSession) -> bool:
        """Hang up a call the flow left live; ``True`` if Kaphila had ended it already."""
        if session.forwarded_to is not None or session.call_id is None:
            return False
        if session.ended and not session.shut_down:
            return False
        gone = False
        session.ended_by_flow = True
        with anyio.move_on_after(self.hangup_timeout):
            try:
                await self.send(Hangup(session.call_id))
                session.note("hangup", "by the runtime")
                if not session.shut_down:  # whatever news of the end came first
                    session.end_reason = "hung up by the runtime"
            except CallNotFound:
                gone = True  # ended by the other side, its call.ended not here yet
                session.ended_by_flow = False
            except KaphilaError as exc:
                logger.error("call %s: hangup failed: %s", session.call_id, exc)
        session.mark_ended(None, reason="ended" if gone else "hung up by the runtime")
        return gone

    def _finish(
        self,
        session: CallSession,
        handle: CallHandle,
        status: CallStatus,
        value: Any,
        error: BaseException | None,
        *,
        keep_intent: bool = False,
    ) -> None:
        self._table.finish(session)
        if session.call_id is not None and self.store is not None:
            self.store.remove(session.call_id)
        elif self.store is not None and isinstance(self.store, IntentStore) and not keep_intent:
            self.store.remove_intent(session.ref)
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
            ended_at=self.wall_time(),
            forwarded_to=session.forwarded_to,
            # Who ended the call decides, not which news came first: the flow's or the
            # runtime's own reason when they hung up, else the provider's.
            end_reason=(
                session.end_reason
                if session.ended_by_flow and session.end_reason
                else (end.end_reason if isinstance(end, ev.CallEnded) else None)
                or session.end_reason
            ),
            transcript=session.transcript,
            recordings=session.recordings or [],
            dropped=session.dropped,
        )
        handle._finish(result)
        self._instruments.call_finished(session.call_id, status, error)
        self._stop_timers_when_idle()
        if not self._table.by_ref and self._idle is not None:
            self._idle.set()
