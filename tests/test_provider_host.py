"""The provider's scheduler keeps every wake-up it owes, however requests, a callee's
actions and a phone's waits move it: an alarm rings at its time, a playback ends at its
time, and nothing a wait gave up moves either."""

from __future__ import annotations

import anyio
import pytest

from kaphila_flow import Call, events
from kaphila_flow.testing import FakeKaphila

pytestmark = pytest.mark.anyio


async def busy_after_answering(call: Call) -> str:
    await anyio.sleep(90)  # answered at once, then busy outside the call
    await call.say("Sorry to keep you waiting.")
    return "done"


async def pauses_between_playbacks(call: Call) -> str:
    await call.say("Hello.")
    await anyio.sleep(30)
    await call.say("Still there?")
    return "done"


async def chatty_then_busy(call: Call) -> str:
    for n in range(3):
        await call.say(f"Still here {n}.")  # each playback ends before the patience
    await anyio.sleep(50)
    await call.say("Goodbye.")
    return "done"


def _played_at(kaphila: FakeKaphila) -> list[str]:
    return [
        event.timestamp or ""
        for event, _ in kaphila.deliveries
        if isinstance(event, events.TtsPlayed)
    ]


async def test_a_wait_begun_before_the_call_is_answered_at_once_gives_up_at_its_time() -> None:
    # The phone's patience is armed first; the call's answer is due at once (a round
    # of its own, after the dial's reply): the patience still runs out 60 s after the
    # phone began to wait, not when the flow wakes up at 90 s.
    async with FakeKaphila(patience=60) as kaphila:
        phone = await kaphila.call(busy_after_answering)
        began = kaphila.now()
        with pytest.raises(AssertionError, match="after 60 s"):
            await phone.hears()
        assert kaphila.now() - began == pytest.approx(60.0, abs=1e-6)


async def test_playbacks_end_at_their_time_while_a_phone_waits_with_a_long_patience() -> None:
    # Each wait arms an alarm far later than the playback's end, and gives it up once
    # the playback is heard: the scheduler wakes for the end, not for the alarm.
    async with FakeKaphila(patience=3600) as kaphila:
        phone = await kaphila.call(pauses_between_playbacks)
        assert await phone.hears() == "Hello."
        assert await phone.hears() == "Still there?"
        assert (await phone.result()).value == "done"
        # "Hello." plays 0.5 s from the answer; "Still there?" 30 s later, for 0.8 s.
        assert _played_at(kaphila) == ["2026-01-01T00:00:00.500Z", "2026-01-01T00:00:31.300Z"]
        assert kaphila.now() < 1_767_225_600.0 + 3600  # no alarm rang


async def test_a_wait_outlasting_several_playbacks_gives_up_at_its_time() -> None:
    # One wait, one alarm: the playbacks' ends come sooner, each a round of its own,
    # and the alarm still rings 30 s after the wait began.
    async with FakeKaphila(patience=30) as kaphila:
        phone = await kaphila.call(chatty_then_busy)
        began = kaphila.now()
        with pytest.raises(AssertionError, match="after 30 s"):
            await phone.forwarded_to()
        assert kaphila.now() - began == pytest.approx(30.0, abs=1e-6)
