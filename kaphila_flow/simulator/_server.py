"""The simulator's own HTTP/1.1 server: the call-control endpoints straight, the rest by ASGI.

A flow's every step is a POST to the simulator (``/makecall``, ``/voice``, ``/gather``,
...). Served by a general ASGI server and a web framework, each cost more than the
simulated call behind it; here the request is read off the socket, handed to
``call_endpoint`` and answered in one write. Any other request (the GET endpoints,
``/metrics``, 404s and 405s, routes added to the app) goes to the simulator's Quart
app over ASGI, streamed responses included. On asyncio and trio alike (anyio streams).

HTTP as the simulator's clients need it: keep-alive (idle connections close after
``KEEP_ALIVE`` seconds), ``Content-Length`` and chunked request bodies,
``Expect: 100-continue``, a 413 for a body over the limit (unread, so the connection
closes), a 400 for a garbled request, a 431 for a head over 16 KiB. One request at
a time per connection.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from functools import partial
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import anyio
import anyio.abc

from .._serve import stop_when_cancelled
from ._core import Simulator
from ._endpoints import ENDPOINTS, LOST, MAX_BODY_BYTES, TOO_LARGE, Answer, call_endpoint, envelope
from ._sockets import LeanStream, serve_tcp

__all__ = ["KEEP_ALIVE", "MAX_HEAD", "serve_http"]

logger = logging.getLogger("kaphila_flow.simulator")

#: A request head (request line and headers) longer than this is refused (431).
MAX_HEAD = 16 * 1024
#: Seconds an idle keep-alive connection stays open.
KEEP_ALIVE = 5.0
#: Seconds the answers under way get to finish when the server stops.
GRACE = 0.1

Asgi = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[MutableMapping[str, Any]]],
        Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]

_GONE = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)
_REASONS = {status.value: status.phrase for status in HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class _Refusal(Exception):
    """A request this server answers itself with an envelope, then closes."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.answer = envelope(status, message)


class _Request:
    __slots__ = ("authorization", "body", "close", "headers", "method", "target", "version")

    def __init__(
        self,
        method: str,
        target: str,
        version: str,
        headers: list[tuple[str, str]],
        authorization: str,
        close: bool,
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.authorization = authorization
        self.close = close
        self.body = b""


def _head(status: int, headers: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, '')}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


def _rendered(answer: Answer, close: bool) -> bytes:
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(answer.body)))]
    headers.extend(answer.headers)
    if close:
        headers.append(("Connection", "close"))
    return _head(answer.status, headers) + answer.body


class _Connections:
    """The server's open connections: those waiting for a request (each in its scope,
    or a lean stream its timer closes),
    the app's answers under way, and whether the server is stopping."""

    def __init__(self) -> None:
        self.waiting: set[anyio.CancelScope | LeanStream] = set()
        self.answering: set[anyio.Event] = set()
        self.open = 0
        self.stopping = False
        self.none_left = anyio.Event()

    def closed(self) -> None:
        self.open -= 1
        if self.stopping and not self.open:
            self.none_left.set()

    async def stop(self, connections: anyio.abc.TaskGroup) -> None:
        """No new request; the idle go at once; answers under way get ``GRACE`` to
        finish, then are told their client left (an app winds its work down), then
        ``GRACE`` more; what is left then is cancelled."""
        self.stopping = True
        for waiting in self.waiting:
            if isinstance(waiting, LeanStream):
                waiting.close_now()
            else:
                waiting.cancel()
        if await self._all_closed_within(GRACE):
            return
        for over in self.answering:
            over.set()  # the app's receive() says http.disconnect
        if not await self._all_closed_within(GRACE):
            connections.cancel_scope.cancel()

    async def _all_closed_within(self, seconds: float) -> bool:
        if self.open:
            with anyio.move_on_after(seconds):
                await self.none_left.wait()
        return not self.open


