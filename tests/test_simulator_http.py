"""The simulator's HTTP/1.1 server on a real loopback socket, byte for byte.

What any client may send it: kept-alive and pipelined requests, chunked bodies,
``Expect: 100-continue``, HTTP/1.0, garbled or oversized requests; and what it
answers: the call-control endpoints straight, everything else by the app (404 and
405 envelopes, HEAD, routes of one's own, streamed answers). On asyncio and trio.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
import anyio.abc
import pytest
import sniffio
from anyio.streams.buffered import BufferedByteReceiveStream
from quart import Quart, Response

from kaphila_flow.simulator import DEFAULT_KEY, INSTANT, Simulator, create_app, serve_simulator

pytestmark = pytest.mark.anyio

AUTH = f"Authorization: Bearer {DEFAULT_KEY}\r\n"
UNKNOWN_CALL = b'{"callId": "1.999"}'


def app_class() -> type[Quart]:
    if sniffio.current_async_library() == "trio":
        from quart_trio import QuartTrio

        return QuartTrio
    return Quart


@asynccontextmanager
async def serving(simulator: Simulator | None = None, app: Any = None) -> AsyncIterator[int]:
    """The simulator on a free loopback port; yields the port."""
    async with anyio.create_task_group() as tg:
        url = await tg.start(
            partial(serve_simulator, simulator or Simulator(speed=INSTANT), "127.0.0.1:0", app=app)
        )
        yield int(url.rpartition(":")[2])
        tg.cancel_scope.cancel()


class Wire:
    """One client connection: raw bytes out, parsed answers in."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.reader = BufferedByteReceiveStream(stream)

    async def send(self, data: bytes) -> None:
        await self.stream.send(data)

    async def answer(self, *, to_head: bool = False) -> tuple[int, dict[str, str], bytes]:
        """The next response: status, headers (lower-case names), body (none after a
        HEAD request: ``to_head``)."""
        head = (await self.reader.receive_until(b"\r\n\r\n", 65536)).decode("latin-1")
        status_line, *lines = head.split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        status = int(status_line.split(" ")[1])
        if to_head:
            body = b""
        elif "content-length" in headers:
            body = await self.reader.receive_exactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            body = b""
            while size := int(await self.reader.receive_until(b"\r\n", 100), 16):
                body += await self.reader.receive_exactly(size)
                assert await self.reader.receive_exactly(2) == b"\r\n"
            assert await self.reader.receive_exactly(2) == b"\r\n"
        else:
            body = b""
        return status, headers, body

    async def closed(self) -> bool:
        """Whether the server closed the connection (nothing more comes)."""
        with anyio.fail_after(10):
            try:
                return await self.reader.receive() == b""
            except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError):
                return True


@asynccontextmanager
async def wire(port: int) -> AsyncIterator[Wire]:
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        yield Wire(stream)


def post(path: str, body: bytes, extra: str = "") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: sim\r\n{AUTH}Content-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


def head_only(method: str, path: str, extra: str) -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: sim\r\n{AUTH}{extra}\r\n".encode()


