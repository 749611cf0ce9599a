"""One side of the end-to-end benchmark, as its own process (its CPU is its own).

    python -m benchmarks._sides runtime|handwritten|bare SIMULATOR_URL CALLS DIGITS PACE

- ``runtime``: the menu as a kaphila_flow flow, the runtime's receiver on hypercorn.
- ``handwritten``: the menu as the provider's docs suggest, a Quart webhook handler that
  switches on ``event`` and posts the next command with httpx, on the same hypercorn,
  with the runtime's limits (20 dials, 100 requests in flight; httpx's default pool).
- ``bare``: the same state machine on raw asyncio HTTP (``_rawhttp``): a near-free
  client, to measure the simulator alone.

Each places every call at once (bounded by the same in-flight limits; or one every
PACE seconds), prints
``{"ready": RECEIVER_URL, "probe": PATH}`` once its receiver serves, waits for a line
on stdin, runs, and prints one JSON line: completed calls, failures (a wrong or missing
key, a call that did not finish), seconds and its own CPU seconds for the run.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from ._menu import (
    DIALS_IN_FLIGHT,
    GATHER_TIMEOUT_MS,
    KEY,
    MENU,
    REQUESTS_IN_FLIGHT,
    THANKS,
    WELCOME,
    Plan,
    Tally,
    number,
)

#: Events that end a call's menu early, unless its keys are already in.
ENDINGS = ("gather.timeout", "gather.failed", "call.ended", "call.timeout")
Ready = Callable[[str, str], Awaitable[None]]
Post = Callable[[str, dict[str, Any]], Awaitable[Any]]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def deadline_for(plan: Plan) -> float:
    """How long a run may take before the calls still open count as failed."""
    return 60.0 + plan.calls * 0.05


async def runtime_side(simulator: str, plan: Plan, ready: Ready) -> dict[str, Any]:
    from kaphila_flow import Call, Runtime
    from kaphila_flow._client import KaphilaClient

    client = KaphilaClient(KEY, base_url=simulator, rate_limit=None)
    runtime = Runtime(
        client,
        owns_transport=True,
        max_dials_in_flight=DIALS_IN_FLIGHT,
        max_requests_in_flight=REQUESTS_IN_FLIGHT,
    )
    tally = Tally(plan)

    async def menu(call: Call) -> str:
        await call.say(WELCOME)
        digits = await call.gather(MENU, num_digits=plan.digits, timeout=GATHER_TIMEOUT_MS / 1000)
        await call.say(THANKS)
        await call.hangup()
        return digits

    async with runtime, anyio.create_task_group() as tg:
        url = await tg.start(runtime.serve, "127.0.0.1:0")
        base = url.rsplit("/", 1)[0]
        await ready(base, "/healthz")
        started, cpu = time.perf_counter(), cpu_seconds()
        handles = []
        for n in range(plan.calls):
            handles.append(await runtime.start(number(n), menu))
            if plan.pace:
                await anyio.sleep(plan.pace)
        seen: set[int] = set()
        with anyio.move_on_after(deadline_for(plan)):
            for n, handle in enumerate(handles):
                result = await handle.result()
                seen.add(n)
                if result.status == "completed":
                    tally.check(n, result.value)
                else:
                    tally.failed(n, f"{result.status} ({result.error!r})")
        elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
        for n in range(plan.calls):
            if n not in seen:
                tally.failed(n, "not finished")
        tg.cancel_scope.cancel()
    return _report(tally, elapsed, cpu)


class MenuMachine:
    """The menu as one webhook handler: the state per call, the next command per event.

    What the provider docs lead to: ``call.answered`` -> say the welcome, then gather;
    ``gather.complete`` -> say thanks, hang up; anything ending the call first is a
    failure. ``post`` is the HTTP client's JSON POST (answers the parsed reply).
    """

    def __init__(self, plan: Plan, post: Post) -> None:
        self.plan = plan
        self.tally = Tally(plan)
        self.post = post
        self.finished: set[int] = set()
        self.closing: set[int] = set()  # keys in: what ends the call now is the flow's hangup
        self.all_done = asyncio.Event()
        self.dials = asyncio.Semaphore(DIALS_IN_FLIGHT)
        self.requests = asyncio.Semaphore(REQUESTS_IN_FLIGHT)
        self.tasks: set[asyncio.Task[None]] = set()

    async def api(self, path: str, body: dict[str, Any]) -> Any:
        async with self.requests:
            return await self.post(path, body)

    async def place(self, n: int, webhook_base: str) -> None:
        try:
            async with self.dials:
                await self.api(
                    "/makecall", {"number": number(n), "webhookUrl": f"{webhook_base}/{n}"}
                )
        except Exception as exc:
            self.finish(n, None, f"/makecall failed: {exc!r}")

    def on_webhook(self, n: int, data: dict[str, Any]) -> None:
        """Acknowledge first, work after: the steps run as their own task."""
        task = asyncio.ensure_future(self.step(n, data))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def step(self, n: int, data: dict[str, Any]) -> None:
        call_id, event = data.get("callId"), data.get("event")
        try:
            if event == "call.answered":
                await self.api("/voice", {"callId": call_id, "text": WELCOME, "playTo": "bridge"})
                await self.api(
                    "/gather",
                    {
                        "callId": call_id,
                        "text": MENU,
                        "numDigits": self.plan.digits,
                        "timeout": GATHER_TIMEOUT_MS,
                    },
                )
            elif event == "gather.complete":
                self.closing.add(n)
                await self.api("/voice", {"callId": call_id, "text": THANKS, "playTo": "bridge"})
                await self.api("/hangup", {"callId": call_id})
                self.finish(n, str(data.get("digits")))
            elif event in ENDINGS and n not in self.closing:
                self.finish(n, None, f"{event} before the menu finished")
        except Exception as exc:
            self.finish(n, None, f"{event}: {exc!r}")

    def finish(self, n: int, digits: str | None, why: str = "") -> None:
        if n in self.finished:
            return
        self.finished.add(n)
        if why:
            self.tally.failed(n, why)
        else:
            self.tally.check(n, digits)
        if len(self.finished) == self.plan.calls:
            self.all_done.set()

    async def run(self, webhook_base: str) -> tuple[float, float]:
        started, cpu = time.perf_counter(), cpu_seconds()
        placing = []
        for n in range(self.plan.calls):
            placing.append(asyncio.ensure_future(self.place(n, webhook_base)))
            if self.plan.pace:
                await asyncio.sleep(self.plan.pace)
        try:
            await asyncio.wait_for(self.all_done.wait(), deadline_for(self.plan))
        except TimeoutError:
            for n in range(self.plan.calls):
                if n not in self.finished:
                    self.finish(n, None, "not finished")
        elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
        for task in [*placing, *self.tasks]:
            task.cancel()
        return elapsed, cpu


async def handwritten_side(simulator: str, plan: Plan, ready: Ready) -> dict[str, Any]:
    import httpx
    from quart import Quart, request

    from kaphila_flow._serve import base_url, bind_socket, serve_app

    # The runtime's client settings: httpx's default pool, the same timeouts.
    http = httpx.AsyncClient(
        base_url=simulator,
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        timeout=httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=10.0),
    )

    async def post(path: str, body: dict[str, Any]) -> Any:
        response = await http.post(path, json=body)
        response.raise_for_status()
        return response.json()

    machine = MenuMachine(plan, post)
    app = Quart("handwritten")

    @app.post("/calls/<int:n>")
    async def webhook(n: int) -> dict[str, bool]:
        machine.on_webhook(n, await request.get_json())
        return {"success": True}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    sock = bind_socket("127.0.0.1:0")
    base = base_url(sock)
    async with anyio.create_task_group() as tg:
        await tg.start(serve_app, app, sock)
        await ready(base, "/healthz")
        elapsed, cpu = await machine.run(f"{base}/calls")
        tg.cancel_scope.cancel()
    await http.aclose()
    return _report(machine.tally, elapsed, cpu)


async def bare_side(simulator: str, plan: Plan, ready: Ready) -> dict[str, Any]:
    from ._rawhttp import RawClient, RawServer

    client = RawClient(simulator, {"Authorization": f"Bearer {KEY}"}, REQUESTS_IN_FLIGHT)
    machine = MenuMachine(plan, client.post)

    def on_post(path: str, body: bytes) -> None:
        machine.on_webhook(int(path.rsplit("/", 1)[1]), json.loads(body))

    server = RawServer(on_post)
    base = await server.start()
    await ready(base, "/")
    elapsed, cpu = await machine.run(f"{base}/calls")
    client.close()
    server.close()
    return _report(machine.tally, elapsed, cpu)


def _report(tally: Tally, elapsed: float, cpu: float) -> dict[str, Any]:
    failures = tally.failures or []
    return {
        "calls": tally.plan.calls,
        "completed": tally.completed,
        "failed": len(failures),
        "failures": failures[:20],
        "seconds": elapsed,
        "cpu": cpu,
    }


SIDES = {"runtime": runtime_side, "handwritten": handwritten_side, "bare": bare_side}


async def _main(kind: str, simulator: str, plan: Plan) -> dict[str, Any]:
    async def ready(base: str, probe: str) -> None:
        print(json.dumps({"ready": base, "probe": probe}), flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)

    return await SIDES[kind](simulator, plan, ready)


def main() -> None:
    kind, simulator = sys.argv[1], sys.argv[2]
    plan = Plan(int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
    profile = os.environ.get("KAPHILA_BENCH_PROFILE")
    if profile:  # where this side's time goes: python -m benchmarks._profile OUT
        import cProfile

        profiler = cProfile.Profile()
        result = profiler.runcall(asyncio.run, _main(kind, simulator, plan))
        profiler.dump_stats(profile)
    else:
        result = asyncio.run(_main(kind, simulator, plan))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
