"""The fake's record of what it delivered: each webhook's body and the intake's status.

A test reads ``kaphila.deliveries`` as a list of ``(event, status)`` pairs. Kept as
bytes and numbers until then, the record holds nothing the garbage collector walks: a
long run of fake tests keeps no event objects of its own. A pair is made from its body
(the JSON the event stands for, which reads back to an equal event) when first read,
and the same pair is read after that.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import overload

from .._events import Event, parse_event

__all__ = ["Deliveries"]


class Deliveries(Sequence[tuple[Event, int]]):
    """Each webhook the fake delivered, in order: ``(event, HTTP status from the intake)``."""

    __slots__ = ("_bodies", "_read", "_statuses")

    def __init__(self, bodies: list[bytes], statuses: dict[int, int]) -> None:
        #: The deliverer's record, which it appends to: the bodies, in order, and the
        #: status of each delivery (by index) that did not get 200.
        self._bodies = bodies
        self._statuses = statuses
        #: The pairs read so far (the first ``len(_read)`` deliveries).
        self._read: list[tuple[Event, int]] = []

    def _upto(self, count: int) -> list[tuple[Event, int]]:
        read = self._read
        bodies, statuses = self._bodies, self._statuses
        for index in range(len(read), count):
            event = parse_event(json.loads(bodies[index]))
            read.append((event, statuses.get(index, 200)))
        return read

    def __len__(self) -> int:
        return len(self._bodies)

    @overload
    def __getitem__(self, index: int) -> tuple[Event, int]: ...
    @overload
    def __getitem__(self, index: slice) -> list[tuple[Event, int]]: ...
    def __getitem__(self, index: int | slice) -> tuple[Event, int] | list[tuple[Event, int]]:
        return self._upto(len(self._bodies))[index]

    def __iter__(self) -> Iterator[tuple[Event, int]]:
        return iter(self._upto(len(self._bodies)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Deliveries):
            other = list(other)
        if not isinstance(other, list | tuple):
            return NotImplemented
        return list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(list(self))
