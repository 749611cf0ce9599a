"""Helpers for tests over real sockets: the simulator in its thread, the runtime here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio

from kaphila_flow import Runtime
from kaphila_flow._client import KaphilaClient
from kaphila_flow._retry import RetryPolicy
from kaphila_flow.simulator import INSTANT, Callee, Simulator, SimulatorThread

FAST = 200.0  # fast, yet slow enough that playback and gathers take a moment


@contextmanager
def simulator(speed: float = FAST, **options: Any) -> Iterator[SimulatorThread]:
    with SimulatorThread(Simulator(speed=speed, **options)) as running:
        yield running


@asynccontextmanager
async def runtime_for(sim: SimulatorThread, **options: Any) -> AsyncIterator[Runtime]:
    """A runtime whose receiver listens on loopback, pointed at the simulator."""
    key = next(iter(sim.simulator.accounts))
    client = KaphilaClient(
        key, base_url=sim.base_url, retry=RetryPolicy(backoff=0.01), rate_limit=None
    )
    runtime = Runtime(client, owns_transport=True, **options)
    async with runtime, anyio.create_task_group() as tg:
        await tg.start(runtime.serve, "127.0.0.1:0")
        yield runtime
        tg.cancel_scope.cancel()


def set_callee(sim: SimulatorThread, number: str, callee: Callee) -> None:
    sim.simulator.callee(number, callee)


__all__ = ["FAST", "INSTANT", "runtime_for", "set_callee", "simulator"]
