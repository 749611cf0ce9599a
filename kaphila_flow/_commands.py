"""Commands: what a flow asks Kaphila to do, as values, with their wire form.

Each command knows its endpoint, its JSON body, how to read its reply, and how to
read itself back from a request body (which the simulator does). Timeouts are seconds
here and milliseconds on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypeVar

from ._wire import FieldError, opt_bool, opt_int, opt_str, req_str

__all__ = [
    "Command",
    "ForwardCall",
    "ForwardReply",
    "Gather",
    "GatherReply",
    "Hangup",
    "HangupReply",
    "MakeCall",
    "MakeCallReply",
    "Play",
    "PlaybackReply",
    "PlayTo",
    "StopRecording",
    "StopRecordingReply",
    "Voice",
]

PlayTo = Literal["bridge", "channel"]
PLAY_TO_VALUES: tuple[str, ...] = ("bridge", "channel")
DEFAULT_VOICE = "en-US-Neural2-A"

R = TypeVar("R")


def _play_to(data: Mapping[str, Any]) -> PlayTo:
    value = opt_str(data, "playTo") or "bridge"
    if value == "bridge":
        return "bridge"
    if value == "channel":
        return "channel"
    raise FieldError("field 'playTo' must be 'bridge' or 'channel'")


class Command(Generic[R]):
    """A request to Kaphila whose successful answer is an ``R``."""

    __slots__ = ()  # each command is a slotted dataclass: no ``__dict__`` per request

    path: ClassVar[str]
    #: Whether sending it twice can do harm (place a second call, speak twice ...).
    repeatable: ClassVar[bool] = False

    def body(self) -> dict[str, Any]:
        raise NotImplementedError

    def parse_reply(self, data: Mapping[str, Any]) -> R:
        raise NotImplementedError


# -- replies ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MakeCallReply:
    call_id: str
    status: str
    amd_enabled: bool
    voice_name: str | None
    credits: int | None
    ring_timeout: int | None
    trunk: str | None
    trunk_attempts: int | None
    total_trunks: int | None
    timestamp: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "success": True,
            "callId": self.call_id,
            "status": self.status,
            "amdEnabled": self.amd_enabled,
            "voiceName": self.voice_name,
            "credits": self.credits,
            "ringTimeoutSeconds": self.ring_timeout,
            "trunk": self.trunk,
            "trunkAttempts": self.trunk_attempts,
            "totalTrunks": self.total_trunks,
            "timestamp": self.timestamp,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MakeCallReply:
        return cls(
            call_id=req_str(data, "callId"),
            status=opt_str(data, "status") or "ringing",
            amd_enabled=bool(opt_bool(data, "amdEnabled")),
            voice_name=opt_str(data, "voiceName"),
            credits=opt_int(data, "credits"),
            ring_timeout=opt_int(data, "ringTimeoutSeconds"),
            trunk=opt_str(data, "trunk"),
            trunk_attempts=opt_int(data, "trunkAttempts"),
            total_trunks=opt_int(data, "totalTrunks"),
            timestamp=opt_str(data, "timestamp"),
        )


@dataclass(frozen=True, slots=True)
class PlaybackReply:
    """Answer to ``/voice`` and ``/play``: sent once the playback finished."""

    message: str | None
    playback_id: str | None
    method: str | None
    text: str | None = None
    file: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"success": True, "message": self.message}
        if self.text is not None:
            out["text"] = self.text
        if self.file is not None:
            out["file"] = self.file
        out["playbackId"] = self.playback_id
        out["method"] = self.method
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlaybackReply:
        return cls(
            message=opt_str(data, "message"),
            playback_id=opt_str(data, "playbackId"),
            method=opt_str(data, "method"),
            text=opt_str(data, "text"),
            file=opt_str(data, "file"),
        )


@dataclass(frozen=True, slots=True)
class GatherReply:
    message: str | None
    expected_digits: int | None
    timeout_ms: int | None

    def to_json(self, call_id: str) -> dict[str, Any]:
        return {
            "success": True,
            "message": self.message,
            "callId": call_id,
            "expectedDigits": self.expected_digits,
            "timeoutMs": self.timeout_ms,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GatherReply:
        return cls(
            message=opt_str(data, "message"),
            expected_digits=opt_int(data, "expectedDigits"),
            timeout_ms=opt_int(data, "timeoutMs"),
        )


@dataclass(frozen=True, slots=True)
class ForwardReply:
    message: str | None
    forwarded_call_id: str | None

    def to_json(self) -> dict[str, Any]:
        return {"success": True, "message": self.message, "forwardedCallId": self.forwarded_call_id}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ForwardReply:
        return cls(
            message=opt_str(data, "message"), forwarded_call_id=opt_str(data, "forwardedCallId")
        )


@dataclass(frozen=True, slots=True)
class HangupReply:
    message: str | None

    def to_json(self, call_id: str) -> dict[str, Any]:
        return {"success": True, "message": self.message, "callId": call_id}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HangupReply:
        return cls(message=opt_str(data, "message"))


@dataclass(frozen=True, slots=True)
class StopRecordingReply:
    message: str | None

    def to_json(self) -> dict[str, Any]:
        return {"success": True, "message": self.message}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StopRecordingReply:
        return cls(message=opt_str(data, "message"))


# -- commands --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MakeCall(Command[MakeCallReply]):
    """``POST /makecall``. ``number`` is already in Kaphila's 10-15 digit form."""

    number: str
    webhook_url: str | None = field(default=None, repr=False)  # carries the per-call token
    caller_id: str | None = None
    use_amd: bool = False
    voice_name: str | None = None
    ring_timeout: int = 30

    path: ClassVar[str] = "/makecall"

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"number": self.number, "useAmd": self.use_amd}
        if self.webhook_url is not None:
            body["webhookUrl"] = self.webhook_url
        if self.caller_id is not None:
            body["callerId"] = self.caller_id
        if self.voice_name is not None:
            body["voiceName"] = self.voice_name
        body["ringTimeout"] = self.ring_timeout
        return body

    def parse_reply(self, data: Mapping[str, Any]) -> MakeCallReply:
        return MakeCallReply.from_json(data)

    @classmethod
    def from_body(cls, data: Mapping[str, Any]) -> MakeCall:
        ring_timeout = opt_int(data, "ringTimeout")
        return cls(
            number=req_str(data, "number"),
            webhook_url=opt_str(data, "webhookUrl"),
            caller_id=opt_str(data, "callerId"),
            use_amd=bool(opt_bool(data, "useAmd")),
            voice_name=opt_str(data, "voiceName"),
            ring_timeout=30 if ring_timeout is None else ring_timeout,
        )


