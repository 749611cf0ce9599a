"""``kaphila-flow campaign``: a flow over a contact list, with a live progress display."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

import anyio

from ._campaign import Campaign, Progress
from ._cli_run import _flow_and_options, _runtime_from_args
from ._hours import CallingHours

__all__ = ["campaign"]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class ProgressDisplay:
    """A bar redrawn in place on a terminal; a plain line every ``every`` s otherwise."""

    def __init__(self, out: TextIO, *, every: float = 10.0) -> None:
        self.out = out
        self.tty = out.isatty()
        self.every = every
        self._last: float | None = None  # the first line is printed at once

    def line(self, p: Progress) -> str:
        amd = " ".join(f"{k}:{v}" for k, v in sorted(p.amd.items())) or "-"
        return (
            f"placed {p.placed} answered {p.answered} ({amd}) completed {p.completed} "
            f"failed {p.failed} live {p.live} remaining {p.remaining} "
            f"rate {p.rate_per_hour:.0f}/h eta {_duration(p.eta_seconds)}"
        )

    def __call__(self, p: Progress) -> None:
        if self.tty:
            width = 24
            filled = int(width * p.done / p.total) if p.total else width
            bar = "#" * filled + "." * (width - filled)
            self.out.write(f"\r[{bar}] {p.done}/{p.total} {self.line(p)}\033[K")
            self.out.flush()
            return
        now = time.monotonic()
        if self._last is None or now - self._last >= self.every or p.remaining == 0:
            self._last = now
            print(f"{p.done}/{p.total} {self.line(p)}", file=self.out, flush=True)


async def campaign(args: argparse.Namespace) -> int:
    flow, options = _flow_and_options(args.target)
    display = ProgressDisplay(sys.stdout, every=args.progress_every)
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
    summary = await job.run()
    if display.tty:
        print()
    print(summary)
    if args.results:
        job.write_results(args.results, summary)
        print(f"results written to {args.results}")
    return 0
