"""What the CLI shows: a rich bar and screen on a terminal, plain lines in a log."""

from __future__ import annotations

import io

from rich.console import Console

from kaphila_flow import Progress
from kaphila_flow._cli_campaign import ProgressDisplay
from kaphila_flow._terminal import CallerScreen

from .test_cli import run


def terminal() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=200, color_system="standard")


def progress(**counts: int) -> Progress:
    values = {"placed": 4, "answered": 3, "completed": 2, "failed": 1, "live": 2, "remaining": 7}
    values.update(counts)
    p = Progress(total=10, **values)
    p.amd.update({"human": 2, "machine": 1})
    p.started_at, p.now = 0.0, 360.0
    return p


def screen_text(console: Console) -> str:
    out = console.file
    assert isinstance(out, io.StringIO)
    return out.getvalue()


def test_progress_bar_on_a_terminal_is_redrawn_in_place() -> None:
    console = terminal()
    display = ProgressDisplay(console)
    display(progress())
    first = screen_text(console)
    assert "3/10" in first
    assert "placed 4 answered 3 (human:2 machine:1) completed 2 failed 1 live 2" in first
    assert "rate 40/h eta 14:00" in first
    assert "━" in first  # the bar itself
    display(progress(completed=5, remaining=4))
    display.close()
    later = screen_text(console)[len(first) :]
    assert "6/10" in later and "completed 5" in later
    # Redrawn over the first bar (cursor up and erase line), not printed below it.
    assert "\x1b[1A" in later or "\x1b[2K" in later
    assert later.replace("\x1b[?25h", "").endswith("\n")  # closed: the cursor is below it


def test_progress_in_a_log_is_a_plain_line_at_most_every_period_of_campaign_time() -> None:
    log = Console(file=io.StringIO(), force_terminal=False, width=40)
    display = ProgressDisplay(log, every=3600)
    early = progress()
    early.now = 0.0  # the very start of the campaign (and of the clock): still a line
    display(early)
    display(progress())  # 6 minutes later: too soon for another line
    lines = screen_text(log).splitlines()
    assert lines == [
        "3/10 placed 4 answered 3 (human:2 machine:1) completed 2 failed 1 live 2 remaining 7 "
        "rate 0/h eta --:--"
    ]  # one line, never wrapped at the console's width, no escape codes
    hour_later = progress(completed=5, remaining=4)
    hour_later.now = 3600.0
    display(hour_later)
    finished = progress(completed=9, remaining=0)
    finished.now = 3601.0
    display(finished)  # the last report always gets its line
    lines = screen_text(log).splitlines()
    assert len(lines) == 3 and lines[-1].startswith("10/10 ")
    assert "\x1b" not in screen_text(log) and "\r" not in screen_text(log)


def test_the_interactive_callers_screen() -> None:
    console = terminal()
    screen = CallerScreen(console)
    screen.greet()
    shown = screen_text(console)
    assert "You are the callee." in shown and "╭" in shown  # a panel on a terminal
    plain = Console(file=io.StringIO(), force_terminal=False)
    CallerScreen(plain).greet()
    assert screen_text(plain) == (
        "You are the callee. Type keys and Enter; Enter alone is silence; h hangs up.\n"
    )


def test_interactive_dial_through_a_pipe_stays_line_based() -> None:
    done = run("dial", "examples/ivr_menu.py:flow", "16089270862", "--interactive", stdin="1\n")
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout
    lines = done.stdout.splitlines()
    assert lines[0].startswith("You are the callee.")
    assert any(line.endswith("said      Welcome to our company.") for line in lines)
    assert "call " in done.stdout and ": completed" in done.stdout
