"""Typed answers of Kaphila's read endpoints (calls, recordings, account).

The production reference gives these shapes only loosely, so each value keeps the
fields it knows and the whole object as ``raw``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._events import Amd
from ._wire import opt_bool, opt_int, opt_list, opt_obj, opt_str, req_str

__all__ = [
    "AccountInfo",
    "Analytics",
    "CallInfo",
    "CallList",
    "CallLogPage",
    "Dashboard",
    "Health",
    "RecordingInfo",
    "RecordingList",
]


def _amd(data: Mapping[str, Any]) -> Amd | None:
    value = data.get("amd")
    if isinstance(value, dict):
        return Amd.from_json(value)
    if isinstance(value, str) and value:
        return Amd(value)
    return None


@dataclass(frozen=True, slots=True)
class CallInfo:
    call_id: str
    status: str | None
    number: str | None
    amd: Amd | None
    gather: Mapping[str, Any] | None
    recording: Mapping[str, Any] | None
    voice_name: str | None
    has_bridge: bool | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CallInfo:
        gather = data.get("gather")
        recording = data.get("recording")
        return cls(
            call_id=req_str(data, "callId"),
            status=opt_str(data, "status"),
            number=opt_str(data, "number"),
            amd=_amd(data),
            gather=gather if isinstance(gather, dict) else None,
            recording=recording if isinstance(recording, dict) else None,
            voice_name=opt_str(data, "voiceName"),
            has_bridge=opt_bool(data, "hasBridge"),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True)
class CallList:
    total_calls: int | None
    active_calls: int | None
    calls: list[CallInfo]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CallList:
        return cls(
            total_calls=opt_int(data, "totalCalls"),
            active_calls=opt_int(data, "activeCalls"),
            calls=opt_list(
                data,
                "calls",
                lambda item: CallInfo.from_json(item if isinstance(item, dict) else {}),
            ),
        )


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    filename: str | None
    recording_id: str | None
    call_id: str | None
    active: bool | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RecordingInfo:
        return cls(
            filename=opt_str(data, "filename"),
            recording_id=opt_str(data, "recordingId"),
            call_id=opt_str(data, "callId"),
            active=opt_bool(data, "active"),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True)
class RecordingList:
    recordings: list[RecordingInfo]
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RecordingList:
        items = data.get("recordings")
        if not isinstance(items, list):
            one = opt_obj(data, "recording")
            items = [one] if one else []
        return cls(
            recordings=[RecordingInfo.from_json(i) for i in items if isinstance(i, dict)],
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True)
class Health:
    status: str | None
    service: str | None
    version: str | None
    active_calls: int | None
    features: Any
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Health:
        stats = opt_obj(data, "stats") or {}
        return cls(
            status=opt_str(data, "status"),
            service=opt_str(data, "service"),
            version=opt_str(data, "version"),
            active_calls=opt_int(stats, "activeCalls"),
            features=data.get("features"),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """``/api/me``: the key's metadata; ``rate_limit`` is requests per hour."""

    credits: int | None
    rate_limit: int | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AccountInfo:
        inner = opt_obj(data, "key") or opt_obj(data, "user") or data
        rate = inner.get("rateLimit", data.get("rateLimit"))
        if isinstance(rate, dict):
            rate = rate.get("limit", rate.get("requests"))
        credits = inner.get("credits", data.get("credits"))
        return cls(
            credits=int(credits)
            if isinstance(credits, (int, float)) and not isinstance(credits, bool)
            else None,
            rate_limit=int(rate)
            if isinstance(rate, (int, float)) and not isinstance(rate, bool)
            else None,
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True)
class CallLogPage:
    page: int | None
    page_size: int | None
    total: int | None
    logs: list[Mapping[str, Any]]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CallLogPage:
        logs = data.get("logs", data.get("calls", data.get("data")))
        return cls(
            page=opt_int(data, "page"),
            page_size=opt_int(data, "page_size") or opt_int(data, "pageSize"),
            total=opt_int(data, "total") or opt_int(data, "totalCount"),
            logs=[item for item in logs if isinstance(item, dict)]
            if isinstance(logs, list)
            else [],
        )


@dataclass(frozen=True, slots=True)
class Analytics:
    days: int | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Analytics:
        return cls(days=opt_int(data, "days"), raw=dict(data))


@dataclass(frozen=True, slots=True)
class Dashboard:
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Dashboard:
        return cls(raw=dict(data))
