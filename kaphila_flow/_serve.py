"""Serving: an ASGI app with hypercorn on asyncio or trio, and shutting down on signals."""

from __future__ import annotations

import logging
import os
import signal
import socket
from collections.abc import Callable, Coroutine
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import sniffio
from hypercorn.config import Config

from ._exceptions import ConfigurationError

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = [
    "base_url",
    "bind_socket",
    "check_webhook_url",
    "serve_app",
    "serve_receiver",
    "serve_until_signalled",
    "shut_down_on_signal",
]

logger = logging.getLogger("kaphila_flow.runtime")

#: What stops ``serve`` and ``campaign``: a service manager's SIGTERM, a terminal's ^C.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def bind_socket(bind: str) -> socket.socket:
    """A listening TCP socket for ``host:port`` (port 0 picks a free one)."""
    host, sep, port_text = bind.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ConfigurationError(f"bind must be HOST:PORT such as 127.0.0.1:8080, not {bind!r}")
    host = host.strip("[]") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, int(port_text)))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {bind}: {exc.strerror}") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


async def serve_app(
    app: Any,
    sock: socket.socket,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    read_timeout: float | None = None,
) -> None:
    """Serve ``app`` on ``sock`` until cancelled (hypercorn's trio or asyncio worker).

    ``read_timeout``: a connection that sends nothing for that many seconds (in the
    middle of its headers or body) is closed. Idle keep-alive connections close after
    hypercorn's 5 s; headers over 16 KiB are refused.
    """
    config = Config()
    config.read_timeout = read_timeout  # type: ignore[assignment]
    config.bind = [f"fd://{os.dup(sock.fileno())}"]  # hypercorn owns the duplicate
    config.accesslog = None  # access logs would carry each call's webhook token
    # On shutdown, open keep-alive connections get this long to finish; live calls
    # are wound down before the server stops (``serve_until_signalled``).
    config.graceful_timeout = 0.1
    config.loglevel = "WARNING"  # no "Running on ..." banner in the middle of a call
    # Hypercorn's errors go through the application's handlers (JSON logs), not its own.
    errors = logging.getLogger("hypercorn.error")
    if errors.level == logging.NOTSET:
        errors.setLevel(logging.WARNING)
    config.errorlog = errors
    if sniffio.current_async_library() == "trio":
        from hypercorn.trio import serve as hypercorn_serve
    else:
        from hypercorn.asyncio import serve as hypercorn_serve  # type: ignore[assignment]
    stop = anyio.Event()

    async def run_server(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        # Hypercorn stops cleanly through its shutdown trigger, not by cancellation,
        # so the server runs shielded and the trigger is pulled when we are cancelled.
        with anyio.CancelScope(shield=True):
            task_status.started()
            await hypercorn_serve(app, config, shutdown_trigger=stop.wait)

    await stop_when_cancelled(run_server, stop, task_status)


async def stop_when_cancelled(
    run: Callable[..., Coroutine[Any, Any, Any]],
    stop: anyio.Event,
    task_status: anyio.abc.TaskStatus[None],
) -> None:
    """Start ``run`` (a server that stops cleanly when ``stop`` is set, shielded from
    cancellation itself), report started, and set ``stop`` once cancelled."""
    async with anyio.create_task_group() as tg:
        await tg.start(run)
        task_status.started()
        try:
            await anyio.sleep_forever()
        finally:
            stop.set()


async def serve_receiver(
    runtime: Runtime,
    bind: str,
    *,
    path: str = "/webhooks",
    task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    sock = bind_socket(bind)
    url = f"{base_url(sock)}/{path.strip('/')}"
    configured = runtime.webhook_url
    if configured is None:
        runtime.webhook_url = url  # reachable on loopback only; set a public URL in production
    app_class = None
    if sniffio.current_async_library() == "trio":
        from quart_trio import QuartTrio

        app_class = QuartTrio
    app = runtime.receiver(path=path, app_class=app_class)
    try:
        async with anyio.create_task_group() as tg:
            # A silent connection goes after twice the body timeout: a body that trickles
            # in is cut off sooner by the receiver's own 408.
            silent = 2 * runtime.body_timeout
            await tg.start(partial(serve_app, app, sock, read_timeout=silent))
            if configured is not None:
                tg.start_soon(check_webhook_url, runtime, configured)
            task_status.started(url)
    finally:
        sock.close()


async def check_webhook_url(runtime: Runtime, url: str, *, timeout: float = 10.0) -> bool:
    """Whether ``url`` (what Kaphila is told) reaches this runtime's receiver; says so.

    A request to itself through the URL: a wrong port or path, a tunnel or a proxy that
    is down would otherwise look like calls nobody answers.
    """
    import httpx

    reason = ""
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            answer = await client.get(url)
        body = answer.json() if answer.status_code == 200 else {}
        if isinstance(body, dict) and body.get("runtime") == runtime.instance:
            runtime.webhook_url_reaches_receiver = True
            logger.info("the webhook URL %s reaches this receiver", url)
            return True
        reason = f"HTTP {answer.status_code} from something else"
    except (httpx.HTTPError, ValueError) as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    runtime.webhook_url_reaches_receiver = False
    logger.error(
        "the webhook URL %s does not reach this receiver (%s): Kaphila's webhooks will be "
        "lost and calls will end as no-webhooks; check KAPHILA_WEBHOOK_URL, the port and "
        "path, the tunnel or the proxy",
        url,
        reason,
    )
    return False


async def serve_until_signalled(
    runtime: Runtime,
    bind: str,
    *,
    path: str,
    handle_signals: bool,
    grace: float,
    task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the receiver until cancelled, or with ``handle_signals`` until SIGTERM/SIGINT.

    On a signal: stop placing calls, let live flows finish within ``grace`` seconds with
    the receiver still up (they still need webhooks), hang up the rest, and return.
    """
    async with anyio.create_task_group() as tg:
        url = await tg.start(partial(serve_receiver, runtime, bind, path=path))
        task_status.started(url)
        if not handle_signals:
            await anyio.sleep_forever()
        await shut_down_on_signal(runtime, grace)
        tg.cancel_scope.cancel()


async def shut_down_on_signal(
    runtime: Runtime,
    grace: float,
    *,
    on_signal: Callable[[signal.Signals], None] | None = None,
    on_second_signal: Callable[[signal.Signals], None] | None = None,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> signal.Signals:
    """Wait for SIGTERM or SIGINT, then ``runtime.shutdown(grace)``; returns the signal.

    ``on_signal`` runs first, at once (to stop placing calls of one's own). A second
    signal during the grace period ends the live calls at once: they are hung up and
    their results recorded all the same. Main thread only.
    """
    with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
        task_status.started()
        first = signal.Signals(await signals.__anext__())
        if on_signal is None:
            logger.warning("%s: shutting down", first.name)
        else:
            on_signal(first)  # it says what happens
        hurried = False
        async with anyio.create_task_group() as tg:

            async def second_signal() -> None:
                nonlocal hurried
                again = signal.Signals(await signals.__anext__())
                if on_second_signal is None:
                    logger.warning("%s again: ending live calls now", again.name)
                else:
                    on_second_signal(again)
                hurried = True
                tg.cancel_scope.cancel()

            tg.start_soon(second_signal)
            await runtime.shutdown(grace)
            tg.cancel_scope.cancel()
        if hurried:
            await runtime.shutdown(0)
    return first
