"""At the edges: keys never lost, and mistakes that explain themselves (asyncio and trio)."""

from __future__ import annotations

import anyio
import pytest

from kaphila_flow import Call, CallEnded, MakeCall, events
from kaphila_flow.testing import FakeKaphila

pytestmark = pytest.mark.anyio


async def test_a_slow_sixteen_digit_entry_is_not_cut_short(kaphila: FakeKaphila) -> None:
    """One key every 2 s: the gather's timeout (3 s) restarts with each key, and so does
    the runtime's own fallback deadline, which a fixed prompt + timeout + grace was not."""

    async def card(call: Call) -> str:
        return await call.gather("Your card number.", num_digits=16, timeout=3)

    number = "4111111111111111"
    phone = await kaphila.call(card)
    await phone.hears()
    for key in number:
        await phone.waits(1.85)  # with the 0.15 s a press takes: one key every 2 s
        await phone.press(key)
    assert (await phone.result()).value == number


async def test_two_presses_of_one_key_within_a_second_both_count(kaphila: FakeKaphila) -> None:
    """The provider's examples stamp whole seconds: two identical dtmf.received payloads
    are two presses, not a redelivery."""

    async def two_keys(call: Call) -> list[str]:
        await call.say("Press two keys.")
        pressed: list[str] = []
        async for key in call.keys(timeout=5):
            pressed.append(key)
            if len(pressed) == 2:
                break
        return pressed

    phone = await kaphila.call(two_keys)
    await phone.hears()
    press = events.DtmfReceived(
        call_id=phone.call_id or "", digit="1", timestamp="2026-01-01T00:00:05Z"
    )
    assert kaphila.runtime.dispatch(press).value == "delivered"
    assert kaphila.runtime.dispatch(press).value == "delivered"
    assert (await phone.result()).value == ["1", "1"]


async def test_a_redelivery_stamped_to_the_millisecond_is_applied_once(
    kaphila: FakeKaphila,
) -> None:
    async def one_key(call: Call) -> str:
        await call.say("Press a key.")
        return (await call.wait_for(events.DtmfReceived, timeout=5)).digit

    phone = await kaphila.call(one_key)
    await phone.hears()
    press = events.DtmfReceived(
        call_id=phone.call_id or "", digit="7", timestamp="2026-01-01T00:00:05.250Z"
    )
    assert kaphila.runtime.dispatch(press).value == "delivered"
    assert kaphila.runtime.dispatch(press).value == "duplicate"
    assert (await phone.result()).value == "7"


async def test_a_plain_function_is_refused_at_once_and_other_calls_go_on(
    kaphila: FakeKaphila,
) -> None:
    async def fine(call: Call) -> str:
        await call.say("Hello.")
        return "fine"

    def not_async(call: Call) -> str:
        return "never"

    live = await kaphila.call(fine)
    with pytest.raises(TypeError, match=r"plain function: write it as `async def not_async"):
        await kaphila.runtime.start("16089270863", not_async)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not the class"):
        await kaphila.runtime.start("16089270863", Call)  # type: ignore[arg-type]
    assert (await live.result()).value == "fine"


async def test_a_flow_that_returns_no_coroutine_fails_its_call_only(kaphila: FakeKaphila) -> None:
    async def fine(call: Call) -> str:
        await call.say("Hello.")
        return "fine"

    class Sneaky:
        """A callable that cannot be told from a flow until it is called."""

        def __call__(self, call: Call) -> str:
            return "not a coroutine"

    live = await kaphila.call(fine)
    bad = await kaphila.call(Sneaky())  # type: ignore[arg-type]
    result = await bad.result()
    assert result.status == "failed" and isinstance(result.error, TypeError)
    assert "not a coroutine" in str(result.error)
    assert (await live.result()).value == "fine"


async def test_on_machine_turns_answering_machine_detection_on(kaphila: FakeKaphila) -> None:
    async def menu(call: Call) -> str:
        await call.say("Welcome.")
        return "menu"

    phone = await kaphila.call(menu, answer="machine", on_machine="Please call us back.")
    assert await phone.hears() == "Please call us back."
    result = await phone.result()
    assert result.value == "voicemail" and result.answered_by == "machine"
    placed = [c for c in kaphila.commands if isinstance(c, MakeCall)]
    assert placed[-1].use_amd is True
    with pytest.raises(ValueError, match="on_machine needs answering machine detection"):
        await kaphila.runtime.start("16089270863", menu, use_amd=False, on_machine="Hi.")


async def test_saying_something_after_hanging_up_is_an_error_in_the_result(
    kaphila: FakeKaphila,
) -> None:
    async def confused(call: Call) -> str:
        await call.hangup()
        await call.say("Goodbye.")  # the call is over
        return "unreachable"

    result = await (await kaphila.call(confused)).result()
    assert result.status == "completed"
    assert isinstance(result.error, CallEnded)
    assert not any(c.path == "/voice" for c in kaphila.commands)


async def test_a_flow_that_loops_on_say_fails_its_test_with_the_transcript(
    kaphila: FakeKaphila,
) -> None:
    async def chatterbox(call: Call) -> None:
        while True:
            await call.say("Are you still there?")

    phone = await kaphila.call(chatterbox)
    with pytest.raises(AssertionError, match=r"(?s)does it loop with no exit\?.*still there"):
        await phone.result()
    await phone.hang_up()


async def test_a_phone_never_driven_is_a_warning() -> None:
    async def waits(call: Call) -> str:
        return await call.gather("Press 1.")

    with pytest.warns(UserWarning, match="never drove its phone"):
        async with FakeKaphila() as kaphila:
            await kaphila.call(waits)
            await anyio.lowlevel.checkpoint()


async def test_an_unknown_callee_behaviour_names_the_choices(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> None:
        return None

    with pytest.raises(ValueError, match="human, machine, unknown, busy, no-answer, held"):
        await kaphila.call(flow, answer="voicemail")
    with pytest.warns(DeprecationWarning, match="'never' is deprecated: use 'no-answer'"):
        phone = await kaphila.call(flow, answer="never", ring_timeout=5)
    assert (await phone.result()).status == "no-answer"
