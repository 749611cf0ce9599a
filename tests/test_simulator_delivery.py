"""The simulator's webhooks over real sockets: in order, to any well-framed receiver.

Receivers answer with a Content-Length body on a kept-alive connection, with chunks,
or close the connection after every answer, saying so or not; each call's webhooks still arrive once
each, in the order the provider emitted them, while many calls go out side by side.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from kaphila_flow import Hangup, MakeCall
from kaphila_flow.simulator import DEFAULT_KEY, INSTANT, Callee, Simulator

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

ANSWERS = {
    "length": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    "close": b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
    # Keep-alive promised, then the connection dropped (an idle timeout): sent anew.
    "dropped": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
}
CLOSING = ("close", "dropped")


class Seen:
    """Events by call as they arrive; ``until(condition)`` waits for one to hold."""

    def __init__(self) -> None:
        self.by_call: dict[str, list[str]] = defaultdict(list)
        self._arrived = anyio.Event()

    def add(self, call_id: str, event: str) -> None:
        self.by_call[call_id].append(event)
        self._arrived.set()
        self._arrived = anyio.Event()

    async def until(self, event: str, calls: list[str]) -> None:
        while any(event not in self.by_call[c] for c in calls):
            await self._arrived.wait()


async def _next_webhook(reader: BufferedByteReceiveStream) -> dict[str, Any] | None:
    """The next webhook POSTed on the connection, or None once the client has gone."""
    try:
        head = await reader.receive_until(b"\r\n\r\n", 65536)
    except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
        return None
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    event: dict[str, Any] = json.loads(await reader.receive_exactly(length))
    return event


async def _receiver(framing: str, seen: Seen, task_status: anyio.abc.TaskStatus[int]) -> None:
    async def serve(stream: anyio.abc.SocketStream) -> None:
        reader = BufferedByteReceiveStream(stream)
        async with stream:
            while (event := await _next_webhook(reader)) is not None:
                seen.add(event["callId"], event["event"])
                await stream.send(ANSWERS[framing])
                if framing in CLOSING:
                    return

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    task_status.started(listener.extra(anyio.abc.SocketAttribute.local_port))
    await listener.serve(serve)


@pytest.mark.parametrize("framing", sorted(ANSWERS))
async def test_every_call_gets_its_webhooks_once_in_order(framing: str) -> None:
    simulator = Simulator(
        speed=INSTANT, default_callee=Callee(answer_after=0.0), delivery_concurrency=4
    )
    account = simulator.authenticate(DEFAULT_KEY)
    seen = Seen()
    async with anyio.create_task_group() as tg:
        port = await tg.start(_receiver, framing, seen)
        await tg.start(simulator.run)
        url = f"http://127.0.0.1:{port}/hook"
        calls = [
            simulator.make_call(account, MakeCall(f"1608555{n:04d}", webhook_url=url)).call_id
            for n in range(12)
        ]
        with anyio.fail_after(20):
            await seen.until("call.answered", calls)
            for call_id in calls:
                simulator.handle(account, Hangup(call_id))
            await seen.until("call.ended", calls)
        tg.cancel_scope.cancel()
    assert not simulator.undelivered
    emitted: dict[str, list[str]] = defaultdict(list)
    for event in simulator.events:
        emitted[event.call_id].append(event.name)
    for call_id in calls:
        assert seen.by_call[call_id] == emitted[call_id]
        assert seen.by_call[call_id][-1] == "call.ended"


async def _stalling_receiver(seen: Seen, task_status: anyio.abc.TaskStatus[int]) -> None:
    """Answers the first webhook on each connection, then reads on and never answers."""

    async def serve(stream: anyio.abc.SocketStream) -> None:
        reader = BufferedByteReceiveStream(stream)
        async with stream:
            answered = False
            while (event := await _next_webhook(reader)) is not None:
                seen.add(event["callId"], event["event"])
                if not answered:
                    answered = True
                    await stream.send(ANSWERS["length"])

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    task_status.started(listener.extra(anyio.abc.SocketAttribute.local_port))
    await listener.serve(serve)


async def test_a_kept_alive_connection_that_stops_answering_times_out_and_is_replaced() -> None:
    simulator = Simulator(
        speed=INSTANT,
        default_callee=Callee(answer_after=0.0),
        delivery_concurrency=1,
        delivery_timeout=0.2,
    )
    account = simulator.authenticate(DEFAULT_KEY)
    seen = Seen()
    async with anyio.create_task_group() as tg:
        port = await tg.start(_stalling_receiver, seen)
        await tg.start(simulator.run)
        url = f"http://127.0.0.1:{port}/hook"
        call_id = simulator.make_call(account, MakeCall("16085550001", webhook_url=url)).call_id
        with anyio.fail_after(20):
            await seen.until("call.answered", [call_id])
            simulator.handle(account, Hangup(call_id))
            await seen.until("call.ended", [call_id])
        tg.cancel_scope.cancel()
    assert not simulator.undelivered
    emitted = [event.name for event in simulator.events if event.call_id == call_id]
    # Each timed-out webhook was sent again, on a new connection, before the next one.
    got = seen.by_call[call_id]
    arrived = [name for n, name in enumerate(got) if got[n - 1 : n] != [name]]
    assert arrived == emitted
    assert len(got) > len(emitted)
