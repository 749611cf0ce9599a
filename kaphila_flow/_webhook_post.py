"""A webhook POST answered straight from ASGI, before the receiver's Quart app.

Every webhook of every call comes through here, so it takes the shortest way: the
token from the path, the body read under the receiver's limits, ``receive_webhook``,
and the JSON answer, with no request or response objects, routing or context of the
web framework's. The rules are the receiver's own (``_receiver``): a body over
``max_body_bytes`` gets 413, one that has not fully arrived within ``body_timeout``
seconds gets 408 (counted as ``timed_out``), both closing the connection; bad input is
a 4xx with a JSON error, never a 5xx. Everything else (other paths and methods, an app
mounted under a root path) goes on to the Quart app.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import anyio

from ._intake import IntakeReply, receive_webhook
from ._session import Delivery

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ["WebhookPost", "reply_json"]

logger = logging.getLogger("kaphila_flow.receiver")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[..., Awaitable[None]]  # the ASGI app behind (Quart's, typed its own way)

#: The JSON of each dispatched webhook's answer, encoded once (every webhook gets one).
_ANSWERS: dict[Delivery, bytes] = {
    delivery: json.dumps({"success": True, "delivery": delivery.value}).encode()
    for delivery in Delivery
}
_JSON = (b"content-type", b"application/json")
_CLOSE = (b"connection", b"close")


def reply_json(reply: IntakeReply) -> bytes:
    """The body of the intake's answer."""
    if reply.status == 200 and reply.delivery is not None:
        return _ANSWERS[reply.delivery]
    return json.dumps(dict(reply.body)).encode()


def _error(message: str) -> bytes:
    return json.dumps({"success": False, "error": message}).encode()


class _TooLarge(Exception):
    pass


class _Gone(Exception):
    """The client went away before its body was in: nobody to answer."""


class WebhookPost:
    """ASGI middleware: ``POST <path>/<token>`` is taken here, the rest goes to ``app``."""

    def __init__(
        self, app: App, runtime: Runtime, *, path: str, max_body_bytes: int, body_timeout: float
    ) -> None:
        self.app = app
        self.runtime = runtime
        self.prefix = "/" + path.strip("/") + "/"
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            path: str = scope["path"]
            if path.startswith(self.prefix):
                token = path[len(self.prefix) :]
                if token and "/" not in token:
                    await self._webhook(scope, receive, send, token)
                    return
        await self.app(scope, receive, send)

    async def _webhook(self, scope: Scope, receive: Receive, send: Send, token: str) -> None:
        runtime, limit = self.runtime, self.max_body_bytes
        try:
            # ASGI header names are lower case; the intake looks up only what it needs.
            headers = {
                name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
            }
            try:
                length = headers.get("content-length")
                if length is not None and length.isdigit() and int(length) > limit:
                    raise _TooLarge
                body = await self._body(receive, limit)
            except _TooLarge:
                runtime.metrics.webhook("invalid")
                # The rest of the body is never read: the connection closes.
                await _answer(send, 413, _error(f"webhook body over {limit} bytes"), close=True)
                return
            except _Gone:
                return
            if body is None:
                runtime.metrics.webhook("timed_out")
                message = f"the request body did not arrive within {self.body_timeout:g} s"
                await _answer(send, 408, _error(message), close=True)
                return
            reply = receive_webhook(
                runtime,
                token,
                body,
                content_type=headers.get("content-type"),
                headers=headers,
                limit=limit,
            )
            status, answer = reply.status, reply_json(reply)
        except Exception as exc:  # never a 5xx for the provider to retry
            logger.exception("webhook receiver error: %s", type(exc).__name__)
            status, answer = 400, _error("the request could not be processed")
        await _answer(send, status, answer)

    async def _body(self, receive: Receive, limit: int) -> bytes | None:
        """The whole body, or ``None`` if it did not arrive in time."""
        chunks: list[bytes] = []
        size = 0
        with anyio.move_on_after(self.body_timeout):
            while True:
                message = await receive()
                if message["type"] != "http.request":  # http.disconnect
                    raise _Gone
                chunk: bytes = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise _TooLarge
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return None


async def _answer(send: Send, status: int, body: bytes, *, close: bool = False) -> None:
    headers = [_JSON, (b"content-length", str(len(body)).encode())]
    if close:
        headers.append(_CLOSE)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
