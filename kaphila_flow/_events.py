"""Events: what Kaphila reports by webhook, as values.

``parse_event`` is the one way in from the wire; it is pure (no I/O). Unknown event
names become ``UnknownEvent``, unknown fields are kept in ``extra``, and anything that
is not an event raises ``InvalidEvent`` naming what is wrong.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, NoReturn

from ._exceptions import InvalidEvent
from ._wire import FieldError, opt_bool, opt_code, opt_float, opt_obj, opt_str, req_str

__all__ = [
    "Amd",
    "CallAnswered",
    "CallEnded",
    "CallInitiated",
    "CallTimeout",
    "DtmfReceived",
    "Event",
    "GatherComplete",
    "GatherFailed",
    "GatherProgress",
    "GatherStarted",
    "GatherTimeout",
    "Recording",
    "RecordingCompleted",
    "RecordingStarted",
    "RecordingStopped",
    "TtsPlayed",
    "UnknownEvent",
    "parse_event",
]

#: Bytes of an event's dedupe digest, kept per delivery to spot copies: 15 makes a
#: ``bytes`` of 48 bytes, the allocator's 48-byte block (16 would take a 64-byte one).
DIGEST_SIZE = 15


@dataclass(frozen=True, slots=True)
class Amd:
    """Answering machine detection: ``status`` is HUMAN, MACHINE, UNKNOWN or NOAMD."""

    status: str
    cause: str | None = None
    confidence: float | None = None

    HUMAN: ClassVar[str] = "HUMAN"
    MACHINE: ClassVar[str] = "MACHINE"
    UNKNOWN: ClassVar[str] = "UNKNOWN"

    @property
    def is_machine(self) -> bool:
        return self.status.upper() == "MACHINE"

    @property
    def is_human(self) -> bool:
        return self.status.upper() == "HUMAN"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Amd:
        return cls(
            status=opt_str(data, "status") or "UNKNOWN",
            cause=opt_str(data, "cause"),
            confidence=opt_float(data, "confidence"),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        if self.cause is not None:
            out["cause"] = self.cause
        if self.confidence is not None:
            out["confidence"] = self.confidence
        return out


@dataclass(frozen=True, slots=True)
class Recording:
    """A recording named in ``recording.*`` and ``call.ended`` events."""

    filename: str | None = None
    recording_id: str | None = None
    active: bool | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Recording:
        return cls(
            filename=opt_str(data, "filename"),
            recording_id=opt_str(data, "recordingId"),
            active=opt_bool(data, "active"),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.filename is not None:
            out["filename"] = self.filename
        if self.recording_id is not None:
            out["recordingId"] = self.recording_id
        if self.active is not None:
            out["active"] = self.active
        return out


# Wire names of each field, per class: (attribute, wire key, kind).
_Spec = tuple[tuple[str, str, str], ...]


class _NoExtra(Mapping[str, Any]):
    """The ``extra`` of every event with no field beyond its type's: one shared, empty,
    read-only mapping instead of an empty dict per event."""

    __slots__ = ()

    def __getitem__(self, key: str) -> NoReturn:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "{}"


NO_EXTRA: Mapping[str, Any] = _NoExtra()


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """A webhook event. ``extra`` keeps fields this version does not know."""

    call_id: str
    timestamp: str | None = None
    status: str | None = None
    extra: Mapping[str, Any] = field(default=NO_EXTRA, compare=False, repr=False)

    NAME: ClassVar[str] = ""
    _FIELDS: ClassVar[_Spec] = ()

    @property
    def name(self) -> str:
        return self.NAME

    def to_payload(self) -> dict[str, Any]:
        """The JSON object Kaphila would POST for this event."""
        extra = self.extra
        # Most events have no extra field: an empty dict, not a copy of an empty mapping.
        payload: dict[str, Any] = {} if extra is NO_EXTRA or not extra else dict(extra)
        payload["callId"] = self.call_id
        payload["event"] = self.name
        if self.timestamp is not None:
            payload["timestamp"] = self.timestamp
        if self.status is not None:
            payload["status"] = self.status
        for attr, key, kind in self._FIELDS:
            value = getattr(self, attr)
            if value is None:
                continue
            payload[key] = value.to_json() if kind in ("amd", "recording") else value
        return payload

    @property
    def dedupe_key(self) -> bytes:
        """Identical deliveries share this key (the provider sends no event id)."""
        canonical = json.dumps(self.to_payload(), sort_keys=True, separators=(",", ":"))
        return hashlib.blake2b(canonical.encode(), digest_size=DIGEST_SIZE).digest()

    #: Whether the same event, identical to the byte, can truly happen twice on a call
    #: (a key pressed twice, two gathers that end alike).
    REPEATABLE: ClassVar[bool] = False

    def delivery_identity(self, raw: bytes | None = None) -> bytes | None:
        """What makes a second copy of this delivery a redelivery, or ``None``: never.

        Kaphila sends no event id. Identical payloads are one delivery, except for
        repeatable events (keys, gathers, playbacks) stamped in whole seconds, as the
        provider's examples are: two presses of "1" within a second look identical
        and both count. ``raw`` (the body as received) saves re-serialising.
        """
        if self.REPEATABLE and not _sub_second(self.timestamp):
            return None
        return raw if raw is not None else self.dedupe_key


def _sub_second(timestamp: str | None) -> bool:
    """Whether a timestamp has a fraction of a second (``...:05.123Z``)."""
    if not timestamp:
        return False
    _, _, clock = timestamp.partition("T")
    return "." in clock


@dataclass(frozen=True, slots=True, kw_only=True)
class CallInitiated(Event):
    """``call.initiated``: Kaphila started placing the call."""

    NAME: ClassVar[str] = "call.initiated"


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAnswered(Event):
    """``call.answered``: someone (or a machine: ``amd``) picked up."""

    amd: Amd | None = None

    NAME: ClassVar[str] = "call.answered"
    _FIELDS: ClassVar[_Spec] = (("amd", "amd", "amd"),)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded(Event):
    """``call.ended``: the call is over, with why, how long, and whether it was answered."""

    end_reason: str | None = None
    hangup_cause: str | None = None
    was_answered: bool | None = None
    duration: float | None = None
    amd: Amd | None = None
    recording: Recording | None = None

    NAME: ClassVar[str] = "call.ended"
    _FIELDS: ClassVar[_Spec] = (
        ("end_reason", "endReason", "str"),
        ("hangup_cause", "hangupCause", "code"),
        ("was_answered", "wasAnswered", "bool"),
        ("duration", "callDuration", "float"),
        ("amd", "amd", "amd"),
        ("recording", "recording", "recording"),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class CallTimeout(Event):
    """The callee did not answer within the ring timeout."""

    NAME: ClassVar[str] = "call.timeout"


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfReceived(Event):
    """``dtmf.received``: one key pressed (``digit``), in or out of a gather."""

    digit: str | None = None

    NAME: ClassVar[str] = "dtmf.received"
    REPEATABLE: ClassVar[bool] = True
    _FIELDS: ClassVar[_Spec] = (("digit", "digit", "str"),)


@dataclass(frozen=True, slots=True, kw_only=True)
class GatherStarted(Event):
    """``gather.started``: a gather is listening for keys."""

    NAME: ClassVar[str] = "gather.started"
    REPEATABLE: ClassVar[bool] = True


@dataclass(frozen=True, slots=True, kw_only=True)
class GatherProgress(Event):
    """``gather.progress``: the ``digits`` entered so far."""

    digits: str = ""

    NAME: ClassVar[str] = "gather.progress"
    REPEATABLE: ClassVar[bool] = True
    _FIELDS: ClassVar[_Spec] = (("digits", "digits", "str"),)


@dataclass(frozen=True, slots=True, kw_only=True)
class GatherComplete(Event):
    """``gather.complete``: the gather's ``digits``, finished by length or finish key."""

    digits: str = ""

    NAME: ClassVar[str] = "gather.complete"
    REPEATABLE: ClassVar[bool] = True
    _FIELDS: ClassVar[_Spec] = (("digits", "digits", "str"),)


