"""How a call went: ``CallResult`` and its transcript."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from ._events import Amd, Event

__all__ = ["CallResult", "CallStatus", "TranscriptEntry"]

#: completed: the flow finished (the runtime hung up, or the flow forwarded the call);
#: hung-up: the caller (or the network) ended the call while the flow ran;
#: no-answer: never answered, so the flow never ran;
#: failed: the call could not be placed, or the flow raised;
#: unknown: the /makecall answer was lost and no placed call could be found for it;
#: no-webhooks: Kaphila placed the call but not one webhook of it reached the runtime
#: (a wrong webhook URL, a tunnel or proxy down): the flow never knew it was answered.
CallStatus = Literal["completed", "hung-up", "no-answer", "failed", "unknown", "no-webhooks"]

MASK = "•"


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    """One thing that happened on the call, ``at`` seconds after it was placed.

    ``kind`` is one of ``said``, ``played``, ``prompt``, ``keys``, ``forwarded``,
    ``answered``, ``hangup`` or ``ended``. Sensitive keys are stored masked.
    """

    at: float
    kind: str
    text: str

    def __str__(self) -> str:
        return f"[{self.at:7.2f}s] {self.kind:<9} {self.text}"


def _as_datetime(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True, slots=True)
class CallResult:
    """How a call ended: what ``Runtime.dial`` and ``CallHandle.result()`` return."""

    call_id: str | None
    number: str
    status: CallStatus
    value: Any = None
    error: BaseException | None = None
    amd: Amd | None = None
    started_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    forwarded_to: str | None = None
    end_reason: str | None = None
    transcript: tuple[TranscriptEntry, ...] = field(default=(), repr=False)
    recordings: tuple[Event, ...] = field(default=(), repr=False)
    #: Events and transcript entries the call's memory bounds dropped (see
    #: docs/security-reliability.md); 0 on any ordinary call.
    dropped: int = 0

    @property
    def answered_by(self) -> str | None:
        """``human``, ``machine`` or ``unknown`` (AMD), ``answered`` without AMD, or ``None``."""
        if self.answered_at is None:
            return None
        if self.amd is None:
            return "answered"
        if self.amd.is_human:
            return "human"
        return "machine" if self.amd.is_machine else "unknown"

    @property
    def duration(self) -> float | None:
        """Seconds from answer to end (``None`` if never answered)."""
        if self.answered_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.answered_at).total_seconds()

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    def transcript_text(self) -> str:
        return "\n".join(str(entry) for entry in self.transcript)


def build_result(
    *,
    call_id: str | None,
    number: str,
    status: CallStatus,
    value: Any,
    error: BaseException | None,
    amd: Amd | None,
    started_at: float,
    answered_at: float | None,
    ended_at: float,
    forwarded_to: str | None,
    end_reason: str | None,
    transcript: list[TranscriptEntry],
    recordings: list[Event],
    dropped: int = 0,
) -> CallResult:
    return CallResult(
        call_id=call_id,
        number=number,
        status=status,
        value=value,
        error=error,
        amd=amd,
        started_at=_as_datetime(started_at),
        answered_at=_as_datetime(answered_at),
        ended_at=_as_datetime(ended_at),
        forwarded_to=forwarded_to,
        end_reason=end_reason,
        transcript=tuple(transcript),
        recordings=tuple(recordings),
        dropped=dropped,
    )
