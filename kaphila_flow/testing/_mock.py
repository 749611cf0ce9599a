"""``MockTransport``: a runtime's commands answered by a function of yours.

In the manner of ``httpx.MockTransport``::

    def handler(command: Command[Any]) -> Any:
        if isinstance(command, MakeCall):
            raise ServerError("Internal server error")
        return default_reply(command)

    runtime = Runtime(MockTransport(handler))

The handler may be a plain or an ``async`` function; it returns the typed reply or
raises a ``KaphilaError``. Every command is recorded in ``sent``. ``default_reply``
gives the provider's usual success answer for any command. No events are sent: a test
that needs them dispatches them itself (``runtime.dispatch``), or uses ``FakeKaphila``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import anyio.lowlevel

from .._api_types import CallInfo, CallList
from .._commands import (
    Command,
    ForwardCall,
    ForwardReply,
    Gather,
    GatherReply,
    Hangup,
    HangupReply,
    MakeCall,
    MakeCallReply,
    Play,
    PlaybackReply,
    StopRecording,
    StopRecordingReply,
    Voice,
)

__all__ = ["MockTransport", "default_reply"]

R = TypeVar("R")
Handler = Callable[[Command[Any]], Any]


def default_reply(command: Command[R], *, call_id: str = "1.1") -> R:
    """Kaphila's success answer to ``command`` (``/makecall`` places ``call_id``)."""
    reply: Any
    if isinstance(command, MakeCall):
        reply = MakeCallReply(
            call_id, "ringing", command.use_amd, command.voice_name, None,
            command.ring_timeout, "mock", 1, 1, None,
        )  # fmt: skip
    elif isinstance(command, Voice):
        reply = PlaybackReply("TTS played successfully", "p", command.play_to, text=command.text)
    elif isinstance(command, Play):
        reply = PlaybackReply("File played successfully", "p", command.play_to, file=command.file)
    elif isinstance(command, Gather):
        reply = GatherReply("Gathering", command.num_digits, command.timeout_ms)
    elif isinstance(command, ForwardCall):
        reply = ForwardReply(f"Call forwarded to {command.forward_number}", f"{call_id}.1")
    elif isinstance(command, Hangup):
        reply = HangupReply("Call hung up successfully")
    elif isinstance(command, StopRecording):
        reply = StopRecordingReply("Recording stopped")
    else:
        raise TypeError(f"no default reply for {type(command).__name__}")
    return reply  # type: ignore[no-any-return]


class MockTransport:
    """A ``Transport`` whose answers come from ``handler(command)``."""

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        calls: Sequence[CallInfo] | Callable[[], Sequence[CallInfo]] = (),
    ) -> None:
        self.handler: Handler = handler or default_reply
        #: Every command sent, in order.
        self.sent: list[Command[Any]] = []
        self._calls = calls
        self.closed = False

    def __repr__(self) -> str:
        return f"<MockTransport {len(self.sent)} sent>"

    async def send(self, command: Command[R]) -> R:
        self.sent.append(command)
        await anyio.lowlevel.checkpoint()
        reply = self.handler(command)
        if inspect.isawaitable(reply):
            reply = await reply
        return reply  # type: ignore[no-any-return]

    async def list_calls(self) -> CallList:
        """``GET /calls``: the ``calls`` given (a list, or a function returning one)."""
        calls = list(self._calls() if callable(self._calls) else self._calls)
        live = sum(1 for c in calls if (c.status or "") != "ended")
        return CallList(len(calls), live, calls)

    async def aclose(self) -> None:
        self.closed = True
