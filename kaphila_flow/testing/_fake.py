"""``FakeKaphila``: the provider model in memory, with a phone the test holds.

The fake is a thin host over ``Provider``, the same model the simulator serves over
HTTP: commands go to it as they come (``send``, the transport seam), its webhooks come
back through the runtime's intake, the path HTTP deliveries take (token, signature,
duplicates, early events), skipping the HTTP framing; unsigned, they come as the events
they are, with the JSON body they stand for (its size and duplicate identity), not
parsed back from it.

Time is the event loop's. On a loop that can jump (``VIRTUAL_TIME_BACKENDS``, which the
``kaphila`` fixture's plugin sets up), the fake switches jumping on while it is open:
ring timeouts, playbacks, gather timeouts and the flow's own sleeps take no real time.
"""

from __future__ import annotations

import json
import json.encoder
import math
import warnings
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Any, Literal, TypeVar, get_args

import anyio
import anyio.abc
import anyio.lowlevel
import sniffio

from .._callees import KEY_GAP, AnswerMode, Callee, normalize_answer
from .._commands import Command, ForwardCall, Gather, MakeCall, Voice, command_call_id
from .._exceptions import Timeout
from .._intake import receive_event
from .._model import CallModel, SpeechTiming
from .._numbers import normalize_number
from .._provider import DEFAULT_KEY, Account, Faults, Provider, Webhook
from .._provider._host import ProviderHost
from .._result import CallResult, TranscriptEntry
from .._runtime import CallHandle, Flow, Runtime
from .._signing import sign
from .._wake import Parking
from ._deliveries import Deliveries
from ._hosted import hosted

__all__ = ["ANSWERS", "FAKE_WEBHOOK_URL", "Answer", "FakeKaphila", "Phone", "Turn"]

#: How the phone a test holds answers a call (``held``: the test answers by hand).
Answer = Literal["human", "machine", "unknown", "busy", "no-answer"]
ANSWERS: tuple[str, ...] = get_args(Answer)

R = TypeVar("R")
T = TypeVar("T")

#: Where the fake's runtime says its receiver is; nothing listens there.
FAKE_WEBHOOK_URL = "https://receiver.kaphila-fake.invalid/webhooks"
#: The fake's calendar starts here: 2026-01-01T00:00:00Z (call ids and timestamps repeat).
EPOCH = 1_767_225_600.0
#: How long a request whose answer a fault lost hangs before the client gives up.
LOST_ANSWER_TIMEOUT = 10.0
#: A phone gives up on a flow that sends this many commands without doing what it awaits.
MAX_STEPS = 1_000
#: Before a gather the flow waits on would time out, the phone speaks up this much earlier.
_EARLY = 1e-3
#: The headers of every webhook the fake posts (a signed one adds its own three).
_HEADERS: Mapping[str, str] = MappingProxyType(
    {"content-type": "application/json", "user-agent": "Kaphila-API-API/2.0"}
)


def _json_encoder() -> Callable[[Any], str]:
    """``json.dumps`` with its default options, byte for byte: CPython's C encoder made
    once (``json.dumps`` makes one per call), or ``JSONEncoder.encode`` where there is
    none or it answers otherwise."""
    base = json.JSONEncoder()
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return base.encode
    try:
        made = make(
            None,
            base.default,
            json.encoder.encode_basestring_ascii,
            None,
            ": ",
            ", ",
            False,
            False,
            True,
        )
    except TypeError:  # another signature: not the encoder this was written for
        return base.encode

    def encode(value: Any) -> str:
        return "".join(made(value, 0))

    sample = {"a": "é\n", "b": [1, 2.5, None, True, False], "c": {"d": -0.0, "e": 1e300}}
    return encode if encode(sample) == base.encode(sample) else base.encode


_encode = _json_encoder()

#: The callee ``call(answer=...)`` stands for, one per answer (a ``Callee`` is frozen):
#: a test keeps no callee of its own.
_CALLEE_FOR_ANSWER: dict[AnswerMode, Callee] = {}


