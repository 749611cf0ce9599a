"""One path of a flow: a call on the fake, replayed from scratch along a list of choices.

The explorer knows nothing of a flow's insides. It places a call with ``FakeKaphila``,
takes the choices of its plan at the points the call reaches (``Phone.hears`` stops at
each ``say``, ``Phone.turn`` at each gather), and then either goes on with the
default choices (listen, silence) until the call ends, or hangs up at the first new
point (a probe: what does pressing this key lead to?).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import anyio

from .._commands import Command, Gather, Voice
from .._result import CallResult
from .._runtime import Flow
from ._fake import FakeKaphila, Phone
from ._paths import Action, Choice, Point, PointKind, Step

__all__ = ["Driver", "Mode", "Stop", "Trace", "completes"]

#: Silence at a wait outside a gather: at most this many seconds pass, in steps.
WAIT_SILENCE = 60.0
WAIT_STEP = 0.25


class Mode(enum.Enum):
    """What a replay does after its plan."""

    CONTINUE = "continue"  # default choices until the call ends (or the depth bound)
    PROBE = "probe"  # hang up at the first point after the plan


class Stop(enum.Enum):
    """Why a replay stopped."""

    ENDED = "ended"  # the call ended
    PROBED = "probed"  # hung up at the first point after the plan
    CUT = "cut"  # hung up at the depth bound
    STUCK = "stuck"  # the flow was busy outside the call beyond the fake's patience
    DIVERGED = "diverged"  # the same choices reached another point than before


@dataclass(frozen=True, slots=True)
class Trace:
    steps: tuple[Step, ...]
    stop: Stop
    result: CallResult
    commands: tuple[Command[Any], ...]
    #: What followed the plan's last choice, to tell keys apart (probes only).
    reaction: tuple[object, ...]
    #: How many commands had been sent when the explorer hung up (``None``: it did not).
    hung_up_after: int | None
    note: str = ""


def completes(gather: Gather, keys: str) -> bool:
    """Whether pressing ``keys`` ends ``gather`` (else its timeout does)."""
    entered = 0
    for key in keys:
        if gather.finish_on_key is not None and key == gather.finish_on_key:
            return True
        if gather.valid_digits is not None and key not in gather.valid_digits:
            continue
        entered += 1
        if entered >= gather.num_digits:
            return True
    return False


def default_choice(point: Point) -> Choice:
    return Choice(Action.LISTEN if point.kind is PointKind.SAY else Action.SILENCE)


def _result_key(result: CallResult) -> tuple[object, ...]:
    error = result.error
    what = None
    if error is not None:
        what = (type(error).__name__, str(error).replace(result.call_id or "\0", "<call>"))
    return (result.status, repr(result.value), what, result.forwarded_to)


def _comparable(command: Command[Any]) -> tuple[str, str]:
    body = {k: v for k, v in command.body().items() if k != "callId"}
    return (type(command).__name__, json.dumps(body, sort_keys=True, default=repr))


class _Stuck(Exception):
    pass


class _Diverged(Exception):
    pass


class Driver:
    """Replays plans on one ``FakeKaphila``, one call after another."""

    def __init__(
        self,
        kaphila: FakeKaphila,
        flow: Flow,
        *,
        number: str,
        max_depth: int,
        dial_options: Mapping[str, Any],
        step_limit: float,
    ) -> None:
        self.kaphila = kaphila
        self.flow = flow
        self.number = number
        self.max_depth = max_depth
        self.dial_options = dict(dial_options)
        #: Real seconds one step may take (the phone's own patience, twice, and some).
        self.step_limit = step_limit
        #: Calls placed so far.
        self.calls = 0

    async def run(self, plan: Sequence[Step], mode: Mode) -> Trace:
        """Place a call and follow ``plan`` (its first step is how the callee answers)."""
        self.calls += 1
        answer = plan[0].choice.detail
        phone = await self.kaphila.call(
            self.flow,
            number=self.number,
            answer=answer,
            **self.dial_options,
        )
        steps: list[Step] = [plan[0]]
        heard = 0
        choice_mark = 0
        point_mark = 0
        hung_up_after: int | None = None
        stop = Stop.ENDED
        note = ""
        point = Point(PointKind.DIAL)
        # One guard for the whole call, its deadline moved on at each step: a step that
        # makes no progress (a loop that never speaks nor waits for the caller) stops it.
        with anyio.CancelScope() as guard:
            try:
                while True:
                    guard.deadline = anyio.current_time() + self.step_limit
                    point, heard = await self._next_point(phone, heard)
                    if len(steps) == len(plan):
                        point_mark = self._sent(phone)
                    if point.kind is PointKind.END:
                        break
                    if len(steps) < len(plan):
                        expected = plan[len(steps)]
                        if expected.point != point:
                            raise _Diverged(
                                f"replaying the same choices reached {point.describe()} "
                                f"where an earlier call reached {expected.point.describe()}"
                            )
                        choice = expected.choice
                    elif len(steps) > self.max_depth:
                        stop, choice = Stop.CUT, Choice(Action.HANG_UP)
                    elif mode is Mode.PROBE:
                        stop, choice = Stop.PROBED, Choice(Action.HANG_UP)
                    else:
                        choice = default_choice(point)
                    steps.append(Step(point, choice))
                    if len(steps) == len(plan):
                        choice_mark = self._sent(phone)
                    if choice.action is Action.HANG_UP:
                        hung_up_after = self._sent(phone)
                    guard.deadline = anyio.current_time() + self.step_limit
                    await self._apply(phone, point, choice)
            except _Stuck as exc:
                stop, note = Stop.STUCK, str(exc)
            except _Diverged as exc:
                stop, note = Stop.DIVERGED, str(exc)
        if guard.cancelled_caught:
            stop = Stop.STUCK
            note = f"the call made no progress in {self.step_limit:g} s (a loop outside any say?)"
        if not phone.done and hung_up_after is None:
            hung_up_after = self._sent(phone)
            await phone.hang_up()
        result = await phone.result()
        commands = tuple(self.kaphila.commands_for(phone.call_id or ""))
        reaction: tuple[object, ...] = ()
        if mode is Mode.PROBE:
            after = tuple(_comparable(c) for c in commands[choice_mark:point_mark])
            ending = _result_key(result) if point.kind is PointKind.END else None
            reaction = (after, point, ending)
        return Trace(tuple(steps), stop, result, commands, reaction, hung_up_after, note)

    # -- the phone -----------------------------------------------------------------------

    def _sent(self, phone: Phone) -> int:
        return len(self.kaphila.commands_for(phone.call_id or ""))

    async def _next_point(self, phone: Phone, heard: int) -> tuple[Point, int]:
        """Let the call go on to the next point where the caller has a say."""
        try:
            await phone.hears()
        except AssertionError:
            pass  # the flow waits for the caller, or the call is over, or it is stuck
        else:
            spoken = [
                c
                for c in self.kaphila.commands_for(phone.call_id or "")
                if isinstance(c, Voice) or (isinstance(c, Gather) and c.text)
            ]
            command = spoken[heard]
            heard += 1
            if isinstance(command, Voice):
                return Point(PointKind.SAY, text=command.text), heard
        try:
            turn = await phone.turn()
        except AssertionError as exc:
            raise _Stuck(str(exc)) from None
        if turn.ended:
            return Point(PointKind.END), heard
        if turn.gather is None:
            return Point(PointKind.WAIT), heard
        gather = replace(turn.gather, call_id="")
        return Point(PointKind.GATHER, text=gather.text, gather=gather), heard

    async def _apply(self, phone: Phone, point: Point, choice: Choice) -> None:
        action = choice.action
        if action is Action.HANG_UP:
            await phone.hang_up()
        elif action is Action.PRESS:
            await phone.press(choice.detail)
            if point.gather is not None and not completes(point.gather, choice.detail):
                await phone.stay_silent()
        elif action is Action.SILENCE:
            if point.kind is PointKind.GATHER:
                await phone.stay_silent()
            else:
                await self._wait_out(phone)

    async def _wait_out(self, phone: Phone) -> None:
        """Silence outside a gather: let time pass until the flow does something.

        In short steps, so that what the flow says when its wait ends is still being
        said at the next point (the shortest speech takes half a second).
        """
        sent = self._sent(phone)
        waited = 0.0
        while waited < WAIT_SILENCE and not phone.done and self._sent(phone) == sent:
            await phone.waits(WAIT_STEP)
            waited += WAIT_STEP