@dataclass(frozen=True, slots=True, kw_only=True)
class GatherTimeout(Event):
    """The gather timed out; ``digits`` holds what was entered before (maybe ``""``)."""

    digits: str = ""

    NAME: ClassVar[str] = "gather.timeout"
    REPEATABLE: ClassVar[bool] = True
    _FIELDS: ClassVar[_Spec] = (("digits", "digits", "str"),)


@dataclass(frozen=True, slots=True, kw_only=True)
class GatherFailed(Event):
    """``gather.failed``: the gather could not run (``reason``)."""

    reason: str | None = None

    NAME: ClassVar[str] = "gather.failed"
    REPEATABLE: ClassVar[bool] = True
    _FIELDS: ClassVar[_Spec] = (("reason", "reason", "str"),)


@dataclass(frozen=True, slots=True, kw_only=True)
class TtsPlayed(Event):
    """``tts.played``: a ``/voice`` playback finished."""

    playback_id: str | None = None

    NAME: ClassVar[str] = "tts.played"
    REPEATABLE: ClassVar[bool] = True
    _FIELDS: ClassVar[_Spec] = (("playback_id", "playbackId", "str"),)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingStarted(Event):
    """``recording.started``: the call is being recorded."""

    recording: Recording | None = None

    NAME: ClassVar[str] = "recording.started"
    _FIELDS: ClassVar[_Spec] = (("recording", "recording", "recording"),)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingCompleted(Event):
    """``recording.completed``: the recording file is ready."""

    recording: Recording | None = None

    NAME: ClassVar[str] = "recording.completed"
    _FIELDS: ClassVar[_Spec] = (("recording", "recording", "recording"),)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingStopped(Event):
    """``recording.stopped``: recording stopped (``/recordings/<id>/stop``)."""

    recording: Recording | None = None

    NAME: ClassVar[str] = "recording.stopped"
    _FIELDS: ClassVar[_Spec] = (("recording", "recording", "recording"),)


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownEvent(Event):
    """An event this version does not know; its fields are all in ``extra``."""

    event: str

    @property
    def name(self) -> str:
        return self.event