class _Stuck(Exception):
    """The flow waits for the caller while the phone waits for the flow."""


class _Patience:
    """One wait of a phone's, bounded by the fake's patience: given up at loop time ``at``."""

    __slots__ = ("at", "late")

    def __init__(self, at: float) -> None:
        self.at = at
        self.late = False


class _Watch(Parking):
    """A phone's wait for the next change, with the call whose flow it watches."""

    __slots__ = ("handle",)

    def __init__(self, handle: CallHandle) -> None:
        Parking.__init__(self)
        self.handle = handle


@dataclass(frozen=True, slots=True)
class Turn:
    """Where the callee has a say: what they heard since the last turn, and the gather."""

    heard: tuple[str, ...]
    gather: Gather | None
    ended: bool


class FakeKaphila:
    """In-memory Kaphila: ``async with FakeKaphila() as kaphila: phone = await kaphila.call(flow)``.

    ``runtime_options`` go to the ``Runtime`` it drives (``gather_grace``, ``store``, ...).
    ``callees`` script the phones at given numbers (as the simulator's config does);
    ``account`` sets credits, whitelisted caller ids and the hourly limit (unlimited by
    default); ``faults`` switches on the provider's bad days. ``patience`` bounds, in
    virtual seconds, how long a phone waits for a flow busy outside the call.
    """

    def __init__(
        self,
        *,
        patience: float = 86_400.0,
        speech: SpeechTiming | None = None,
        caller_id: str | None = None,
        callees: Mapping[str, Callee] | None = None,
        default_callee: Callee | None = None,
        account: Account | None = None,
        faults: Faults | None = None,
        start_time: float = EPOCH,
        virtual_time: bool = True,
        **runtime_options: Any,
    ) -> None:
        self.speech = speech or SpeechTiming()
        self.patience = patience
        #: Whether the loop's clock jumps while the fake is open (where it can).
        self.virtual_time = virtual_time
        if account is None:
            region = runtime_options.get("default_region")
            whitelist = (normalize_number(caller_id, default_region=region),) if caller_id else ()
            account = Account(credits=10**9, rate_limit=10**9, caller_ids=whitelist)
        self.provider = Provider(
            accounts={DEFAULT_KEY: account},
            callees=callees,
            default_callee=default_callee or Callee(answer="human", answer_after=0.0),
            speech=self.speech,
            faults=faults,
        )
        self._account = self.provider.accounts[DEFAULT_KEY]
        self.host = ProviderHost(self.provider, origin=start_time, on_webhooks=self._deliver)
        #: Every command the flows sent, in order.
        self.commands: list[Command[Any]] = []
        #: Every webhook's body as delivered, and each status but 200 the intake gave
        #: (by index): bytes and numbers, nothing a garbage collection walks.
        self._delivered: list[bytes] = []
        self._refused: dict[int, int] = {}
        #: Every webhook delivered to the runtime: (event, HTTP status the intake gave).
        self.deliveries = Deliveries(self._delivered, self._refused)
        #: The same commands, by the call each steers.
        self._by_call: dict[str, list[Command[Any]]] = defaultdict(list)
        self._secrets = list(runtime_options.get("webhook_secrets") or ())
        #: The phones of calls still going, by handle (a finished call's is let go).
        self._phones: dict[int, Phone] = {}
        #: What waits for the next change (``changed``, a phone), each woken once; and
        #: the phones that wait for the next change but a webhook (their flow is busy
        #: outside any wait: what they look for comes with a command, a wait or the
        #: call's end).
        self._waiters: list[Parking] = []
        self._webhooks_aside: list[_Watch] = []
        #: The phones' waits bounded by patience, and the one alarm that rings for them
        #: (at ``_patience_at``, loop time): a wait that ends leaves it armed, as the next
        #: wait gives up no earlier (patience counts from each wait's start).
        self._patient: set[_Patience] = set()
        self._patience_at = math.inf
        #: Whether the loop runs woken tasks in the order they were woken (asyncio): a
        #: phone woken by webhooks after its flow looks once the flow has had its step.
        self._wakes_in_order = True
        self._stack: AsyncExitStack | None = None
        runtime_options.setdefault("webhook_url", FAKE_WEBHOOK_URL)
        self.runtime = Runtime(self, caller_id=caller_id, start_time=start_time, **runtime_options)

    def __repr__(self) -> str:
        return f"<FakeKaphila {len(self.provider.calls)} calls>"

    async def __aenter__(self) -> FakeKaphila:
        self._wakes_in_order = sniffio.current_async_library() == "asyncio"
        stack = AsyncExitStack()
        self.virtual_time = await stack.enter_async_context(
            hosted(self.host.run, self.runtime, virtual=self.virtual_time)
        )
        self._stack = stack
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        assert self._stack is not None
        try:
            # Calls still live at the end of a test are hung up by the caller.
            now = self.host.now()
            for phone in list(self._phones.values()):
                if not phone.driven and not phone.done:
                    warnings.warn(
                        f"the test never drove its phone for the call to {phone.handle.number} "
                        "(hears(), press(), result(), ...): the flow was cut short when the "
                        "fake closed",
                        UserWarning,
                        stacklevel=2,
                    )
            for call in list(self.provider.calls.values()):
                if call.model.live:
                    self.provider.callee_hangs_up(call.model.call_id, now)
            self.host.poke()
        finally:
            await self._stack.__aexit__(*exc_info)

    # -- what a test reads -------------------------------------------------------------

    @property
    def models(self) -> dict[str, CallModel]:
        """Each call's provider-side model, by call id."""
        return {call_id: call.model for call_id, call in self.provider.calls.items()}

    def now(self) -> float:
        """The provider's time (epoch seconds; the fake's calendar starts on 2026-01-01)."""
        return self.host.now()

    def commands_for(self, call_id: str) -> list[Command[Any]]:
        """The commands sent for one call, in order."""
        return list(self._sent_for(call_id))

    def _sent_for(self, call_id: str) -> Sequence[Command[Any]]:
        """``commands_for``, not copied: read it, never change it."""
        return self._by_call.get(call_id, ())

    # -- the test's side -------------------------------------------------------------

    async def call(
        self,
        flow: Flow,
        *,
        number: str = "16089270862",
        answer: AnswerMode | str = "human",
        callee: Callee | None = None,
        **dial_options: Any,
    ) -> Phone:
        """Place a call to a phone the test holds, running ``flow`` on it.

        ``answer`` is how the phone answers at once (``human``, ``machine``, ``unknown``,
        ``busy``, ``no-answer``, or ``held`` to answer with ``phone.answer()``); keys and
        hang-ups are the test's (``phone.press()``, ``phone.hang_up()``). A scripted
        ``callee`` plays its own script instead.
        """
        if callee is None:
            how = normalize_answer(answer, where="answer")
            callee = _CALLEE_FOR_ANSWER.get(how)
            if callee is None:
                callee = _CALLEE_FOR_ANSWER[how] = Callee(how, answer_after=0.0)
        handle = await self.runtime.start(number, flow, **dial_options)
        # The flow's task has not run yet: the callee is expected before it dials (at
        # the number as the runtime read it), and only if the call is started.
        self.provider.expect_call(handle.number, callee)
        phone = Phone(self, handle)
        self._phones[id(handle)] = phone
        handle.add_done_callback(self._ended)  # not a closure over the phone: no cycle
        handle.add_wait_callback(partial(self._flow_waits, id(handle)))
        return phone

    # -- the transport's side --------------------------------------------------------

    async def send(self, command: Command[R]) -> R:
        self.commands.append(command)
        owner = command_call_id(command)
        if owner is not None:
            self._by_call[owner].append(command)
        if (self._waiters or self._webhooks_aside) and not isinstance(command, MakeCall):
            # Placing a call gives no phone anything to see: what it waits for comes
            # with the call's webhooks, its flow's next command or its flow's wait.
            self._change()
        provider = self.provider
        now = self.host.now()
        provider.admit(self._account, command.path, now)
        lost = provider.answer_lost(command.path)
        reply = await self.host.request(self._account, command, now)
        if lost:
            await anyio.sleep(LOST_ANSWER_TIMEOUT)
            raise Timeout(f"no answer from Kaphila {command.path} (simulated fault)")
        return reply

    async def aclose(self) -> None:
        return None

    def _deliver(self, webhooks: list[Webhook]) -> None:
        runtime = self.runtime
        delivered = self._delivered
        for webhook in webhooks:
            token = webhook.url.rpartition("/")[2]
            event = webhook.event
            body = _encode(event.to_payload()).encode()
            if not self._secrets:
                # Unsigned, the intake takes the event as it is: the body it stands for
                # is not parsed back (only its size and its duplicate identity count).
                reply = receive_event(runtime, token, event, body)
                delivered.append(body)
                if reply.status != 200:
                    self._refused[len(delivered) - 1] = reply.status
                continue
            headers = dict(_HEADERS)
            msg_id = webhook.message_id
            stamp = int(self.runtime.wall_time())
            headers["webhook-id"] = msg_id
            headers["webhook-timestamp"] = str(stamp)
            headers["webhook-signature"] = sign(self._secrets[0], msg_id, stamp, body)
            reply = runtime.receive_webhook(token, body, headers=headers)
            delivered.append(body)
            if reply.status != 200:
                self._refused[len(delivered) - 1] = reply.status
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            aside = self._webhooks_aside
            in_order = self._wakes_in_order
            for waiter in waiters:
                if type(waiter) is _Watch and not (in_order or waiter.handle.parked):
                    # The flow it watches is busy (these webhooks may have woken it):
                    # what the phone looks for comes with its next command, wait or
                    # end, each a change; the webhooks change nothing it reads. (On a
                    # loop that runs woken tasks in the order woken, the phone looks
                    # right after its flow's step, in the same round: it is woken.)
                    aside.append(waiter)
                else:
                    waiter.notify()
        if self._wakes_in_order and self._webhooks_aside:
            # There, the scheduler's round that delivers these webhooks has answered the
            # playbacks it finished first: a phone whose flow awaits a command's answer
            # is woken after that flow, and looks right after the flow's step, in the
            # same round (a flow busy outside the call is still let be).
            kept: list[_Watch] = []
            for waiter in self._webhooks_aside:
                if waiter.handle.waiting_for is not None:
                    waiter.notify()
                else:
                    kept.append(waiter)
            self._webhooks_aside = kept

    def _ended(self, handle: CallHandle) -> None:
        self._phones.pop(id(handle), None)
        self._change()

    def _flow_waits(self, phone_key: int) -> None:
        """A flow starts waiting for an event: what waits for changes looks again, as
        the flow may wait for its caller now; unless its call is under way at the
        provider (ringing, playing, a webhook on its way), which moves on by a webhook
        (itself a change) before the flow can be waiting for the caller."""
        phone = self._phones.get(phone_key)
        call_id = phone.call_id if phone is not None else None
        if call_id is not None:
            provider = self.provider
            gather_at = provider.pending_gather_timeout(call_id)
            if not (provider.idle(call_id) if gather_at is None else provider.quiet(call_id)):
                # A flow waits: now its webhooks matter to what set them aside.
                if self._webhooks_aside:
                    self._waiters.extend(self._webhooks_aside)
                    self._webhooks_aside = []
                return
        self._change()

    def _change(self) -> None:
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                waiter.notify()
        if self._webhooks_aside:
            watches, self._webhooks_aside = self._webhooks_aside, []
            for watch in watches:
                watch.notify()

    async def changed(self, deadline: float = math.inf) -> bool:
        """Wait until something happens (a command, a webhook, a call's end): ``True``;
        or until the loop's clock reaches ``deadline`` first: ``False``."""
        waiter = Parking()
        self._waiters.append(waiter)
        if deadline == math.inf:
            await waiter.park()
            return True
        late = False

        def ring() -> None:
            nonlocal late
            late = True
            self._change()

        ticket = self.host.alarm(deadline, ring)
        try:
            await waiter.park()
        finally:
            self.host.disarm(ticket)
        return not late

    def _be_patient(self) -> _Patience:
        """A phone starts a wait that gives up after ``patience`` (loop) seconds;
        ``_patient.discard`` it once it is over."""
        wait = _Patience(self.host.loop_now() + self.patience)
        self._patient.add(wait)
        if wait.at < self._patience_at:
            # The first, or one sooner than the armed alarm (the patience was lowered):
            # the earlier alarm, when it rings, finds no wait due and rings no one.
            self._patience_alarm(wait.at)
        return wait

    def _patience_alarm(self, at: float) -> None:
        self._patience_at = at
        self.host.alarm(at, partial(self._lose_patience, at))

    def _lose_patience(self, armed_at: float) -> None:
        """The patience alarm set for ``armed_at`` rings: the waits due then give up;
        the alarm is set again for the next wait to give up, if it is not yet."""
        if armed_at == self._patience_at:
            self._patience_at = math.inf
        due = max(armed_at, self.host.loop_now())
        later = math.inf
        late = False
        for wait in self._patient:
            if wait.at <= due:
                wait.late = late = True
            elif wait.at < later:
                later = wait.at
        if later < self._patience_at:
            self._patience_alarm(later)
        if late:
            self._change()

    # -- the callee's actions, for its phone -------------------------------------------

    def _act(self, action: Callable[[float], Any]) -> Any:
        now = self.host.now()
        result = action(now)
        self.host.poke(now)
        return result


