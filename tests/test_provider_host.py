"""The provider's scheduler keeps every wake-up it owes, however requests, a callee's
actions and a phone's waits move it: a playback ends at its time, and nothing a wait
gave up moves it (the patience alarms' own times: tests/test_fake_patience.py)."""

from __future__ import annotations

import anyio
import pytest

from kaphila_flow import Call, events
from kaphila_flow.testing import FakeKaphila

pytestmark = pytest.mark.anyio


async def pauses_between_playbacks(call: Call) -> str:
    await call.say("Hello.")
    await anyio.sleep(30)
    await call.say("Still there?")
    return "done"


def _played_at(kaphila: FakeKaphila) -> list[str]:
    return [
        event.timestamp or ""
        for event, _ in kaphila.deliveries
        if isinstance(event, events.TtsPlayed)
    ]


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
