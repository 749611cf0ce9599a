"""A /makecall whose answer is lost: adopted when the call is shown to be this runtime's,
else `unknown`; a provider error reply is not a lost answer."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from kaphila_flow import (
    Call,
    CallHandle,
    ConnectError,
    RetryPolicy,
    Runtime,
    ServerError,
    Timeout,
    events,
)
from kaphila_flow._api_types import CallInfo
from kaphila_flow._commands import Command, Hangup, MakeCall
from kaphila_flow.testing import MockTransport, default_reply, virtual_time

WEBHOOK_URL = "https://receiver.kaphila-test.invalid/webhooks"

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


async def test_a_placed_call_is_adopted_when_get_calls_shows_its_webhook_url() -> None:
    started: list[CallHandle] = []

    def listing() -> list[CallInfo]:
        ours = started[0].webhook_url
        return [
            CallInfo.from_json(c)
            for c in (
                {"callId": "6.6", "status": "ringing", "number": "16089270862",
                 "webhookUrl": "https://another-client.invalid/hook"},
                {"callId": "7.7", "status": "ringing", "number": "16089270862",
                 "webhookUrl": ours, "createdAt": "2026-01-01T00:00:00.000Z"},
                {"callId": "8.8", "status": "ended", "number": "16089270862"},
            )
        ]  # fmt: skip

    def answer(command: Command[Any]) -> Any:
        if isinstance(command, MakeCall):
            raise Timeout("read timeout", endpoint="/makecall")
        return default_reply(command)

    transport = MockTransport(answer, calls=listing)
    async with Runtime(transport, webhook_url=WEBHOOK_URL, start_time=1_767_225_600.0) as rt:
        started.append(await rt.start("16089270862", greet))
        assert await started[0].placed() == "7.7"
        rt.dispatch(events.CallAnswered(call_id="7.7", timestamp="t"))
        with anyio.fail_after(5):
            result = await started[0].result()
    assert result.status == "completed"
    assert result.value == "7.7"
    assert [c.path for c in transport.sent] == ["/makecall", "/voice", "/hangup"]


async def test_another_clients_call_to_the_same_number_is_never_adopted() -> None:
    """Same account, same number, same moment, live: but not this runtime's call."""
    transport = lost_answer(
        [{"callId": "5.5", "status": "ringing", "number": "16089270862"}],
        Timeout("read timeout", endpoint="/makecall"),
    )
    with virtual_time():
        async with Runtime(transport, webhook_url=WEBHOOK_URL) as runtime:
            result = await runtime.dial("16089270862", greet)
    assert result.status == "unknown"
    assert result.call_id is None
    assert not any(isinstance(c, Hangup) for c in transport.sent)  # left alone
    assert [c.path for c in transport.sent] == ["/makecall"]


async def test_the_calls_own_webhook_proves_a_lost_makecall_placed_it() -> None:
    holder: list[Runtime] = []

    async def answer(command: Command[Any]) -> Any:
        if isinstance(command, MakeCall):
            assert command.webhook_url is not None
            token = command.webhook_url.rsplit("/", 1)[-1]
            body = b'{"callId": "4.4", "event": "call.initiated", "status": "initiated"}'
            assert holder[0].receive_webhook(token, body).status == 200
            raise Timeout("read timeout", endpoint="/makecall")
        return default_reply(command)

    listed = [{"callId": "5.5", "status": "ringing", "number": "16089270862"}]
    transport = MockTransport(answer, calls=[CallInfo.from_json(c) for c in listed])
    async with Runtime(transport, webhook_url=WEBHOOK_URL) as runtime:
        holder.append(runtime)
        handle = await runtime.start("16089270862", greet)
        assert await handle.placed() == "4.4"
        runtime.dispatch(events.CallAnswered(call_id="4.4", timestamp="t"))
        with anyio.fail_after(5):
            result = await handle.result()
    assert (result.status, result.value) == ("completed", "4.4")


async def test_a_provider_error_reply_is_not_a_lost_answer() -> None:
    """Kaphila's own 500 envelope says it failed: no search, nobody else's call touched."""
    listings = [0]

    def listing() -> list[CallInfo]:
        listings[0] += 1
        return [CallInfo.from_json({"callId": "5.5", "status": "ringing", "number": "16089270862"})]

    def answer(command: Command[Any]) -> Any:
        if isinstance(command, MakeCall):
            raise ServerError("Internal server error", endpoint="/makecall")
        return default_reply(command)

    transport = MockTransport(answer, calls=listing)
    async with Runtime(transport, webhook_url=WEBHOOK_URL) as runtime:
        result = await runtime.dial("16089270862", greet)
    assert result.status == "failed"
    assert isinstance(result.error, ServerError)
    assert listings[0] == 0
    assert [c.path for c in transport.sent] == ["/makecall"]


