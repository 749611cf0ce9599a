"""A parked flow is resumed only by what it waits for, its deadline, or the call's end."""

from __future__ import annotations

import itertools
from functools import partial
from typing import Any

import anyio
import pytest

from kaphila_flow import (
    Call,
    CallHandle,
    CallResult,
    Command,
    Gather,
    MakeCall,
    Runtime,
    events,
)
from kaphila_flow.testing import MockTransport, default_reply, virtual_time

pytestmark = pytest.mark.anyio


async def _until(handle: CallHandle, state: str) -> None:
    """Let the loop run until ``handle.<state>`` holds (``awaiting_keys``, ``parked``)."""
    for _ in range(100):
        if getattr(handle, state):
            return
        await anyio.lowlevel.checkpoint()
    raise AssertionError(f"the flow never got {state}: {handle.waiting_for}")


async def _until_awaiting_keys(handle: CallHandle) -> None:
    await _until(handle, "awaiting_keys")


async def _gathering(runtime: Runtime) -> CallHandle:
    async def flow(call: Call) -> str:
        return await call.gather("Your code?", num_digits=4, timeout=60)

    return await _gathering_with(runtime, flow)


async def test_keys_and_playbacks_do_not_wake_a_flow_waiting_for_a_gather_outcome() -> None:
    async with Runtime(MockTransport()) as runtime:
        handle = await _gathering(runtime)
        result = await _informational_then_outcome(runtime, handle)
    assert result.status == "completed"
    assert result.value == "1234"


async def _informational_then_outcome(runtime: Runtime, handle: CallHandle) -> CallResult:
    call_id = handle.call_id or ""
    for informational in (
        events.GatherStarted(call_id=call_id, timestamp="2026-01-01T00:00:01.000Z"),
        events.DtmfReceived(call_id=call_id, digit="1", timestamp="2026-01-01T00:00:02.000Z"),
        events.GatherProgress(call_id=call_id, digits="1", timestamp="2026-01-01T00:00:02.000Z"),
        events.TtsPlayed(call_id=call_id, playback_id="p", timestamp="2026-01-01T00:00:03.000Z"),
    ):
        assert runtime.dispatch(informational).value == "delivered"
        assert handle.parked and handle.awaiting_keys  # recorded, the flow left parked
    assert [entry.kind for entry in handle.transcript][-1] == "keys"  # the key is noted
    runtime.dispatch(events.GatherComplete(call_id=call_id, digits="1234"))
    assert not handle.parked  # its outcome wakes it at once
    return await handle.result()


async def test_the_end_wakes_a_parked_flow_whatever_it_waits_for() -> None:
    async with Runtime(MockTransport()) as runtime:
        handle = await _gathering(runtime)
        ended = events.CallEnded(call_id=handle.call_id or "", end_reason="caller hung up")
        runtime.dispatch(ended)
        assert not handle.parked
        result = await handle.result()
    assert result.status == "hung-up"
    assert result.end_reason == "caller hung up"


async def _until_parked(handle: CallHandle) -> None:
    await _until(handle, "parked")


def _key(call_id: str, n: int) -> events.DtmfReceived:
    """Key ``n`` of a call, each stamped a second apart (never taken for a redelivery)."""
    return events.DtmfReceived(
        call_id=call_id, digit=str(n % 10), timestamp=f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}Z"
    )


async def test_deadlines_come_on_time_after_many_waits_ended_before_theirs() -> None:
    """Waits that end long before their deadline (most do) are dropped from the timers;
    a deadline still wanted meanwhile, another call's, still comes."""
    presses = 150

    async def keyed(call: Call) -> list[str]:
        return [
            (await call.wait_for(events.DtmfReceived, timeout=600)).digit for _ in range(presses)
        ]

    async def watching(call: Call) -> float:
        started = anyio.current_time()
        with pytest.raises(TimeoutError):
            await call.wait_for(events.TtsPlayed, timeout=100)
        return anyio.current_time() - started

    placed = itertools.count(1)

    def distinct_calls(command: Command[Any]) -> Any:
        if isinstance(command, MakeCall):
            return default_reply(command, call_id=f"{next(placed)}.1")
        return default_reply(command)

    with virtual_time(), anyio.fail_after(300):
        async with Runtime(MockTransport(distinct_calls)) as runtime:
            watcher = await runtime.start("16089270862", watching)
            keys = await runtime.start("16089270862", keyed)
            for handle in (watcher, keys):
                call_id = await handle.placed()
                assert call_id is not None
                runtime.dispatch(events.CallAnswered(call_id=call_id))
            await _until_parked(watcher)
            for n in range(presses):
                await _until_parked(keys)
                runtime.dispatch(_key(keys.call_id or "", n))
            keyed_result = await keys.result()
            watched = await watcher.result()
    assert keyed_result.status == "completed", keyed_result.error
    assert keyed_result.value == [str(n % 10) for n in range(presses)]
    assert watched.status == "completed", watched.error
    assert watched.value >= 100  # its own deadline woke it, no earlier one


