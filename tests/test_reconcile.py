"""A /makecall whose answer is lost: adopted when Kaphila has the call, else `unknown`."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from kaphila_flow import Call, ConnectError, RetryPolicy, Runtime, Timeout, events
from kaphila_flow._api_types import CallInfo
from kaphila_flow._commands import Command, MakeCall
from kaphila_flow.testing import MockTransport, default_reply

pytestmark = pytest.mark.anyio


def lost_answer(listed: list[dict[str, Any]], error: Exception) -> MockTransport:
    """A /makecall whose answer is lost with ``error``; ``GET /calls`` lists ``listed``."""

    def answer(command: Command[Any]) -> Any:
        if isinstance(command, MakeCall):
            raise error
        return default_reply(command)

    return MockTransport(answer, calls=[CallInfo.from_json(c) for c in listed])


async def greet(call: Call) -> str:
    await call.say("Hello.")
    return call.id


async def test_a_placed_call_is_adopted_through_get_calls() -> None:
    transport = lost_answer(
        [
            {"callId": "7.7", "status": "ringing", "number": "16089270862"},
            {"callId": "8.8", "status": "ended", "number": "16089270862"},
            {"callId": "9.9", "status": "ringing", "number": "16085550101"},
        ],
        Timeout("read timeout", endpoint="/makecall"),
    )
    async with Runtime(transport) as runtime:
        handle = await runtime.start("16089270862", greet)
        await handle.placed()
        runtime.dispatch(events.CallAnswered(call_id="7.7", timestamp="t"))
        with anyio.fail_after(5):
            result = await handle.result()
    assert result.status == "completed"
    assert result.value == "7.7"
    assert [c.path for c in transport.sent] == ["/makecall", "/voice", "/hangup"]


async def test_no_such_call_is_reported_unknown_and_never_redialled() -> None:
    transport = lost_answer([], Timeout("read timeout", endpoint="/makecall"))
    async with Runtime(transport) as runtime:
        result = await runtime.dial("16089270862", greet)
    assert result.status == "unknown"
    assert isinstance(result.error, Timeout)
    assert [c.path for c in transport.sent] == ["/makecall"]


async def test_two_candidates_are_not_guessed_between() -> None:
    both = [
        {"callId": "1.1", "status": "ringing", "number": "16089270862"},
        {"callId": "2.2", "status": "answered", "number": "16089270862"},
    ]
    transport = lost_answer(both, Timeout("read timeout"))
    async with Runtime(transport) as runtime:
        result = await runtime.dial("16089270862", greet)
    assert result.status == "unknown"


async def test_a_refused_connection_is_a_plain_failure() -> None:
    transport = lost_answer(
        [{"callId": "1.1", "status": "ringing", "number": "16089270862"}], ConnectError("refused")
    )
    async with Runtime(transport) as runtime:
        result = await runtime.dial("16089270862", greet)
    assert result.status == "failed"  # nothing was sent, so nothing to look for


async def test_a_request_that_never_left_the_process_is_a_plain_failure() -> None:
    """httpx's pool timeout: no connection was ever had, so nothing rang; not "unknown"."""
    import httpx

    from kaphila_flow import KaphilaClient

    def pool_full(request: httpx.Request) -> httpx.Response:
        raise httpx.PoolTimeout("no connection free in the pool")

    client = KaphilaClient(
        "ak_test",
        base_url="http://127.0.0.1:9",
        transport=httpx.MockTransport(pool_full),
        rate_limit=None,
        retry=RetryPolicy(attempts=1),
    )
    async with Runtime(client, owns_transport=True) as runtime:
        result = await runtime.dial("16089270862", greet)
    assert result.status == "failed"
    assert isinstance(result.error, ConnectError)
