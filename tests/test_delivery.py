"""At-least-once delivery: duplicates, any order, and memory that stays bounded."""

from __future__ import annotations

import gc
import os
import tracemalloc
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kaphila_flow import Call, Runtime, events
from kaphila_flow._commands import (
    Command,
    Voice,
)
from kaphila_flow.testing import (
    FakeKaphila,
    MockTransport,
    default_reply,
    virtual_time,
    virtual_time_backend,
)

EXAMPLES = int(os.environ.get("KAPHILA_FUZZ_EXAMPLES", "500"))
CALL_ID = "1.1"


class SilentKaphila(MockTransport):
    """Answers every command at once and emits no events: the test delivers them."""

    def __init__(self) -> None:
        super().__init__(self._answer)
        self.commands: list[tuple[int, Command[Any]]] = []
        self.delivered = 0  # how many events the test has dispatched so far

    def _answer(self, command: Command[Any]) -> Any:
        self.commands.append((self.delivered, command))
        return default_reply(command, call_id=CALL_ID)


async def menu(call: Call) -> str:
    await call.say("Hello.")
    digits = await call.gather("Press 1.")
    await call.say(f"You pressed {digits}.")
    return digits


SCRIPT = [
    events.CallInitiated(call_id=CALL_ID, status="ringing", timestamp="t0"),
    events.CallAnswered(call_id=CALL_ID, status="answered", timestamp="t1"),
    events.TtsPlayed(call_id=CALL_ID, playback_id="p", timestamp="t2"),
    events.GatherStarted(call_id=CALL_ID, timestamp="t3"),
    events.DtmfReceived(call_id=CALL_ID, digit="1", timestamp="t4"),
    events.GatherComplete(call_id=CALL_ID, digits="1", timestamp="t5"),
    events.CallEnded(
        call_id=CALL_ID, status="completed", end_reason="normal_hangup", timestamp="t6"
    ),
]


async def settle() -> None:
    """Let the flow react: in virtual time a sleep ends only once every task waits."""
    await anyio.sleep(0.001)


async def play_script(order: list[events.Event], repeats: list[int]) -> None:
    transport = SilentKaphila()
    with virtual_time():
        await _play_script(transport, order, repeats)


async def _play_script(
    transport: SilentKaphila, order: list[events.Event], repeats: list[int]
) -> None:
    async with Runtime(transport) as runtime:
        handle = await runtime.start("16089270862", menu)
        await settle()
        ended_at: int | None = None
        for event, times in zip(order, repeats, strict=True):
            for _ in range(times):
                runtime.dispatch(event)  # never raises
            transport.delivered += 1
            if isinstance(event, events.CallEnded) and ended_at is None:
                ended_at = transport.delivered
            await settle()
        with anyio.fail_after(5):
            result = await handle.result()
    assert result.status in ("completed", "hung-up", "no-answer")
    assert ended_at is not None
    after_end = [c for seen, c in transport.commands if seen >= ended_at]
    assert after_end == [], f"sent after call.ended: {after_end}"
    if result.status == "completed":
        assert result.value == "1"


@pytest.mark.fuzz
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True)
@given(
    order=st.permutations(SCRIPT),
    repeats=st.lists(st.integers(1, 3), min_size=len(SCRIPT), max_size=len(SCRIPT)),
)
def test_any_order_any_repeats_reaches_a_result(
    backend: str, order: list[events.Event], repeats: list[int]
) -> None:
    name, options = virtual_time_backend(backend)
    anyio.run(play_script, order, repeats, backend=name, backend_options=options)


@pytest.mark.anyio
@pytest.mark.parametrize("copies", [2, 3, 10])
@pytest.mark.parametrize("concurrently", [False, True])
async def test_a_duplicated_outcome_resumes_once(copies: int, concurrently: bool) -> None:
    async with FakeKaphila() as kaphila:
        phone = await kaphila.call(menu)
        await phone.hears()
        await phone.hears()
        outcome = events.GatherComplete(
            call_id=phone.call_id or "", digits="7", timestamp="2026-01-01T00:00:02.000Z"
        )
        if concurrently:

            async def deliver() -> None:
                await anyio.lowlevel.checkpoint()
                kaphila.runtime.dispatch(outcome)

            async with anyio.create_task_group() as tg:
                for _ in range(copies):
                    tg.start_soon(deliver)
        else:
            for _ in range(copies):
                kaphila.runtime.dispatch(outcome)
        result = await phone.result()
    follow_ups = [
        c for c in kaphila.commands if isinstance(c, Voice) and c.text.startswith("You pressed")
    ]
    assert follow_ups == [Voice(phone.call_id or "", "You pressed 7.")]
    assert result.value == "7"


def _traced(run: Any) -> int:
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    run()
    gc.collect()
    return tracemalloc.get_traced_memory()[0] - before


@pytest.mark.fuzz
def test_memory_for_unknown_and_finished_calls_stays_flat() -> None:
    total = int(os.environ.get("KAPHILA_FLOOD_EVENTS", "50000"))
    runtime = Runtime(SilentKaphila())

    def flood(start: int, count: int) -> None:
        for n in range(start, start + count):
            runtime.dispatch(events.DtmfReceived(call_id=f"{n}.1", digit="1"))

    tracemalloc.start()
    try:
        flood(0, total // 10)  # fill the bounded records first
        first = _traced(lambda: flood(total, total // 10))
        rest = _traced(lambda: flood(2 * total, total - total // 10))
    finally:
        tracemalloc.stop()
    assert len(runtime.dead_letters) == runtime.dead_letters.maxlen
    # Nine times as many events as the first slice, and no more memory kept.
    assert rest < max(first, 0) + 256 * 1024


@pytest.mark.anyio
async def test_memory_for_one_live_call_flooded_with_events_stays_bounded() -> None:
    async def waits(call: Call) -> str:
        return await call.gather("Press 1.")

    async with FakeKaphila() as kaphila:
        phone = await kaphila.call(waits)
        await phone.hears()

        def flood(count: int, offset: int) -> None:
            for n in range(offset, offset + count):
                stamp = f"2026-01-01T{n // 3_600_000 % 24:02}:{n // 60_000 % 60:02}:"
                stamp += f"{n // 1000 % 60:02}.{n % 1000:03}Z"
                kaphila.runtime.dispatch(
                    events.DtmfReceived(call_id=phone.call_id or "", digit="5", timestamp=stamp)
                )

        tracemalloc.start()
        try:
            flood(2_000, 0)  # fill the per-call bounds first
            first = _traced(lambda: flood(2_000, 2_000))
            rest = _traced(lambda: flood(18_000, 4_000))
        finally:
            tracemalloc.stop()
        # Nine times as many events as the first slice, and no more memory kept.
        assert rest < max(first, 0) + 64 * 1024
        await phone.press("1")
        assert (await phone.result()).value == "1"