async def test_a_proxys_bare_502_is_a_lost_answer() -> None:
    """No envelope: the gateway says nothing of what Kaphila did, so the call may ring."""
    import httpx

    from kaphila_flow import KaphilaClient

    def gateway(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/calls":
            return httpx.Response(200, json={"success": True, "calls": []})
        return httpx.Response(502, text="<html>Bad Gateway</html>")

    client = KaphilaClient(
        "ak_test",
        base_url="http://127.0.0.1:9",
        transport=httpx.MockTransport(gateway),
        rate_limit=None,
        retry=RetryPolicy(attempts=1),
    )
    with virtual_time():
        async with Runtime(client, owns_transport=True, webhook_url=WEBHOOK_URL) as runtime:
            result = await runtime.dial("16089270862", greet)
    assert result.status == "unknown"
    assert isinstance(result.error, ServerError)
    assert result.error.enveloped is False


async def test_a_lost_call_that_shows_up_after_its_result_is_hung_up() -> None:
    transport = lost_answer([], Timeout("read timeout", endpoint="/makecall"))
    with virtual_time():
        async with Runtime(transport, webhook_url=WEBHOOK_URL) as runtime:
            handle = await runtime.start("16089270862", greet)
            assert (await handle.result()).status == "unknown"
            assert handle.webhook_url is not None
            token = handle.webhook_url.rsplit("/", 1)[-1]
            body = b'{"callId": "3.3", "event": "call.answered", "status": "answered"}'
            assert runtime.receive_webhook(token, body).status < 300
            await anyio.sleep(1)  # virtual time: the hangup is sent meanwhile
    assert [c for c in transport.sent if isinstance(c, Hangup)] == [Hangup("3.3")]


async def test_no_such_call_is_reported_unknown_and_never_redialled() -> None:
    transport = lost_answer([], Timeout("read timeout", endpoint="/makecall"))
    with virtual_time():
        async with Runtime(transport, webhook_url=WEBHOOK_URL) as runtime:
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
    with virtual_time():
        async with Runtime(transport, webhook_url=WEBHOOK_URL) as runtime:
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


@pytest.mark.parametrize("fault", ["refused with 500", "answer lost"])
async def test_on_the_fake_another_clients_live_call_is_left_alone(fault: str) -> None:
    """The fake provider holds another client's live call to the same number; this
    runtime's /makecall is refused (500) or carried out with its answer lost."""
    from kaphila_flow.testing import FakeKaphila, Faults

    number = "16089270862"
    async with FakeKaphila() as kaphila:
        other = await kaphila.send(
            MakeCall(number=number, webhook_url="https://another-client.invalid/hook/x")
        )
        only_makecall = frozenset({"/makecall"})
        kaphila.provider.faults = (
            Faults(api_error=1.0, paths=only_makecall)
            if fault == "refused with 500"
            else Faults(lost_answer=1.0, paths=only_makecall)
        )
        with anyio.fail_after(600):
            result = await kaphila.runtime.dial(number, greet)
        assert kaphila.models[other.call_id].live  # neither adopted nor hung up
    assert Hangup(other.call_id) not in kaphila.commands
    if fault == "refused with 500":
        assert (result.status, result.call_id) == ("failed", None)
    else:
        assert result.status == "completed"  # its own call, proven by its own webhooks
        assert result.call_id not in (None, other.call_id)


async def test_over_http_kaphilas_own_500_is_failed_without_a_search() -> None:
    """The real client parses the simulator's error envelope: not a lost answer."""
    from kaphila_flow.testing import Faults, InProcessKaphila

    faults = Faults(api_error=1.0, paths=frozenset({"/makecall"}))
    async with InProcessKaphila(faults=faults) as kaphila:
        with anyio.fail_after(600):
            result = await kaphila.runtime.dial("16089270862", greet)
        scrape = kaphila.runtime.metrics.exposition().decode()
    assert result.status == "failed"
    assert isinstance(result.error, ServerError)
    assert result.error.enveloped is True
    assert 'provider_requests_total{endpoint="/makecall",status="500"} 1.0' in scrape
    assert 'endpoint="/calls"' not in scrape  # no search was made
