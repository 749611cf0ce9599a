"""Running the simulator: in the current asyncio loop, or in a thread of its own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from types import TracebackType

import anyio
import anyio.abc
import sniffio
from quart import Quart

from .._serve import base_url, bind_socket
from ._core import Simulator
from ._http import create_app
from ._server import serve_http

__all__ = ["SimulatorThread", "serve_simulator"]


async def serve_simulator(
    simulator: Simulator,
    bind: str = "127.0.0.1:8000",
    *,
    app: Quart | None = None,
    task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the simulated API (asyncio or trio) until cancelled; reports its base URL.

    ``app``: the simulator's app from ``create_app(simulator)`` with routes of one's own
    added; the call-control endpoints (``/makecall``, ``/voice``, ...) are answered
    straight from the socket either way, everything else by the app.
    """
    sock = bind_socket(bind)
    if app is None:
        app = create_app(simulator, app_class=_app_class())
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(simulator.run)
            await tg.start(serve_http, simulator, app, sock)
            task_status.started(base_url(sock))
    finally:
        sock.close()


def _app_class() -> type[Quart]:
    if sniffio.current_async_library() == "trio":
        from quart_trio import QuartTrio

        return QuartTrio
    return Quart


class SimulatorThread:
    """The simulator on its own asyncio loop in a daemon thread, on a loopback port.

        with SimulatorThread(Simulator(speed=INSTANT)) as sim:
            client = KaphilaClient("ak_simulator", base_url=sim.base_url)

    Backend-neutral for its user: a trio program or test can talk to it over HTTP.
    """

    def __init__(self, simulator: Simulator, bind: str = "127.0.0.1:0") -> None:
        self.simulator = simulator
        self._bind = bind
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.base_url = ""
        self._thread = threading.Thread(target=self._main, name="kaphila-simulator", daemon=True)

    def __enter__(self) -> SimulatorThread:
        self._thread.start()
        if not self._ready.wait(timeout=30):
            raise RuntimeError("the simulator did not start within 30 s")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def call(self, function: Callable[..., object], *args: object) -> None:
        """Run a plain function on the simulator's loop (its state is not thread-safe).

        It runs inside a task there, so it may read the loop's time (``answer_call``,
        ``press_keys``); this waits for it and raises what it raised.
        """
        assert self._loop is not None

        async def run() -> None:
            function(*args)

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with anyio.create_task_group() as tg:
            self.base_url = await tg.start(serve_simulator, self.simulator, self._bind)
            self._ready.set()
            await self._stop.wait()
            tg.cancel_scope.cancel()
