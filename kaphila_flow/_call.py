"""``Call``: the handle a flow gets, one method per thing a call can do."""

from __future__ import annotations

import logging
from collections.abc import Coroutine, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from . import _events as ev
from . import _prompts
from ._commands import Command, ForwardCall, Gather, Hangup, Play, PlayTo, StopRecording, Voice
from ._exceptions import CallEnded, CallNotFound, GatherFailed
from ._gathers import GatherTicket
from ._model import KEYS, SpeechTiming
from ._numbers import normalize_number
from ._session import CallSession, EventWatch
from ._wake import Park, Wait

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ["Call", "Gathering", "KeyStream", "WaitingForKeys"]

logger = logging.getLogger("kaphila_flow.call")
R = TypeVar("R")
E = TypeVar("E", bound=ev.Event)

_GATHER_OUTCOMES: tuple[type[ev.Event], ...] = (
    ev.GatherComplete,
    ev.GatherTimeout,
    ev.GatherFailed,
)
_ESTIMATE = SpeechTiming()
#: ``Call.data`` of a call placed without data: one shared, read-only, empty mapping.
_NO_DATA: Mapping[str, Any] = MappingProxyType({})


def _check_keys(name: str, value: str | None, *, single: bool = False) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value or any(k not in KEYS for k in value):
        raise ValueError(f"{name} must be telephone keys (0-9, * and #), not {value!r}")
    if single and len(value) != 1:
        raise ValueError(f"{name} must be a single key, not {value!r}")


class WaitingForKeys:
    """What a gather waits for, as text only when asked (tests, error messages)."""

    __slots__ = ("prompt",)

    def __init__(self, prompt: str | None) -> None:
        self.prompt = prompt

    def __str__(self) -> str:
        return (
            f"the caller's keys for gather {self.prompt!r}" if self.prompt else "the caller's keys"
        )

    def __eq__(self, other: object) -> bool:
        return str(self) == other if isinstance(other, str) else NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))


#: What a gather with no prompt waits for: one for all such gathers.
_WAITING_FOR_KEYS = WaitingForKeys(None)


class KeyStream:
    """The keys a caller presses, one ``str`` at a time."""

    __slots__ = ("_call", "_timeout")

    def __init__(self, call: Call, timeout: float | None) -> None:
        self._call = call
        self._timeout = timeout

    def __aiter__(self) -> KeyStream:
        return self

    async def __anext__(self) -> str:
        while True:
            try:
                event = await self._call.wait_for(ev.DtmfReceived, timeout=self._timeout)
            except TimeoutError:
                raise StopAsyncIteration from None
            if event.digit:
                return event.digit


