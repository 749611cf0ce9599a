"""``kaphila-flow campaign``: a flow over a contact list, with a live progress display."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import anyio

from ._campaign import Campaign
from ._cli_run import _flow_and_options, _runtime_from_args
from ._hours import CallingHours
from ._terminal import ProgressDisplay, make_console

__all__ = ["ProgressDisplay", "campaign"]


async def campaign(args: argparse.Namespace) -> int:
    flow, options = _flow_and_options(args.target)
    display = ProgressDisplay(make_console(), every=args.progress_every)
    hours = CallingHours.always() if args.any_time else CallingHours()
    if args.simulate:
        from ._cli_simulate import simulated_runtime

        async with simulated_runtime(args) as runtime:
            return await _run(args, runtime, flow, options, display, hours)
    runtime = _runtime_from_args(args)
    async with runtime, anyio.create_task_group() as tg:
        await tg.start(runtime.serve, args.bind)
        status = await _run(args, runtime, flow, options, display, hours)
        tg.cancel_scope.cancel()
    return status


async def _run(
    args: argparse.Namespace,
    runtime: Any,
    flow: Any,
    options: dict[str, Any],
    display: ProgressDisplay,
    hours: CallingHours,
) -> int:
    runtime.on_transcript = None  # the progress display replaces the per-call transcript
    job = Campaign(
        runtime,
        flow,
        args.contacts,
        concurrency=args.concurrency,
        calls_per_hour=args.calls_per_hour,
        calling_hours=hours,
        journal=args.journal,
        do_not_call=args.do_not_call,
        dial_options=options,
        sensitive_fields=args.sensitive or (),
        on_progress=display,
        strict_numbers=args.strict_numbers,
    )
    for problem in job.problems:
        print(f"{args.contacts}: {problem}", file=sys.stderr)
    try:
        summary = await job.run()
    finally:
        display.close()
    print(summary)
    if args.results:
        job.write_results(args.results, summary)
        print(f"results written to {args.results}")
    return 0