@dataclass(frozen=True, slots=True)
class BatchCall(MakeCall):
    """``POST /batchcall``: the same as ``/makecall``, for batch workflows."""

    path: ClassVar[str] = "/batchcall"


@dataclass(frozen=True, slots=True)
class Voice(Command[PlaybackReply]):
    """``POST /voice``: speak ``text``; answered when the speech has been played."""

    call_id: str
    text: str
    play_to: PlayTo = "bridge"
    #: Kaphila sets the voice per call (``/makecall``); sent as ``voiceName`` when given.
    voice_name: str | None = None

    path: ClassVar[str] = "/voice"

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"callId": self.call_id, "text": self.text, "playTo": self.play_to}
        if self.voice_name is not None:
            body["voiceName"] = self.voice_name
        return body

    def parse_reply(self, data: Mapping[str, Any]) -> PlaybackReply:
        return PlaybackReply.from_json(data)

    @classmethod
    def from_body(cls, data: Mapping[str, Any]) -> Voice:
        return cls(
            call_id=req_str(data, "callId"), text=req_str(data, "text"), play_to=_play_to(data)
        )


@dataclass(frozen=True, slots=True)
class Play(Command[PlaybackReply]):
    """``POST /play``: play a sound file stored on Kaphila (e.g. ``custom/welcome``)."""

    call_id: str
    file: str
    play_to: PlayTo = "bridge"

    path: ClassVar[str] = "/play"

    def body(self) -> dict[str, Any]:
        return {"callId": self.call_id, "file": self.file, "playTo": self.play_to}

    def parse_reply(self, data: Mapping[str, Any]) -> PlaybackReply:
        return PlaybackReply.from_json(data)

    @classmethod
    def from_body(cls, data: Mapping[str, Any]) -> Play:
        return cls(
            call_id=req_str(data, "callId"), file=req_str(data, "file"), play_to=_play_to(data)
        )