def get(path: str, extra: str = "", method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: sim\r\n{AUTH}{extra}\r\n".encode()


MAKECALL = json.dumps({"number": "16089270862"}).encode()


async def test_one_connection_carries_requests_one_after_another_and_pipelined() -> None:
    async with serving() as port, wire(port) as w:
        await w.send(post("/makecall", MAKECALL))
        status, headers, body = await w.answer()
        assert status == 200 and headers["content-type"] == "application/json"
        call_id = json.loads(body)["callId"]
        await w.send(get(f"/calls/{call_id}"))  # answered by the app, same connection
        status, _, body = await w.answer()
        assert status == 200 and json.loads(body)["call"]["callId"] == call_id
        # Three requests in one write: three answers, in order.
        await w.send(post("/hangup", UNKNOWN_CALL) + get("/health") + post("/hangup", b"[]"))
        assert (await w.answer())[0] == 404
        assert json.loads((await w.answer())[2])["status"] == "ok"
        status, _, body = await w.answer()
        assert status == 400
        assert json.loads(body) == {
            "success": False,
            "error": "Invalid JSON body: expected an object",
        }


async def test_a_chunked_body_and_expect_continue_are_read_like_any_other() -> None:
    async with serving() as port, wire(port) as w:
        half = len(MAKECALL) // 2
        chunks = b"%x\r\n%s\r\n%x;ext=1\r\n%s\r\n0\r\n\r\n" % (
            half,
            MAKECALL[:half],
            len(MAKECALL) - half,
            MAKECALL[half:],
        )
        head = f"POST /makecall HTTP/1.1\r\nHost: sim\r\n{AUTH}Transfer-Encoding: chunked\r\n\r\n"
        await w.send(head.encode() + chunks)
        status, _, body = await w.answer()
        assert status == 200 and json.loads(body)["success"] is True

        expect = f"Content-Length: {len(MAKECALL)}\r\nExpect: 100-continue\r\n"
        await w.send(head_only("POST", "/makecall", expect))
        assert await w.reader.receive_until(b"\r\n\r\n", 1000) == b"HTTP/1.1 100 Continue"
        await w.send(MAKECALL)
        status, _, body = await w.answer()
        assert status == 200 and json.loads(body)["success"] is True


async def test_a_body_over_the_limit_is_413_and_the_connection_closes() -> None:
    async with serving() as port:
        async with wire(port) as w:
            await w.send(head_only("POST", "/voice", "Content-Length: 300000\r\n"))
            status, headers, body = await w.answer()
            assert status == 413 and headers["connection"] == "close"
            assert json.loads(body)["success"] is False
            assert await w.closed()
        async with wire(port) as w:  # chunked: refused once past the limit
            head = f"POST /voice HTTP/1.1\r\nHost: sim\r\n{AUTH}Transfer-Encoding: chunked\r\n\r\n"
            await w.send(head.encode() + b"40001\r\n" + b" " * 0x40001 + b"\r\n" * 2)
            assert (await w.answer())[0] == 413
            assert await w.closed()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NONSENSE\r\n\r\n", 400),
        (b"GET /health HTTP/2.0\r\n\r\n", 400),
        (b"GET /health HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"POST /voice HTTP/1.1\r\nContent-Length: ten\r\n\r\n", 400),
        (b"POST /voice HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"POST /voice HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"GET /health HTTP/1.1\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\n", 431),
    ],
)
async def test_a_garbled_request_gets_a_clear_refusal_and_the_connection_closes(
    request_bytes: bytes, status: int
) -> None:
    async with serving() as port, wire(port) as w:
        await w.send(request_bytes)
        answered, headers, body = await w.answer()
        assert answered == status and headers["connection"] == "close"
        assert json.loads(body)["success"] is False and json.loads(body)["error"]
        assert await w.closed()


async def test_http_1_0_and_connection_close_end_the_connection_after_the_answer() -> None:
    async with serving() as port:
        async with wire(port) as w:
            await w.send(b"GET /health HTTP/1.0\r\n\r\n")
            status, headers, _ = await w.answer()
            assert status == 200 and headers["connection"] == "close"
            assert await w.closed()
        async with wire(port) as w:
            await w.send(post("/hangup", UNKNOWN_CALL, "Connection: close\r\n"))
            status, headers, _ = await w.answer()
            assert status == 404 and headers["connection"] == "close"
            assert await w.closed()


async def test_what_the_endpoints_do_not_take_gets_the_apps_envelopes() -> None:
    async with serving() as port, wire(port) as w:
        await w.send(get("/makecall"))
        status, _, body = await w.answer()
        assert status == 405 and json.loads(body)["success"] is False
        await w.send(get("/nowhere?x=1"))
        status, _, body = await w.answer()
        assert status == 404 and json.loads(body)["error"] == "Not found: /nowhere"
        await w.send(get("/health", method="HEAD"))
        status, headers, _ = await w.answer(to_head=True)
        assert status == 200 and int(headers["content-length"]) > 0
        await w.send(get("/health"))  # the connection is still in step
        assert json.loads((await w.answer())[2])["status"] == "ok"


