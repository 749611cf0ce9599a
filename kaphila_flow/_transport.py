"""The one seam through which commands leave: ``Transport.send``.

``KaphilaClient`` is the real transport (httpx to Kaphila or the simulator);
``kaphila_flow.testing.FakeKaphila`` answers in memory.
"""

from __future__ import annotations

from typing import Protocol, TypeVar, runtime_checkable

from ._commands import Command

R = TypeVar("R")

__all__ = ["Transport"]


@runtime_checkable
class Transport(Protocol):
    """Sends one command and returns Kaphila's typed answer, or raises ``KaphilaError``."""

    async def send(self, command: Command[R]) -> R: ...

    async def aclose(self) -> None: ...