@dataclass(frozen=True, slots=True)
class Gather(Command[GatherReply]):
    """``POST /gather``: play ``text`` (if any) and collect keys.

    ``timeout`` is in seconds; the outcome arrives as a ``gather.*`` webhook.
    """

    call_id: str
    text: str | None = None
    num_digits: int = 1
    timeout: float = 10.0
    finish_on_key: str | None = None
    valid_digits: str | None = None
    play_to: PlayTo = "bridge"

    path: ClassVar[str] = "/gather"

    @property
    def timeout_ms(self) -> int:
        return round(self.timeout * 1000)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "callId": self.call_id,
            "numDigits": self.num_digits,
            "timeout": self.timeout_ms,
            "playTo": self.play_to,
        }
        if self.text is not None:
            body["text"] = self.text
        if self.finish_on_key is not None:
            body["finishOnKey"] = self.finish_on_key
        if self.valid_digits is not None:
            body["validDigits"] = self.valid_digits
        return body

    def parse_reply(self, data: Mapping[str, Any]) -> GatherReply:
        return GatherReply.from_json(data)

    @classmethod
    def from_body(cls, data: Mapping[str, Any]) -> Gather:
        num_digits = opt_int(data, "numDigits")
        timeout_ms = opt_int(data, "timeout")
        return cls(
            call_id=req_str(data, "callId"),
            text=opt_str(data, "text"),
            num_digits=1 if num_digits is None else num_digits,
            timeout=10.0 if timeout_ms is None else timeout_ms / 1000,
            finish_on_key=opt_str(data, "finishOnKey"),
            valid_digits=opt_str(data, "validDigits"),
            play_to=_play_to(data),
        )


@dataclass(frozen=True, slots=True)
class ForwardCall(Command[ForwardReply]):
    """``POST /forwardcall``: bridge the call to another number."""

    call_id: str
    forward_number: str

    path: ClassVar[str] = "/forwardcall"

    def body(self) -> dict[str, Any]:
        return {"callId": self.call_id, "forwardNumber": self.forward_number}

    def parse_reply(self, data: Mapping[str, Any]) -> ForwardReply:
        return ForwardReply.from_json(data)

    @classmethod
    def from_body(cls, data: Mapping[str, Any]) -> ForwardCall:
        return cls(call_id=req_str(data, "callId"), forward_number=req_str(data, "forwardNumber"))


@dataclass(frozen=True, slots=True)
class Hangup(Command[HangupReply]):
    """``POST /hangup``. Repeating it is harmless: a second one answers 404."""

    call_id: str

    path: ClassVar[str] = "/hangup"
    repeatable: ClassVar[bool] = True

    def body(self) -> dict[str, Any]:
        return {"callId": self.call_id}

    def parse_reply(self, data: Mapping[str, Any]) -> HangupReply:
        return HangupReply.from_json(data)

    @classmethod
    def from_body(cls, data: Mapping[str, Any]) -> Hangup:
        return cls(call_id=req_str(data, "callId"))


@dataclass(frozen=True, slots=True)
class StopRecording(Command[StopRecordingReply]):
    """``POST /recordings/{callId}/stop``."""

    call_id: str

    path: ClassVar[str] = "/recordings/{callId}/stop"
    repeatable: ClassVar[bool] = True

    @property
    def url_path(self) -> str:
        return f"/recordings/{self.call_id}/stop"

    def body(self) -> dict[str, Any]:
        return {}

    def parse_reply(self, data: Mapping[str, Any]) -> StopRecordingReply:
        return StopRecordingReply.from_json(data)


def url_path(command: Command[Any]) -> str:
    """The request path of a command (some carry the call id in the path)."""
    if isinstance(command, StopRecording):
        return command.url_path
    return command.path


def command_call_id(command: Command[Any]) -> str | None:
    """The call a command steers, or ``None`` for ``/makecall``."""
    call_id = getattr(command, "call_id", None)
    return call_id if isinstance(call_id, str) else None
