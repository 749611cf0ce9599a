"""The simulator's TCP connections: lean ones on asyncio, anyio's own on trio.

anyio's asyncio socket stream pays for its generality on every call: a scheduling
checkpoint per ``send``, reading paused and resumed around every ``receive`` (two
system calls on uvloop). The simulator's HTTP server and webhook connections make
some fifteen such calls per simulated call, so on asyncio they use ``LeanStream``:
the same ``anyio.abc.ByteStream`` (``EndOfStream``, ``BrokenResourceError``, waits
that cancel), on a plain protocol that reads as data comes and pauses only when a
reader falls behind. On trio, ``connect`` and ``serve_tcp`` are anyio's.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import anyio
import anyio.abc
import sniffio

__all__ = ["LeanStream", "connect", "serve_tcp"]

#: Bytes a connection buffers unread before it stops reading from the socket.
HIGH_WATER = 256 * 1024
#: Connections waiting to be accepted (as ``bind_socket`` listens: bursts of calls)
BACKLOG = 1024

Handler = Callable[[anyio.abc.ByteStream], Coroutine[Any, Any, None]]


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.reading_paused = False
        self.eof = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.writable: asyncio.Future[None] | None = None  # set while writing is paused
        self.on_connect: Callable[[_Protocol], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a TCP transport (uvloop's too)
        if self.on_connect is not None:
            self.on_connect(self)

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > HIGH_WATER and not self.reading_paused and self.transport:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> None:
        self.eof = True
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        if exc is not None:
            self.error = exc
        self._wake()
        writable, self.writable = self.writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    def pause_writing(self) -> None:
        if self.writable is None:
            self.writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        writable, self.writable = self.writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class LeanStream(anyio.abc.ByteStream):
    """A TCP connection on an asyncio transport (see the module's doc)."""

    def __init__(self, protocol: _Protocol) -> None:
        assert protocol.transport is not None
        self._protocol = protocol
        self._transport = protocol.transport
        self._closed = False

    async def receive(self, max_bytes: int = 65536) -> bytes:
        protocol = self._protocol
        chunks = protocol.chunks
        if not chunks:
            if self._closed:
                raise anyio.ClosedResourceError
            if not protocol.eof:
                waiter = protocol.waiter = asyncio.get_running_loop().create_future()
                try:
                    await waiter
                finally:
                    protocol.waiter = None
            if not chunks:
                if self._closed:
                    raise anyio.ClosedResourceError
                if protocol.error is not None:
                    raise anyio.BrokenResourceError from protocol.error
                raise anyio.EndOfStream
        chunk = chunks.popleft()
        if len(chunk) > max_bytes:
            chunk, rest = chunk[:max_bytes], chunk[max_bytes:]
            chunks.appendleft(rest)
        protocol.buffered -= len(chunk)
        if protocol.reading_paused and protocol.buffered <= HIGH_WATER // 4:
            protocol.reading_paused = False
            self._transport.resume_reading()
        return chunk

    async def send(self, item: bytes) -> None:
        protocol = self._protocol
        if self._closed:
            raise anyio.ClosedResourceError
        if protocol.error is not None or self._transport.is_closing():
            raise anyio.BrokenResourceError from protocol.error
        self._transport.write(item)
        writable = protocol.writable
        if writable is not None:
            await asyncio.shield(writable)  # the peer reads slower than we write
            if self._closed:
                raise anyio.ClosedResourceError
            if protocol.error is not None:
                raise anyio.BrokenResourceError from protocol.error

    async def send_eof(self) -> None:
        if self._transport.can_write_eof():
            self._transport.write_eof()

    async def aclose(self) -> None:
        self.close_now()

    def close_now(self) -> None:
        """Close at once, from a callback too: a waiting ``receive`` or ``send`` raises
        ``ClosedResourceError``."""
        if not self._closed:
            self._closed = True
            self._transport.close()
            protocol = self._protocol
            protocol._wake()
            writable, protocol.writable = protocol.writable, None
            if writable is not None and not writable.done():
                writable.set_result(None)

    @property
    def closed(self) -> bool:
        """Closed on this side (``aclose``, ``close_now``, a ``close_after`` timer)."""
        return self._closed

    def close_after(self, delay: float) -> asyncio.TimerHandle:
        """Close ``delay`` seconds from now unless the returned handle is cancelled
        first (its ``when()`` on ``anyio.current_time()``'s clock): a timeout for a
        request or two, cheaper than a cancel scope per request."""
        return asyncio.get_running_loop().call_later(delay, self.close_now)

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        transport = self._transport
        return {
            anyio.abc.SocketAttribute.remote_address: lambda: transport.get_extra_info("peername"),
            anyio.abc.SocketAttribute.local_address: lambda: transport.get_extra_info("sockname"),
        }


async def connect(host: str, port: int) -> anyio.abc.ByteStream:
    """A TCP connection to ``host:port`` (``OSError`` when refused)."""
    if sniffio.current_async_library() != "asyncio":
        return await anyio.connect_tcp(host, port)
    loop = asyncio.get_running_loop()
    _transport, protocol = await loop.create_connection(_Protocol, host, port)
    sock = protocol.transport.get_extra_info("socket") if protocol.transport else None
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return LeanStream(protocol)


async def serve_tcp(
    sock: socket.socket,
    handler: Handler,
    connections: anyio.abc.TaskGroup,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Accept connections on ``sock`` (listening; stays the caller's to close) until
    cancelled, each handled by ``handler(stream)`` in a task of its own in
    ``connections`` (which outlives the accepting); ``handler`` must not raise."""
    if sniffio.current_async_library() != "asyncio":
        listener = await anyio.abc.SocketListener.from_socket(sock.dup())
        async with listener:
            task_status.started()
            await listener.serve(handler, task_group=connections)
        return
    loop = asyncio.get_running_loop()
    arrived: deque[_Protocol] = deque()
    wake: list[asyncio.Future[None]] = []

    def accepted(protocol: _Protocol) -> None:
        arrived.append(protocol)
        if wake and not wake[0].done():
            wake[0].set_result(None)

    def protocol() -> _Protocol:
        made = _Protocol()
        made.on_connect = accepted
        return made

    server = await loop.create_server(protocol, sock=sock.dup(), backlog=BACKLOG)
    try:
        task_status.started()
        while True:
            while arrived:
                made = arrived.popleft()
                transport = made.transport
                assert transport is not None
                raw = transport.get_extra_info("socket")
                if raw is not None:
                    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                connections.start_soon(handler, LeanStream(made))
            wake[:] = [loop.create_future()]
            await wake[0]
    finally:
        server.close()
        for made in arrived:  # accepted as the server stopped: never served
            if made.transport is not None:
                made.transport.close()
