"""What each ``kaphila-flow`` command does (the parser lives in ``cli.py``)."""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Mapping
from functools import partial
from typing import Any, TextIO

import anyio

from ._config import default_region_from_env
from ._exceptions import ConfigurationError
from ._loading import load_target
from ._numbers import normalize_number
from ._result import CallResult
from ._runtime import CallHandle, Runtime
from ._terminal import CallerScreen, print_entry, print_result

__all__ = [
    "campaign",
    "demo",
    "dial",
    "explore",
    "phone",
    "print_entry",
    "print_result",
    "serve",
    "simulator",
]


def _out() -> TextIO:
    return sys.stdout


def _flow_and_options(target: str) -> tuple[Any, dict[str, Any]]:
    module, flow = load_target(target)
    if not inspect.iscoroutinefunction(flow):
        raise ConfigurationError(f"{target} is not an `async def` flow taking a Call")
    options = getattr(module, "DIAL_OPTIONS", {})
    if not isinstance(options, Mapping):
        raise ConfigurationError(f"{target}: DIAL_OPTIONS must be a dict of Runtime.dial options")
    return flow, dict(options)


def _dial_options(args: argparse.Namespace, options: dict[str, Any]) -> dict[str, Any]:
    if args.use_amd:
        options["use_amd"] = True
    if args.ring_timeout is not None:
        options["ring_timeout"] = args.ring_timeout
    if args.caller_id:
        options["caller_id"] = args.caller_id
    return options


def _exit_status(result: CallResult) -> int:
    return 1 if result.status in ("failed", "no-webhooks") else 0


# -- dial --------------------------------------------------------------------------------


def region_from_args(args: argparse.Namespace) -> str | None:
    """``--default-region``, else ``KAPHILA_DEFAULT_REGION``, checked."""
    return default_region_from_env(override=args.default_region)


async def dial(args: argparse.Namespace) -> int:
    flow, options = _flow_and_options(args.target)
    options = _dial_options(args, options)
    region = region_from_args(args)
    number = normalize_number(args.number, default_region=region)  # read once, here
    if args.interactive:
        return await _dial_interactive(flow, number, region, options, args.answer or "human")
    if args.simulate:
        from ._cli_simulate import dial_simulated

        return await dial_simulated(args, number, region, flow, options)
    runtime = _runtime_from_args(args)
    async with runtime, anyio.create_task_group() as tg:
        await tg.start(runtime.serve, args.bind)
        result = await runtime.dial(number, flow, **options)
        tg.cancel_scope.cancel()
    print_result(result)
    return _exit_status(result)


def _runtime_from_args(args: argparse.Namespace, **options: Any) -> Runtime:
    from ._client import KaphilaClient
    from ._config import Settings

    settings = Settings.from_env(
        api_key=args.api_key,
        base_url=args.base_url,
        webhook_url=args.webhook_url,
        caller_id=args.caller_id,
        default_region=args.default_region,
    )
    if settings.webhook_url is None:
        raise ConfigurationError(
            "KAPHILA_WEBHOOK_URL is not set: give the public URL that reaches this receiver "
            "(or use --simulate)"
        )
    client = KaphilaClient(settings.api_key, base_url=settings.base_url)
    return Runtime(
        client,
        webhook_url=settings.webhook_url,
        caller_id=settings.caller_id,
        voice_name=settings.voice_name,
        gather_grace=settings.gather_grace,
        default_region=settings.default_region,
        owns_transport=True,
        on_transcript=print_entry,
        **options,
    )


async def _dial_interactive(
    flow: Any, number: str, region: str | None, options: dict[str, Any], answer: str
) -> int:
    """The person at the terminal is the callee of an in-memory call, in real time.

    ``answer`` is how the phone picks up (``--answer``: a machine, AMD unsure, busy ...).
    """
    from .testing import FakeKaphila

    screen = CallerScreen()
    screen.greet()
    fake = FakeKaphila(
        patience=3600, on_transcript=print_entry, default_region=region, virtual_time=False
    )
    async with fake as kaphila:
        phone = await kaphila.call(flow, number=number, answer=answer, **options)
        while not phone.done:
            try:
                await phone.hears()
                continue
            except AssertionError:
                if phone.done:
                    break
            line = await anyio.to_thread.run_sync(screen.read_keys)
            if line is None or line.strip().lower() == "h":
                await phone.hang_up()
            elif not line.strip():
                try:
                    await phone.stay_silent()
                except AssertionError:  # not in a gather: just let some time pass
                    await phone.waits(5)
            else:
                await phone.press(line.strip())
        result = await phone.result()
    print_result(result)
    return _exit_status(result)


# -- serve -------------------------------------------------------------------------------


async def serve(args: argparse.Namespace) -> int:
    _module, target = load_target(args.target)
    if isinstance(target, Runtime):
        runtime = target
        flow = None
        if args.store:
            raise ConfigurationError(
                "--store goes with a flow target; give a Runtime its store= itself"
            )
    elif inspect.iscoroutinefunction(target):
        runtime = _runtime_from_args(args, store=args.store, apology=args.apology)
        flow = target
    else:
        raise ConfigurationError(f"{args.target} is neither a Runtime nor an `async def` flow")
    if args.dial and flow is None:
        raise ConfigurationError("--dial needs a flow target, not a Runtime")
    async with runtime:
        for result in runtime.recovered:
            print_result(result)
        async with anyio.create_task_group() as tg:
            url = await tg.start(
                partial(runtime.serve, args.bind, handle_signals=True, shutdown_grace=args.grace)
            )
            print(f"receiving webhooks on {url}", file=_out(), flush=True)
            for number in args.dial:
                handle = await runtime.start(number, flow, **_dial_options(args, {}))  # type: ignore[arg-type]
                tg.start_soon(_report, handle)
    return 0


async def _report(handle: CallHandle) -> None:
    print_result(await handle.result())


# -- simulator and demo ------------------------------------------------------------------


async def simulator(args: argparse.Namespace) -> int:
    if args.phone:
        from ._cli_phone import simulator_with_phone

        return await simulator_with_phone(args)
    from ._cli_simulate import run_simulator

    return await run_simulator(args)


async def campaign(args: argparse.Namespace) -> int:
    from ._cli_campaign import campaign as run_campaign

    return await run_campaign(args)


async def phone(args: argparse.Namespace) -> int:
    from ._cli_phone import phone as run_phone

    return await run_phone(args)


async def explore(args: argparse.Namespace) -> int:
    from ._cli_explore import explore_flow

    return await explore_flow(args)


async def demo(args: argparse.Namespace) -> int:
    from ._cli_simulate import run_demo

    return await run_demo()
