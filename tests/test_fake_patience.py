"""A phone's patience: how long, in virtual seconds, it waits for a flow busy outside
the call, counted from its first wait however often the call wakes it meanwhile."""

from __future__ import annotations

import anyio
import pytest

from kaphila_flow import Call
from kaphila_flow.testing import FakeKaphila

pytestmark = pytest.mark.anyio


async def slow_greeting(call: Call) -> str:
    await anyio.sleep(90)  # busy outside the call: nothing for the phone to see
    await call.say("Sorry to keep you waiting.")
    return "done"


async def chatty_then_slow(call: Call) -> str:
    for n in range(5):
        await call.say(f"Still here {n}.")  # each playback wakes the waiting phone
    await anyio.sleep(50)
    await call.say("Goodbye.")
    return "done"


async def test_a_flow_busy_longer_than_the_patience_fails_the_wait() -> None:
    # The phone's patience is armed first; the call's answer is due at once (a round
    # of the scheduler's own, after the dial's reply): the patience still runs out 60 s
    # after the phone began to wait, not when the flow wakes up at 90 s.
    async with FakeKaphila(patience=60) as kaphila:
        phone = await kaphila.call(slow_greeting)
        began = kaphila.now()
        with pytest.raises(AssertionError, match="after 60 s the flow is busy outside"):
            await phone.hears()
        assert kaphila.now() - began == pytest.approx(60.0, abs=1e-6)


async def test_a_flow_busy_for_less_than_the_patience_is_waited_for() -> None:
    async with FakeKaphila(patience=120) as kaphila:
        phone = await kaphila.call(slow_greeting)
        assert await phone.hears() == "Sorry to keep you waiting."
        assert (await phone.result()).value == "done"


async def test_the_patience_counts_from_the_first_wait_not_from_each_wake() -> None:
    async with FakeKaphila(patience=30) as kaphila:
        phone = await kaphila.call(chatty_then_slow)
        # The five playbacks wake the phone again and again, and each is a round of the
        # scheduler's own; the 50 s sleep after them still outlasts a patience of 30 s
        # counted from the first wait, and the one alarm rings exactly then.
        began = kaphila.now()
        with pytest.raises(AssertionError, match="after 30 s"):
            await phone.forwarded_to()
        assert kaphila.now() - began == pytest.approx(30.0, abs=1e-6)


async def pauses(call: Call) -> str:
    await call.say("Hello.")
    await anyio.sleep(40)
    await call.say("Still there?")
    await anyio.sleep(60)
    await call.say("Goodbye.")
    return "done"


async def test_each_wait_gives_up_a_patience_after_its_own_start() -> None:
    async with FakeKaphila(patience=50) as kaphila:
        phone = await kaphila.call(pauses)
        assert await phone.hears() == "Hello."
        assert await phone.hears() == "Still there?"  # 40 s after the first wait began
        heard_at = kaphila.now()
        with pytest.raises(AssertionError, match="after 50 s the flow is busy outside"):
            await phone.hears()
        assert kaphila.now() == pytest.approx(heard_at + 50, abs=0.01)


async def test_a_patience_lowered_between_waits_bounds_the_next_wait() -> None:
    async with FakeKaphila(patience=600) as kaphila:
        phone = await kaphila.call(pauses)
        assert await phone.hears() == "Hello."
        kaphila.patience = 20
        started = kaphila.now()
        with pytest.raises(AssertionError, match="after 20 s the flow is busy outside"):
            await phone.hears()
        assert kaphila.now() == pytest.approx(started + 20, abs=0.01)
        kaphila.patience = 600
        assert await phone.hears() == "Still there?"  # the wait after it is not cut short
        assert await phone.hears() == "Goodbye."
        assert (await phone.result()).value == "done"
