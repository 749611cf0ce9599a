"""The simulator for one benchmark run, as its own process, observed from inside.

    python -m benchmarks._provider CONFIG [--profile OUT]

The one observation point for step latency on every side: the time from a webhook
that asks for a step (``call.answered``, ``gather.complete``) leaving the simulator to
that call's next ``/voice`` arriving. ``GET /_bench`` answers the process's CPU seconds
and the step latencies (ms) since the previous ``GET /_bench``. Prints its URL once it
serves. ``--profile`` writes a cProfile of the process to OUT on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import sys
import time
from collections.abc import Coroutine
from functools import partial
from typing import Any

import anyio
from quart import Response

from kaphila_flow import _events as ev
from kaphila_flow.simulator import Simulator, create_app, load_simulator, serve_simulator

TRIGGERS = ("call.answered", "gather.complete")


def observe(simulator: Simulator) -> list[float]:
    """Record step latencies on ``simulator``; the list fills as calls run."""
    sent: dict[str, float] = {}
    steps: list[float] = []
    deliver, record_request = simulator.deliver, simulator.record_request

    async def timed_deliver(url: str, event: ev.Event, message_id: str = "", **how: Any) -> bool:
        if event.name in TRIGGERS:
            sent[event.call_id] = time.perf_counter()
        return await deliver(url, event, message_id, **how)

    def timed_record_request(path: str, body: dict[str, Any]) -> None:
        if path == "/voice":
            at = sent.pop(str(body.get("callId")), None)
            if at is not None:
                steps.append((time.perf_counter() - at) * 1e3)
        record_request(path, body)

    simulator.deliver = timed_deliver  # type: ignore[method-assign]
    simulator.record_request = timed_record_request  # type: ignore[method-assign]
    return steps


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def serve(config: str) -> None:
    simulator = load_simulator(config)
    simulator.requests = _Forgetful()  # a long run keeps no request log
    steps = observe(simulator)
    app = create_app(simulator)

    @app.get("/_bench")
    async def stats() -> Response:
        taken = steps[:]
        del steps[:]
        body = {"cpu": cpu_seconds(), "steps": taken, "undelivered": len(simulator.undelivered)}
        return Response(json.dumps(body), mimetype="application/json")

    stop = anyio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with anyio.create_task_group() as tg:
        # What ``kaphila-flow simulator`` serves, with the /_bench route added.
        url = await tg.start(partial(serve_simulator, simulator, "127.0.0.1:0", app=app))
        print(json.dumps({"url": url}), flush=True)
        await stop.wait()
        tg.cancel_scope.cancel()


class _Forgetful(list[tuple[str, dict[str, Any]]]):
    def append(self, item: tuple[str, dict[str, Any]]) -> None:
        pass


def _run(main: Coroutine[Any, Any, None]) -> None:
    """On uvloop where installed (the ``bench`` extra): the simulator's own event loop
    costs less, and the sides it drives run on plain asyncio either way."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def main() -> None:
    config = sys.argv[1]
    if "--profile" in sys.argv:
        import cProfile

        out = sys.argv[sys.argv.index("--profile") + 1]
        profiler = cProfile.Profile()
        profiler.runcall(_run, serve(config))
        profiler.dump_stats(out)
    else:
        _run(serve(config))


if __name__ == "__main__":
    main()
