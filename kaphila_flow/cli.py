"""``kaphila-flow``: run the simulator, serve flows, dial a flow, explore it, the demo.

Settings come from ``KAPHILA_*`` environment variables; flags override them. A missing
or malformed setting is one clear line on stderr and exit status 2, not a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import anyio

from ._cli_explore import add_parser as add_explore_parser
from ._exceptions import KaphilaError

__all__ = ["main"]

DEMO_TARGET = "examples/ivr_menu.py:flow"
DEMO_NUMBER = "16089270862"


def _common_dial_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--caller-id", help="whitelisted caller id (KAPHILA_CALLER_ID)")
    parser.add_argument(
        "--use-amd", action="store_true", help="ask Kaphila for answering machine detection"
    )
    parser.add_argument(
        "--ring-timeout", type=int, default=None, help="seconds to ring (default 30)"
    )
    parser.add_argument("--api-key", help="Kaphila API key (KAPHILA_API_KEY)")
    parser.add_argument("--base-url", help="Kaphila base URL (KAPHILA_BASE_URL)")
    parser.add_argument("--webhook-url", help="public URL of this receiver (KAPHILA_WEBHOOK_URL)")
    parser.add_argument(
        "--bind", default="127.0.0.1:8080", help="where the receiver listens (HOST:PORT)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kaphila-flow", description="Script phone calls on the Kaphila voice API."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sim = commands.add_parser("simulator", help="serve a simulated Kaphila API on loopback")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8000)
    sim.add_argument("--config", help="TOML file: accounts, callees, speed")
    sim.add_argument(
        "--speed", type=float, default=None, help="scale every delay (2 = twice as fast)"
    )

    serve = commands.add_parser("serve", help="serve the webhook receiver for a runtime or a flow")
    serve.add_argument("target", help="MODULE_OR_FILE:RUNTIME_OR_FLOW")
    serve.add_argument(
        "--dial", action="append", default=[], metavar="NUMBER", help="numbers to call"
    )
    serve.add_argument("--store", help="SQLite file of live calls, to hang them up after a crash")
    serve.add_argument("--apology", help="spoken to calls found live after a restart")
    serve.add_argument(
        "--grace",
        type=float,
        default=30.0,
        help="seconds live flows get to finish on SIGTERM/SIGINT (default 30)",
    )
    _common_dial_flags(serve)

    dial = commands.add_parser("dial", help="call a number and run a flow on the call")
    dial.add_argument("target", help="MODULE_OR_FILE:FLOW, e.g. examples/ivr_menu.py:flow")
    dial.add_argument("number", help="the number to call, e.g. 16089270862 or '+1 608 927 0862'")
    how = dial.add_mutually_exclusive_group()
    how.add_argument("--simulate", action="store_true", help="against a simulator on loopback")
    how.add_argument(
        "--interactive", action="store_true", help="you are the callee, at the terminal"
    )
    dial.add_argument(
        "--answer",
        choices=["human", "machine", "never"],
        default=None,
        help="with --simulate: how the simulated callee answers",
    )
    dial.add_argument(
        "--keys",
        action="append",
        default=None,
        metavar="KEYS",
        help="with --simulate: keys the callee presses, one flag per gather",
    )
    dial.add_argument("--speed", type=float, default=None, help="with --simulate: delay scale")
    dial.add_argument("--config", help="with --simulate: simulator TOML file")
    _common_dial_flags(dial)

    run = commands.add_parser("campaign", help="run one flow over a list of numbers")
    run.add_argument(
        "target", help="MODULE_OR_FILE:FLOW, e.g. examples/appointment_reminder.py:flow"
    )
    run.add_argument(
        "contacts", help="CSV file with a 'number' column (other columns reach call.data)"
    )
    run.add_argument("--concurrency", type=int, default=5, help="calls live at once (default 5)")
    run.add_argument("--calls-per-hour", type=int, default=None, help="placements per hour")
    run.add_argument("--results", help="write one row per contact: .csv or .jsonl")
    run.add_argument(
        "--journal",
        default="campaign.sqlite3",
        help="SQLite journal, to resume without calling anyone twice",
    )
    run.add_argument("--do-not-call", help="file of numbers never to call")
    run.add_argument("--sensitive", action="append", help="result field to mask (repeatable)")
    run.add_argument(
        "--any-time", action="store_true", help="ignore calling hours (08:00-21:00 local)"
    )
    run.add_argument(
        "--progress-every",
        type=float,
        default=10.0,
        help="seconds between progress lines when not on a terminal",
    )
    run.add_argument("--simulate", action="store_true", help="against a simulator on loopback")
    run.add_argument("--speed", type=float, default=None, help="with --simulate: delay scale")
    run.add_argument("--config", help="with --simulate: simulator TOML file")
    _common_dial_flags(run)

    add_explore_parser(commands)
    commands.add_parser("demo", help="run examples/ivr_menu.py against the simulator")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from . import _cli_run as run

    handlers: dict[str, Any] = {
        "simulator": run.simulator,
        "serve": run.serve,
        "dial": run.dial,
        "demo": run.demo,
        "campaign": run.campaign,
        "explore": run.explore,
    }
    try:
        return int(anyio.run(handlers[args.command], args) or 0)
    except KeyboardInterrupt:
        return 130
    except (KaphilaError, BaseExceptionGroup) as exc:
        problem = _first_kaphila_error(exc)
        if problem is None:
            raise
        print(f"kaphila-flow: {problem}", file=sys.stderr)
        return 2


def _first_kaphila_error(exc: BaseException) -> KaphilaError | None:
    """Task groups wrap errors in groups; the user needs the one line inside."""
    if isinstance(exc, KaphilaError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _first_kaphila_error(inner)
            if found is not None:
                return found
    return None


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
