"""How cost grows with calls: N calls parked in a gather, in one process, instant transport.

Memory per parked call is measured against a floor measured the same way on the same
backend: N bare anyio tasks, each blocked on its own ``anyio.Event``. Each figure comes
from a fresh process (so one run's freed heap does not hide the next run's growth),
once with tracemalloc (bytes Python allocated) and once without it (resident set size,
which tracemalloc's own bookkeeping would inflate). The resume cost is the time from
dispatching a gather's outcome to the flow's result, in waves as webhooks arrive.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import anyio

from kaphila_flow import Call, Runtime, events
from kaphila_flow._commands import Command, GatherReply, HangupReply, MakeCall, MakeCallReply
from kaphila_flow.testing import virtual_time_backend

from ._report import Row, percentile
from ._settle import wait_all_tasks_blocked

SIZES = (1_000, 10_000, 100_000)
WAVE = 100


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


def _rss() -> int:
    """Resident set size of this process, in bytes (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


class _Memory:
    """Bytes allocated (tracemalloc) or resident (RSS) since ``start``."""

    def __init__(self, traced: bool) -> None:
        self.traced = traced
        self.before = 0

    def start(self) -> None:
        gc.collect()
        if self.traced:
            tracemalloc.start()
            self.before = tracemalloc.get_traced_memory()[0]
        else:
            self.before = _rss()

    def grown(self) -> int:
        gc.collect()
        if self.traced:
            grown = tracemalloc.get_traced_memory()[0] - self.before
            tracemalloc.stop()
            return grown
        return _rss() - self.before


async def _floor(count: int, traced: bool) -> dict[str, float]:
    """N bare tasks, each blocked on its own ``anyio.Event``."""

    async def blocked(event: anyio.Event) -> None:
        await event.wait()

    memory = _Memory(traced)
    async with anyio.create_task_group() as tg:
        memory.start()
        wakes = [anyio.Event() for _ in range(count)]
        for wake in wakes:
            tg.start_soon(blocked, wake)
        await wait_all_tasks_blocked()
        per_call = memory.grown() / count
        for wake in wakes:
            wake.set()
    return {"bytes": per_call}


async def _runtime(count: int, traced: bool) -> dict[str, float]:
    """N flows parked in a gather, then resumed in waves."""
    resumed: list[float] = [0.0] * (count + 1)

    async def parked(call: Call) -> str:
        digits = await call.gather(num_digits=1, timeout=600)
        resumed[int(call.id.split(".")[0])] = time.perf_counter()
        return digits

    memory = _Memory(traced)
    runtime = Runtime(Answering())
    async with runtime:
        memory.start()
        # Placing 100k calls takes longer than a ring timeout: no call may time out.
        handles = [
            await runtime.start("16089270862", parked, ring_timeout=86_400) for _ in range(count)
        ]
        await wait_all_tasks_blocked()
        for n in range(1, count + 1):
            runtime.dispatch(events.CallAnswered(call_id=f"{n}.1"))
        await wait_all_tasks_blocked()
        per_call = memory.grown() / count
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
                result = await by_id[f"{n}.1"].result()
                if result.value != "1":  # a benchmark error, never a silent omission
                    raise RuntimeError(f"call {n}.1 did not resume from its gather: {result}")
        total = time.perf_counter() - started
    latencies = [resumed[n] - sent[n] for n in range(1, count + 1)]
    return {
        "bytes": per_call,
        "resume_us": total / count * 1e6,
        "p99_ms": percentile(latencies, 99) * 1e3,
    }


def _one(backend: str, side: str, count: int, traced: bool) -> dict[str, float]:
    """One measure in a fresh process."""
    command = [sys.executable, "-m", "benchmarks.scale", backend, side, str(count)]
    if traced:
        command.append("traced")
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=root)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def measure(sizes: tuple[int, ...]) -> dict[str, dict[int, dict[str, float]]]:
    """Per backend and size: runtime and floor bytes/call (RSS, tracemalloc), resume."""
    curves: dict[str, dict[int, dict[str, float]]] = {}
    for backend in ("asyncio", "trio"):
        curve: dict[int, dict[str, float]] = {}
        for size in sizes:
            runtime = _one(backend, "runtime", size, traced=False)
            traced = _one(backend, "runtime", size, traced=True)
            floor = _one(backend, "floor", size, traced=False)
            floor_traced = _one(backend, "floor", size, traced=True)
            curve[size] = {
                "bytes": traced["bytes"],
                "floor_bytes": floor_traced["bytes"],
                "rss": runtime["bytes"],
                "floor_rss": floor["bytes"],
                "resume_us": runtime["resume_us"],
                "p99_ms": runtime["p99_ms"],
            }
            print(f"  {backend} {size:,}: {curve[size]}", flush=True)
        curves[backend] = curve
    return curves


def run(quick: bool = False) -> tuple[list[Row], dict[str, dict[int, dict[str, float]]]]:
    sizes = SIZES[:2] if quick else SIZES
    curves = measure(sizes)
    rows: list[Row] = []
    for backend, curve in curves.items():
        small, large = curve[sizes[0]], curve[sizes[-1]]
        for size in sizes:
            point = curve[size]
            for what, ours, floor in (
                ("tracemalloc", point["bytes"], point["floor_bytes"]),
                ("RSS", point["rss"], point["floor_rss"]),
            ):
                rows.append(
                    Row(
                        f"scale ({backend})",
                        f"memory per parked call vs task + Event, {size:,} calls ({what})",
                        ours / 1024,
                        floor / 1024,
                        "KB",
                        "ratio <= 1.15",
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
            p99 = curve[size]["p99_ms"]
            rows.append(
                Row(
                    f"scale ({backend})",
                    f"resume cost per call, {size:,} calls (p99 latency {p99:.1f} ms)",
                    curve[size]["resume_us"],
                    None,
                    "us",
                    "flat",
                )
            )
    return rows, curves


def _main(argv: list[str]) -> None:
    backend, side, count = argv[0], argv[1], int(argv[2])
    traced = "traced" in argv[3:]
    name, options = virtual_time_backend(backend)
    measure_one = _runtime if side == "runtime" else _floor
    anyio.run(measure_one, 200, traced, backend=name, backend_options=options)  # warm-up
    figures = anyio.run(measure_one, count, traced, backend=name, backend_options=options)
    print(json.dumps(figures))


if __name__ == "__main__":
    if sys.argv[1:]:
        _main(sys.argv[1:])
    else:
        from ._report import table

        print(table(run(quick="--quick" in sys.argv)[0]))
