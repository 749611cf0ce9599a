"""Webhook delivery: each call's webhooks in order, a bounded set of workers per target.

Every target (a webhook URL's scheme, host and port) gets at most ``concurrency``
worker tasks, started as the work needs them; each owns one keep-alive connection
(``_wire11``), so no request ever waits in a connection pool's queue, whose
scheduling costs grow with the queue times the connections. A
call is handed to one worker at a time: its webhooks leave one after another, in the
order the provider emitted them, while other calls' go out beside them.
"""

from __future__ import annotations

import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import anyio
import anyio.abc
import httpx

from .._provider import Webhook
from ._wire11 import HttpxPoster, PlainConnection, Poster

__all__ = ["Delivery"]

#: Sends one webhook through a transport until acknowledged or given up.
Send = Callable[[Webhook, Poster], Awaitable[None]]


@dataclass(slots=True, eq=False)
class _Target:
    """One receiver: calls with webhooks waiting and no worker on them, idle workers."""

    ready: deque[str] = field(default_factory=deque)
    sleeping: deque[anyio.Event] = field(default_factory=deque)
    workers: int = 0


class Delivery:
    """Queues webhooks per call and runs the workers that send them."""

    def __init__(
        self,
        send: Send,
        *,
        concurrency: int,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._timeout = timeout
        self._send = send
        self._concurrency = concurrency
        self._shared = transport
        self._calls: dict[str, deque[Webhook]] = {}
        self._targets: dict[str, _Target] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._tls: ssl.SSLContext | None = None

    @property
    def pending(self) -> int:
        """Calls with a webhook not yet acknowledged (queued or on its way)."""
        return len(self._calls)

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Deliver until cancelled; webhooks queued before this starts wait for it."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                for origin, target in self._targets.items():
                    for _ in target.ready:
                        self._hire(tg, origin, target)
                task_status.started()
                await anyio.sleep_forever()
            finally:
                self._tg = None

    def put(self, webhook: Webhook) -> None:
        """Queue ``webhook`` behind its call's earlier ones."""
        call_id = webhook.event.call_id
        queue = self._calls.get(call_id)
        if queue is not None:
            queue.append(webhook)  # a worker has this call, or it is ready
            return
        self._calls[call_id] = deque((webhook,))
        origin = _origin(webhook.url)
        target = self._targets.get(origin)
        if target is None:
            target = self._targets[origin] = _Target()
        target.ready.append(call_id)
        if target.sleeping:
            target.sleeping.popleft().set()
        elif self._tg is not None:
            self._hire(self._tg, origin, target)

    def _hire(self, tg: anyio.abc.TaskGroup, origin: str, target: _Target) -> None:
        if target.ready and target.workers < self._concurrency:
            target.workers += 1
            tg.start_soon(self._work, origin, target)

    async def _work(self, origin: str, target: _Target) -> None:
        async with AsyncExitStack() as stack:
            poster = await self._poster(origin, stack)
            calls = self._calls
            while True:
                if not target.ready:
                    wake = anyio.Event()
                    target.sleeping.append(wake)
                    await wake.wait()
                    continue
                call_id = target.ready.popleft()
                queue = calls[call_id]
                try:
                    await self._send(queue[0], poster)
                finally:
                    queue.popleft()
                    if queue:
                        target.ready.append(call_id)
                    else:
                        del calls[call_id]

    async def _poster(self, origin: str, stack: AsyncExitStack) -> Poster:
        """This worker's connection: its own, unless the simulator was given a transport."""
        if self._shared is not None:
            return HttpxPoster(self._shared, self._timeout)
        parts = urlsplit(origin)
        if parts.scheme == "http" and parts.hostname:
            poster: Poster = PlainConnection(parts.hostname, parts.port or 80, self._timeout)
        else:
            if self._tls is None:
                self._tls = httpx.create_ssl_context()  # loading CA certificates is slow
            transport = await stack.enter_async_context(
                httpx.AsyncHTTPTransport(
                    verify=self._tls,
                    limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                )
            )
            poster = HttpxPoster(transport, self._timeout)
        stack.push_async_callback(poster.aclose)
        return poster


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.partition('/')[0]}"