EVENT_TYPES: dict[str, type[Event]] = {
    cls.NAME: cls
    for cls in (
        CallInitiated,
        CallAnswered,
        CallEnded,
        CallTimeout,
        DtmfReceived,
        GatherStarted,
        GatherProgress,
        GatherComplete,
        GatherTimeout,
        GatherFailed,
        TtsPlayed,
        RecordingStarted,
        RecordingCompleted,
        RecordingStopped,
    )
}

_BASE_KEYS = frozenset({"callId", "event", "timestamp", "status"})
#: The wire keys each event type reads; the rest of a payload goes to ``extra``.
_KNOWN_KEYS: dict[type[Event], frozenset[str]] = {
    cls: _BASE_KEYS | {key for _, key, _ in cls._FIELDS} for cls in EVENT_TYPES.values()
}
MAX_CALL_ID_LENGTH = 128


def _read(data: Mapping[str, Any], key: str, kind: str) -> Any:
    if kind == "str":
        return opt_str(data, key)
    if kind == "code":
        return opt_code(data, key)
    if kind == "bool":
        return opt_bool(data, key)
    if kind == "float":
        return opt_float(data, key)
    obj = opt_obj(data, key)
    if obj is None:
        return None
    return Amd.from_json(obj) if kind == "amd" else Recording.from_json(obj)


def parse_event(payload: object) -> Event:
    """Turn a decoded webhook body into an ``Event``, or raise ``InvalidEvent``."""
    if not isinstance(payload, dict):
        kind = "null" if payload is None else type(payload).__name__
        raise InvalidEvent(f"a webhook body must be a JSON object, not {kind}")
    try:
        call_id = req_str(payload, "callId")
        name = req_str(payload, "event")
        if len(call_id) > MAX_CALL_ID_LENGTH:
            raise FieldError(f"field 'callId' is longer than {MAX_CALL_ID_LENGTH} characters")
        timestamp = opt_str(payload, "timestamp")
        status = opt_str(payload, "status")
        cls = EVENT_TYPES.get(name)
        if cls is None:
            unknown = {k: v for k, v in payload.items() if k not in _BASE_KEYS}
            return UnknownEvent(
                event=name, call_id=call_id, timestamp=timestamp, status=status, extra=unknown
            )
        values: dict[str, Any] = {}
        for attr, key, kind in cls._FIELDS:
            value = _read(payload, key, kind)
            if value is not None:
                values[attr] = value
        known = _KNOWN_KEYS[cls]
        # A webhook usually has no field beyond its type's: then no loop over it.
        extra: Mapping[str, Any] = (
            NO_EXTRA
            if known.issuperset(payload)
            else {k: v for k, v in payload.items() if k not in known}
        )
        return cls(call_id=call_id, timestamp=timestamp, status=status, extra=extra, **values)
    except FieldError as exc:
        event = payload.get("event")
        what = f"{event!r} event" if isinstance(event, str) and len(event) < 64 else "event"
        raise InvalidEvent(f"invalid {what}: {exc}") from None
