"""The dev phone in a real browser: the CLI in a process of its own, headless Chromium.

Shared by the browser tests and by the screenshot in the docs:

    python -m tests.devphone_browser docs/devphone.png

Chromium is the distribution's (``make browser`` installs it), never Playwright's
download; the flags keep it off the network, which this machine closes.
"""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parent.parent
#: Generous: a loaded machine may be slow to start a process or a browser.
START_TIMEOUT = 90.0


@contextmanager
def phone_cli(*args: str) -> Iterator[str]:
    """Run ``kaphila-flow phone ARGS --no-browser``; yields the page's URL."""
    with kaphila_flow_cli("phone", *args, "--no-browser") as run:
        yield run.url


class CliRun:
    """``kaphila-flow`` in a process of its own, read line by line."""

    def __init__(self, args: tuple[str, ...]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kaphila_flow", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
        self.output: list[str] = []
        self._drained = False
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        found = re.search(r"Dev phone: (\S+)", self.wait_for("Dev phone: "))
        assert found is not None
        self.url = found.group(1)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, text: str) -> str:
        """The first line (from now) containing ``text``."""
        while True:
            try:
                line = self._lines.get(timeout=START_TIMEOUT)
            except queue.Empty:
                raise RuntimeError(f"no {text!r} after {START_TIMEOUT} s: {self.output}") from None
            if line is None:
                raise RuntimeError(f"kaphila-flow stopped: {''.join(self.output)}")
            self.output.append(line)
            if text in line:
                return line

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send ``signum``; the exit status (killed if it does not stop)."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            status = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            status = self.process.wait()
        while not self._drained and (line := self._lines.get(timeout=START_TIMEOUT)) is not None:
            self.output.append(line)
        self._drained = True
        return status


@contextmanager
def kaphila_flow_cli(*args: str) -> Iterator[CliRun]:
    """Run ``kaphila-flow ARGS`` until the context ends (SIGTERM then)."""
    run = CliRun(args)
    try:
        yield run
    finally:
        run.stop()


@contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[Page]:
    """A fresh headless Chromium (new user-data-dir); yields a Playwright page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": width, "height": height},
        )
        try:
            yield context.new_page()
        finally:
            context.close()


def screenshot(target: Path) -> None:
    """Two calls of the quick-start's menu: one forwarded and over, one in its menu."""
    from playwright.sync_api import expect

    with (
        phone_cli("examples/ivr_menu.py:flow", "16089270862", "16085550123") as url,
        chromium(1280, 900) as page,
    ):
        page.goto(url)
        first = page.locator('.call:has-text("+16089270862")')
        second = page.locator('.call:has-text("+16085550123")')
        first.get_by_role("button", name="Answer").click()
        expect(first.locator(".gather")).to_be_visible(timeout=30_000)
        first.locator('[data-key="1"]').click()
        expect(first.locator(".result-line")).to_contain_text("sales", timeout=30_000)
        first.get_by_role("button", name="Hang up").click()
        expect(first).to_have_attribute("data-state", "ended", timeout=30_000)
        second.get_by_role("button", name="Answer").click()
        expect(second.locator(".gather")).to_be_visible(timeout=30_000)
        second.locator(".gather-left").click()  # selects the call; focus off the keypad
        page.mouse.move(0, 0)
        page.screenshot(path=str(target), full_page=True)


if __name__ == "__main__":
    screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/devphone.png"))
