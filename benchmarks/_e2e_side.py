"""One side of the end-to-end benchmark, as its own process.

    python -m benchmarks._e2e_side runtime|handwritten SIMULATOR_URL CALLS

Runs CALLS concurrent calls of the quick-start's menu (answer, say, gather 1 digit,
forward) against the simulator; prints JSON: calls per second and step latencies
(webhook received to next command sent, in ms).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import anyio
import httpx

KEY = "ak_bench"
SALES = "16085550101"
WELCOME = "Welcome to our company."
MENU = "Press 1 for sales, 2 for support."


async def runtime_side(simulator: str, calls: int) -> dict[str, Any]:
    from kaphila_flow import Call, Runtime
    from kaphila_flow._client import KaphilaClient

    last_event: dict[str, float] = {}
    steps: list[float] = []
    client = KaphilaClient(KEY, base_url=simulator, rate_limit=None)
    runtime = Runtime(client, owns_transport=True)
    dispatch, send = runtime.dispatch, runtime.send

    def timed_dispatch(event: Any, **kwargs: Any) -> Any:
        # The same steps as the hand-written side: answered -> say, complete -> forward.
        if event.name in ("call.answered", "gather.complete"):
            last_event[event.call_id] = time.perf_counter()
        return dispatch(event, **kwargs)

    async def timed_send(command: Any) -> Any:
        call_id = getattr(command, "call_id", None)
        if call_id in last_event:
            steps.append((time.perf_counter() - last_event.pop(call_id)) * 1e3)
        return await send(command)

    runtime.dispatch = timed_dispatch  # type: ignore[method-assign]
    runtime.send = timed_send  # type: ignore[method-assign]

    async def menu(call: Call) -> str:
        await call.say(WELCOME)
        digits = await call.gather(MENU, num_digits=1)
        if digits == "1":
            await call.forward(SALES)
        return digits

    async with runtime, anyio.create_task_group() as tg:
        await tg.start(runtime.serve, "127.0.0.1:0")
        started = time.perf_counter()
        handles = [await runtime.start(f"1608555{n:04d}", menu) for n in range(calls)]
        results = [await handle.result() for handle in handles]
        elapsed = time.perf_counter() - started
        tg.cancel_scope.cancel()
    ok = sum(1 for r in results if r.value == "1")
    return {"rate": ok / elapsed, "ok": ok, "steps": steps}


async def handwritten_side(simulator: str, calls: int) -> dict[str, Any]:
    """The provider's docs' way: a webhook handler that switches on `event`."""
    from quart import Quart, request

    from kaphila_flow._serve import base_url, bind_socket, serve_app

    app = Quart("handwritten")
    states: dict[str, str] = {}
    done = anyio.Event()
    finished: list[str] = []
    steps: list[float] = []
    http = httpx.AsyncClient(
        base_url=simulator, headers={"Authorization": f"Bearer {KEY}"}, timeout=60
    )
    background: set[asyncio.Task[None]] = set()

    async def post(path: str, body: dict[str, Any], received: float) -> None:
        steps.append((time.perf_counter() - received) * 1e3)
        await http.post(path, json=body)

    async def on_event(data: dict[str, Any], received: float) -> None:
        call_id, event = data["callId"], data["event"]
        if event == "call.answered":
            states[call_id] = "welcome"
            await post("/voice", {"callId": call_id, "text": WELCOME, "playTo": "bridge"}, received)
            states[call_id] = "menu"
            await http.post(
                "/gather", json={"callId": call_id, "text": MENU, "numDigits": 1, "timeout": 10000}
            )
        elif event == "gather.complete" and states.get(call_id) == "menu":
            states[call_id] = "forwarding"
            if data.get("digits") == "1":
                await post("/forwardcall", {"callId": call_id, "forwardNumber": SALES}, received)
            finished.append(call_id)
            if len(finished) == calls:
                done.set()

    @app.post("/webhook")
    async def webhook() -> dict[str, bool]:
        received = time.perf_counter()
        data = await request.get_json()
        task = asyncio.create_task(on_event(data, received))  # answer first, work after
        background.add(task)
        task.add_done_callback(background.discard)
        return {"success": True}

    sock = bind_socket("127.0.0.1:0")
    url = base_url(sock) + "/webhook"
    async with anyio.create_task_group() as tg:
        await tg.start(serve_app, app, sock)
        started = time.perf_counter()
        for n in range(calls):
            await http.post("/makecall", json={"number": f"1608555{n:04d}", "webhookUrl": url})
        await done.wait()
        elapsed = time.perf_counter() - started
        tg.cancel_scope.cancel()
    await http.aclose()
    return {"rate": len(finished) / elapsed, "ok": len(finished), "steps": steps}


def main() -> None:
    kind, simulator, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
    side = runtime_side if kind == "runtime" else handwritten_side
    print(json.dumps(asyncio.run(side(simulator, calls))))


if __name__ == "__main__":
    main()
