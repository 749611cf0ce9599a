"""``Provider``: the one model of Kaphila, without I/O.

In the manner of h11, it never sleeps, sends or reads a clock. A host feeds it a command
and the current time and gets a reply or an ``ApiError``; asks it for the webhooks due by
a time and for its next deadline; lets time pass with ``advance(now)``; and tells it what
a callee does by hand (answer, decline, press keys, hang up). Every provider rule lives
here or in the per-call ``CallModel`` and scripted ``CalleeRun`` it drives: request
validation and the error envelope's errors, accounts, credits, the whitelist, the hourly
rate limit, ring timeouts, AMD, gathers, speech timing, forwarding, recordings, and the
fault switches.

Two hosts drive it: ``kaphila_flow.testing.FakeKaphila`` (in memory, on the event loop's
virtual time) and ``kaphila_flow.simulator.Simulator`` (Quart over HTTP, webhooks by
httpx, real time with a speed factor). Same commands, same script, same events.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from heapq import heappop, heappush
from typing import Any, TypeVar

from .. import _events as ev
from .._callees import KEY_GAP, Action, AnswerMode, Callee, CalleeRun
from .._commands import (
    Command,
    ForwardCall,
    Gather,
    Hangup,
    MakeCall,
    MakeCallReply,
    Play,
    PlaybackReply,
    StopRecording,
    Voice,
)
from .._exceptions import AuthenticationError, BadRequest, CallNotFound
from .._model import (
    ANSWERED,
    ENDED,
    KEYS,
    RINGING,
    CallModel,
    Playback,
    SpeechTiming,
    iso_timestamp,
)
from .._numbers import normalize_number, provider_number
from ._accounts import Account, AccountState
from ._faults import Faults

__all__ = ["DEFAULT_KEY", "PendingPlayback", "Provider", "ProviderCall", "Webhook"]

R = TypeVar("R")

DEFAULT_KEY = "ak_simulator"
_OUTCOMES = (ev.GatherComplete, ev.GatherTimeout, ev.GatherFailed)
#: What ``take_webhooks`` answers when none is due (never changed).
_NO_WEBHOOKS: list[Webhook] = []
#: Ended calls kept for ``GET /calls`` and late requests, oldest dropped first.
RETAIN_FINISHED = 10_000


@dataclass(slots=True)
class Webhook:
    """One webhook POST due to leave: ``event`` to ``url`` at provider time ``due``.

    Hosts read it and never change it. It is not a frozen dataclass only because one is
    built per event on the provider's busiest path, and a frozen one's ``__init__``
    costs about three times as much (an ``object.__setattr__`` call per field).
    """

    url: str
    event: ev.Event
    due: float
    #: One id per event emitted: a duplicate the fault switch sends shares it.
    message_id: str = ""


@dataclass(slots=True)
class PendingPlayback:
    """A ``/voice`` or ``/play`` whose HTTP answer comes when the playback finishes."""

    call_id: str
    playback: Playback

    @property
    def finished(self) -> bool:
        return self.playback.played is not None


@dataclass(slots=True, eq=False)
class ProviderCall:
    """One call as Kaphila holds it: the model, the callee, the account it bills."""

    model: CallModel
    run: CalleeRun
    account: AccountState
    webhook_url: str | None
    charged: bool = False
    due: float | None = None  # when it next needs the provider's attention
    #: What is due then: the callee's action (``None``: the model's timer), as
    #: ``_changed`` last found it (every change to the call goes through it).
    action: Action | None = None
    last_webhook_due: float = 0.0
    #: The reorder fault's event and its message id, out after the next event.
    held_back: tuple[ev.Event, str] | None = None
    queued: int = 0  # webhooks in the outbox, not yet taken by the host
    #: The playbacks whose HTTP answer waits for their end (``None``: none).
    playbacks: list[PendingPlayback] | None = None


class Provider:
    """Kaphila: accounts, scripted callees, calls, webhooks; commands and time in."""

    def __init__(
        self,
        *,
        accounts: Mapping[str, Account] | None = None,
        callees: Mapping[str, Callee] | None = None,
        default_callee: Callee | None = None,
        speech: SpeechTiming | None = None,
        faults: Faults | None = None,
        retain_finished: int = RETAIN_FINISHED,
    ) -> None:
        self.accounts = {
            key: AccountState(account)
            for key, account in (accounts or {DEFAULT_KEY: Account()}).items()
        }
        self.callees: dict[str, Callee] = {
            normalize_number(number): callee for number, callee in (callees or {}).items()
        }
        self.default_callee = default_callee or Callee()
        self.speech = speech or SpeechTiming()
        self.faults = faults or Faults()
        self.calls: dict[str, ProviderCall] = {}
        #: Webhooks the fault switches dropped (lost on the way).
        self.dropped: list[ev.Event] = []
        self._retain = retain_finished
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._agenda: list[tuple[float, int, ProviderCall]] = []
        #: Webhooks to leave, by due time then order queued, each with its call (whose
        #: ``queued`` count it is in).
        self._outbox: list[tuple[float, int, Webhook, ProviderCall]] = []
        self._serial = 0
        self._seq = 0
        self._done_playbacks: list[PendingPlayback] = []
        self._expected: dict[str, deque[Callee]] = {}
        self._messages = 0
        #: Called with each batch of events a call emits (a host's watchers).
        self.on_events: Callable[[ProviderCall, list[ev.Event], float], None] | None = None

    def __repr__(self) -> str:
        return f"<Provider {len(self.calls)} calls>"

    # -- who is asking ---------------------------------------------------------------

    def authenticate(self, api_key: str | None) -> AccountState:
        if not api_key:
            raise AuthenticationError("Missing API key: send Authorization: Bearer ak_...")
        state = self.accounts.get(api_key)
        if state is None:
            raise AuthenticationError("Invalid API key")
        return state

    def admit(self, account: AccountState, path: str, now: float) -> None:
        """Count a request against the hourly limit; the fault switch may refuse it."""
        account.count(path, now)
        faults = self.faults
        if faults.api_error:  # the switch is off on most days: no call to ask it
            faults.refuse(path)

    def answer_lost(self, path: str) -> bool:
        """Whether this request's answer is lost on the way back (a fault switch)."""
        faults = self.faults
        return bool(faults.lost_answer) and faults.lose_answer(path)

    # -- commands --------------------------------------------------------------------

    def handle(self, account: AccountState, command: Command[R], now: float) -> R:
        """Carry out ``command``; a ``/voice`` or ``/play`` answers ``PendingPlayback``.

        Raises the provider's ``ApiError`` (``BadRequest``, ``CallNotFound``, ...) for a
        request it refuses. Call ``admit`` first for the rate limit and fault switches.
        """
        reply: Any
        # Class patterns: the isinstance checks, without a call each.
        match command:
            case MakeCall():
                return self._make_call(account, command, now)  # type: ignore[return-value]
            case Voice() | Play():
                call = self._live(command.call_id)
                model = call.model
                playback = (
                    model.voice(command, now)
                    if isinstance(command, Voice)
                    else model.play(command, now)
                )
                reply = PendingPlayback(model.call_id, playback)
                if call.playbacks is None:
                    call.playbacks = [reply]
                else:
                    call.playbacks.append(reply)
            case Gather():
                call = self._live(command.call_id)
                reply = call.model.gather(command, now)
            case ForwardCall():
                target = provider_number(command.forward_number, "forwardNumber")
                call = self._live(command.call_id)
                forward = command
                if target != command.forward_number:  # the model holds Kaphila's spelling
                    forward = ForwardCall(command.call_id, target)
                reply = call.model.forward(forward, now)
            case Hangup():
                call = self._live(command.call_id)
                reply = call.model.hangup(now)
            case StopRecording():
                call = self._live(command.call_id)
                reply = call.model.stop_recording(now)
            case _:
                raise BadRequest(f"{type(command).__name__} is not a Kaphila request")
        self._changed(call, now)
        return reply  # type: ignore[no-any-return]

    def playback_reply(self, pending: PendingPlayback) -> PlaybackReply:
        """The answer to a finished playback; ``CallNotFound`` if the call ended first."""
        call = self.calls.get(pending.call_id)
        if call is None or not pending.finished:
            raise CallNotFound("Call not found or already ended")
        return call.model.playback_reply(pending.playback)

    def take_finished_playbacks(self) -> list[PendingPlayback]:
        """Playbacks whose HTTP answer is now due (played, or cut by the call's end)."""
        out = self._done_playbacks
        if out:
            self._done_playbacks = []
        return out  # read it, never change it: empty, it is the provider's own

    def _make_call(self, account: AccountState, command: MakeCall, now: float) -> MakeCallReply:
        # Kaphila's own rule for numbers: 10-15 digits, no ``+`` (``BadRequest`` otherwise).
        number = provider_number(command.number, "number")
        caller_id = command.caller_id
        if caller_id is not None:
            caller_id = provider_number(caller_id, "callerId")
            if caller_id not in account.account.caller_ids:
                listed = ", ".join(account.account.caller_ids) or "none"
                raise BadRequest(
                    f"callerId {caller_id} is not whitelisted for this account "
                    f"(whitelisted: {listed})"
                )
        if not 1 <= command.ring_timeout <= 300:
            raise BadRequest("ringTimeout must be between 1 and 300 seconds")
        account.require_credits()
        self._serial += 1
        call_id = f"{now:.0f}.{self._serial}"
        callee = self._callee_for(number)
        model = CallModel(call_id, command, now, speech=self.speech)
        call = ProviderCall(model, CalleeRun(callee), account, command.webhook_url)
        self.calls[call_id] = call
        account.calls += 1
        self._changed(call, now)
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

    def expect_call(self, number: str, callee: Callee) -> None:
        """The next call to ``number`` reaches ``callee`` (then the usual one again)."""
        self._expected.setdefault(normalize_number(number), deque()).append(callee)

    def _callee_for(self, number: str) -> Callee:
        waiting = self._expected.get(number)
        if waiting:
            callee = waiting.popleft()
            if not waiting:
                del self._expected[number]
            return callee
        return self.callees.get(number, self.default_callee)

    def _live(self, call_id: str) -> ProviderCall:
        call = self.calls.get(call_id)
        if call is None or call.model.phase is ENDED:
            raise CallNotFound("Call not found or already ended")
        return call

    # -- the callee, by hand -----------------------------------------------------------

    def answer_call(self, call_id: str, now: float, how: AnswerMode = "human") -> None:
        """The person at the phone picks up (``human``, ``machine`` or ``unknown``)."""
        if how not in ("human", "machine", "unknown"):
            raise ValueError(f"how must be human, machine or unknown, not {how!r}")
        self._require_ringing(call_id, "answer")
        self._by_hand(call_id, now, Action("answer", how=how))

    def decline_call(self, call_id: str, now: float) -> None:
        """The person at the phone rejects the ringing call (busy)."""
        self._require_ringing(call_id, "decline")
        self._by_hand(call_id, now, Action("reject"))

    def press_keys(self, call_id: str, keys: str, now: float) -> float:
        """Press ``keys`` one after another from ``now``; returns when the last is pressed."""
        if not isinstance(keys, str) or not keys or not KEYS.issuperset(keys):
            raise ValueError(f"keys must be telephone keys (0-9, * and #), not {keys!r}")
        call = self._live(call_id)
        held = call.run.callee.answer == "held"
        if held and call.model.phase is RINGING and not call.run.hand_pending:
            raise ValueError(f"call {call_id} is not answered yet")
        at = now
        for index, key in enumerate(keys):
            at = now + index * KEY_GAP
            call.run.by_hand(at, Action("press", key))
        self._changed(call, now)
        self.advance(now)  # what is due now happens now
        return at

    def callee_hangs_up(self, call_id: str, now: float) -> None:
        """The person at the phone hangs up."""
        self._by_hand(call_id, now, Action("hang_up"))

    def _require_ringing(self, call_id: str, what: str) -> None:
        call = self._live(call_id)
        if call.model.phase is not RINGING or call.run.hand_pending:
            raise ValueError(f"cannot {what} call {call_id}: it is not ringing")

    def by_hand_pending(self, call_id: str) -> int:
        """How many actions a person took on this call are still to happen."""
        call = self.calls.get(call_id)
        return call.run.hand_pending if call is not None and call.model.live else 0

    def _by_hand(self, call_id: str, now: float, action: Action) -> None:
        call = self._live(call_id)
        call.run.by_hand(now, action)
        self._changed(call, now)
        self.advance(now)  # a person's action takes effect at once

    # -- time ------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When the provider next needs ``advance`` or has a webhook due, if ever."""
        agenda, outbox = self._agenda, self._outbox
        while agenda and agenda[0][2].due != agenda[0][0]:
            heappop(agenda)  # superseded by a later schedule
        if not outbox:
            return agenda[0][0] if agenda else None
        if agenda and agenda[0][0] < outbox[0][0]:
            return agenda[0][0]
        return outbox[0][0]

    def advance(self, now: float) -> None:
        """Let time pass up to ``now``: timers and callee actions, earliest first."""
        agenda = self._agenda
        while agenda:
            at, _, call = agenda[0]
            if at > now:
                break
            heappop(agenda)
            if call.due != at:
                continue  # superseded by a later schedule
            call.due = None
            action, call.action = call.action, None
            if action is not None:
                call.run.apply(call.model, action, at)
            else:
                call.model.advance(at)
            self._changed(call, at)

    def take_webhooks(self, now: float) -> list[Webhook]:
        """Webhooks due by ``now``, in order (each call's in the order it emitted them).
        Read the list, never change it (with none due, it is one shared empty list)."""
        outbox = self._outbox
        if not outbox or outbox[0][0] > now:
            return _NO_WEBHOOKS
        out: list[Webhook] = []
        while outbox and outbox[0][0] <= now:
            _, _, webhook, call = heappop(outbox)
            call.queued -= 1
            out.append(webhook)
        return out

    def quiet(self, call_id: str) -> bool:
        """Whether nothing of a call's is on its way: no webhook queued, and nothing its
        callee is about to do (a scripted key step or hang-up, keys pressed by hand)."""
        call = self.calls.get(call_id)
        return call is None or (call.queued == 0 and call.run.next_action(call.model) is None)

    def idle(self, call_id: str) -> bool:
        """Whether a live, answered call has nothing under way: no playback, no gather,
        no ring, nothing its callee is about to do."""
        call = self.calls.get(call_id)
        if call is None or call.model.phase is not ANSWERED or call.queued:
            return False
        return call.model.next_timer_at() is None and call.run.next_action(call.model) is None

    def pending_gather_timeout(self, call_id: str) -> float | None:
        """When the gather a call is in times out, if it is in one."""
        call = self.calls.get(call_id)
        return call.model.gather_deadline if call is not None else None

    # -- what hosts read -------------------------------------------------------------

    def snapshot(self, call_id: str) -> dict[str, Any]:
        call = self.calls.get(call_id)
        if call is None:
            raise CallNotFound("Call not found")
        return call.model.snapshot()

    def snapshots(self) -> Iterable[dict[str, Any]]:
        return (call.model.snapshot() for call in self.calls.values())

    @property
    def live_calls(self) -> int:
        return len(self.calls) - len(self._finished)

    # -- internals -------------------------------------------------------------------

    def _changed(self, call: ProviderCall, now: float) -> None:
        """After anything happened to ``call``: bill, emit, finish playbacks, reschedule."""
        model = call.model
        if not call.charged and model.answered_at is not None:
            call.charged = True  # Kaphila deducts credits when a call is answered
            call.account.credits = max(0, call.account.credits - 1)
        events = model.emitted  # taken here, as ``take_events`` would (no call for none)
        if events is not None:
            model.emitted = None
            url = call.webhook_url
            if url is None:
                pass
            elif call.held_back is None and self.faults._webhooks_untouched:
                # The usual day: one copy each, now, after what the call sent before
                # (no draws), in the order the model emitted them.
                last = call.last_webhook_due
                leaves = last if last > now else now
                outbox, seq, sent = self._outbox, self._seq, self._messages
                for event in events:
                    seq += 1
                    sent += 1
                    webhook = Webhook(url, event, leaves, f"msg_{sent}")
                    heappush(outbox, (leaves, seq, webhook, call))
                self._seq, self._messages = seq, sent
                call.last_webhook_due = leaves
                call.queued += len(events)
            else:
                for event in events:
                    self._emit(call, url, event, now)
            if self.on_events is not None:
                self.on_events(call, events, now)
        finished = model.finished  # as ``take_finished`` would, and usually ``None``
        if finished is not None:
            model.finished = None
            self._hand_back(call, finished)
        if model.phase is ENDED:
            self._retire(call, now)
            return
        due = model.next_timer_at()
        action = call.run.next_action(model)
        if action is not None and (due is None or action[0] < due):
            due, call.action = action
        else:
            call.action = None
        if due is not None and due != call.due:
            call.due = due
            self._seq += 1
            heappush(self._agenda, (due, self._seq, call))

    def _hand_back(self, call: ProviderCall, finished: list[Playback]) -> None:
        """Move the pending answers of the ``finished`` playbacks to the host's list."""
        pendings = call.playbacks
        for playback in finished:
            for pending in pendings or ():
                if pending.playback is playback:
                    assert pendings is not None
                    pendings.remove(pending)
                    self._done_playbacks.append(pending)
                    break
        if not pendings:
            call.playbacks = None

    def _emit(self, call: ProviderCall, url: str, event: ev.Event, now: float) -> None:
        """Send ``event`` as the fault switches have it: lost, late, twice, or swapped
        with the call's next one."""
        faults = self.faults
        if faults.chance(faults.drop):
            self.dropped.append(event)
            return
        self._messages += 1
        message = (event, f"msg_{self._messages}")  # a duplicate shares its id
        if call.held_back is None and faults.chance(faults.reorder):
            call.held_back = message  # goes out after the next one
            return
        copies = 2 if faults.chance(faults.duplicate) else 1
        messages = [message] * copies
        if call.held_back is not None:
            messages.append(call.held_back)
            call.held_back = None
        for out, message_id in messages:
            late = faults.outcome_delay if isinstance(out, _OUTCOMES) else 0.0
            due = max(now + faults.delay() + late, call.last_webhook_due)
            self._queue(call, Webhook(url, out, due, message_id))

    def _queue(self, call: ProviderCall, webhook: Webhook) -> None:
        call.last_webhook_due = webhook.due
        self._seq += 1
        heappush(self._outbox, (webhook.due, self._seq, webhook, call))
        call.queued += 1

    def _retire(self, call: ProviderCall, now: float) -> None:
        call.due = None
        if call.held_back is not None:
            (held, message_id), call.held_back = call.held_back, None
            assert call.webhook_url is not None
            due = max(now, call.last_webhook_due)
            self._queue(call, Webhook(call.webhook_url, held, due, message_id))
        call_id = call.model.call_id
        if call_id in self._finished:
            return
        self._finished[call_id] = None
        while len(self._finished) > self._retain:
            old, _ = self._finished.popitem(last=False)
            self.calls.pop(old, None)
