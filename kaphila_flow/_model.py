"""One model of a Kaphila call, without I/O.

A ``CallModel`` is what the provider does with one call: ringing, answered (by a
person or a machine), playing speech, gathering keys, forwarded, ended; what each
command does in each state; which events it emits. It never sleeps or sends: hosts
feed it commands, the callee's actions and the time, then collect its events and the
playbacks that finished. Two hosts drive it: ``kaphila_flow.testing.FakeKaphila``
(virtual time) and ``kaphila_flow.simulator`` (real time and HTTP).

Where the provider's docs are silent, the readings taken here are the ones listed in
``docs/api-readings.md``; each sits in one place below.
"""

from __future__ import annotations

import enum
import functools
import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Final

from . import _events as ev
from ._commands import (
    ForwardCall,
    ForwardReply,
    Gather,
    GatherReply,
    HangupReply,
    MakeCall,
    Play,
    PlaybackReply,
    StopRecordingReply,
    Voice,
)
from ._exceptions import BadRequest, CallNotFound

__all__ = ["CallModel", "Phase", "Playback", "SpeechTiming", "Timer", "iso_timestamp"]

#: Q.850 "normal call clearing", sent as a string as in the provider's example.
NORMAL_CLEARING = "16"
NO_ANSWER_CAUSE = "19"
USER_BUSY_CAUSE = "17"
KEYS = frozenset("0123456789*#")
_EPOCH = date(1970, 1, 1)
#: What ``take_events`` and ``take_finished`` answer when there is nothing (never changed).
_NO_EVENTS: list[ev.Event] = []
_NO_PLAYBACKS: list[Playback] = []


@functools.lru_cache(maxsize=256)
def iso_timestamp(now: float) -> str:
    """Kaphila's timestamp form: ISO 8601, UTC, milliseconds, ``Z``.

    Events come in bursts at one moment (virtual time stands still between jumps), so
    each moment is formatted once; many moments in one second, so each second's time
    of day is formatted once; and each day's date once. Rounded as
    ``datetime.fromtimestamp`` rounds (to the microsecond, half to even), then cut to
    the millisecond as ``isoformat`` cuts.
    """
    fraction, whole = math.modf(now)
    micro = round(fraction * 1e6)
    seconds = int(whole)
    if micro >= 1_000_000:
        seconds += 1
        micro -= 1_000_000
    elif micro < 0:
        seconds -= 1
        micro += 1_000_000
    return f"{_iso_second(seconds)}.{micro // 1000:03d}Z"


@functools.lru_cache(maxsize=64)
def _iso_second(seconds: int) -> str:
    """``2026-01-01T00:00:05``: a second since the epoch, up to its fraction."""
    day, second = divmod(seconds, 86_400)
    hour, second = divmod(second, 3_600)
    minute, second = divmod(second, 60)
    return f"{_iso_day(day)}T{hour:02d}:{minute:02d}:{second:02d}"


@functools.lru_cache(maxsize=8)
def _iso_day(day: int) -> str:
    """``2026-01-01``: a day since the epoch (a calendar's work, done once a day)."""
    return (_EPOCH + timedelta(days=day)).isoformat()


@dataclass(frozen=True, slots=True)
class SpeechTiming:
    """How long speech takes: the notes give about 150 words a minute."""

    words_per_minute: float = 150.0
    minimum: float = 0.5
    file_seconds: float = 3.0  # a /play sound file of unknown length

    def duration(self, text: str) -> float:
        words = len(text.split())
        return max(self.minimum, words * 60.0 / self.words_per_minute)


class Phase(enum.Enum):
    RINGING = "ringing"
    ANSWERED = "answered"
    FORWARDED = "forwarded"
    ENDED = "ended"