class Phone:
    """The callee's phone in a test. Each method lets the call go on as far as it must."""

    def __init__(self, fake: FakeKaphila, handle: CallHandle) -> None:
        self._fake = fake
        self._handle = handle
        self._heard = 0
        self._forwards = 0
        self._said: list[str] = []
        self._scanned = 0  # of this call's commands, into ``_said``
        #: Whether the test ever awaited one of this phone's methods.
        self.driven = False

    def __repr__(self) -> str:
        return f"<Phone {self._handle.number} call {self._handle.call_id}>"

    @property
    def call_id(self) -> str | None:
        return self._handle.call_id

    @property
    def webhook_token(self) -> str:
        """The secret in this call's webhook URL, for tests that post webhooks by hand."""
        return (self._handle.webhook_url or "").rsplit("/", 1)[-1]

    @property
    def handle(self) -> CallHandle:
        """The runtime's handle of this call."""
        return self._handle

    @property
    def done(self) -> bool:
        """Whether the call has ended and its result is ready."""
        return self._handle.done

    @property
    def transcript(self) -> list[TranscriptEntry]:
        return self._handle.transcript

    @property
    def model(self) -> CallModel | None:
        call_id = self._handle.call_id
        call = self._fake.provider.calls.get(call_id) if call_id else None
        return call.model if call else None

    # -- what the caller hears ---------------------------------------------------------

    async def hears(self) -> str:
        """What the flow says next (a ``say`` or a gather's prompt)."""

        def next_heard() -> str | None:
            heard = self._utterances()
            if len(heard) > self._heard:
                self._heard += 1
                return heard[self._heard - 1]
            return None

        return await self._until(next_heard, "the flow to say something")

    async def forwarded_to(self) -> str:
        """The number the flow forwards this call to."""
        number = self._next_forward()
        if number is None:
            return await self._until(self._next_forward, "the flow to forward the call")
        self.driven = True
        return number

    def _next_forward(self) -> str | None:
        forwards = [c for c in self._commands() if isinstance(c, ForwardCall)]
        if len(forwards) > self._forwards:
            self._forwards += 1
            return forwards[self._forwards - 1].forward_number
        return None

    async def result(self) -> CallResult:
        """Let the call run to its end and return its result."""
        outcome = self._handle.outcome
        if outcome is None:
            return await self._until(lambda: self._handle.outcome, "the call to end")
        self.driven = True
        return outcome

    async def turn(self) -> Turn:
        """Let the call go on until the flow waits for this caller, or the call ends.

        The flow waits for the caller in a gather (``Turn.gather``), or outside one
        (``call.keys()``, ``wait_for``: ``gather`` is ``None``), with nothing else on
        the call that could move it on.
        """
        self.driven = True
        with suppress(_Stuck):
            await self._until(lambda: self._handle.outcome, "the call to end", stuck_is_error=False)
        heard = tuple(self._utterances()[self._heard :])
        self._heard += len(heard)
        return Turn(heard, self._open_gather(), self._handle.done)

    # -- what the caller does ----------------------------------------------------------

    async def answer(self, how: AnswerMode = "human") -> None:
        """Pick up a ringing call placed with ``answer="held"``."""
        self.driven = True
        call_id = await self._placed("answer")
        self._fake._act(lambda now: self._fake.provider.answer_call(call_id, now, how))
        await self._fake.changed()

    async def decline(self) -> None:
        """Reject a ringing call placed with ``answer="held"`` (busy)."""
        self.driven = True
        call_id = await self._placed("decline")
        self._fake._act(lambda now: self._fake.provider.decline_call(call_id, now))
        await self._fake.changed()

    async def press(self, keys: str) -> None:
        """Press ``keys`` one after another, 0.15 s apart (as a scripted callee does).

        The first key comes 0.15 s from now: a person takes a moment.
        """
        if not isinstance(keys, str) or not keys:
            raise ValueError("press() needs keys such as '1' or '1234#'")
        self.driven = True
        call_id = await self._placed("press keys")
        if self._handle.done:
            raise AssertionError(f"cannot press {keys!r}: the call is over")
        fake = self._fake
        last = fake._act(lambda now: fake.provider.press_keys(call_id, keys, now + KEY_GAP))
        # Until the last key's moment (an alarm the scheduler rings in the round that
        # sends that key's webhooks), and until the provider has taken every key.
        pressed = fake.host.loop_time(last)
        while await fake.changed(pressed) or fake.provider.by_hand_pending(call_id):
            pass

    async def stay_silent(self) -> None:
        """Press nothing until the gather the flow waits on times out."""
        self.driven = True
        fake = self._fake
        gather_at = await self._until(
            lambda: fake.provider.pending_gather_timeout(self._handle.call_id or ""),
            "the flow to gather keys",
            stuck_is_error=False,
        )
        await anyio.sleep_until(fake.host.loop_time(gather_at))
        while fake.provider.pending_gather_timeout(self._handle.call_id or "") == gather_at:
            await fake.changed()

    async def hang_up(self) -> None:
        """Hang up now, whatever the flow is doing."""
        self.driven = True
        call_id = await self._placed("hang up")
        call = self._fake.provider.calls.get(call_id)
        if call is None or not call.model.live:
            return
        self._fake._act(lambda now: self._fake.provider.callee_hangs_up(call_id, now))
        await self._fake.changed()

    async def waits(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass without doing anything."""
        if not seconds >= 0:
            raise ValueError(f"seconds must be zero or more, not {seconds!r}")
        self.driven = True
        await anyio.sleep(seconds)

    # -- driving ---------------------------------------------------------------------

    def _commands(self) -> Sequence[Command[Any]]:
        return self._fake._sent_for(self._handle.call_id or "")

    def _utterances(self) -> list[str]:
        """What the flow said on this call so far (read on from where the last look
        stopped)."""
        commands = self._commands()
        if len(commands) > self._scanned:
            for command in commands[self._scanned :]:
                if isinstance(command, Voice) or (isinstance(command, Gather) and command.text):
                    self._said.append(command.text or "")
            self._scanned = len(commands)
        return self._said

    def _open_gather(self) -> Gather | None:
        if self._fake.provider.pending_gather_timeout(self._handle.call_id or "") is None:
            return None
        model = self.model
        return model.gathering if model is not None else None

    async def _placed(self, action: str) -> str:
        if self._handle.call_id is None:
            await self._handle.placed()
        if self._handle.call_id is None:
            raise AssertionError(f"cannot {action}: the call was not placed")
        return self._handle.call_id

    def _transcript_so_far(self) -> str:
        lines = [str(entry) for entry in self._handle.transcript[-12:]]
        return "\n".join(lines) if lines else "(nothing yet)"

    async def _until(
        self, check: Callable[[], T | None], expecting: str, *, stuck_is_error: bool = True
    ) -> T:
        """Let the call go on until ``check()`` finds something.

        Fails, naming what the flow waits for, when the call ends first, when the flow
        waits for this caller's keys (``_Stuck``, an ``AssertionError`` unless the
        caller asked for turns), or after ``patience`` virtual seconds or ``MAX_STEPS``
        commands without it.
        """
        self.driven = True
        fake = self._fake
        steps_at_start = len(fake.commands)
        # Patience counts from the first time it waits.
        patience: _Patience | None = None
        try:
            while True:
                found = check()
                if found is not None:
                    return found
                if self._handle.done:
                    result = self._handle.outcome
                    status = result.status if result else "?"
                    raise AssertionError(f"expected {expecting}, but the call is over ({status})")
                if len(fake.commands) - steps_at_start > MAX_STEPS:
                    raise AssertionError(
                        f"expected {expecting}, but the flow sent {MAX_STEPS} commands "
                        "without it: does it loop with no exit?\n" + self._transcript_so_far()
                    )
                if patience is None:
                    patience = fake._be_patient()
                elif patience.late:
                    break
                call_id = self._handle.call_id or ""
                gather_at = fake.provider.pending_gather_timeout(call_id)
                if gather_at is None:
                    parked = self._handle.parked
                    if parked and fake.provider.idle(call_id):
                        # It waits for this caller outside a gather (keys(), wait_for).
                        if stuck_is_error:
                            raise _stuck_error(expecting, self._handle.waiting_for)
                        raise _Stuck
                    # A flow busy outside any wait (sending, playing, sleeping) moves on
                    # with a command, a wait or its end, each a change: the webhooks
                    # meanwhile change nothing this loop reads (a gather starts with
                    # its command).
                    waiter = _Watch(self._handle)
                    (fake._waiters if parked else fake._webhooks_aside).append(waiter)
                    await waiter.park()
                    continue
                if self._handle.awaiting_keys and fake.provider.quiet(call_id):
                    # Nothing but this caller can move it on.
                    if stuck_is_error:
                        raise _stuck_error(expecting, self._handle.waiting_for)
                    raise _Stuck
                # The flow may be waiting for this caller's keys: if nothing happens
                # until just before the gather times out, it is.
                wake = fake.host.loop_time(gather_at) - _EARLY
                if wake >= patience.at:
                    await fake.changed()
                    continue
                if await fake.changed(wake):
                    continue
                if stuck_is_error:
                    raise _stuck_error(expecting, self._handle.waiting_for)
                raise _Stuck
        finally:
            if patience is not None:
                fake._patient.discard(patience)
        what = self._handle.waiting_for
        raise AssertionError(
            f"expected {expecting}, but after {fake.patience:g} s the flow is "
            f"{'waiting for ' + what if what else 'busy outside the call'}\n"
            + self._transcript_so_far()
        )


def _stuck_error(expecting: str, waiting: str | None) -> AssertionError:
    return AssertionError(
        f"expected {expecting}, but the flow is waiting for {waiting or 'the caller'}; "
        "the phone must act first (press(), stay_silent() or hang_up())"
    )
