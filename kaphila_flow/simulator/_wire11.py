"""Webhook POSTs on the wire: one kept-alive connection per delivery worker.

``PlainConnection`` speaks just the HTTP/1.1 a webhook POST needs (a request with a
``Content-Length`` body; a response framed by ``Content-Length``, chunks or close)
over an anyio TCP stream, reconnecting when the peer closes. It does a fraction of
the work of a general client per request, which is what lets the simulator outpace
the runtime it drives. ``HttpxPoster`` sends through an httpx transport instead:
for ``https`` targets and for a transport the simulator was given (in-process tests).
Both raise ``DeliveryFailed`` saying why a POST got no answer.
"""

from __future__ import annotations

from typing import Any, Protocol

import anyio
import anyio.abc
import httpx
from anyio.streams.buffered import BufferedByteReceiveStream

from ._sockets import LeanStream, connect

__all__ = ["DeliveryFailed", "HttpxPoster", "PlainConnection", "Poster"]

#: A response head or chunk line longer than this is not one a receiver sends.
MAX_LINE = 64 * 1024
MAX_BODY = 1024 * 1024


class DeliveryFailed(Exception):
    """A webhook POST got no HTTP answer (refused, reset, timed out, garbled)."""


class Poster(Protocol):
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST ``body`` to ``url``; the response's status (its body read and dropped)."""
        ...

    async def aclose(self) -> None: ...


class HttpxPoster:
    """Through an httpx transport (``https``, or a transport given to the simulator)."""

    def __init__(self, transport: httpx.AsyncBaseTransport, timeout: float) -> None:
        self._transport = transport
        self._extensions: dict[str, Any] = {
            "timeout": dict.fromkeys(("connect", "read", "write", "pool"), timeout)
        }

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        request = httpx.Request(
            "POST", url, content=body, headers=headers, extensions=self._extensions
        )
        try:
            response = await self._transport.handle_async_request(request)
            await response.aread()
            await response.aclose()
        except httpx.HTTPError as exc:
            why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise DeliveryFailed(why) from None
        return response.status_code

    async def aclose(self) -> None:
        pass


class PlainConnection:
    """One keep-alive HTTP/1.1 connection to ``host:port``, opened on first use."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self._host, self._port, self._timeout = host, port, timeout
        self._stream: anyio.abc.ByteStream | None = None
        self._reader: BufferedByteReceiveStream | None = None
        self._host_header = f"Host: {host}:{port}\r\n"

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        path = "/" + url.split("://", 1)[-1].partition("/")[2]
        head = f"POST {path} HTTP/1.1\r\n{self._host_header}Content-Length: {len(body)}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = head.encode("latin-1") + b"\r\n" + body
        stream = self._stream
        if type(stream) is LeanStream:
            if not stream.closed:
                return await self._post_lean(stream, request)
            self._stream = self._reader = None  # its timer went off as the answer came
        return await self._post(request, anyio.current_time() + self._timeout)

    async def _post_lean(self, stream: LeanStream, request: bytes) -> int:
        """On a kept-alive asyncio connection: the timeout is a timer closing it, not a
        cancel scope (one per webhook adds up); anything else as ``_post``."""
        timer = stream.close_after(self._timeout)
        try:
            return await self._exchange(request)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            timed_out = stream.closed  # by the timer
            await self.aclose()
            if timed_out:
                raise DeliveryFailed("timed out") from None
            # A kept-alive connection the peer closed meanwhile: once more, anew.
            return await self._post(request, timer.when())
        except (ValueError, anyio.IncompleteRead, anyio.DelimiterNotFound) as exc:
            timed_out = stream.closed
            await self.aclose()
            if timed_out:
                raise DeliveryFailed("timed out") from None
            raise DeliveryFailed(f"a garbled response ({type(exc).__name__})") from None
        finally:
            timer.cancel()

    async def _post(self, request: bytes, deadline: float) -> int:
        fresh = self._stream is None
        try:
            with anyio.CancelScope(deadline=deadline):
                try:
                    return await self._exchange(request)
                except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                    if fresh:
                        raise
                    # A kept-alive connection the peer closed meanwhile: once more, anew.
                    await self.aclose()
                    return await self._exchange(request)
            await self.aclose()  # only a timeout gets here
            raise DeliveryFailed("timed out")
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError) as exc:
            await self.aclose()
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}" if str(exc) else "closed") from None
        except (ValueError, anyio.IncompleteRead, anyio.DelimiterNotFound) as exc:
            await self.aclose()
            raise DeliveryFailed(f"a garbled response ({type(exc).__name__})") from None

    async def _exchange(self, request: bytes) -> int:
        if self._stream is None:
            self._stream = await connect(self._host, self._port)
            self._reader = BufferedByteReceiveStream(self._stream)
        reader = self._reader
        assert reader is not None
        await self._stream.send(request)
        head = (await reader.receive_until(b"\r\n\r\n", MAX_LINE)).decode("latin-1")
        status_line, _, fields = head.partition("\r\n")
        status = int(status_line.split(" ", 2)[1])
        length, chunked, close = -1, False, status_line.startswith("HTTP/1.0")
        for line in fields.split("\r\n"):
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif name == "connection":
                close = value.strip().lower() == "close"
        if chunked:
            while size := int((await reader.receive_until(b"\r\n", MAX_LINE)).split(b";")[0], 16):
                await reader.receive_exactly(size + 2)
            while await reader.receive_until(b"\r\n", MAX_LINE):
                pass  # trailers, up to the empty line
        elif length > MAX_BODY:
            raise ValueError("response body too large")
        elif length > 0:
            await reader.receive_exactly(length)
        elif length < 0 and status >= 200 and status not in (204, 304):
            close = True  # framed by the close: read nothing more on it
        if close:
            await self.aclose()
        return status

    async def aclose(self) -> None:
        stream, self._stream, self._reader = self._stream, None, None
        if stream is not None:
            with anyio.CancelScope(shield=True):
                await stream.aclose()
