"""Calling hours in the called person's time zone (from the number, via phonenumbers).

A number whose region spans several zones is called only when every one of them is
inside the window. A number with no known zone is taken as UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as number_zones

__all__ = ["CallingHours", "zones_for"]

_STEP = timedelta(minutes=5)
_HORIZON = timedelta(days=3)


@lru_cache(maxsize=4096)
def zones_for(number: str) -> tuple[ZoneInfo, ...]:
    """The time zones a number (Kaphila form, no +) may ring in."""
    try:
        names = number_zones.time_zones_for_number(phonenumbers.parse("+" + number))
    except phonenumbers.NumberParseException:
        names = ()
    zones = []
    for name in names:
        try:
            zones.append(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return tuple(zones) or (ZoneInfo("UTC"),)


@dataclass(frozen=True, slots=True)
class CallingHours:
    """Local times a number may be called: ``start`` to ``end`` (default 08:00-21:00)."""

    start: time = time(8, 0)
    end: time = time(21, 0)
    always_open: bool = False

    @classmethod
    def always(cls) -> CallingHours:
        return cls(always_open=True)

    def __post_init__(self) -> None:
        if not self.always_open and self.start >= self.end:
            raise ValueError("calling hours must start before they end (same day)")

    def allowed(self, number: str, at: datetime) -> bool:
        if self.always_open:
            return True
        moment = at if at.tzinfo else at.replace(tzinfo=UTC)
        return all(self.start <= moment.astimezone(z).time() < self.end for z in zones_for(number))

    def next_opening(self, number: str, at: datetime) -> datetime | None:
        """The first moment from ``at`` when calling is allowed, ``None`` if none in 3 days."""
        moment = at if at.tzinfo else at.replace(tzinfo=UTC)
        limit = moment + _HORIZON
        while moment <= limit:
            if self.allowed(number, moment):
                return moment
            moment = (moment + _STEP).replace(second=0, microsecond=0)
        return None
