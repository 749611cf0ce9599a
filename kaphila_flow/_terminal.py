"""What the command line shows, through rich: styled on a terminal, plain lines otherwise.

Output that is not a terminal (a pipe, a log file, CI) gets the same text without
styles, one line per record, never wrapped and never redrawn, so logs stay greppable.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn
from rich.progress import Progress as ProgressBar
from rich.text import Text

if TYPE_CHECKING:
    from ._campaign import Progress
    from ._result import CallResult, TranscriptEntry
    from ._runtime import CallHandle

__all__ = [
    "CallerScreen",
    "ProgressDisplay",
    "make_console",
    "print_entry",
    "print_result",
]

#: How each kind of transcript entry looks on a terminal.
STYLES = {
    "answered": "green",
    "said": "bold",
    "played": "bold",
    "prompt": "bold cyan",
    "keys": "yellow",
    "forwarded": "blue",
    "hangup": "magenta",
    "ended": "magenta",
}
STATUS_STYLES = {"completed": "green", "failed": "bold red", "unknown": "bold red"}


def make_console(file: TextIO | None = None) -> Console:
    """A console on ``file`` (stdout): no markup in user text, no wrapping, no guessing."""
    return Console(
        file=file if file is not None else sys.stdout,
        soft_wrap=True,
        markup=False,
        highlight=False,
        emoji=False,
    )


def print_entry(handle: CallHandle, entry: TranscriptEntry) -> None:
    """One transcript entry: ``  1.25s  said      Welcome.``"""
    line = Text.assemble(
        (f"  {entry.at:6.2f}s  ", "dim"),
        (f"{entry.kind:<9}", STYLES.get(entry.kind, "")),
        " ",
        entry.text,
    )
    make_console().print(line)


def print_result(result: CallResult) -> None:
    """How a call ended, one fact a line."""
    console = make_console()
    console.print(
        Text.assemble(
            f"call {result.call_id or '(no call id)'} to {result.number}: ",
            (result.status, STATUS_STYLES.get(result.status, "yellow")),
        )
    )
    if result.answered_by == "answered":
        console.print("  answered (no answering-machine detection)")
    elif result.answered_by:
        console.print(f"  answered by: {result.answered_by}")
    if result.forwarded_to:
        console.print(f"  forwarded to: {result.forwarded_to}")
    if result.duration is not None:
        console.print(f"  duration: {result.duration:.1f} s")
    console.print(f"  result: {result.value!r}")
    if result.error is not None:
        console.print(Text(f"  error: {type(result.error).__name__}: {result.error}", style="red"))


class CallerScreen:
    """``dial --interactive``: the person at the terminal is the callee."""

    GREETING = "You are the callee. Type keys and Enter; Enter alone is silence; h hangs up."

    def __init__(self, console: Console | None = None) -> None:
        self.console = console if console is not None else make_console()

    def greet(self) -> None:
        if self.console.is_terminal:
            self.console.print(Panel(self.GREETING, title="kaphila-flow", expand=False))
        else:
            self.console.print(self.GREETING, soft_wrap=True)

    def read_keys(self) -> str | None:
        """A line of keys, or ``None`` at the end of input (which hangs up)."""
        try:
            return self.console.input(Text("keys> ", style="bold yellow"))
        except EOFError:
            return None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class ProgressDisplay:
    """A campaign's progress: a bar redrawn in place on a terminal; otherwise a plain
    line at most every ``every`` seconds of campaign time, and the last one.

    It reads no clock: the time is the campaign's own (``Progress.now``).
    """

    def __init__(self, console: Console | None = None, *, every: float = 10.0) -> None:
        self.console = console if console is not None else make_console()
        self.tty = self.console.is_terminal
        self.every = every
        self._last: float | None = None
        self._bar: ProgressBar | None = None
        self._task: TaskID | None = None

    @staticmethod
    def line(p: Progress) -> str:
        amd = " ".join(f"{k}:{v}" for k, v in sorted(p.amd.items())) or "-"
        return (
            f"placed {p.placed} answered {p.answered} ({amd}) completed {p.completed} "
            f"failed {p.failed} live {p.live} remaining {p.remaining} "
            f"rate {p.rate_per_hour:.0f}/h eta {_duration(p.eta_seconds)}"
        )

    def __call__(self, p: Progress) -> None:
        if self.tty:
            self._draw(p)
            return
        if self._last is None or p.now - self._last >= self.every or p.remaining == 0:
            self._last = p.now
            line = f"{p.done}/{p.total} {self.line(p)}"
            self.console.print(line, soft_wrap=True, markup=False, highlight=False)

    def _draw(self, p: Progress) -> None:
        if self._bar is None:
            # Redrawn on each report, never by a timer thread of its own.
            self._bar = ProgressBar(
                BarColumn(bar_width=24),
                MofNCompleteColumn(),
                TextColumn("{task.fields[counts]}"),
                console=self.console,
                auto_refresh=False,
            )
            self._task = self._bar.add_task("campaign", total=p.total, counts="")
            self._bar.start()
        assert self._task is not None
        self._bar.update(self._task, completed=p.done, total=p.total, counts=self.line(p))
        self._bar.refresh()

    def close(self) -> None:
        """Leave the last bar on screen and move below it."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
