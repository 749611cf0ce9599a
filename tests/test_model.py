"""The one model of a call, without I/O: states, commands, events and timers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kaphila_flow import events
from kaphila_flow._commands import ForwardCall, Gather, MakeCall, Voice
from kaphila_flow._exceptions import BadRequest, CallNotFound
from kaphila_flow._model import CallModel, Phase, SpeechTiming, iso_timestamp

T0 = 1_767_225_600.0


def make(use_amd: bool = False, ring_timeout: int = 30) -> CallModel:
    return CallModel("1.1", MakeCall("16089270862", use_amd=use_amd, ring_timeout=ring_timeout), T0)


def names(model: CallModel) -> list[str]:
    return [e.name for e in model.take_events()]


def test_timestamps_are_iso_utc_with_milliseconds() -> None:
    assert iso_timestamp(T0 + 0.25) == "2026-01-01T00:00:00.250Z"


@pytest.mark.parametrize(
    "moment",
    [
        T0 + 0.9999995,  # rounds up to the next second
        T0 + 86_399.9999996,  # and to the next day
        T0 + 1.0004999,
        T0 + 1.0005,
        0.0,
        -0.0000004,  # before the epoch, rounding to it
        -1.25,
        951_782_400.5,  # 2000-02-29
        4_102_444_799.999,  # 2099-12-31
    ],
)
def test_timestamps_match_datetime(moment: float) -> None:
    expected = datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")
    assert iso_timestamp(moment) == expected.replace("+00:00", "Z")


def test_ringing_then_answered_with_amd() -> None:
    model = make(use_amd=True)
    model.answer(T0 + 1, machine=True)
    taken = model.take_events()
    assert [e.name for e in taken] == ["call.initiated", "call.answered", "recording.started"]
    answered = taken[1]
    assert isinstance(answered, events.CallAnswered)
    assert answered.amd is not None and answered.amd.is_machine


def test_no_answer_times_out_then_ends() -> None:
    model = make(ring_timeout=20)
    assert model.next_timer() is not None and model.next_timer().kind == "ring"  # type: ignore[union-attr]
    model.advance(T0 + 20)
    taken = model.take_events()
    assert [e.name for e in taken] == ["call.initiated", "call.timeout", "call.ended"]
    ended = taken[-1]
    assert isinstance(ended, events.CallEnded) and ended.was_answered is False
    assert model.phase is Phase.ENDED


def test_commands_before_answer_and_after_end_are_404() -> None:
    model = make()
    with pytest.raises(CallNotFound):
        model.voice(Voice("1.1", "hi"), T0)
    model.answer(T0)
    model.caller_hangs_up(T0 + 1)
    with pytest.raises(CallNotFound):
        model.gather(Gather("1.1", "x"), T0 + 2)
    with pytest.raises(CallNotFound):
        model.hangup(T0 + 2)


def test_playback_takes_time_in_proportion_to_the_text() -> None:
    timing = SpeechTiming()
    assert timing.duration("one two three four five") == pytest.approx(2.0)
    assert timing.duration("hi") == timing.minimum
    model = make()
    model.answer(T0)
    playback = model.voice(Voice("1.1", "one two three four five"), T0)
    assert playback.ends_at == pytest.approx(T0 + 2)
    model.advance(T0 + 1)
    assert model.take_finished() == []
    model.advance(T0 + 2)
    assert model.take_finished() == [playback] and playback.played
    assert model.playback_reply(playback).message == "TTS played successfully"


def test_hangup_during_playback_cuts_it_with_404() -> None:
    model = make()
    model.answer(T0)
    playback = model.voice(Voice("1.1", "a long text " * 10), T0)
    model.caller_hangs_up(T0 + 1)
    assert model.take_finished() == [playback] and playback.played is False
    with pytest.raises(CallNotFound):
        model.playback_reply(playback)


def test_gather_collects_keys_with_progress_and_completes() -> None:
    model = make()
    model.answer(T0)
    model.take_events()
    reply = model.gather(Gather("1.1", None, num_digits=3, timeout=5), T0)
    assert reply.message == "Gathering 3 digits with 5000ms timeout"
    for i, key in enumerate("123"):
        model.press(key, T0 + 1 + i)
    taken = model.take_events()
    assert [e.name for e in taken] == [
        "gather.started",
        "dtmf.received",
        "gather.progress",
        "dtmf.received",
        "gather.progress",
        "dtmf.received",
        "gather.complete",
    ]
    assert isinstance(taken[-1], events.GatherComplete) and taken[-1].digits == "123"


def test_gather_finish_key_valid_digits_and_timeout() -> None:
    model = make()
    model.answer(T0)
    model.gather(
        Gather("1.1", None, num_digits=6, timeout=5, finish_on_key="#", valid_digits="12"), T0
    )
    model.press("1", T0 + 1)
    model.press("9", T0 + 2)  # ignored by the gather (not valid)
    model.press("#", T0 + 3)
    done = [e for e in model.take_events() if isinstance(e, events.GatherComplete)]
    assert [e.digits for e in done] == ["1"]
    model.gather(Gather("1.1", "prompt text", num_digits=4, timeout=5), T0 + 4)
    model.press("7", T0 + 5)
    model.advance(T0 + 9.9)  # the timeout restarts after each key
    assert not any(isinstance(e, events.GatherTimeout) for e in model.take_events())
    model.advance(T0 + 10)
    timeouts = [e for e in model.take_events() if isinstance(e, events.GatherTimeout)]
    assert [e.digits for e in timeouts] == ["7"]


def test_gather_rejects_bad_arguments() -> None:
    model = make()
    model.answer(T0)
    with pytest.raises(BadRequest):
        model.gather(Gather("1.1", None, num_digits=0), T0)


def test_forward_then_callee_hangs_up() -> None:
    model = make()
    model.answer(T0)
    reply = model.forward(ForwardCall("1.1", "16085550101"), T0 + 1)
    assert reply.forwarded_call_id and model.phase is Phase.FORWARDED
    model.caller_hangs_up(T0 + 30)
    *_, completed, ended = model.take_events()
    assert isinstance(completed, events.RecordingCompleted)
    assert isinstance(ended, events.CallEnded) and ended.duration == 30
    assert ended.recording is not None and ended.recording.filename == "1.1.wav"


def test_press_rejects_non_keys() -> None:
    model = make()
    model.answer(T0)
    with pytest.raises(ValueError, match="telephone key"):
        model.press("a", T0)
