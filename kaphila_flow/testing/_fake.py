"""``FakeKaphila``: Kaphila in memory, with a phone the test holds and virtual time.

The fake is a transport (commands are applied to the one ``CallModel`` of each call)
and a host for the model's time: a ``VirtualClock`` that moves only when the test's
phone lets the call go on. A 10-second gather timeout costs no real time.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

import anyio

from .. import _events as ev
from .._clock import VirtualClock
from .._commands import (
    Command,
    ForwardCall,
    Gather,
    Hangup,
    MakeCall,
    MakeCallReply,
    Play,
    StopRecording,
    Voice,
    command_call_id,
)
from .._exceptions import CallNotFound
from .._model import CallModel, Phase, Playback, SpeechTiming
from .._numbers import normalize_number
from .._result import CallResult, TranscriptEntry
from .._runtime import CallHandle, Flow, Runtime
from ._settle import wait_all_tasks_blocked

__all__ = ["Answer", "FakeKaphila", "Phone", "Turn"]

R = TypeVar("R")
T = TypeVar("T")
#: How the callee answers: a person, a machine, AMD unsure, busy, or not at all.
Answer = Literal["human", "machine", "unknown", "busy", "no-answer"]
ANSWERS: tuple[Answer, ...] = ("human", "machine", "unknown", "busy", "no-answer")
#: What AMD reports when it cannot tell (``answer="unknown"``).
_UNSURE = ev.Amd(ev.Amd.UNKNOWN, "NOTSURE", 0.5)

#: Virtual time between two keys pressed in one ``press("123")``.
KEY_GAP = 0.1
#: Timers that pass by themselves; a gather's timeout is the caller's choice.
_SELF_PASSING = frozenset({"ring", "playback"})


class FakeKaphila:
    """In-memory Kaphila: ``async with FakeKaphila() as kaphila: phone = await kaphila.call(flow)``.

    ``runtime_options`` go to the ``Runtime`` it drives (``gather_grace``, ...).
    ``patience`` is how long (real seconds) a phone waits for a flow that is busy
    with something other than the call before it fails the test.
    """

    def __init__(
        self,
        *,
        patience: float = 5.0,
        speech: SpeechTiming | None = None,
        caller_id: str | None = None,
        **runtime_options: Any,
    ) -> None:
        self.clock = VirtualClock()
        self.speech = speech or SpeechTiming()
        self.patience = patience
        #: Every command the flows sent, in order.
        self.commands: list[Command[Any]] = []
        self.models: dict[str, CallModel] = {}
        # Indexes that keep each step of a test independent of how many calls came before.
        self._live: dict[str, CallModel] = {}
        self._by_call: dict[str, list[Command[Any]]] = defaultdict(list)
        self._indexed = 0
        self._answers: dict[str, deque[Answer]] = defaultdict(deque)
        self._playbacks: dict[str, anyio.Event] = {}
        self._serial = 0
        self.runtime = Runtime(self, clock=self.clock, caller_id=caller_id, **runtime_options)

    async def __aenter__(self) -> FakeKaphila:
        await self.runtime.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        # Calls still live at the end of a test are hung up by the caller.
        for model in list(self._live.values()):
            model.caller_hangs_up(self.clock.now())
            self._flush(model)
        await self.runtime.__aexit__(*exc_info)

    # -- the test's side -------------------------------------------------------------

    async def call(
        self,
        flow: Flow,
        *,
        number: str = "16089270862",
        answer: Answer = "human",
        **dial_options: Any,
    ) -> Phone:
        """Place a call to a phone the test holds, running ``flow`` on it."""
        if answer not in ANSWERS:
            choices = ", ".join(repr(a) for a in ANSWERS)
            raise ValueError(f"answer must be one of {choices}, not {answer!r}")
        self._answers[normalize_number(number)].append(answer)
        handle = await self.runtime.start(number, flow, **dial_options)
        return Phone(self, handle)

    def commands_for(self, call_id: str) -> list[Command[Any]]:
        """The commands sent for one call, in order."""
        # ``commands`` is the record; the index catches up with it on each look.
        for command in self.commands[self._indexed :]:
            owner = command_call_id(command)
            if owner is not None:
                self._by_call[owner].append(command)
        self._indexed = len(self.commands)
        return list(self._by_call.get(call_id, ()))

    # -- the transport's side --------------------------------------------------------

    async def send(self, command: Command[R]) -> R:
        self.commands.append(command)
        call_id = command_call_id(command)
        now = self.clock.now()
        if isinstance(command, MakeCall):
            return self._make_call(command, now)  # type: ignore[return-value]
        model = self.models.get(call_id or "")
        if model is None:
            raise CallNotFound("Call not found", endpoint=command.path)
        if model.live:  # a forwarded call is parked without timers until it gets a command
            self._live.setdefault(model.call_id, model)
        reply: Any
        try:
            if isinstance(command, (Voice, Play)):
                playback = (
                    model.voice(command, now)
                    if isinstance(command, Voice)
                    else model.play(command, now)
                )
                await self._until_finished(playback)
                reply = model.playback_reply(playback)
            elif isinstance(command, Gather):
                reply = model.gather(command, now)
            elif isinstance(command, ForwardCall):
                reply = model.forward(command, now)
            elif isinstance(command, Hangup):
                reply = model.hangup(now)
            elif isinstance(command, StopRecording):
                reply = model.stop_recording(now)
            else:
                raise NotImplementedError(f"the fake does not implement {type(command).__name__}")
        finally:
            self._flush(model)
        return reply  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        return None

    def _make_call(self, command: MakeCall, now: float) -> MakeCallReply:
        self._serial += 1
        call_id = f"{int(now)}.{self._serial}"
        model = CallModel(call_id, command, now, speech=self.speech)
        self.models[call_id] = model
        self._live[call_id] = model
        pending = self._answers.get(command.number)
        answer: Answer = pending.popleft() if pending else "human"
        if answer in ("human", "machine", "unknown"):
            model.answer(now, machine=answer == "machine")
        elif answer == "busy":
            model.caller_hangs_up(now)  # rejected while ringing: the flow never runs
        # Events go out before the answer comes back, as they may over real HTTP.
        if answer == "unknown" and model.amd is not None:
            model.amd = _UNSURE
            self._dispatch_as(model, ev.CallAnswered, amd=_UNSURE)
        elif answer == "busy":
            self._dispatch_as(model, ev.CallEnded, end_reason="busy", hangup_cause="17")
        self._flush(model)
        return MakeCallReply(
            call_id=call_id,
            status="ringing",
            amd_enabled=command.use_amd,
            voice_name=command.voice_name,
            credits=None,
            ring_timeout=command.ring_timeout,
            trunk="fake",
            trunk_attempts=1,
            total_trunks=1,
            timestamp=None,
        )

    def _dispatch_as(self, model: CallModel, kind: type[ev.Event], **fields: Any) -> None:
        """Dispatch the model's pending events, ``fields`` changed on those of ``kind``."""
        for event in model.take_events():
            self.runtime.dispatch(replace(event, **fields) if isinstance(event, kind) else event)

    def _flush(self, model: CallModel) -> None:
        if model.phase in (Phase.ENDED, Phase.FORWARDED):  # handed over: no more timers
            self._live.pop(model.call_id, None)
        for event in model.take_events():
            self.runtime.dispatch(event)
        for playback in model.take_finished():
            waiter = self._playbacks.pop(playback.playback_id, None)
            if waiter is not None:
                waiter.set()

    async def _until_finished(self, playback: Playback) -> None:
        if playback.played is None:
            waiter = self._playbacks.setdefault(playback.playback_id, anyio.Event())
            await waiter.wait()

    async def advance_to(self, when: float) -> None:
        """Move virtual time to ``when``, stopping at every timer on the way.

        At each stop the flows get to react before time moves on, so a deadline set
        on the way (a ``wait_for(timeout=...)``) is kept too.
        """
        while True:
            await wait_all_tasks_blocked()
            next_at = self._next_timer_at()
            if next_at is None or next_at > when:
                break
            self.clock.advance_to(next_at)
            for model in list(self._live.values()):
                model.advance(next_at)
                self._flush(model)
        self.clock.advance_to(when)
        await wait_all_tasks_blocked()

    def _next_timer_at(self) -> float | None:
        moments = [t.at for m in self._live.values() if (t := m.next_timer()) is not None]
        if self.runtime._timers:
            moments.append(self.runtime._timers[0][0])
        later = [at for at in moments if at > self.clock.now()]
        due = [at for at in moments if at <= self.clock.now()]
        if due:  # fire what is already due without moving the clock
            return self.clock.now()
        return min(later) if later else None


