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
    async with FakeKaphila(patience=60) as kaphila:
        phone = await kaphila.call(slow_greeting)
        with pytest.raises(AssertionError, match="after 60 s the flow is busy outside"):
            await phone.hears()


async def test_a_flow_busy_for_less_than_the_patience_is_waited_for() -> None:
    async with FakeKaphila(patience=120) as kaphila:
        phone = await kaphila.call(slow_greeting)
        assert await phone.hears() == "Sorry to keep you waiting."
        assert (await phone.result()).value == "done"


async def test_the_patience_counts_from_the_first_wait_not_from_each_wake() -> None:
    async with FakeKaphila(patience=30) as kaphila:
        phone = await kaphila.call(chatty_then_slow)
        # The five playbacks wake the phone again and again; the 50 s sleep after them
        # still outlasts a patience of 30 s counted from the first wait.
        with pytest.raises(AssertionError, match="after 30 s"):
            await phone.forwarded_to()
