"""Near-free HTTP/1.1 on bare asyncio: what drives the simulator alone.

``RawServer`` answers every POST with ``{"success": true}`` and hands the body to a
callback; ``RawClient`` keeps ``connections`` keep-alive connections, each owned by
one worker task, and sends JSON POSTs through them. No framework, no pool queue: the
cost measured on the other side is the simulator's own. Loopback, well-formed peers
only; not a general HTTP implementation.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

_OK = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n"
    b'{"success":true}'
)


class _Serving(asyncio.Protocol):
    def __init__(self, on_post: Callable[[str, bytes], None]) -> None:
        self.on_post = on_post
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            assert self.transport is not None
            self.transport.write(_OK)
            method, path = head.split(" ", 2)[:2]
            if method == "POST":
                self.on_post(path, body)


class RawServer:
    """Serve on a free loopback port; ``on_post(path, body)`` for each POST."""

    def __init__(self, on_post: Callable[[str, bytes], None]) -> None:
        self.on_post = on_post
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: _Serving(self.on_post), "127.0.0.1", 0, backlog=4096
        )
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


class RawClient:
    """JSON POSTs over ``connections`` keep-alive connections, one worker each."""

    def __init__(self, base_url: str, headers: dict[str, str], connections: int) -> None:
        host, _, port = base_url.removeprefix("http://").partition(":")
        self.host, self.port = host, int(port)
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.head = f"Host: {host}\r\nContent-Type: application/json\r\n{extra}"
        self.queue: asyncio.Queue[tuple[str, bytes, asyncio.Future[Any]]] = asyncio.Queue()
        self.workers = [asyncio.ensure_future(self._work()) for _ in range(connections)]

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((path, json.dumps(body).encode(), done))
        return await done

    async def _work(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            while True:
                path, body, done = await self.queue.get()
                try:
                    head = f"POST {path} HTTP/1.1\r\n{self.head}Content-Length: {len(body)}\r\n"
                    writer.write(head.encode() + b"\r\n" + body)
                    status = await reader.readline()
                    length = 0
                    while (line := await reader.readline()) not in (b"\r\n", b""):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    payload = json.loads(await reader.readexactly(length)) if length else None
                    if not status.split()[1].startswith(b"2"):
                        raise RuntimeError(f"{path}: {status.decode().strip()} {payload}")
                    done.set_result(payload)
                except Exception as exc:
                    if not done.done():
                        done.set_exception(exc)
        finally:
            writer.close()

    def close(self) -> None:
        for worker in self.workers:
            worker.cancel()
