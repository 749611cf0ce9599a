"""``kaphila-flow campaign``: a flow over a contact list, with a live progress display.

SIGTERM or SIGINT stops it as ``serve`` stops: no new calls, live calls get ``--grace``
seconds to finish and are then hung up (a second signal ends them at once), every
outcome is journaled, the results are written, and the command that resumes the
campaign is printed. The exit status is 128 plus the signal's number (143, 130): the
campaign did not finish.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from functools import partial
from typing import Any

import anyio

from ._campaign import Campaign, CampaignSummary
from ._cli_run import _flow_and_options, _runtime_from_args
from ._hours import CallingHours
from ._serve import shut_down_on_signal
from ._terminal import ProgressDisplay, make_console

__all__ = ["ProgressDisplay", "campaign", "resume_command"]


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
    stopped_by: list[signal.Signals] = []

    def stop(signum: signal.Signals) -> None:
        stopped_by.append(signum)
        job.stop()
        print(
            f"{signum.name}: stopping the campaign: no new calls; live calls get up to "
            f"{args.grace:g} s to finish, then are hung up ({signum.name} again ends them now)",
            file=sys.stderr,
            flush=True,
        )

    def hurry(signum: signal.Signals) -> None:
        print(f"{signum.name} again: ending live calls now", file=sys.stderr, flush=True)

    async with anyio.create_task_group() as tg:
        await tg.start(
            partial(
                shut_down_on_signal, runtime, args.grace, on_signal=stop, on_second_signal=hurry
            )
        )
        try:
            summary = await job.run()
        finally:
            display.close()
        tg.cancel_scope.cancel()  # every call has ended: the signals are ours no more
    print(summary)
    if args.results:
        job.write_results(args.results, summary)
        print(f"results written to {args.results}")
    if not stopped_by:
        return 0
    _say_how_to_resume(args, summary, stopped_by[0])
    return 128 + int(stopped_by[0])


def _say_how_to_resume(
    args: argparse.Namespace, summary: CampaignSummary, signum: signal.Signals
) -> None:
    left = summary.remaining
    what = f"{left} contact{'s' if left != 1 else ''} not done" if left else "every contact done"
    print(
        f"stopped by {signum.name} ({what}); to resume: {resume_command(args)}",
        flush=True,
    )


def resume_command(args: argparse.Namespace) -> str:
    """The command line that runs this campaign again on its journal."""
    argv = list(getattr(args, "argv", None) or sys.argv[1:])
    if not any(arg == "--journal" or arg.startswith("--journal=") for arg in argv):
        argv += ["--journal", args.journal]
    return shlex.join(["kaphila-flow", *argv])