class Gathering(EventWatch[str], Coroutine[Any, Any, str]):
    """``Call.gather``: a coroutine object with no frame while the call is parked.

    It first runs the gather's first part (``Call._send_gather``, a coroutine that
    ends once ``/gather`` is answered), then waits for the gather's outcome as an
    ``EventWatch``, which parks the task with no coroutine frame. Outcomes of earlier
    gathers (stale copies, late ones) are noted and waited past; each key restarts
    the wait's deadline as it restarts the gather's timeout.
    """

    __slots__ = ("_restart", "_stage")

    _kinds = _GATHER_OUTCOMES
    _end_raises = True

    def __init__(
        self,
        call: Call,
        text: str | None,
        num_digits: int,
        timeout: float,
        finish_on_key: str | None,
        valid_digits: str | None,
        play_to: PlayTo,
        sensitive: bool,
    ) -> None:
        EventWatch.__init__(self, call._session, None, None)
        #: Seconds the wait lasts after a key: the gather's timeout and the grace.
        self._restart = 0.0
        #: The first part while it runs; from ``sent`` on, the gather's ledger ticket
        #: until it is settled; then ``None`` (one slot: a gathering fits a smaller block).
        self._stage: Coroutine[Any, Any, None] | GatherTicket | None = call._send_gather(
            self, text, num_digits, timeout, finish_on_key, valid_digits, play_to, sensitive
        )

    def sent(self, ticket: GatherTicket, what: object, until: float, restart: float) -> None:
        """``/gather`` is answered: the outcome is awaited until ``until``."""
        self._stage = ticket  # the first part ends here
        self._waiting_for = what
        # Keys from here on restart the wait, not those of earlier gathers.
        self._parking.last_key_at = None  # type: ignore[attr-defined]
        self._until = until
        self._restart = restart

    def poll(self) -> str | Park:
        session: CallSession = self._parking  # type: ignore[assignment]
        while True:
            found = self.next_event()
            if isinstance(found, Park):
                return found
            if found is None:
                # Each key restarts the gather's timeout: so does it restart ours.
                keyed = session.last_key_at
                until = self._until
                assert until is not None
                if keyed is not None and keyed + self._restart > until:
                    self._until = keyed + self._restart
                    self.restart()
                    continue
                logger.warning(
                    "call %s: no outcome of gather %d arrived within the timeout and grace period",
                    session.call_id,
                    self._stage.seq if isinstance(self._stage, GatherTicket) else 0,
                )
                self._settle(answered=False)
                digits = session.gather_progress
                break
            if session.stale_outcome(found):
                session.note("stale", f"{found.name} for an earlier gather, ignored")
                logger.info(
                    "call %s: %s for an earlier gather ignored", session.call_id, found.name
                )
                self.restart()
                continue
            if session.late_outcome(found):
                logger.info(
                    "call %s: %s for a gather no longer awaited, kept in the transcript",
                    session.call_id,
                    found.name,
                )
                self.restart()
                continue
            self._settle(answered=True)
            if isinstance(found, ev.GatherFailed):
                raise GatherFailed(session.call_id or "", found.reason or "no reason given")
            assert isinstance(found, (ev.GatherComplete, ev.GatherTimeout))
            digits = found.digits
            break
        session.last_digits = digits
        return digits

    def _settle(self, *, answered: bool) -> None:
        ticket = self._stage
        if not isinstance(ticket, GatherTicket):
            return  # settled already, or never sent
        self._stage = None
        ledger = self._parking.gathers  # type: ignore[attr-defined]
        if ledger is None:
            return
        if answered:
            ledger.answered(ticket)
        else:
            ledger.gave_up(ticket)  # its outcome may still come: never a later gather's

    def finish(self) -> None:
        EventWatch.finish(self)
        self._settle(answered=False)  # cancelled, or the call ended: the gather owes

    def send(self, resumed: Any = None) -> Any:
        step = self._stage
        if step is None or isinstance(step, GatherTicket):
            return Wait.send(self, resumed)
        try:
            return step.send(resumed)
        except StopIteration:
            self._first_part_over(step)
        return Wait.send(self, None)  # the first part is over: the wait's first run

    __next__ = send

    def throw(self, kind: Any, value: Any = None, traceback: Any = None) -> Any:
        step = self._stage
        if step is None or isinstance(step, GatherTicket):
            return Wait.throw(self, kind, value, traceback)
        if value is None:
            value = kind() if isinstance(kind, type) else kind
        try:
            return step.throw(value.with_traceback(traceback) if traceback else value)
        except StopIteration:
            self._first_part_over(step)
        return Wait.send(self, None)

    def _first_part_over(self, step: Coroutine[Any, Any, None]) -> None:
        if self._stage is step:  # it ended without ``sent`` (it sends, or raises)
            self._stage = None

    def close(self) -> None:
        step = self._stage
        if step is not None and not isinstance(step, GatherTicket):
            self._stage = None
            step.close()
        else:
            self.finish()