#: The phases as module names, for the paths every change takes: on Python 3.11 a
#: member looked up on its enum class goes through the metaclass's slow
#: ``__getattr__`` hook (several times a plain attribute's cost).
RINGING: Final = Phase.RINGING
ANSWERED: Final = Phase.ANSWERED
FORWARDED: Final = Phase.FORWARDED
ENDED: Final = Phase.ENDED


@dataclass(slots=True)
class Playback:
    """One ``/voice`` or ``/play``; its HTTP answer is due when it finishes."""

    playback_id: str
    text: str | None
    file: str | None
    starts_at: float
    ends_at: float
    method: str
    played: bool | None = None  # True when finished, False when the call ended first


@dataclass(frozen=True, slots=True)
class Timer:
    at: float
    #: ``ring`` and ``playback`` pass by themselves; ``gather`` is the
    #: caller's choice (keys or silence), which a fake caller makes explicitly.
    kind: str


@dataclass(slots=True)
class _GatherState:
    command: Gather
    started_at: float
    prompt_ends_at: float
    deadline: float
    digits: str = ""


@dataclass(slots=True)
class CallModel:
    call_id: str
    request: MakeCall
    created_at: float
    speech: SpeechTiming = field(default_factory=SpeechTiming)

    phase: Phase = RINGING
    answered_at: float | None = None
    ended_at: float | None = None
    amd: ev.Amd | None = None
    forwarded_to: str | None = None
    end_reason: str | None = None
    recording_active: bool = False
    _gather: _GatherState | None = None
    #: The playbacks under way, in order (``None``: none, and no list kept: an ended
    #: call keeps nothing here).
    _playbacks: list[Playback] | None = None
    #: Events emitted and playbacks finished since the last take (``None``: none, and
    #: no list kept: most calls spend most of their life with nothing to take). A host
    #: takes them with ``take_events``/``take_finished``, or reads a list and sets the
    #: attribute back to ``None`` itself (one attribute read when there is nothing).
    emitted: list[ev.Event] | None = None
    finished: list[Playback] | None = None
    _serial: int = 0

    def __post_init__(self) -> None:
        self._emit(
            ev.CallInitiated(
                call_id=self.call_id, timestamp=iso_timestamp(self.created_at), status="ringing"
            )
        )

    # -- what hosts read -------------------------------------------------------------

    @property
    def ring_deadline(self) -> float:
        return self.created_at + self.request.ring_timeout

    @property
    def live(self) -> bool:
        return self.phase is not ENDED

    @property
    def gathering(self) -> Gather | None:
        return self._gather.command if self._gather else None

    @property
    def gather_digits(self) -> str:
        return self._gather.digits if self._gather else ""

    @property
    def gather_started_at(self) -> float | None:
        """When the current gather began (a new value means a new gather)."""
        return self._gather.started_at if self._gather else None

    def snapshot(self) -> dict[str, object]:
        """The call as ``GET /calls`` shows it."""
        gather = self._gather
        return {
            "callId": self.call_id,
            "status": self.phase.value,
            "number": self.request.number,
            "amd": self.amd.to_json() if self.amd else None,
            "gather": {
                "active": True,
                "digits": gather.digits,
                "expectedDigits": gather.command.num_digits,
            }
            if gather
            else None,
            "recording": self._recording().to_json() if self.answered_at is not None else None,
            "voiceName": self.request.voice_name or "en-US-Neural2-A",
            "hasBridge": self.phase is FORWARDED,
            # Not in Kaphila's documented shape; clients ignore unknown fields.
            "createdAt": iso_timestamp(self.created_at),
            "endedAt": iso_timestamp(self.ended_at) if self.ended_at is not None else None,
        }

    def take_events(self) -> list[ev.Event]:
        """The events emitted since the last take (read the list, never change it)."""
        out = self.emitted
        if out is None:
            return _NO_EVENTS
        self.emitted = None
        return out

    def take_finished(self) -> list[Playback]:
        """Playbacks whose HTTP answer is now due (played, or cut by the end); read the
        list, never change it."""
        out = self.finished
        if out is None:
            return _NO_PLAYBACKS
        self.finished = None
        return out

    def timers(self) -> list[Timer]:
        if self.phase is ENDED:
            return []
        found: list[Timer] = []
        if self.phase is RINGING:
            found.append(Timer(self.ring_deadline, "ring"))
        found.extend(Timer(p.ends_at, "playback") for p in self._playbacks or ())
        if self._gather is not None:
            found.append(Timer(self._gather.deadline, "gather"))
        return sorted(found, key=lambda t: t.at)

    @property
    def gather_deadline(self) -> float | None:
        """When the gather the call is in times out, if it is in one."""
        gather = self._gather
        return gather.deadline if gather is not None and self.phase is not ENDED else None

    def next_timer_at(self) -> float | None:
        """When the first of ``timers()`` is due (``next_timer().at``, with no ``Timer``)."""
        if self.phase is ENDED:
            return None
        at = self.ring_deadline if self.phase is RINGING else math.inf
        for playback in self._playbacks or ():
            if playback.ends_at < at:
                at = playback.ends_at
        gather = self._gather
        if gather is not None and gather.deadline < at:
            at = gather.deadline
        return at if at != math.inf else None

    def next_timer(self, *, kinds: frozenset[str] | None = None) -> Timer | None:
        """The first of ``timers()`` (of ``kinds``), without building them all."""
        if self.phase is ENDED:
            return None
        at, kind = math.inf, ""
        if self.phase is RINGING and (kinds is None or "ring" in kinds):
            at, kind = self.ring_deadline, "ring"
        if self._playbacks and (kinds is None or "playback" in kinds):
            for playback in self._playbacks:
                if not kind or playback.ends_at < at:
                    at, kind = playback.ends_at, "playback"
        gather = self._gather
        if (
            gather is not None
            and (not kind or gather.deadline < at)
            and (kinds is None or "gather" in kinds)
        ):
            at, kind = gather.deadline, "gather"
        return Timer(at, kind) if kind else None

    # -- time ------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Let time pass up to ``now``: ring timeout, playbacks, gather timeout."""
        if self.phase is RINGING and now >= self.ring_deadline:
            deadline = self.ring_deadline
            self._emit(
                ev.CallTimeout(
                    call_id=self.call_id, timestamp=iso_timestamp(deadline), status="no-answer"
                )
            )
            self._end(deadline, status="no-answer", reason="no_answer", cause=NO_ANSWER_CAUSE)
            return
        playbacks = self._playbacks
        if playbacks:
            for playback in [p for p in playbacks if p.ends_at <= now]:
                playbacks.remove(playback)
                playback.played = True
                self._finish(playback)
                self._emit(
                    ev.TtsPlayed(
                        call_id=self.call_id,
                        timestamp=iso_timestamp(playback.ends_at),
                        playback_id=playback.playback_id,
                    )
                )
            if not playbacks:
                self._playbacks = None
        gather = self._gather
        if gather is not None and now >= gather.deadline:
            self._gather = None
            self._emit(
                ev.GatherTimeout(
                    call_id=self.call_id,
                    timestamp=iso_timestamp(gather.deadline),
                    digits=gather.digits,
                )
            )

    # -- the callee ------------------------------------------------------------------

    def answer(
        self,
        now: float,
        *,
        machine: bool = False,
        unsure: bool = False,
        confidence: float | None = None,
    ) -> None:
        """The callee picks up: a person, a machine (voicemail), or one AMD cannot tell."""
        if self.phase is not RINGING:
            return
        self.phase = ANSWERED
        self.answered_at = now
        if self.request.use_amd:
            if unsure:
                status, cause, sure = ev.Amd.UNKNOWN, "NOTSURE", 0.5
            elif machine:
                status, cause, sure = ev.Amd.MACHINE, "LONGGREETING", 0.9
            else:
                status, cause, sure = ev.Amd.HUMAN, "HUMAN", 0.9
            self.amd = ev.Amd(status, cause, confidence if confidence is not None else sure)
        stamp = iso_timestamp(now)
        self._emit(
            ev.CallAnswered(call_id=self.call_id, timestamp=stamp, status="answered", amd=self.amd)
        )
        # Reading: every answered call is recorded until stopped or ended.
        self.recording_active = True
        self._emit(
            ev.RecordingStarted(call_id=self.call_id, timestamp=stamp, recording=self._recording())
        )

    def press(self, key: str, now: float) -> None:
        """The callee presses one key. Keys outside a gather are still reported."""
        if key not in KEYS:
            raise ValueError(f"not a telephone key: {key!r} (use 0-9, * and #)")
        if self.phase not in (ANSWERED, FORWARDED):
            return
        stamp = iso_timestamp(now)
        self._emit(ev.DtmfReceived(call_id=self.call_id, timestamp=stamp, digit=key))
        gather = self._gather
        if gather is None or self.phase is FORWARDED:
            return
        command = gather.command
        # Barge-in: a key during the prompt stops the prompt and starts the entry.
        gather.prompt_ends_at = min(gather.prompt_ends_at, now)
        if command.finish_on_key is not None and key == command.finish_on_key:
            self._gather = None
            self._emit(
                ev.GatherComplete(call_id=self.call_id, timestamp=stamp, digits=gather.digits)
            )
            return
        if command.valid_digits is not None and key not in command.valid_digits:
            return  # reading: a key outside validDigits is ignored by the gather
        gather.digits += key
        # Reading: the timeout restarts after each key (an inter-digit timeout).
        gather.deadline = now + command.timeout
        if len(gather.digits) >= command.num_digits:
            self._gather = None
            self._emit(
                ev.GatherComplete(call_id=self.call_id, timestamp=stamp, digits=gather.digits)
            )
        else:
            self._emit(
                ev.GatherProgress(call_id=self.call_id, timestamp=stamp, digits=gather.digits)
            )

    def decline(self, now: float) -> None:
        """The callee rejects the ringing call (busy): Q.850 17, "user busy"."""
        if self.phase is RINGING:
            self._end(now, status="busy", reason="busy", cause=USER_BUSY_CAUSE)

    def caller_hangs_up(self, now: float) -> None:
        if self.phase is ENDED:
            return
        if self.phase is RINGING:
            self._end(now, status="no-answer", reason="rejected", cause="21")
        else:
            self._end(now, status="completed", reason="normal_hangup", cause=NORMAL_CLEARING)

    # -- commands --------------------------------------------------------------------

    def _require_live(self, *, answered: bool = True) -> None:
        if self.phase is ENDED:
            raise CallNotFound("Call not found or already ended")
        if answered and self.phase is RINGING:
            raise CallNotFound("Call not found or not answered yet")

    def voice(self, command: Voice, now: float) -> Playback:
        self._require_live()
        return self._start_playback(now, text=command.text, file=None, method=command.play_to)

    def play(self, command: Play, now: float) -> Playback:
        self._require_live()
        return self._start_playback(now, text=None, file=command.file, method=command.play_to)

    def gather(self, command: Gather, now: float) -> GatherReply:
        self._require_live()
        if command.num_digits < 1 or command.num_digits > 64:
            raise BadRequest("numDigits must be between 1 and 64")
        if command.timeout <= 0:
            raise BadRequest("timeout must be a positive number of milliseconds")
        prompt = self.speech.duration(command.text) if command.text else 0.0
        # Reading: the timeout counts from the end of the prompt.
        self._gather = _GatherState(command, now, now + prompt, now + prompt + command.timeout)
        self._emit(ev.GatherStarted(call_id=self.call_id, timestamp=iso_timestamp(now)))
        timeout_ms = command.timeout_ms
        return GatherReply(
            message=f"Gathering {command.num_digits} digits with {timeout_ms}ms timeout",
            expected_digits=command.num_digits,
            timeout_ms=timeout_ms,
        )

    def forward(self, command: ForwardCall, now: float) -> ForwardReply:
        self._require_live()
        self._gather = None
        self._cut_playbacks()
        self.phase = FORWARDED
        self.forwarded_to = command.forward_number
        self._serial += 1
        return ForwardReply(
            message=f"Call forwarded to {command.forward_number}",
            forwarded_call_id=f"{self.call_id}.{self._serial}",
        )

    def hangup(self, now: float) -> HangupReply:
        self._require_live(answered=False)
        self._end(now, status="completed", reason="normal_hangup", cause=NORMAL_CLEARING)
        return HangupReply(message="Call hung up successfully")

    def stop_recording(self, now: float) -> StopRecordingReply:
        self._require_live()
        if not self.recording_active:
            raise CallNotFound("No active recording for this call")
        self.recording_active = False
        self._emit(
            ev.RecordingStopped(
                call_id=self.call_id, timestamp=iso_timestamp(now), recording=self._recording()
            )
        )
        return StopRecordingReply(message="Recording stopped")

    def playback_reply(self, playback: Playback) -> PlaybackReply:
        """The answer to a finished playback (``CallNotFound`` if the call ended)."""
        if not playback.played:
            raise CallNotFound("Call not found or already ended")
        if playback.text is not None:
            return PlaybackReply(
                "TTS played successfully", playback.playback_id, playback.method, text=playback.text
            )
        return PlaybackReply(
            "File played successfully", playback.playback_id, playback.method, file=playback.file
        )

    # -- internals -------------------------------------------------------------------

    def _start_playback(
        self, now: float, *, text: str | None, file: str | None, method: str
    ) -> Playback:
        self._serial += 1
        playbacks = self._playbacks
        starts = max([now, *(p.ends_at for p in playbacks)]) if playbacks else now
        length = self.speech.duration(text) if text is not None else self.speech.file_seconds
        playback = Playback(
            playback_id=f"tts-{self.call_id}-{self._serial}",
            text=text,
            file=file,
            starts_at=starts,
            ends_at=starts + length,
            method=method,
        )
        if playbacks is None:
            self._playbacks = [playback]
        else:
            playbacks.append(playback)
        return playback

    def _cut_playbacks(self) -> None:
        for playback in self._playbacks or ():
            playback.played = False
            self._finish(playback)
        self._playbacks = None

    def _finish(self, playback: Playback) -> None:
        if self.finished is None:
            self.finished = [playback]
        else:
            self.finished.append(playback)

    def _recording(self) -> ev.Recording:
        return ev.Recording(f"{self.call_id}.wav", f"rec-{self.call_id}", self.recording_active)

    def _end(self, now: float, *, status: str, reason: str, cause: str) -> None:
        answered = self.answered_at is not None
        stamp = iso_timestamp(now)
        recording = None
        if self.recording_active:
            self.recording_active = False
            recording = self._recording()
            self._emit(
                ev.RecordingCompleted(call_id=self.call_id, timestamp=stamp, recording=recording)
            )
        self._gather = None
        self._cut_playbacks()
        self.phase = ENDED
        self.ended_at = now
        self.end_reason = reason
        duration = round(now - self.answered_at, 3) if self.answered_at is not None else 0.0
        self._emit(
            ev.CallEnded(
                call_id=self.call_id,
                timestamp=stamp,
                status=status,
                end_reason=reason,
                hangup_cause=cause,
                was_answered=answered,
                duration=duration,
                amd=self.amd,
                recording=recording,
            )
        )

    def _emit(self, event: ev.Event) -> None:
        """Queue ``event`` for the host. Events carry no ``extra``: the model knows all
        its fields (the default, shared empty mapping)."""
        if self.emitted is None:
            self.emitted = [event]
        else:
            self.emitted.append(event)