@dataclass(frozen=True, slots=True)
class Turn:
    """Where a call stands when the caller has a say (see ``Phone.turn``)."""

    #: What the flow said (``say`` texts and gather prompts) since the previous turn.
    heard: tuple[str, ...]
    #: The gather the flow waits on; ``None`` when the call ended, or when the flow
    #: waits for the caller outside a gather (``call.keys()``, ``wait_for``).
    gather: Gather | None
    ended: bool


class Phone:
    """The callee's phone in a test. Each method lets the call go on as far as it must."""

    def __init__(self, fake: FakeKaphila, handle: CallHandle) -> None:
        self._fake = fake
        self._handle = handle
        self._heard = 0
        self._turned = 0
        self._forwards = 0

    def __repr__(self) -> str:
        return f"<Phone {self._handle.number} call {self._handle.call_id}>"

    @property
    def call_id(self) -> str | None:
        return self._handle.call_id

    @property
    def done(self) -> bool:
        """Whether the call has ended and its result is ready."""
        return self._handle.done

    @property
    def transcript(self) -> list[TranscriptEntry]:
        return list(self._handle._session.transcript)

    @property
    def model(self) -> CallModel | None:
        call_id = self._handle.call_id
        return self._fake.models.get(call_id) if call_id else None

    async def hears(self) -> str:
        """What the flow says next (a ``say`` or a gather's prompt)."""

        def next_heard() -> str | None:
            heard = self._utterances()
            if len(heard) > self._heard:
                self._heard += 1
                return heard[self._heard - 1]
            return None

        return await self._until(next_heard, "the flow to say something")

    async def turn(self) -> Turn:
        """Let the call go on until the flow waits for the caller, or the call ends.

        The flow waits for the caller when a gather is active and the flow awaits its
        outcome (``Turn.gather``), or when it awaits keys or events outside a gather
        (``gather`` is ``None``, ``ended`` false). Says and prompts on the way pass by
        themselves and are returned in ``Turn.heard``; nothing is pressed.
        """

        def waiting() -> Turn | None:
            model = self.model
            if self._handle.done:
                return self._next_turn(None, ended=True)
            if model is None or model.next_timer(kinds=_SELF_PASSING) is not None:
                return None
            if self._handle._session.waiting_for is None:
                return None
            return self._next_turn(model.gathering, ended=False)

        return await self._until(waiting, "the flow to wait for the caller")

    async def press(self, keys: str) -> None:
        """Press ``keys`` one after another (a tenth of a second apart)."""
        if not isinstance(keys, str) or not keys:
            raise ValueError("press() needs keys such as '1' or '1234#'")
        await self._settle()
        model = self._require_model("press keys")
        for key in keys:
            await self._fake.advance_to(self._fake.clock.now() + KEY_GAP)
            model.press(key, self._fake.clock.now())
            self._fake._flush(model)
        await self._settle()

    async def stay_silent(self) -> None:
        """Press nothing until the gather the flow waits on times out."""

        def gathering() -> float | None:
            model = self.model
            timer = model.next_timer(kinds=frozenset({"gather"})) if model else None
            return timer.at if timer else None

        deadline = await self._until(gathering, "the flow to gather keys")
        await self._fake.advance_to(deadline)
        await self._settle()

    async def hang_up(self) -> None:
        """Hang up now, whatever the flow is doing."""
        await self._settle()
        model = self._require_model("hang up")
        model.caller_hangs_up(self._fake.clock.now())
        self._fake._flush(model)
        await self._settle()

    async def waits(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass without doing anything."""
        if not seconds >= 0:
            raise ValueError(f"seconds must be zero or more, not {seconds!r}")
        await self._settle()
        await self._fake.advance_to(self._fake.clock.now() + seconds)
        await self._settle()

    async def forwarded_to(self) -> str:
        """The number the flow forwards this call to."""

        def forward() -> str | None:
            call_id = self._handle.call_id
            forwards = [
                c for c in self._fake.commands_for(call_id or "") if isinstance(c, ForwardCall)
            ]
            if len(forwards) > self._forwards:
                self._forwards += 1
                return forwards[self._forwards - 1].forward_number
            return None

        return await self._until(forward, "the flow to forward the call")

    async def result(self) -> CallResult:
        """Let the call run to its end and return its result."""

        def finished() -> CallResult | None:
            return self._handle._result if self._handle.done else None

        return await self._until(finished, "the call to end")

    # -- driving ---------------------------------------------------------------------

    def _utterances(self) -> list[str]:
        out: list[str] = []
        for command in self._fake.commands_for(self._handle.call_id or ""):
            if isinstance(command, Voice) or (isinstance(command, Gather) and command.text):
                out.append(command.text or "")
        return out

    def _next_turn(self, gather: Gather | None, *, ended: bool) -> Turn:
        heard = self._utterances()
        new, self._turned = tuple(heard[self._turned :]), len(heard)
        return Turn(new, gather, ended)

    def _require_model(self, action: str) -> CallModel:
        model = self.model
        if model is None:
            raise AssertionError(f"cannot {action}: the call has not been placed")
        return model

    async def _settle(self) -> None:
        await wait_all_tasks_blocked()

    async def _until(self, check: Callable[[], T | None], expecting: str) -> T:
        waited = 0.0
        while True:
            await self._settle()
            found = check()
            if found is not None:
                return found
            if self._handle.done:
                result = self._handle._result
                status = result.status if result else "?"
                raise AssertionError(f"expected {expecting}, but the call is over ({status})")
            model = self.model
            timer = model.next_timer(kinds=_SELF_PASSING) if model else None
            if timer is not None:
                await self._fake.advance_to(timer.at)
                continue
            waiting = self._handle._session.waiting_for
            if waiting is not None:
                raise AssertionError(
                    f"expected {expecting}, but the flow is waiting for {waiting}; "
                    "the phone must act first (press(), stay_silent() or hang_up())"
                )
            if waited >= self._fake.patience:
                what = f"waiting for {waiting}" if waiting else "busy outside the call"
                raise AssertionError(
                    f"expected {expecting}, but after {self._fake.patience} s the flow is {what}"
                )
            await anyio.sleep(0.005)
            waited += 0.005
