"""A parked flow is resumed only by what it waits for, its deadline, or the call's end."""

from __future__ import annotations

import anyio
import pytest

from kaphila_flow import Call, CallHandle, CallResult, Runtime, events
from kaphila_flow.testing import MockTransport

pytestmark = pytest.mark.anyio


async def _until_awaiting_keys(handle: CallHandle) -> None:
    for _ in range(100):
        if handle.awaiting_keys:
            return
        await anyio.lowlevel.checkpoint()
    raise AssertionError(f"the flow never waited for keys: {handle.waiting_for}")


async def _gathering(runtime: Runtime) -> CallHandle:
    async def flow(call: Call) -> str:
        return await call.gather("Your code?", num_digits=4, timeout=60)

    handle = await runtime.start("16089270862", flow)
    call_id = await handle.placed()
    assert call_id is not None
    runtime.dispatch(events.CallAnswered(call_id=call_id))
    await _until_awaiting_keys(handle)
    return handle


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
