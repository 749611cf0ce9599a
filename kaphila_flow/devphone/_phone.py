"""``DevPhone``: what the page sees and does, apart from HTTP.

It relays the simulator's notices (keeping a history, so a page opened or reloaded
late sees the calls so far), adds how each flow finished (reported by the host that
runs the flows, from ``CallHandle.result()``), and places calls for the page's "Call"
button when the host gives it a way to.
"""

from __future__ import annotations

import traceback
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from types import MappingProxyType
from typing import Any

import anyio
import anyio.abc

from .._result import CallResult, TranscriptEntry
from .._runtime import CallHandle
from ..simulator import Notice, NoticeFeed, NoticeKind, Simulator
from ..simulator._notices import NoticeHub

__all__ = ["Dialer", "DevPhone", "PAGE_PATH"]

#: Where the page lives on the simulator's server.
PAGE_PATH = "/phone"
#: Notices kept for pages that open late (a few hundred calls).
HISTORY = 20_000
#: The longest value or error text sent to the page.
MAX_TEXT = 4_000

#: Places a call to a number and runs the flow on it (the page's "Call" button).
Dialer = Callable[[str], Awaitable[object]]


class DevPhone:
    """The dev phone for one simulator: its notices, the flows' results, its actions.

    ``serve_phone`` makes one and serves it with the simulator: ``base_url`` is that
    server's address for pages, ``api_url`` for API clients on this machine, ``token``
    the secret a server bound beyond loopback asks of every page request.
    """

    def __init__(
        self,
        simulator: Simulator,
        *,
        base_url: str = "",
        api_url: str | None = None,
        token: str | None = None,
        dial: Dialer | None = None,
        numbers: Sequence[str] = (),
        history: int = HISTORY,
    ) -> None:
        self.simulator = simulator
        self.base_url = base_url
        #: Where clients on this machine reach the simulated API.
        self.api_url = api_url or base_url
        self.token = token
        #: Set by a host that runs flows: the page then offers to place calls.
        self.dial = dial
        #: Numbers the page suggests for its "Call" button.
        self.numbers = tuple(numbers)
        self._hub = NoticeHub(history=history)
        self._tg: anyio.abc.TaskGroup | None = None
        self._followed: set[CallHandle] = set()
        self._page_seen: anyio.Event | None = None
        self._pages = 0

    def __repr__(self) -> str:
        return f"<DevPhone {self.page_url} pages={self._pages}>"

    @property
    def page_url(self) -> str:
        """The page's address (with its token when it needs one)."""
        query = f"?token={self.token}" if self.token else ""
        return f"{self.base_url}{PAGE_PATH}/{query}"

    @property
    def pages(self) -> int:
        """Pages connected right now."""
        return self._pages

    # -- running ---------------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Relay the simulator's notices to the pages until cancelled (on its loop)."""
        async with anyio.create_task_group() as tg, self.simulator.watch(limit=HISTORY) as feed:
            self._tg = tg
            task_status.started()
            try:
                async for notice in feed:
                    self._hub.publish((notice,))
            finally:
                self._tg = None
                self._hub.close()  # open pages' streams end, so servers stop cleanly

    def watch(self) -> AbstractAsyncContextManager[NoticeFeed]:
        """The notices so far (as many as the history keeps), then each as it comes."""
        return self._hub.watch()

    def page_opened(self) -> None:
        self._pages += 1
        if self._page_seen is not None:
            self._page_seen.set()

    def page_closed(self) -> None:
        self._pages -= 1

    async def wait_for_page(self) -> None:
        """Return once a page is connected (a host waits before it places calls)."""
        if self._pages:
            return
        if self._page_seen is None:
            self._page_seen = anyio.Event()
        await self._page_seen.wait()

    # -- results ---------------------------------------------------------------------

    def follow(self, handle: CallHandle) -> None:
        """Show how ``handle``'s flow finishes when it does (needs ``run()``)."""
        if self._tg is None:
            raise RuntimeError("follow() needs a running dev phone: start DevPhone.run first")
        if handle in self._followed:
            return
        self._followed.add(handle)
        self._tg.start_soon(self._report_when_done, handle)

    def observe(self, handle: CallHandle, entry: TranscriptEntry) -> None:
        """A ``Runtime(on_transcript=...)`` observer: follows every call the runtime runs
        (campaigns included), from the call's first transcript line."""
        if not handle.done and self._tg is not None:
            self.follow(handle)

    async def _report_when_done(self, handle: CallHandle) -> None:
        try:
            self.report(await handle.result())
        finally:
            self._followed.discard(handle)

    def report(self, result: CallResult) -> None:
        """Show how a flow finished: its value, or its exception and traceback."""
        error = result.error
        detail: dict[str, Any] = {
            "number": result.number,
            "status": result.status,
            "value": _clip(repr(result.value)),
            "answeredBy": result.answered_by,
            "forwardedTo": result.forwarded_to,
            "duration": result.duration,
            "endReason": result.end_reason,
            "error": _clip(f"{type(error).__name__}: {error}") if error is not None else None,
            "traceback": _clip("".join(traceback.format_exception(error)))
            if error is not None and error.__traceback__ is not None
            else None,
        }
        notice = Notice(
            self.simulator.now(),
            result.call_id or "",
            NoticeKind.RESULT,
            "result",
            MappingProxyType(detail),
        )
        self._hub.publish((notice,))

    # -- the page --------------------------------------------------------------------

    def hello(self) -> dict[str, Any]:
        """What a page learns first: the speed, the simulated time, what it may do."""
        return {
            "speed": self.simulator.speed,
            "now": self.simulator.now(),
            "canDial": self.dial is not None,
            "numbers": list(self.numbers),
        }


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
