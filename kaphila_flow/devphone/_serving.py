"""Serving the simulator with its dev phone page on one port (asyncio)."""

from __future__ import annotations

import ipaddress
import secrets
import socket
from collections.abc import Sequence

import anyio
import anyio.abc

from .._serve import base_url, bind_socket
from ..simulator import Simulator, create_app
from ..simulator._server import serve_http
from ._page import mount_phone
from ._phone import DevPhone, Dialer

__all__ = ["serve_phone"]


def _loopback(sock: socket.socket) -> bool:
    return ipaddress.ip_address(sock.getsockname()[0]).is_loopback


def _urls(sock: socket.socket) -> tuple[str, str]:
    """(for pages, for clients on this machine): a wildcard bind is reached by this
    machine's name from elsewhere and by loopback from here."""
    host, port = sock.getsockname()[:2]
    if ipaddress.ip_address(host).is_unspecified:
        local = "[::1]" if ":" in host else "127.0.0.1"
        return f"http://{socket.gethostname()}:{port}", f"http://{local}:{port}"
    return base_url(sock), base_url(sock)


async def serve_phone(
    simulator: Simulator,
    bind: str = "127.0.0.1:0",
    *,
    token: str | None = None,
    dial: Dialer | None = None,
    numbers: Sequence[str] = (),
    task_status: anyio.abc.TaskStatus[DevPhone] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the simulated API with the dev phone at ``/phone/`` until cancelled.

    Reports the ``DevPhone`` (its ``page_url``, and ``api_url`` for API clients). On
    loopback the page needs no token; bound anywhere else, it needs ``token`` (one is
    made when none is given) in every URL.
    """
    sock = bind_socket(bind)
    try:
        if token is None and not _loopback(sock):
            token = secrets.token_urlsafe(24)
        public, local = _urls(sock)
        phone = DevPhone(
            simulator,
            base_url=public,
            api_url=local,
            token=token,
            dial=dial,
            numbers=numbers,
        )
        app = create_app(simulator)
        mount_phone(app, phone)
        async with anyio.create_task_group() as tg:
            await tg.start(simulator.run)
            await tg.start(phone.run)
            await tg.start(serve_http, simulator, app, sock)
            task_status.started(phone)
    finally:
        sock.close()
