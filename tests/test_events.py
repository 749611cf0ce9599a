"""parse_event: typed events from webhook payloads, pure and strict about types."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kaphila_flow import InvalidEvent, events, parse_event


def test_call_answered_with_amd() -> None:
    event = parse_event(
        {
            "callId": "1758549398.181",
            "event": "call.answered",
            "status": "answered",
            "amd": {"status": "HUMAN", "confidence": 0.9},
            "timestamp": "2025-09-20T19:44:29Z",
        }
    )
    assert isinstance(event, events.CallAnswered)
    assert event.amd == events.Amd("HUMAN", None, 0.9)
    assert event.amd.is_human and not event.amd.is_machine
    assert event.timestamp == "2025-09-20T19:44:29Z"


def test_call_ended_fields() -> None:
    event = parse_event(
        {
            "callId": "1.1",
            "event": "call.ended",
            "status": "completed",
            "endReason": "normal_hangup",
            "hangupCause": 16,
            "wasAnswered": True,
            "callDuration": 42.5,
            "recording": {"filename": "a.wav", "recordingId": "r1", "active": False},
        }
    )
    assert isinstance(event, events.CallEnded)
    assert (event.end_reason, event.hangup_cause, event.was_answered, event.duration) == (
        "normal_hangup",
        "16",
        True,
        42.5,
    )
    assert event.recording == events.Recording("a.wav", "r1", False)


@pytest.mark.parametrize(
    ("payload", "cls", "attr", "value"),
    [
        (
            {"event": "gather.complete", "digits": "123456"},
            events.GatherComplete,
            "digits",
            "123456",
        ),
        ({"event": "gather.timeout", "digits": ""}, events.GatherTimeout, "digits", ""),
        ({"event": "gather.timeout"}, events.GatherTimeout, "digits", ""),
        ({"event": "gather.progress", "digits": "12"}, events.GatherProgress, "digits", "12"),
        ({"event": "gather.failed", "reason": "dsp"}, events.GatherFailed, "reason", "dsp"),
        ({"event": "dtmf.received", "digit": "#"}, events.DtmfReceived, "digit", "#"),
        ({"event": "tts.played", "playbackId": "tts-1"}, events.TtsPlayed, "playback_id", "tts-1"),
        ({"event": "call.timeout"}, events.CallTimeout, "status", None),
        (
            {"event": "call.initiated", "status": "ringing"},
            events.CallInitiated,
            "status",
            "ringing",
        ),
        ({"event": "gather.started"}, events.GatherStarted, "status", None),
        ({"event": "recording.started"}, events.RecordingStarted, "recording", None),
        ({"event": "recording.completed"}, events.RecordingCompleted, "recording", None),
        ({"event": "recording.stopped"}, events.RecordingStopped, "recording", None),
    ],
)
def test_every_documented_event(
    payload: dict[str, object], cls: type, attr: str, value: object
) -> None:
    event = parse_event({"callId": "9.9", **payload})
    assert type(event) is cls
    assert getattr(event, attr) == value
    assert event.name == payload["event"]


def test_unknown_event_and_fields_are_kept() -> None:
    event = parse_event({"callId": "1", "event": "sms.received", "body": "hi"})
    assert isinstance(event, events.UnknownEvent)
    assert event.name == "sms.received"
    assert event.extra == {"body": "hi"}
    known = parse_event({"callId": "1", "event": "gather.complete", "digits": "1", "newField": [1]})
    assert known.extra == {"newField": [1]}
    assert known.to_payload()["newField"] == [1]


def test_an_event_with_no_extra_fields_has_an_empty_read_only_extra() -> None:
    parsed = parse_event({"callId": "1", "event": "gather.complete", "digits": "12"})
    built = events.CallAnswered(call_id="1")
    for event in (parsed, built):
        assert event.extra == {} and len(event.extra) == 0 and list(event.extra) == []
        assert "digits" not in event.extra and event.extra.get("x", 7) == 7
        with pytest.raises(KeyError):
            event.extra["anything"]
        with pytest.raises(TypeError):
            event.extra["x"] = 1  # type: ignore[index]
    assert parsed.to_payload() == {"event": "gather.complete", "callId": "1", "digits": "12"}


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ([], "JSON object"),
        (None, "JSON object"),
        ({"event": "call.answered"}, "missing field 'callId'"),
        ({"callId": "1"}, "missing field 'event'"),
        ({"callId": 1, "event": "call.answered"}, "'callId' must be a non-empty string"),
        ({"callId": "", "event": "call.answered"}, "'callId'"),
        ({"callId": "1", "event": "gather.complete", "digits": 5}, "'digits' must be a string"),
        (
            {"callId": "1", "event": "call.ended", "wasAnswered": "yes"},
            "'wasAnswered' must be true",
        ),
        ({"callId": "1", "event": "call.ended", "callDuration": "long"}, "'callDuration'"),
        ({"callId": "1", "event": "call.answered", "amd": "HUMAN"}, "'amd' must be an object"),
        ({"callId": "x" * 500, "event": "call.answered"}, "longer than"),
    ],
)
def test_bad_payloads_raise_invalid_event(payload: object, needle: str) -> None:
    with pytest.raises(InvalidEvent, match=needle) as caught:
        parse_event(payload)
    assert isinstance(caught.value, ValueError)


def test_dedupe_key_ignores_key_order_but_not_content() -> None:
    a = parse_event({"callId": "1", "event": "dtmf.received", "digit": "1", "timestamp": "t"})
    b = parse_event({"timestamp": "t", "digit": "1", "event": "dtmf.received", "callId": "1"})
    c = parse_event({"callId": "1", "event": "dtmf.received", "digit": "2", "timestamp": "t"})
    assert a.dedupe_key == b.dedupe_key != c.dedupe_key


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(
    st.dictionaries(
        st.sampled_from(
            ["callId", "event", "digits", "digit", "amd", "status", "wasAnswered", "x"]
        ),
        json_values,
    )
)
def test_parse_event_only_ever_raises_invalid_event(payload: dict[str, object]) -> None:
    try:
        event = parse_event(payload)
    except InvalidEvent:
        return
    assert parse_event(event.to_payload()) == event
