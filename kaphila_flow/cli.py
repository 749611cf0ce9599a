"""``kaphila-flow``: run the simulator, serve flows, dial a flow, explore it, the dev phone,
the demo.

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
        "--default-region",
        metavar="REGION",
        help="where numbers without a country code are, e.g. US (KAPHILA_DEFAULT_REGION)",
    )
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


def _log_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=None,
        help="log records on stderr as text or JSON lines, with call_id and flow fields",
    )
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default=None,
        help="the least severe records logged (default info with --log-format)",
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
    _log_flags(sim)
    sim.add_argument(
        "--phone",
        action="store_true",
        help="serve the dev phone page at /phone/ (unscripted numbers ring on it)",
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
    _log_flags(serve)

    dial = commands.add_parser("dial", help="call a number and run a flow on the call")
    dial.add_argument("target", help="MODULE_OR_FILE:FLOW, e.g. examples/ivr_menu.py:flow")
    dial.add_argument(
        "number",
        help="the number to call, e.g. 16089270862 or '+1 608 927 0862' "
        "('(608) 927-0862' with --default-region US)",
    )
    how = dial.add_mutually_exclusive_group()
    how.add_argument("--simulate", action="store_true", help="against a simulator on loopback")
    how.add_argument(
        "--interactive", action="store_true", help="you are the callee, at the terminal"
    )
    dial.add_argument(
        "--answer",
        choices=["human", "machine", "unknown", "busy", "no-answer", "never"],
        default=None,
        help="with --simulate or --interactive: how the callee's phone answers "
        "(the same names as the fake's answer= and callees.toml; never is no-answer)",
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
    _log_flags(dial)

    run = commands.add_parser("campaign", help="run one flow over a list of numbers")
    run.add_argument(
        "target", help="MODULE_OR_FILE:FLOW, e.g. examples/appointment_reminder.py:flow"
    )
    run.add_argument(
        "contacts", help="CSV file with a 'number' column (other columns reach call.data)"
    )
    run.add_argument("--concurrency", type=int, default=5, help="calls live at once (default 5)")
    run.add_argument(
        "--calls-per-hour",
        type=int,
        default=None,
        help="placements per hour, spaced evenly (60: one a minute)",
    )
    run.add_argument("--results", help="write one row per contact: .csv or .jsonl")
    run.add_argument(
        "--journal",
        default="campaign.sqlite3",
        help="SQLite journal, to resume without calling anyone twice",
    )
    run.add_argument("--do-not-call", help="file of numbers never to call")
    run.add_argument(
        "--grace",
        type=float,
        default=30.0,
        help="on SIGTERM/SIGINT: seconds live calls get to finish (default 30)",
    )
    run.add_argument(
        "--strict-numbers",
        action="store_true",
        help="also refuse numbers not in use in their country's numbering plan",
    )
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
    _log_flags(run)

    phone = commands.add_parser(
        "phone", help="be the callee of a flow in your browser, against the simulator"
    )
    phone.add_argument("target", help="MODULE_OR_FILE:FLOW, e.g. examples/ivr_menu.py:flow")
    phone.add_argument(
        "numbers", nargs="*", metavar="NUMBER", help=f"called once the page opens ({DEMO_NUMBER})"
    )
    phone.add_argument("--contacts", help="CSV file: call each contact once (a campaign)")
    phone.add_argument("--concurrency", type=int, default=3, help="with --contacts (default 3)")
    phone.add_argument(
        "--host", default="127.0.0.1", help="where the page listens (beyond loopback: a token)"
    )
    phone.add_argument("--port", type=int, default=0, help="the page's port (default: any free)")
    phone.add_argument("--no-browser", action="store_true", help="only print the page's URL")
    phone.add_argument("--speed", type=float, default=None, help="scale every delay")
    phone.add_argument("--config", help="simulator TOML file (unlisted numbers ring the page)")
    phone.add_argument("--caller-id", help="caller id to send (whitelisted for you)")
    phone.add_argument("--use-amd", action="store_true", help="answering machine detection")
    phone.add_argument("--ring-timeout", type=int, default=None, help="seconds to ring (30)")

    add_explore_parser(commands)
    commands.add_parser("demo", help="run examples/ivr_menu.py against the simulator")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # to say how to resume
    if getattr(args, "log_format", None) or getattr(args, "log_level", None):
        from ._logging import configure_logging

        configure_logging(args.log_format or "text", level=args.log_level or "info")
    from . import _cli_run as run

    handlers: dict[str, Any] = {
        "simulator": run.simulator,
        "serve": run.serve,
        "dial": run.dial,
        "demo": run.demo,
        "campaign": run.campaign,
        "phone": run.phone,
        "explore": run.explore,
    }
    try:
        if args.command == "explore":  # every path on the fake, in virtual time
            from .testing._virtual_time import virtual_time_backend

            name, options = virtual_time_backend("asyncio")
            return int(
                anyio.run(handlers[args.command], args, backend=name, backend_options=options) or 0
            )
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
