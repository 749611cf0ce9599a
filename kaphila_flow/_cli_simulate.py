"""The CLI's simulated runs: ``simulator``, ``dial --simulate`` and ``demo``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

from ._cli_run import print_entry, print_result, region_from_args
from ._client import KaphilaClient
from ._exceptions import ConfigurationError
from ._loading import load_target
from ._retry import RetryPolicy
from ._runtime import Runtime
from .simulator import DEFAULT_KEY, Callee, KeyStep, Simulator, load_simulator, serve_simulator

__all__ = ["dial_simulated", "run_demo", "run_simulator"]

DEMO_FILE = Path(__file__).resolve().parent.parent / "examples" / "ivr_menu.py"
DEMO_NUMBER = "16089270862"
DEMO_SPEED = 1.0  # human pace: the demo is to be watched


async def run_simulator(args: argparse.Namespace) -> int:
    simulator = (
        load_simulator(args.config, speed=args.speed)
        if args.config
        else Simulator(speed=args.speed or 1.0)
    )
    bind = f"{args.host}:{args.port}"
    async with anyio.create_task_group() as tg:
        url = await tg.start(serve_simulator, simulator, bind)
        keys = ", ".join(simulator.accounts)
        print(
            f"Kaphila simulator on {url} (API keys: {keys}; speed {simulator.speed:g})", flush=True
        )
        await anyio.sleep_forever()
    return 0


def _simulator_for(args: argparse.Namespace, number: str) -> Simulator:
    speed = args.speed
    if args.config:
        simulator = load_simulator(args.config, speed=speed)
    else:
        simulator = Simulator(speed=speed or DEMO_SPEED)
    if args.answer or args.keys:
        steps = tuple(KeyStep(keys, after=1.0) for keys in (args.keys or []))
        try:
            callee = Callee(answer=args.answer or "human", keys=steps)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        simulator.callee(number, callee)
    return simulator


async def dial_simulated(
    args: argparse.Namespace,
    number: str,
    region: str | None,
    flow: Any,
    options: dict[str, Any],
) -> int:
    simulator = _simulator_for(args, number)
    return await _run_against(simulator, number, flow, options, region)


@asynccontextmanager
async def _simulated(simulator: Simulator, region: str | None = None) -> AsyncIterator[Runtime]:
    """The simulator and a runtime's receiver on loopback ports, the runtime pointed at it."""
    key = next(iter(simulator.accounts), DEFAULT_KEY)
    async with anyio.create_task_group() as tg:
        api = await tg.start(serve_simulator, simulator, "127.0.0.1:0")
        client = KaphilaClient(key, base_url=api, retry=RetryPolicy(backoff=0.1), rate_limit=None)
        runtime = Runtime(
            client,
            owns_transport=True,
            on_transcript=print_entry,
            default_region=region,
        )
        async with runtime:
            await tg.start(runtime.serve, "127.0.0.1:0")
            print(f"Kaphila simulator at {api} (speed {simulator.speed:g})", flush=True)
            yield runtime
        tg.cancel_scope.cancel()


@asynccontextmanager
async def simulated_runtime(args: argparse.Namespace) -> AsyncIterator[Runtime]:
    """For ``campaign --simulate``: callees from ``--config``, else everyone answers."""
    if args.config:
        simulator = load_simulator(args.config, speed=args.speed)
    else:
        simulator = Simulator(speed=args.speed or 10.0)
    async with _simulated(simulator, region_from_args(args)) as runtime:
        yield runtime


async def _run_against(
    simulator: Simulator,
    number: str,
    flow: Any,
    options: dict[str, Any],
    region: str | None = None,
) -> int:
    async with _simulated(simulator, region) as runtime:
        print(f"Calling {number} ...", flush=True)
        result = await runtime.dial(number, flow, **options)
    print_result(result)
    return 1 if result.status == "failed" else 0


async def run_demo() -> int:
    """``make demo``: the quick-start's menu, a callee who presses 1, over real HTTP."""
    if not DEMO_FILE.is_file():
        raise ConfigurationError(f"the demo needs {DEMO_FILE} (run it from a clone of the project)")
    _module, flow = load_target(f"{DEMO_FILE}:flow")
    simulator = Simulator(speed=DEMO_SPEED)
    simulator.callee(
        DEMO_NUMBER, Callee(answer="human", answer_after=2.0, keys=(KeyStep("1", 1.5),))
    )
    print("kaphila_flow demo: examples/ivr_menu.py against the Kaphila simulator on loopback.")
    print("The callee answers after 2 s and presses 1 during the menu.\n", flush=True)
    status = await _run_against(simulator, DEMO_NUMBER, flow, {})
    sys.stdout.flush()
    return status
