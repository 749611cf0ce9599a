"""The problems ``explore`` looks for on each path, and the keys a prompt offers."""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .._commands import Command, ForwardCall, Gather, Hangup, Play, Voice
from .._exceptions import CallEnded
from .._model import SpeechTiming
from ._paths import CallPath, Ending, Point, PointKind, ProblemKind, shorten

__all__ = ["Finding", "announced_keys", "check_path", "question"]

_SPEECH = SpeechTiming()
#: Frames in here are the library's, not the flow's.
_PACKAGE = Path(__file__).resolve().parent.parent
_KEY_WORDS = {"star": "*", "pound": "#", "hash": "#"}
_KEY = r"(\d{1,3}|star|pound|hash)\b"
#: "press 1", "press the star key", "1 for sales", ", 2 to cancel", "or 0 for an operator".
_OFFERS = (
    re.compile(r"\bpress(?:ing)?\s+(?:the\s+)?" + _KEY, re.IGNORECASE),
    re.compile(r"(?:^|[,;:.]|\bor|\band)\s*" + _KEY + r"\s+(?:for|to)\b(?!\s+\d)", re.IGNORECASE),
    re.compile(r"\b" + _KEY + r"\s+for\b", re.IGNORECASE),
)


@dataclass(frozen=True, slots=True)
class Finding:
    """A problem seen on one path; ``key`` tells one problem from another."""

    kind: ProblemKind
    key: str
    message: str
    point: Point | None = None


def announced_keys(prompt: str) -> tuple[str, ...]:
    """The keys a prompt offers the caller ("Press 1 for sales, 2 for support" -> 1, 2)."""
    found: list[str] = []
    for pattern in _OFFERS:
        for match in pattern.finditer(prompt):
            word = match.group(1).lower()
            key = _KEY_WORDS.get(word, word)
            if key not in found:
                found.append(key)
    return tuple(found)


def question(prompt: str) -> str:
    """The last sentence of a prompt: what a menu asks, whatever "Sorry, ..." came first."""
    sentences = [s.strip() for s in re.split(r"(?<=[.?!])\s+", prompt.strip()) if s.strip()]
    return sentences[-1] if sentences else ""


def _describe(command: Command[Any]) -> str:
    if isinstance(command, Voice):
        return f"/voice {shorten(command.text, 40)!r}"
    if isinstance(command, Gather):
        return f"/gather {shorten(command.text or '', 40)!r}"
    if isinstance(command, ForwardCall):
        return f"/forwardcall to {command.forward_number}"
    return command.path


def _after_end(path: CallPath, hung_up_after: int | None) -> list[Finding]:
    ends: list[tuple[int, str]] = []
    for index, command in enumerate(path.commands):
        if isinstance(command, ForwardCall):
            ends.append((index + 1, "was forwarded"))
            break
        if isinstance(command, Hangup):
            ends.append((index + 1, "was hung up"))
            break
    if hung_up_after is not None:
        ends.append((hung_up_after, "ended (the caller hung up)"))
    if not ends:
        return []
    end, how = min(ends)
    return [
        Finding(
            ProblemKind.COMMAND_AFTER_END,
            f"{type(late).__name__} {how}",
            f"{_describe(late)} sent after the call {how}",
        )
        for late in path.commands[end:][:1]
    ]


def _no_goodbye(path: CallPath) -> list[Finding]:
    if path.ending is not Ending.COMPLETED:
        return []
    commands = [c for c in path.commands if not isinstance(c, Hangup)]
    gathers = [i for i, c in enumerate(commands) if isinstance(c, Gather)]
    after = commands[gathers[-1] + 1 :] if gathers else commands
    if any(isinstance(c, (Voice, Play)) for c in after):
        return []
    if gathers:
        last = commands[gathers[-1]]
        assert isinstance(last, Gather)
        prompt = question(last.text or "")
        message = (
            f"the call ends right after the answer to {shorten(prompt, 40)!r}, with nothing said"
        )
    else:
        prompt = ""
        message = "the call ends without a word to the caller"
    return [Finding(ProblemKind.NO_GOODBYE, f"{prompt}\0{path.result.value!r}", message)]


def _long_prompts(path: CallPath, limit: float) -> list[Finding]:
    found = []
    for command in path.commands:
        if isinstance(command, Voice):
            text, point = command.text, Point(PointKind.SAY, text=command.text)
        elif isinstance(command, Gather) and command.text:
            gather = replace(command, call_id="")
            text, point = command.text, Point(PointKind.GATHER, text=command.text, gather=gather)
        else:
            continue
        seconds = _SPEECH.duration(text)
        if seconds > limit:
            message = f"{shorten(text)!r} takes {seconds:.0f} s to speak (limit {limit:g} s)"
            found.append(Finding(ProblemKind.LONG_PROMPT, text, message, point))
    return found


def _where(error: BaseException) -> str:
    """The innermost line of the flow's own code that the exception passed through."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not _ours(f.filename)]
    if not frames:
        return ""
    frame = frames[-1]
    return f" (at {Path(frame.filename).name}:{frame.lineno} in {frame.name})"


def _ours(filename: str) -> bool:
    return Path(filename).resolve().is_relative_to(_PACKAGE)


def _exception(path: CallPath) -> list[Finding]:
    error = path.result.error
    if path.ending is not Ending.FAILED or error is None or isinstance(error, CallEnded):
        return []
    text = str(error).replace(path.result.call_id or "\0", "<call>")
    what = f"{type(error).__name__}: {text}" if text else type(error).__name__
    message = f"the flow raised {what}{_where(error)}"
    return [Finding(ProblemKind.UNHANDLED_EXCEPTION, what, message)]


def check_path(path: CallPath, *, hung_up_after: int | None, prompt_limit: float) -> list[Finding]:
    """Every problem one complete path shows by itself."""
    return [
        *_exception(path),
        *_after_end(path, hung_up_after),
        *_no_goodbye(path),
        *_long_prompts(path, prompt_limit),
    ]
