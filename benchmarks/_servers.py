"""The two webhook receivers under load, each run as its own process.

    python -m benchmarks._servers runtime PORT CALLS   # kaphila_flow's receiver, CALLS parked
    python -m benchmarks._servers bare PORT CALLS      # a bare Quart handler: parse and store

Each prints one JSON line, {"paths": [[path, call_id], ...]}, once it serves.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import anyio

from kaphila_flow import Call, Runtime, events
from kaphila_flow._serve import bind_socket, serve_app

from ._settle import wait_all_tasks_blocked
from .scale import Answering


async def runtime_side(port: int, calls: int) -> None:
    async def parked(call: Call) -> str:
        return await call.gather(num_digits=4, timeout=3600)

    runtime = Runtime(Answering(), webhook_url=f"http://127.0.0.1:{port}/webhooks")
    async with runtime, anyio.create_task_group() as tg:
        handles = [await runtime.start("16089270862", parked) for _ in range(calls)]
        await wait_all_tasks_blocked()
        for handle in handles:
            runtime.dispatch(events.CallAnswered(call_id=handle.call_id or ""))
        await wait_all_tasks_blocked()
        url = await tg.start(runtime.serve, f"127.0.0.1:{port}")
        paths = [[urlsplit(h.webhook_url or "").path, h.call_id] for h in handles]
        print(json.dumps({"paths": paths, "url": url}), flush=True)
        await anyio.sleep_forever()


async def bare_side(port: int, calls: int) -> None:
    from quart import Quart, Response, request

    app = Quart("bare")
    store: deque[Any] = deque(maxlen=10_000)

    @app.post("/webhooks/<token>")
    async def webhook(token: str) -> Response:
        store.append(json.loads(await request.get_data()))
        return Response('{"success": true}', mimetype="application/json")

    sock = bind_socket(f"127.0.0.1:{port}")
    paths = [[f"/webhooks/token{n}", f"{n}.1"] for n in range(1, calls + 1)]
    async with anyio.create_task_group() as tg:
        await tg.start(serve_app, app, sock)
        print(json.dumps({"paths": paths}), flush=True)
        await anyio.sleep_forever()


def main() -> None:
    kind, port, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    side = runtime_side if kind == "runtime" else bare_side
    asyncio.run(side(port, calls))


if __name__ == "__main__":
    main()