async def test_a_route_of_ones_own_streams_and_learns_when_the_client_leaves() -> None:
    simulator = Simulator(speed=INSTANT)
    app = create_app(simulator, app_class=app_class())
    left = anyio.Event()

    @app.get("/ticks")
    async def ticks() -> Response:
        async def stream() -> AsyncIterator[bytes]:
            try:
                for n in range(1_000_000):
                    yield f"tick {n}\n".encode()
                    await anyio.sleep(0.01)
            finally:
                left.set()

        response = Response(stream(), mimetype="text/plain")
        response.timeout = None
        return response

    async with serving(simulator, app) as port:
        async with wire(port) as w:
            await w.send(get("/ticks"))
            head = await w.reader.receive_until(b"\r\n\r\n", 65536)
            assert b"transfer-encoding: chunked" in head.lower()
            await w.reader.receive_until(b"\r\n", 100)  # the first chunk's size
            assert await w.reader.receive_until(b"\r\n", 100) == b"tick 0\n"
        with anyio.fail_after(10):
            await left.wait()  # the stream was closed once the client went away


async def test_the_call_control_answers_are_counted_in_the_metrics() -> None:
    async with serving() as port, wire(port) as w:
        await w.send(post("/hangup", UNKNOWN_CALL) + post("/hangup", UNKNOWN_CALL))
        await w.answer()
        await w.answer()
        await w.send(get("/metrics"))
        _, _, body = await w.answer()
        assert 'endpoint="/hangup",status="404"} 2.0' in body.decode()


async def test_a_large_answer_reaches_a_slow_reader_whole() -> None:
    simulator = Simulator(speed=INSTANT)
    app = create_app(simulator, app_class=app_class())
    payload = bytes(range(256)) * 20_000  # 5 MB: more than the socket buffers hold

    @app.get("/large")
    async def large() -> Response:
        return Response(payload, mimetype="application/octet-stream")

    async with serving(simulator, app) as port, wire(port) as w:
        await w.send(get("/large"))
        await anyio.sleep(0.2)  # the server fills the socket and waits for the reader
        status, headers, body = await w.answer()
        assert status == 200 and int(headers["content-length"]) == len(payload)
        assert body == payload
        await w.send(get("/health"))  # and the connection carries on
        assert (await w.answer())[0] == 200


async def test_stopping_closes_kept_alive_connections_and_lets_a_stream_end_cleanly() -> None:
    simulator = Simulator(speed=INSTANT)
    app = create_app(simulator, app_class=app_class())
    stopping = anyio.Event()

    @app.get("/until-stop")
    async def until_stop() -> Response:
        async def stream() -> AsyncIterator[bytes]:
            yield b"open\n"
            try:
                await anyio.sleep_forever()
            finally:
                stopping.set()

        response = Response(stream(), mimetype="text/plain")
        response.timeout = None
        return response

    server = anyio.CancelScope()

    async def run(*, task_status: anyio.abc.TaskStatus[str]) -> None:
        with server:
            await serve_simulator(simulator, "127.0.0.1:0", app=app, task_status=task_status)

    async with anyio.create_task_group() as tg:
        port = int((await tg.start(run)).rpartition(":")[2])
        async with wire(port) as kept, wire(port) as streaming:
            await kept.send(get("/health"))
            assert (await kept.answer())[0] == 200
            await streaming.send(get("/until-stop"))
            await streaming.reader.receive_until(b"open\n\r\n", 65536)  # its first chunk
            server.cancel()  # the server stops; this test goes on
            assert await kept.closed()
            assert await streaming.closed()
    with anyio.fail_after(10):
        await stopping.wait()  # and the app's stream was closed
