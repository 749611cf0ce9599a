"""How cost grows with calls: N calls parked in a gather, in one process, fake transport."""

from __future__ import annotations

import gc
import time
import tracemalloc
from typing import Any

import anyio

from kaphila_flow import Call, Runtime, events
from kaphila_flow._commands import Command, GatherReply, HangupReply, MakeCall, MakeCallReply

from ._report import Row, percentile
from ._settle import wait_all_tasks_blocked


class Answering:
    """Answers every command at once; events come from the benchmark."""

    def __init__(self) -> None:
        self.placed = 0

    async def send(self, command: Command[Any]) -> Any:
        if isinstance(command, MakeCall):
            self.placed += 1
            return MakeCallReply(
                f"{self.placed}.1", "ringing", False, None, None, 30, None, None, None, None
            )
        if command.path == "/gather":
            return GatherReply("ok", 1, 10000)
        return HangupReply("ok")

    async def aclose(self) -> None:
        return None


async def _measure(count: int) -> dict[str, float]:
    resumed: list[float] = [0.0] * (count + 1)

    async def parked(call: Call) -> str:
        digits = await call.gather(num_digits=1, timeout=600)
        resumed[int(call.id.split(".")[0])] = time.perf_counter()
        return digits

    runtime = Runtime(Answering())
    async with runtime:
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        handles = [await runtime.start("16089270862", parked) for _ in range(count)]
        await wait_all_tasks_blocked()
        for n in range(1, count + 1):
            runtime.dispatch(events.CallAnswered(call_id=f"{n}.1"))
        await wait_all_tasks_blocked()
        gc.collect()
        per_call = (tracemalloc.get_traced_memory()[0] - before) / count
        tracemalloc.stop()
        # Resume in waves of WAVE calls, as webhooks arrive in bursts: the latency of a
        # call is from its webhook's dispatch to its flow running again.
        sent: list[float] = [0.0] * (count + 1)
        by_id = {handle.call_id: handle for handle in handles}  # placement order varies
        started = time.perf_counter()
        for first in range(1, count + 1, WAVE):
            wave = range(first, min(count, first + WAVE - 1) + 1)
            for n in wave:
                sent[n] = time.perf_counter()
                runtime.dispatch(events.GatherComplete(call_id=f"{n}.1", digits="1"))
            for n in wave:
                await by_id[f"{n}.1"].result()
        total = time.perf_counter() - started
    latencies = [resumed[n] - sent[n] for n in range(1, count + 1)]
    return {
        "bytes": per_call,
        "resume_us": total / count * 1e6,
        "p99_ms": percentile(latencies, 99) * 1e3,
    }


SIZES = (1_000, 10_000, 100_000)
WAVE = 100


def run(quick: bool = False) -> tuple[list[Row], dict[str, dict[int, dict[str, float]]]]:
    sizes = SIZES[:2] if quick else SIZES
    curves: dict[str, dict[int, dict[str, float]]] = {}
    rows: list[Row] = []
    for backend in ("asyncio", "trio"):
        anyio.run(_measure, 200, backend=backend)  # warm-up
        curve = {size: anyio.run(_measure, size, backend=backend) for size in sizes}
        curves[backend] = curve
        small, large = curve[sizes[0]], curve[sizes[-1]]
        for size in sizes:
            rows.append(
                Row(
                    f"scale ({backend})",
                    f"memory per parked call, {size:,} calls",
                    curve[size]["bytes"] / 1024,
                    None,
                    "KB",
                    "<= 4 KB",
                )
            )
        rows.append(
            Row(
                f"scale ({backend})",
                f"resume cost per call, {sizes[-1]:,} vs {sizes[0]:,}",
                large["resume_us"],
                small["resume_us"],
                "us",
                "ratio <= 1.5",
            )
        )
        for size in sizes:
            rows.append(
                Row(
                    f"scale ({backend})",
                    f"resume latency p99, {size:,} calls",
                    curve[size]["p99_ms"],
                    None,
                    "ms",
                    "flat",
                )
            )
    return rows, curves