async def test_a_parked_wait_cancelled_by_the_flow_leaves_the_call_ready_to_wait_again() -> None:
    async def flow(call: Call) -> str:
        with anyio.move_on_after(1) as scope:
            await call.wait_for(events.DtmfReceived)
        assert scope.cancelled_caught  # the cancellation reached the flow, not swallowed
        return (await call.wait_for(events.DtmfReceived, timeout=30)).digit

    with virtual_time():
        async with Runtime(MockTransport()) as runtime:
            handle = await runtime.start("16089270862", flow)
            call_id = await handle.placed()
            assert call_id is not None
            runtime.dispatch(events.CallAnswered(call_id=call_id))
            await _until_parked(handle)
            first = handle.waiting_for
            await anyio.sleep(2)  # the flow's own scope cancels its first wait
            assert handle.parked and handle.waiting_for == first  # parked again
            runtime.dispatch(_key(call_id, 7))
            result = await handle.result()
    assert result.status == "completed"
    assert result.value == "7"


async def test_events_queued_while_the_flow_waits_for_others_are_kept_in_order() -> None:
    async def flow(call: Call) -> str:
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(call.gather, "Your code?", num_digits=2, timeout=30))
        return call.digits

    with virtual_time():
        async with Runtime(MockTransport()) as runtime:
            handle = await _gathering_with(runtime, flow)
            runtime.dispatch(events.GatherComplete(call_id=handle.call_id or "", digits="42"))
            result = await handle.result()
    assert result.status == "completed", result.error
    assert result.value == "42"


async def test_a_gather_never_awaited_sends_nothing_and_owes_nothing() -> None:
    transport = MockTransport()

    async def flow(call: Call) -> str:
        forgotten = call.gather("Never asked")
        forgotten.close()
        return await call.gather("Your code?", num_digits=4, timeout=60)

    async with Runtime(transport) as runtime:
        handle = await _gathering_with(runtime, flow)
        runtime.dispatch(events.GatherComplete(call_id=handle.call_id or "", digits="1234"))
        result = await handle.result()
    assert result.value == "1234"  # the next gather's outcome is its own
    prompts = [command.text for command in transport.sent if isinstance(command, Gather)]
    assert prompts == ["Your code?"]


async def test_a_gather_cut_while_its_request_is_out_leaves_the_call_ready() -> None:
    """Cut while its ``/gather`` request is out: the cancellation reaches the request,
    nothing of that gather is expected, and the next gather takes the outcome."""

    async def slow_gather(command: Command[Any]) -> Any:
        if isinstance(command, Gather) and command.text == "Slow":
            await anyio.sleep(60)
        return default_reply(command)

    async def flow(call: Call) -> str:
        with anyio.move_on_after(1):
            await call.gather("Slow")
        return await call.gather("Your code?", num_digits=4, timeout=60)

    with virtual_time():
        async with Runtime(MockTransport(slow_gather)) as runtime:
            handle = await runtime.start("16089270862", flow)
            call_id = await handle.placed()
            assert call_id is not None
            runtime.dispatch(events.CallAnswered(call_id=call_id))
            for _ in range(40):  # virtual time: the flow's own scope cuts "Slow" at 1 s
                if handle.awaiting_keys:
                    break
                await anyio.sleep(0.25)
            assert handle.waiting_for == "the caller's keys for gather 'Your code?'"
            runtime.dispatch(events.GatherComplete(call_id=handle.call_id or "", digits="1234"))
            result = await handle.result()
    assert result.value == "1234"
    assert "late" not in [entry.kind for entry in result.transcript]


async def _gathering_with(runtime: Runtime, flow: Any) -> CallHandle:
    handle = await runtime.start("16089270862", flow)
    call_id = await handle.placed()
    assert call_id is not None
    runtime.dispatch(events.CallAnswered(call_id=call_id))
    await _until_awaiting_keys(handle)
    return handle
