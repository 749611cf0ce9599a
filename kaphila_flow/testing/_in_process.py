"""``InProcessKaphila``: the real client and the real receiver, over HTTP without sockets.

The simulator's Quart app and the runtime's Quart receiver talk over httpx's ASGI
transport, both ways, in one event loop and in its virtual time::

    async with InProcessKaphila(callees={"16089270862": Callee(keys=(KeyStep("1"),))}) as k:
        result = await k.runtime.dial("16089270862", flow)

Everything a deployment runs is in the path (``KaphilaClient`` with its retry table and
error envelope parsing, the HTTP framing, the receiver's intake, webhook signatures),
except sockets. Network timeouts are kept: a request whose answer never comes raises
httpx's ``ReadTimeout`` after the client's read timeout, as over a socket.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any

import anyio
import anyio.abc
import httpx
import sniffio

from .._callees import Callee
from .._client import KaphilaClient
from .._provider import DEFAULT_KEY, Account, Faults
from .._retry import RetryPolicy
from .._runtime import Runtime
from ..simulator._core import Simulator
from ..simulator._http import create_app
from ._hosted import hosted

__all__ = ["InProcessKaphila"]

API_URL = "http://kaphila.in-process.invalid"
RECEIVER_URL = "http://receiver.in-process.invalid/webhooks"


class _TimedAsgi(httpx.AsyncBaseTransport):
    """An ASGI transport that serves each request in a task of the server's, as a
    socket's far end would, and keeps the request's read timeout.

    The app does not run inside the caller's task: a flow cancelled while it waits for
    an answer (its call ended) is cancelled at its own await, where the runtime turns
    that into ``CallEnded``, and not inside the app's own task groups (QuartTrio's),
    which would hand it back wrapped in an exception group. The server's tasks run in
    ``server_tasks``, set before the first request."""

    def __init__(self, app: Any) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self.server_tasks: anyio.abc.TaskGroup | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        limit = timeouts.get("read")
        assert self.server_tasks is not None, "served before the server's tasks started"
        answered = anyio.Event()
        answer: list[httpx.Response | Exception] = []

        async def serve() -> None:
            try:
                response = await self._inner.handle_async_request(request)
                await response.aread()
                answer.append(response)
            except Exception as exc:  # the caller's to raise; cancellation goes on
                answer.append(exc)
            finally:
                answered.set()

        self.server_tasks.start_soon(serve)
        try:
            with anyio.fail_after(math.inf if limit is None else limit):
                await answered.wait()
        except TimeoutError:
            raise httpx.ReadTimeout("no answer within the read timeout", request=request) from None
        if not answer:  # the server stopped before it answered
            raise httpx.RemoteProtocolError("the server went away", request=request)
        if isinstance(answer[0], Exception):
            raise answer[0]
        return answer[0]

    async def aclose(self) -> None:
        await self._inner.aclose()


def _app_class() -> Any:
    if sniffio.current_async_library() == "trio":
        from quart_trio import QuartTrio

        return QuartTrio
    from quart import Quart

    return Quart


class InProcessKaphila:
    """The simulator and a runtime joined over ASGI, in virtual time, with no sockets.

    ``runtime_options`` go to the ``Runtime``; ``client_options`` to ``KaphilaClient``
    (``timeout``, ``retry``, ``rate_limit``, ...).
    """

    def __init__(
        self,
        *,
        callees: Mapping[str, Callee] | None = None,
        default_callee: Callee | None = None,
        account: Account | None = None,
        api_key: str = DEFAULT_KEY,
        faults: Faults | None = None,
        webhook_secret: str | None = None,
        client_options: Mapping[str, Any] | None = None,
        **runtime_options: Any,
    ) -> None:
        self._account = account or Account(credits=10**9, rate_limit=10**9)
        self._api_key = api_key
        self._simulator_options: dict[str, Any] = {
            "callees": callees,
            "default_callee": default_callee,
            "faults": faults,
            "webhook_secret": webhook_secret,
        }
        self._client_options = dict(client_options or {})
        self._client_options.setdefault("retry", RetryPolicy(backoff=0.01))
        self._client_options.setdefault("rate_limit", None)
        if webhook_secret is not None:
            runtime_options.setdefault("webhook_secrets", [webhook_secret])
        runtime_options.setdefault("webhook_url", RECEIVER_URL)
        self._runtime_options = runtime_options
        self._stack: AsyncExitStack | None = None
        self.simulator: Simulator
        self.runtime: Runtime
        self.client: KaphilaClient

    async def __aenter__(self) -> InProcessKaphila:
        app_class = _app_class()
        # The simulator posts to the receiver, which needs the runtime, which needs a
        # client of the simulator: the receiver's app is looked up when first called.
        receiver_app: Any = None

        async def receiver(scope: Any, receive: Any, send: Any) -> None:
            await receiver_app(scope, receive, send)

        to_receiver = _TimedAsgi(receiver)
        self.simulator = Simulator(
            accounts={self._api_key: self._account},
            transport=to_receiver,
            **self._simulator_options,
        )
        to_simulator = _TimedAsgi(create_app(self.simulator, app_class=app_class))
        self.client = KaphilaClient(
            self._api_key,
            base_url=API_URL,
            transport=to_simulator,
            allow_insecure=True,
            **self._client_options,
        )
        self.runtime = runtime = Runtime(self.client, owns_transport=True, **self._runtime_options)
        receiver_app = runtime.receiver(app_class=app_class)
        stack = AsyncExitStack()
        # Each side's server tasks: they outlive the runtime and the host, and are
        # cancelled once both have stopped.
        server_tasks = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(server_tasks.cancel_scope.cancel)
        to_receiver.server_tasks = to_simulator.server_tasks = server_tasks
        await stack.enter_async_context(hosted(self.simulator.run, runtime))
        self._stack = stack
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        assert self._stack is not None
        await self._stack.__aexit__(*exc_info)