class Call:
    """One live call, as a flow sees it.

    Every method raises ``CallEnded`` once the call is over, at once and without
    sending anything. Timeouts are seconds.
    """

    __slots__ = ("_runtime", "_session", "data")

    def __init__(
        self, runtime: Runtime, session: CallSession, data: Mapping[str, Any] | None = None
    ) -> None:
        self._runtime = runtime
        self._session = session
        #: Extra values given when the call was placed (e.g. a campaign's CSV columns).
        self.data: Mapping[str, Any] = dict(data) if data else _NO_DATA

    def __repr__(self) -> str:
        state = "ended" if self._session.ended else "live"
        return f"<Call {self.id} to {self.number} ({state})>"

    # -- what the call is ------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._session.call_id or ""

    @property
    def number(self) -> str:
        return self._session.number

    @property
    def caller_id(self) -> str | None:
        return self._session.caller_id

    @property
    def amd(self) -> ev.Amd | None:
        """Answering machine detection from ``call.answered`` (with ``use_amd=True``)."""
        return self._session.amd

    @property
    def digits(self) -> str:
        """The digits the last ``gather`` returned."""
        return self._session.last_digits

    @property
    def ended(self) -> bool:
        return self._session.ended

    # -- steps -----------------------------------------------------------------------

    async def say(self, text: str, *, voice: str | None = None, play_to: PlayTo = "bridge") -> None:
        """Speak ``text`` (``/voice``); returns once it has been played."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("say() needs some text to speak")
        self._check_live()
        self._session.note("said", text)
        await self._send(Voice(self.id, text, play_to, voice_name=voice), f"saying {text!r}")

    async def play(self, file: str, *, play_to: PlayTo = "bridge") -> None:
        """Play a sound file stored on Kaphila (``/play``), e.g. ``custom/welcome``."""
        if not isinstance(file, str) or not file.strip():
            raise ValueError("play() needs the name of a sound file")
        self._check_live()
        self._session.note("played", file)
        await self._send(Play(self.id, file, play_to), f"playing {file!r}")

    def gather(
        self,
        text: str | None = None,
        *,
        num_digits: int = 1,
        timeout: float = 10.0,
        finish_on_key: str | None = None,
        valid_digits: str | None = None,
        play_to: PlayTo = "bridge",
        sensitive: bool = False,
    ) -> Coroutine[Any, Any, str]:
        """Play ``text`` (if any) and collect up to ``num_digits`` keys.

        Returns the digits of ``gather.complete``; on ``gather.timeout`` the digits
        entered before it (``""`` for none). Raises ``GatherFailed`` on ``gather.failed``.
        If no outcome arrives, returns what ``gather.progress`` reported once the prompt,
        ``timeout`` and the runtime's grace period have passed.
        """
        # A coroutine object of its own kind (``Gathering``): a call parked in a gather
        # keeps one small object where an ``async def`` would keep its frame.
        return Gathering(
            self, text, num_digits, timeout, finish_on_key, valid_digits, play_to, sensitive
        )

    async def _send_gather(
        self,
        gathering: Gathering,
        text: str | None,
        num_digits: int,
        timeout: float,
        finish_on_key: str | None,
        valid_digits: str | None,
        play_to: PlayTo,
        sensitive: bool,
    ) -> None:
        """A gather's first part: its checks, its ticket, its ``/gather`` request."""
        if isinstance(num_digits, bool) or not isinstance(num_digits, int) or num_digits < 1:
            raise ValueError(f"num_digits must be a whole number of at least 1, not {num_digits!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        _check_keys("finish_on_key", finish_on_key, single=True)
        _check_keys("valid_digits", valid_digits)
        self._check_live()
        session = self._session
        ledger = session.gather_ledger()
        session.settle_queued_outcomes()  # what is queued belongs to earlier gathers
        session.gather_progress = ""
        # Stays set after this gather: its dtmf.received may still arrive late.
        session.sensitive = sensitive
        if text:
            session.note("prompt", text)
        ticket = ledger.open(
            num_digits=num_digits,
            valid_digits=valid_digits,
            finish_on_key=finish_on_key,
            sensitive=sensitive,
            sent_at=self._runtime.wall_time(),
        )
        try:
            await self._send(
                Gather(
                    self.id,
                    text=text,
                    num_digits=num_digits,
                    timeout=float(timeout),
                    finish_on_key=finish_on_key,
                    valid_digits=valid_digits,
                    play_to=play_to,
                ),
                f"Kaphila to start gathering ({text!r})",
            )
        except BaseException:
            ledger.not_sent(ticket)
            raise
        # This gather's outcome, or None once prompt, timeout and grace have passed.
        # Formatted only if someone asks; one shared for a gather with no prompt.
        started = anyio.current_time()
        restart = timeout + self._runtime.gather_grace
        until = started + (_ESTIMATE.duration(text) if text else 0.0) + restart
        gathering.sent(ticket, WaitingForKeys(text) if text else _WAITING_FOR_KEYS, until, restart)

    # The IVR building blocks live in _prompts.py, where their retry rules read as one.
    menu = _prompts.menu
    ask = _prompts.ask
    confirm = _prompts.confirm

    async def leave_voicemail(self, text: str) -> None:
        """Speak ``text`` (to an answering machine) and hang up."""
        await self.say(text)
        await self.hangup()

    def keys(self, *, timeout: float | None = None) -> KeyStream:
        """Keys as the caller presses them: ``async for key in call.keys(): ...``.

        Fed by ``dtmf.received``; keys pressed earlier and not yet taken come first.
        With ``timeout``, the stream ends after that many seconds without a key.
        """
        return KeyStream(self, timeout)

    @property
    def recordings(self) -> list[ev.Event]:
        """The ``recording.*`` events of this call so far."""
        return list(self._session.recordings or ())

    async def stop_recording(self) -> None:
        """Stop the call's recording (``POST /recordings/{callId}/stop``)."""
        self._check_live()
        await self._send(StopRecording(self.id), "stopping the recording")

    async def forward(self, number: str) -> str:
        """Bridge the caller to ``number``; returns the forwarded leg's call id.

        The flow may return afterwards: the runtime leaves a forwarded call up.
        """
        target = normalize_number(number, default_region=self._runtime.default_region)
        self._check_live()
        reply = await self._send(ForwardCall(self.id, target), f"forwarding to {target}")
        self._session.forwarded_to = target
        self._session.ended_by_flow = True
        self._session.note("forwarded", target)
        return reply.forwarded_call_id or ""

    async def hangup(self) -> None:
        """End the call. Later steps raise ``CallEnded``."""
        self._check_live()
        session = self._session
        session.ended_by_flow = True
        try:
            await self._send(Hangup(self.id), "hanging up")
            # The flow ended it, whether call.ended came before this answer or after.
            session.end_reason = "hung up by the flow"
        except CallEnded:
            session.ended_by_flow = False  # the other side had ended it (404)
            raise
        finally:
            session.note("hangup", "by the flow")
            session.mark_ended(None, reason="hung up by the flow")

    async def wait_for(self, *event_types: type[E], timeout: float | None = None) -> E:
        """The next event of one of ``event_types`` (kept if it came earlier).

        Raises ``TimeoutError`` after ``timeout`` seconds, ``CallEnded`` if the call ends.
        """
        if not event_types:
            raise TypeError("wait_for() needs at least one event type, e.g. events.DtmfReceived")
        self._check_live()
        until = None if timeout is None else anyio.current_time() + timeout
        names = ", ".join(t.NAME or t.__name__ for t in event_types)
        found = await self._session.event_wait(event_types, until=until, waiting_for=names)
        if found is None:
            raise TimeoutError(f"no {names} within {timeout} s on call {self.id}")
        return found  # type: ignore[return-value]

    # -- internals -------------------------------------------------------------------

    def _check_live(self) -> None:
        if self._session.ended:
            raise self._session.ended_error()

    async def _send(self, command: Command[R], what: str) -> R:
        session = self._session
        session.waiting_for = what
        try:
            return await self._runtime.send(command)
        except CallNotFound:
            # Kaphila no longer knows the call: it ended, maybe before its webhook came.
            session.mark_ended(None, reason="call not found")
            raise CallEnded(self.id, session.end_reason or "call not found") from None
        finally:
            session.waiting_for = None