async def serve_http(
    simulator: Simulator,
    app: Asgi,
    sock: socket.socket,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``simulator``'s endpoints, and ``app`` for the rest, on ``sock`` until
    cancelled (``sock`` stays the caller's to close).

    When cancelled it stops accepting and closes the connections waiting for a
    request; answers under way get some time to finish (a page's event stream ends
    cleanly when the app ends it): ``_Connections.stop``."""
    server = sock.getsockname()[:2]
    state = _Connections()
    stop = anyio.Event()

    async def connection(stream: anyio.abc.ByteStream) -> None:
        state.open += 1
        try:
            async with stream:
                client = stream.extra(anyio.abc.SocketAttribute.remote_address, None)  # noqa: S610
                await _Connection(simulator, app, stream, server, client, state).run()
        except _GONE:
            pass  # the client went away
        except Exception:
            logger.exception("the simulator's HTTP server dropped a connection")
        finally:
            state.closed()

    async def run(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        # Shielded: a cancellation stops it through ``stop``, gracefully.
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as connections:
                async with anyio.create_task_group() as accepting:
                    await accepting.start(partial(serve_tcp, sock, connection, connections))
                    task_status.started()
                    await stop.wait()
                    accepting.cancel_scope.cancel()
                await state.stop(connections)

    await stop_when_cancelled(run, stop, task_status)


class _Connection:
    def __init__(
        self,
        simulator: Simulator,
        app: Asgi,
        stream: anyio.abc.ByteStream,
        server: tuple[str, int],
        client: Any,
        state: _Connections,
    ) -> None:
        self._state = state
        self._simulator = simulator
        self._app = app
        self._stream = stream
        self._server = server
        self._client = tuple(client[:2]) if isinstance(client, tuple) else None
        self._buffer = bytearray()

    async def run(self) -> None:
        stream = self._stream
        while True:
            try:
                request = await self._request()
                if request is None:
                    return  # closed, or idle for KEEP_ALIVE seconds
                await self._read_body(request)
            except _Refusal as refusal:
                await stream.send(_rendered(refusal.answer, True))
                return
            path = request.target.partition("?")[0]
            if request.method == "POST" and path in ENDPOINTS:
                answer = await call_endpoint(
                    self._simulator, path, request.authorization, request.body
                )
                if answer is LOST:
                    await self._until_closed()
                    return
                close = request.close or answer.close
                await stream.send(_rendered(answer, close))
                if close:
                    return
            elif not await self._asgi(request):
                return

    # -- reading ---------------------------------------------------------------------

    async def _request(self) -> _Request | None:
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            state = self._state
            if state.stopping:
                return None
            stream = self._stream
            if type(stream) is LeanStream:
                # A timer closing the connection: cheaper than a cancel scope per request.
                timer = stream.close_after(KEEP_ALIVE)
                state.waiting.add(stream)
                try:
                    end = await self._fill()
                except anyio.ClosedResourceError:
                    pass  # idle for KEEP_ALIVE seconds, or the server stops
                finally:
                    timer.cancel()
                    state.waiting.discard(stream)
            else:
                with anyio.CancelScope(deadline=anyio.current_time() + KEEP_ALIVE) as waiting:
                    state.waiting.add(waiting)
                    try:
                        end = await self._fill()
                    finally:
                        state.waiting.discard(waiting)
            if end < 0:
                return None  # closed, idle for KEEP_ALIVE seconds, or the server stops
        if end > MAX_HEAD:
            raise _Refusal(431, f"Request head over {MAX_HEAD} bytes")
        lines = buffer[:end].decode("latin-1").split("\r\n")
        del buffer[: end + 4]
        parts = lines[0].split(" ")
        if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0") or not parts[1]:
            raise _Refusal(400, f"Bad request line: {lines[0][:100]!r}")
        method, target, version = parts
        headers: list[tuple[str, str]] = []
        authorization = ""
        connection = ""
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip():
                raise _Refusal(400, f"Bad header line: {line[:100]!r}")
            name = name.lower()
            value = value.strip()
            headers.append((name, value))
            if name == "authorization":
                authorization = value
            elif name == "connection":
                connection = value.lower()
        keep = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        return _Request(method, target, version, headers, authorization, not keep)

    async def _fill(self) -> int:
        """Read until the buffer holds a request head: where it ends, -1 once closed."""
        buffer = self._buffer
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            if len(buffer) > MAX_HEAD:
                raise _Refusal(431, f"Request head over {MAX_HEAD} bytes")
            try:
                buffer += await self._stream.receive()
            except anyio.EndOfStream:
                if buffer.strip():
                    raise _Refusal(400, "Incomplete request head") from None
                return -1
        return end

    async def _read_body(self, request: _Request) -> None:
        length = -1
        chunked = expect = False
        for name, value in request.headers:
            if name == "content-length":
                if not value.isdigit() or (length >= 0 and int(value) != length):
                    raise _Refusal(400, "Bad Content-Length")
                length = int(value)
            elif name == "transfer-encoding":
                if value.lower() != "chunked":
                    raise _Refusal(501, f"Transfer-Encoding {value[:40]!r} is not supported")
                chunked = True
            elif name == "expect":
                expect = value.lower() == "100-continue"
        if chunked and length >= 0:
            raise _Refusal(400, "Both Content-Length and Transfer-Encoding")
        if length > MAX_BODY_BYTES:
            raise _TooLarge
        if expect and (chunked or length > len(self._buffer)):
            await self._stream.send(_CONTINUE)
        if chunked:
            request.body = await self._chunked()
        elif length > 0:
            request.body = await self._exactly(length)

    async def _exactly(self, size: int) -> bytes:
        buffer = self._buffer
        while len(buffer) < size:
            buffer += await self._stream.receive()
        data = bytes(buffer[:size])
        del buffer[:size]
        return data

    async def _line(self) -> bytes:
        buffer = self._buffer
        while (end := buffer.find(b"\r\n")) < 0:
            if len(buffer) > MAX_HEAD:
                raise _Refusal(400, "Bad chunked body")
            buffer += await self._stream.receive()
        line = bytes(buffer[:end])
        del buffer[: end + 2]
        return line

    async def _chunked(self) -> bytes:
        body = bytearray()
        while True:
            size_text = (await self._line()).partition(b";")[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _Refusal(400, "Bad chunked body") from None
            if size < 0:
                raise _Refusal(400, "Bad chunked body")
            if size == 0:
                break
            if len(body) + size > MAX_BODY_BYTES:
                raise _TooLarge
            body += await self._exactly(size)
            if await self._line():
                raise _Refusal(400, "Bad chunked body")
        while await self._line():
            pass  # trailers, up to the empty line
        return bytes(body)

    async def _until_closed(self) -> None:
        """A lost answer: hold the connection until the client gives up on it."""
        self._buffer.clear()
        while True:
            await self._stream.receive()

    # -- everything else: the app, over ASGI -----------------------------------------

    async def _asgi(self, request: _Request) -> bool:
        """Serve ``request`` by the app; whether the connection can carry another."""
        stream = self._stream
        path, _, query = request.target.partition("?")
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": request.version[5:],
            "method": request.method,
            "scheme": "http",
            "path": unquote(path),
            "raw_path": path.encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "root_path": "",
            "headers": [(n.encode("latin-1"), v.encode("latin-1")) for n, v in request.headers],
            "client": self._client,
            "server": self._server,
            "extensions": {},
        }
        over = anyio.Event()  # the response is complete, or the client went away
        state = _Response(request)
        body_sent = False

        async def receive() -> dict[str, Any]:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": request.body, "more_body": False}
            await over.wait()
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            if over.is_set():
                return  # the client is gone (or the response is over): as a server does
            data = state.framed(message)
            try:
                if data:
                    await stream.send(data)
            except _GONE:
                state.cut = True
            if state.cut or state.complete:
                over.set()

        async def watch() -> None:
            """Notice a client that goes away mid-response (a closed page's stream)."""
            try:
                while len(self._buffer) <= MAX_HEAD:
                    self._buffer += await stream.receive()  # a pipelined request, kept
            except _GONE:
                state.cut = True
                over.set()

        self._state.answering.add(over)
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            try:
                await self._app(scope, receive, send)
            except Exception:
                logger.exception("the simulator's app failed %s %s", request.method, path)
                state.cut = state.started  # a response begun cannot be finished
            if not state.started and not over.is_set():
                await send({"type": "http.response.start", "status": 500, "headers": []})
                body = envelope(500, "Internal server error").body
                await send({"type": "http.response.body", "body": body})
            over.set()
            tg.cancel_scope.cancel()
        self._state.answering.discard(over)
        return state.complete and not state.cut and not state.close


class _TooLarge(_Refusal):
    def __init__(self) -> None:
        super().__init__(TOO_LARGE.status, "")
        self.answer = TOO_LARGE


class _Response:
    """An ASGI response on the wire: framed by Content-Length, chunks or the close."""

    def __init__(self, request: _Request) -> None:
        self._request = request
        self._status = 200
        self._headers: list[tuple[str, str]] = []
        self.started = False  # the head is on the wire
        self.complete = False
        self.cut = False
        self.close = request.close
        self._chunked = False
        self._no_body = request.method == "HEAD"

    def framed(self, message: MutableMapping[str, Any]) -> bytes:
        kind = message["type"]
        if kind == "http.response.start":
            self._status = int(message["status"])
            self._headers = [
                (bytes(n).decode("latin-1"), bytes(v).decode("latin-1"))
                for n, v in message.get("headers", ())
            ]
            return b""
        if kind != "http.response.body" or self.complete:
            return b""
        data = bytes(message.get("body", b""))
        more = bool(message.get("more_body", False))
        out = b""
        if not self.started:
            out = self._start(len(data), more)
        if self._no_body:
            pass
        elif self._chunked:
            if data:
                out += b"%x\r\n" % len(data) + data + b"\r\n"
            if not more:
                out += b"0\r\n\r\n"
        else:
            out += data
        if not more:
            self.complete = True
        return out

    def _start(self, size: int, more: bool) -> bytes:
        self.started = True
        status = self._status
        if status < 200 or status in (204, 304):
            self._no_body = True
        names = {name.lower() for name, _ in self._headers}
        headers = [(n, v) for n, v in self._headers if n.lower() != "connection"]
        if any(n.lower() == "connection" and "close" in v.lower() for n, v in self._headers):
            self.close = True
        if "content-length" not in names and not self._no_body:
            if not more:
                headers.append(("content-length", str(size)))
            elif self._request.version == "HTTP/1.1":
                self._chunked = True
                headers.append(("transfer-encoding", "chunked"))
            else:
                self.close = True  # framed by the close
        if self.close:
            headers.append(("connection", "close"))
        return _head(status, headers)
