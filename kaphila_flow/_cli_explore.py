"""``kaphila-flow explore FILE:FLOW``: every path of a flow, its problems, and pictures."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._exceptions import ConfigurationError
from ._model import KEYS

if TYPE_CHECKING:
    from .testing import Exploration

__all__ = ["add_parser", "explore_flow"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, not {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, not {text}")
    return value


def _entry(text: str) -> tuple[str, list[str]]:
    part, sep, keys = text.rpartition("=")
    values = [k.strip() for k in keys.split(",") if k.strip()]
    if not sep or not part or not values or any(c not in KEYS for v in values for c in v):
        raise argparse.ArgumentTypeError(
            f"expected PART_OF_PROMPT=KEYS[,KEYS...] such as 'PIN=123456,000000', not {text!r}"
        )
    return part, values


def add_parser(commands: Any) -> None:
    """The ``explore`` subcommand's flags."""
    from .testing._fake import ANSWERS

    parser = commands.add_parser(
        "explore",
        help="follow every path of a flow on the fake: problems, a tree, Mermaid and HTML",
    )
    parser.add_argument("target", help="MODULE_OR_FILE:FLOW, e.g. examples/ivr_menu.py:flow")
    parser.add_argument(
        "--max-depth", type=_positive_int, default=40, help="choices on one path (default 40)"
    )
    parser.add_argument(
        "--max-paths", type=_positive_int, default=5000, help="calls to place (default 5000)"
    )
    parser.add_argument(
        "--prompt-limit",
        type=_positive_float,
        default=20.0,
        help="seconds of speech above which a prompt is a problem (default 20)",
    )
    parser.add_argument(
        "--entry",
        type=_entry,
        action="append",
        default=[],
        metavar="PROMPT=KEYS",
        help="keys to try where a prompt contains PROMPT, e.g. 'PIN=123456' (repeatable)",
    )
    parser.add_argument(
        "--answer",
        choices=ANSWERS,
        action="append",
        default=None,
        help="how the callee may answer (repeatable; default: every way that matters)",
    )
    parser.add_argument(
        "--use-amd", action="store_true", help="ask for answering machine detection"
    )
    parser.add_argument(
        "--hang-ups", action="store_true", help="draw the caller's uneventful hang-ups too"
    )
    parser.add_argument(
        "--print",
        dest="show",
        choices=("tree", "mermaid", "nothing"),
        default="tree",
        help="what goes to standard output (default: the tree)",
    )
    parser.add_argument(
        "--out",
        default=".",
        help="folder for FILE.FLOW.mmd and FILE.FLOW.html (default: the current one)",
    )
    parser.add_argument("--no-files", action="store_true", help="write no .mmd or .html file")


async def explore_flow(args: argparse.Namespace) -> int:
    """Exit status 1 when a problem was found, 0 otherwise."""
    from ._cli_run import _flow_and_options
    from .testing import explore_async

    flow, options = _flow_and_options(args.target)
    if not args.no_files:
        _files(args)  # a wrong --out fails before the exploring, not after
    if args.use_amd:
        options["use_amd"] = True
    if args.answer:
        options["answers"] = args.answer
    if args.entry:
        entries: dict[str, list[str]] = {}
        for part, values in args.entry:
            entries.setdefault(part, []).extend(values)
        options["entries"] = entries
    try:
        exploration = await explore_async(
            flow,
            max_depth=args.max_depth,
            max_paths=args.max_paths,
            prompt_limit=args.prompt_limit,
            name=args.target,
            **options,
        )
    except (TypeError, ValueError) as exc:  # DIAL_OPTIONS the explorer cannot take
        raise ConfigurationError(f"{args.target}: {exc}") from None
    if args.show == "tree":
        print(exploration.to_text(hang_ups=args.hang_ups))
    elif args.show == "mermaid":
        print(exploration.to_mermaid(hang_ups=args.hang_ups), end="")
    if not args.no_files:
        _write(exploration, args)
    return 1 if exploration.problems else 0


def _files(args: argparse.Namespace) -> tuple[Path, Path]:
    folder = Path(args.out)
    if not folder.is_dir():
        raise ConfigurationError(f"--out: no such folder: {folder}")
    module_part, _, name = args.target.rpartition(":")
    stem = Path(module_part).stem if module_part.endswith(".py") else module_part
    return folder / f"{stem}.{name}.mmd", folder / f"{stem}.{name}.html"


def _write(exploration: Exploration, args: argparse.Namespace) -> None:
    mermaid, page = _files(args)
    mermaid.write_text(exploration.to_mermaid(hang_ups=args.hang_ups), encoding="utf-8")
    page.write_text(exploration.to_html(hang_ups=args.hang_ups), encoding="utf-8")
    print(f"wrote {mermaid} and {page}", file=sys.stderr)
