"""A /makecall whose answer is lost: adopted when Kaphila has the call, else `unknown`."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from kaphila_flow import Call, ConnectError, Runtime, Timeout, VirtualClock, events
from kaphila_flow._api_types import CallInfo, CallList
from kaphila_flow._commands import Command, HangupReply, MakeCall, PlaybackReply
from kaphila_flow.testing._settle import wait_all_tasks_blocked

pytestmark = pytest.mark.anyio


class LostAnswer:
    def __init__(self, listed: list[dict[str, Any]], error: Exception) -> None:
        self.listed = listed
        self.error = error
        self.sent: list[Command[Any]] = []

    async def send(self, command: Command[Any]) -> Any:
        self.sent.append(command)
        if isinstance(command, MakeCall):
            raise self.error
        if command.path == "/voice":
            return PlaybackReply("TTS played successfully", "p", "bridge")
        return HangupReply("ok")

    async def list_calls(self) -> CallList:
        return CallList(
            len(self.listed), len(self.listed), [CallInfo.from_json(c) for c in self.listed]
        )

    async def aclose(self) -> None:
        return None


async def greet(call: Call) -> str:
    await call.say("Hello.")
    return call.id


async def test_a_placed_call_is_adopted_through_get_calls() -> None:
    transport = LostAnswer(
        [
            {"callId": "7.7", "status": "ringing", "number": "16089270862"},
            {"callId": "8.8", "status": "ended", "number": "16089270862"},
            {"callId": "9.9", "status": "ringing", "number": "16085550101"},
        ],
        Timeout("read timeout", endpoint="/makecall"),
    )
    async with Runtime(transport, clock=VirtualClock()) as runtime:
        handle = await runtime.start("16089270862", greet)
        await wait_all_tasks_blocked()
        runtime.dispatch(events.CallAnswered(call_id="7.7", timestamp="t"))
        with anyio.fail_after(5):
            result = await handle.result()
    assert result.status == "completed"
    assert result.value == "7.7"
    assert [c.path for c in transport.sent] == ["/makecall", "/voice", "/hangup"]


async def test_no_such_call_is_reported_unknown_and_never_redialled() -> None:
    transport = LostAnswer([], Timeout("read timeout", endpoint="/makecall"))
    async with Runtime(transport, clock=VirtualClock()) as runtime:
        result = await runtime.dial("16089270862", greet)
    assert result.status == "unknown"
    assert isinstance(result.error, Timeout)
    assert [c.path for c in transport.sent] == ["/makecall"]


async def test_two_candidates_are_not_guessed_between() -> None:
    both = [
        {"callId": "1.1", "status": "ringing", "number": "16089270862"},
        {"callId": "2.2", "status": "answered", "number": "16089270862"},
    ]
    transport = LostAnswer(both, Timeout("read timeout"))
    async with Runtime(transport, clock=VirtualClock()) as runtime:
        result = await runtime.dial("16089270862", greet)
    assert result.status == "unknown"


async def test_a_refused_connection_is_a_plain_failure() -> None:
    transport = LostAnswer(
        [{"callId": "1.1", "status": "ringing", "number": "16089270862"}], ConnectError("refused")
    )
    async with Runtime(transport, clock=VirtualClock()) as runtime:
        result = await runtime.dial("16089270862", greet)
    assert result.status == "failed"  # nothing was sent, so nothing to look for
