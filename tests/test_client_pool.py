"""KaphilaClient's connection pool over real sockets: connections are kept, not churned."""

from __future__ import annotations

import json

import anyio
import anyio.abc
import httpx
import pytest

from kaphila_flow._client import KaphilaClient

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

AT_ONCE = 40  # requests in flight at once: more than httpx keeps alive by default (20)
REPLY = json.dumps({"success": True, "message": "ok", "callId": "1.1"}).encode()


class Server:
    """Answers ``/hangup`` over keep-alive HTTP/1.1; holds each round's answers until
    all ``AT_ONCE`` requests of the round have arrived, so they are truly in flight at
    once; counts the connections it accepted."""

    def __init__(self) -> None:
        self.connections = 0
        self.arrived = 0
        self.round = anyio.Event()

    async def serve(self, stream: anyio.abc.SocketStream) -> None:
        self.connections += 1
        buffered = b""
        async with stream:
            while True:
                while b"\r\n\r\n" not in buffered:
                    try:
                        buffered += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        return
                head, _, buffered = buffered.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buffered) < length:
                    buffered += await stream.receive()
                buffered = buffered[length:]
                self.arrived += 1
                if self.arrived % AT_ONCE == 0:
                    self.round.set()
                await self.round.wait()
                await stream.send(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(REPLY), REPLY)
                )


async def _rounds(limits: httpx.Limits | None) -> int:
    server = Server()
    async with (
        await anyio.create_tcp_listener(local_host="127.0.0.1") as listener,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(listener.serve, server.serve)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        client = KaphilaClient(
            "ak_test", base_url=f"http://127.0.0.1:{port}", rate_limit=None, limits=limits
        )
        async with client:
            for _ in range(2):
                server.round = anyio.Event()
                async with anyio.create_task_group() as calls:
                    for _ in range(AT_ONCE):
                        calls.start_soon(client.hangup, "1.1")
        tg.cancel_scope.cancel()
    return server.connections


async def test_connections_are_kept_alive_when_requests_in_flight_fall_and_rise() -> None:
    # Two rounds of 40 requests at once with all idle between them: the second round
    # reuses the first round's connections.
    assert await _rounds(None) == AT_ONCE


async def test_a_pool_of_ones_own_applies() -> None:
    # httpx's own default keeps 20 alive: the second round opens 20 more.
    assert await _rounds(httpx.Limits(max_connections=100, max_keepalive_connections=20)) == (
        AT_ONCE + AT_ONCE - 20
    )
