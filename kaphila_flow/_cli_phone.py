"""``kaphila-flow phone`` and ``simulator --phone``: the dev phone in the browser."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import webbrowser
from functools import partial
from typing import Any

import anyio

from ._campaign import Campaign, RetryRules
from ._cli_run import _dial_options, _flow_and_options
from ._client import KaphilaClient
from ._hours import CallingHours
from ._numbers import normalize_number
from ._retry import RetryPolicy
from ._runtime import Runtime
from .devphone import DevPhone, serve_phone
from .simulator import DEFAULT_KEY, Account, Callee, Simulator, load_simulator

__all__ = ["phone", "simulator_with_phone"]

DEFAULT_NUMBER = "16089270862"
#: The page's account when no --config is given: room for a long session.
ROOMY = Account(credits=10_000, rate_limit=100_000)


def _held_simulator(args: argparse.Namespace, caller_id: str | None = None) -> Simulator:
    """Numbers the config does not script ring on the page."""
    held = Callee(answer="held")
    if args.config:
        return load_simulator(args.config, speed=args.speed, default_callee=held)
    account = Account(
        credits=ROOMY.credits,
        rate_limit=ROOMY.rate_limit,
        caller_ids=(caller_id,) if caller_id else (),
    )
    return Simulator(accounts={DEFAULT_KEY: account}, default_callee=held, speed=args.speed or 1.0)


def _open_browser(url: str) -> bool:
    """Open ``url`` where a graphical browser can be (never a text browser in this
    terminal)."""
    graphical = sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    if not graphical:
        return False
    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False


async def _until_stopped() -> None:
    """Until Ctrl-C or SIGTERM: the servers then stop cleanly (open pages included)."""
    if sys.platform == "win32":  # no signal receivers: Ctrl-C arrives as KeyboardInterrupt
        await anyio.sleep_forever()
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _signum in signals:
            print("Stopping the dev phone.", flush=True)
            return


async def _announce(phone: DevPhone, *, browser: bool) -> None:
    print(f"Dev phone: {phone.page_url}", flush=True)
    if phone.token:
        print("  (bound beyond loopback: the page needs the token in that URL)", flush=True)
    if browser:
        await anyio.to_thread.run_sync(_open_browser, phone.page_url)


async def phone(args: argparse.Namespace) -> int:
    """Run the flow on calls whose callee is the person at the page."""
    flow, options = _flow_and_options(args.target)
    options = _dial_options(args, options)
    numbers = [normalize_number(number) for number in args.numbers] or [DEFAULT_NUMBER]
    caller_id = options.get("caller_id")
    simulator = _held_simulator(args, normalize_number(caller_id) if caller_id else None)
    key = next(iter(simulator.accounts), DEFAULT_KEY)
    async with anyio.create_task_group() as tg:
        dev: DevPhone = await tg.start(
            partial(serve_phone, simulator, f"{args.host}:{args.port}", numbers=numbers)
        )
        client = KaphilaClient(
            key, base_url=dev.api_url, retry=RetryPolicy(backoff=0.1), rate_limit=None
        )
        runtime = Runtime(
            client,
            owns_transport=True,
            on_transcript=dev.observe,
        )
        async with runtime:
            await tg.start(runtime.serve, "127.0.0.1:0")

            async def dial(number: str) -> None:
                dev.follow(await runtime.start(number, flow, **options))

            async def session() -> None:
                await dev.wait_for_page()
                if args.contacts:
                    await _campaign(args, runtime, flow, options)
                else:
                    for number in numbers:
                        await dial(number)

            dev.dial = dial
            print(
                f"Kaphila simulator at {dev.api_url} (speed {simulator.speed:g}); stop with Ctrl-C",
                flush=True,
            )
            await _announce(dev, browser=not args.no_browser)
            print("Waiting for the page to open ...", flush=True)
            async with anyio.create_task_group() as work:
                work.start_soon(session)
                await _until_stopped()
                work.cancel_scope.cancel()
            # Calls still live are hung up while the simulator is still there to hear it.
            dev.dial = None
            await runtime.shutdown(grace=0)
        tg.cancel_scope.cancel()
    return 0


async def _campaign(
    args: argparse.Namespace, runtime: Runtime, flow: Any, options: dict[str, Any]
) -> None:
    """Every contact once (no retries: a person answers), at any hour."""
    job = Campaign(
        runtime,
        flow,
        args.contacts,
        concurrency=args.concurrency,
        retries=RetryRules(no_answer=0, provider_error=0),
        calling_hours=CallingHours.always(),
        dial_options=options,
    )
    for problem in job.problems:
        print(f"{args.contacts}: {problem}", file=sys.stderr)
    print(f"Campaign over {len(job.contacts)} contacts, {args.concurrency} at a time", flush=True)
    summary = await job.run()
    print(summary, flush=True)


async def simulator_with_phone(args: argparse.Namespace) -> int:
    """``simulator --phone``: the simulated API for any client, its calls on the page."""
    simulator = _held_simulator(args)
    async with anyio.create_task_group() as tg:
        dev: DevPhone = await tg.start(serve_phone, simulator, f"{args.host}:{args.port}")
        keys = ", ".join(simulator.accounts)
        print(
            f"Kaphila simulator on {dev.base_url} (API keys: {keys}; speed {simulator.speed:g})",
            flush=True,
        )
        await _announce(dev, browser=False)
        await _until_stopped()
        tg.cancel_scope.cancel()
    return 0
