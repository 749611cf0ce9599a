"""What the fake's provider does on its own time (playbacks ending, a callee's keys, a
ring running out) reaches the flow the same way on every kind of loop."""

from __future__ import annotations

import pytest

from kaphila_flow import Call, events
from kaphila_flow.testing import Callee, FakeKaphila, KeyStep, VirtualTimeEventLoop

pytestmark = pytest.mark.anyio

EPOCH = 1_767_225_600.0


async def pin(call: Call) -> str:
    await call.say("Hello.")
    return await call.gather("Your PIN?", num_digits=4, timeout=5)


async def _run_pin() -> tuple[str | None, list[tuple[str, str]]]:
    callee = Callee(answer="human", answer_after=0.0, keys=(KeyStep("1234", 0.5),))
    async with FakeKaphila(virtual_time=True) as kaphila:
        phone = await kaphila.call(pin, callee=callee)
        result = await phone.handle.result()  # the script presses, not the test
        keys = [
            (event.digit, event.timestamp or "")
            for event, _ in kaphila.deliveries
            if isinstance(event, events.DtmfReceived)
        ]
    return result.value, keys


async def test_scripted_keys_reach_the_flow_in_virtual_time() -> None:
    value, keys = await _run_pin()
    assert value == "1234"
    # "Hello." plays 0.5 s; the prompt starts then, the first key 0.5 s later, 0.15 s apart.
    assert keys == [
        ("1", "2026-01-01T00:00:01.000Z"),
        ("2", "2026-01-01T00:00:01.150Z"),
        ("3", "2026-01-01T00:00:01.300Z"),
        ("4", "2026-01-01T00:00:01.450Z"),
    ]


def test_the_fake_runs_on_an_asyncio_loop_started_without_anyio() -> None:
    # The provider's own rounds run as loop callbacks there: what they deliver (keys
    # the runtime timestamps with the loop's clock) must still find its loop.
    loop = VirtualTimeEventLoop()
    try:
        value, keys = loop.run_until_complete(_run_pin())
    finally:
        loop.close()
    assert value == "1234"
    assert [digit for digit, _ in keys] == ["1", "2", "3", "4"]


async def test_a_ring_running_out_ends_the_call_without_anyone_acting() -> None:
    async def hello(call: Call) -> None:
        await call.say("Hello.")

    async with FakeKaphila() as kaphila:
        phone = await kaphila.call(hello, answer="no-answer")
        result = await phone.result()
        assert result.status == "no-answer"
        assert kaphila.now() == pytest.approx(EPOCH + 30)  # the default ring timeout
        assert [type(event).__name__ for event, _ in kaphila.deliveries][-2:] == [
            "CallTimeout",
            "CallEnded",
        ]
