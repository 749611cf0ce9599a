"""What a phone waiting on a flow notices, however the flow gets there: the flow moving
on with a command after being busy outside the call, the flow starting to wait for the
caller while its call still rings or plays, and the call's end. A phone that waits is
not woken by each webhook, so each of these must reach it by itself, at once (virtual
time tells: no patience runs out first). And a phone is only ever given to a call that
started."""

from __future__ import annotations

import anyio
import pytest

from kaphila_flow import Call, events
from kaphila_flow.testing import Callee, FakeKaphila, KeyStep

pytestmark = pytest.mark.anyio

EPOCH = 1_767_225_600.0
STUCK = "the phone must act first"


async def test_a_flow_busy_between_playbacks_is_heard_each_time() -> None:
    async def flow(call: Call) -> str:
        await call.say("One.")  # its tts.played comes while the flow sleeps
        await anyio.sleep(3)
        await call.say("Two.")
        await anyio.sleep(3)
        return await call.gather("Three?", num_digits=1)

    async with FakeKaphila(patience=60) as kaphila:
        phone = await kaphila.call(flow)
        assert [await phone.hears() for _ in range(3)] == ["One.", "Two.", "Three?"]
        await phone.press("3")
        assert (await phone.result()).value == "3"
        assert kaphila.now() < EPOCH + 10


async def test_a_flow_waiting_for_keys_outside_a_gather_after_playing_is_stuck_at_once() -> None:
    async def flow(call: Call) -> str:
        await call.say("Press any key when ready.")
        await call.wait_for(events.DtmfReceived)
        return "ready"

    async with FakeKaphila(patience=600) as kaphila:
        phone = await kaphila.call(flow)
        assert await phone.hears() == "Press any key when ready."
        with pytest.raises(AssertionError, match=STUCK):
            await phone.result()
        assert kaphila.now() < EPOCH + 5  # not the patience: the wait was noticed
        await phone.press("5")
        assert (await phone.result()).value == "ready"


async def test_a_flow_that_waits_while_the_call_rings_is_stuck_once_answered() -> None:
    async def flow(call: Call) -> str:
        # The flow waits for the caller from the start: the call is still ringing then,
        # and the answer comes as webhooks only.
        await call.wait_for(events.DtmfReceived)
        return "pressed"

    callee = Callee(answer="human", answer_after=4.0)
    async with FakeKaphila(patience=600) as kaphila:
        phone = await kaphila.call(flow, callee=callee)
        with pytest.raises(AssertionError, match=STUCK):
            await phone.forwarded_to()
        assert EPOCH + 4 <= kaphila.now() < EPOCH + 10
        await phone.press("1")
        assert (await phone.result()).value == "pressed"


async def test_a_turn_comes_once_the_flow_waits_for_keys_after_being_busy() -> None:
    async def flow(call: Call) -> str:
        await call.say("Hello.")
        await anyio.sleep(2)  # busy while its playback's webhook comes
        await call.say("Listen.")
        return await call.gather("Your digit?", num_digits=1)

    async with FakeKaphila(patience=600) as kaphila:
        phone = await kaphila.call(flow)
        turn = await phone.turn()
        assert turn.heard == ("Hello.", "Listen.", "Your digit?")
        assert turn.gather is not None and turn.gather.text == "Your digit?"
        assert not turn.ended
        await phone.press("2")
        assert (await phone.result()).value == "2"


async def test_a_call_that_could_not_start_leaves_no_callee_for_the_next() -> None:
    async def flow(call: Call) -> str:
        await call.say("Hello.")
        return "said"

    async with FakeKaphila() as kaphila:
        with pytest.raises(ValueError, match="ring_timeout"):
            await kaphila.call(flow, number="16085550199", answer="busy", ring_timeout=0)
        phone = await kaphila.call(flow, number="16085550199")  # answered, as by default
        assert await phone.hears() == "Hello."
        assert (await phone.result()).value == "said"


# A phone waiting while its flow is parked is not woken by the webhooks that wake the
# flow: the flow's next step (a command, a wait, its end) must reach the phone at once.


async def test_a_flow_that_ends_once_answered_gives_its_result_at_the_answer() -> None:
    async def flow(call: Call) -> str:
        return "answered"  # no command: the call's end is all the phone gets

    callee = Callee(answer="human", answer_after=4.0)
    async with FakeKaphila(patience=600) as kaphila:
        phone = await kaphila.call(flow, callee=callee)
        with pytest.raises(AssertionError, match="the call is over"):
            await phone.hears()  # waits while it rings; the answer wakes the flow
        assert EPOCH + 4 <= kaphila.now() < EPOCH + 5
        assert (await phone.result()).value == "answered"


async def test_a_flow_busy_after_the_answer_is_heard_when_it_speaks() -> None:
    async def flow(call: Call) -> str:
        await anyio.sleep(7)  # woken by the answer, then busy outside the call
        await call.say("Sorry to keep you.")
        return "said"

    callee = Callee(answer="human", answer_after=4.0)
    async with FakeKaphila(patience=600) as kaphila:
        phone = await kaphila.call(flow, callee=callee)
        assert await phone.hears() == "Sorry to keep you."
        assert EPOCH + 11 <= kaphila.now() < EPOCH + 12
        assert (await phone.result()).value == "said"


async def test_a_hang_up_while_the_flow_waits_for_keys_ends_the_wait_at_once() -> None:
    async def flow(call: Call) -> str:
        await call.wait_for(events.DtmfReceived)
        return "pressed"

    callee = Callee(answer="human", answer_after=0.0, hang_up_after=6.0)
    async with FakeKaphila(patience=600) as kaphila:
        phone = await kaphila.call(flow, callee=callee)
        result = await phone.result()  # the callee hangs up: no stuck wait, no patience
        assert (result.status, result.end_reason) == ("hung-up", "normal_hangup")
        assert EPOCH + 6 <= kaphila.now() < EPOCH + 8


async def test_a_scripted_callee_answers_the_gather_itself_and_the_phone_waits_for_it() -> None:
    """A callee scripted with keys is the caller acting: the flow waiting in its gather
    is not stuck, and the phone lets the script's keys come at their time."""

    async def flow(call: Call) -> str:
        code = await call.gather("Your code?", num_digits=2, timeout=10)
        await call.say(f"You entered {code}.")
        return code

    async with FakeKaphila() as kaphila:
        phone = await kaphila.call(flow, callee=Callee(keys=(KeyStep("12", after=0.5),)))
        assert await phone.hears() == "Your code?"
        assert await phone.hears() == "You entered 12."
        assert (await phone.result()).value == "12"
        pressed = [
            event.timestamp
            for event, _ in kaphila.deliveries
            if isinstance(event, events.DtmfReceived)
        ]
        assert len(pressed) == 2  # each key at its scripted moment, none by the test


async def test_a_scripted_callee_done_with_its_keys_leaves_the_next_gather_to_the_test() -> None:
    async def flow(call: Call) -> list[str]:
        first = await call.gather("First?", num_digits=1, timeout=10)
        second = await call.gather("Second?", num_digits=1, timeout=10)
        return [first, second]

    async with FakeKaphila() as kaphila:
        phone = await kaphila.call(flow, callee=Callee(keys=(KeyStep("4", after=0.5),)))
        assert [await phone.hears(), await phone.hears()] == ["First?", "Second?"]
        with pytest.raises(AssertionError, match=STUCK):
            await phone.result()  # the script has no key for the second gather
        await phone.press("7")
        assert (await phone.result()).value == ["4", "7"]
