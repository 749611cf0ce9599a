"""A call's verdict comes from everything known, not from the order events arrive in.

Hypothesis makes one call's webhooks (answered or not, with or without AMD,
``call.ended`` with ``wasAnswered`` true, false or absent, ``callDuration``,
``call.timeout``, gather outcomes, keys...), then delivers shuffles of them through the
runtime's own intake (``Runtime.receive_webhook``), all at once or one at a time with
the runtime acting in between, and expects the same status, end reason and AMD each time.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kaphila_flow import Call, CallResult, Runtime
from kaphila_flow.testing import MockTransport, default_reply, virtual_time, virtual_time_backend

CALL_ID = "1.1"  # default_reply's call id
WEBHOOK_URL = "https://receiver.kaphila-test.invalid/webhooks"
T0 = 1_767_225_600.0

amds = st.none() | st.sampled_from(["HUMAN", "MACHINE", "UNKNOWN"]).map(
    lambda status: {"status": status, "cause": "test", "confidence": 0.9}
)


@st.composite
def call_events(draw: st.DrawFn) -> tuple[list[dict[str, Any]], str]:
    """One call's webhooks in the order they happened, and the status they mean."""
    answered = draw(st.booleans())
    amd = draw(amds) if answered else None
    happened: list[dict[str, Any]] = []
    if draw(st.booleans()):
        happened.append({"event": "call.initiated", "status": "initiated"})
    ended: dict[str, Any] | None = {"event": "call.ended", "status": "completed"}
    if answered:
        answer: dict[str, Any] = {"event": "call.answered", "status": "answered"}
        if amd is not None:
            answer["amd"] = amd
        happened.append(answer)
        for _ in range(draw(st.integers(0, 3))):
            kind = draw(st.sampled_from(["dtmf", "gather", "progress", "played"]))
            if kind == "dtmf":
                happened.append({"event": "dtmf.received", "digit": draw(st.sampled_from("19#"))})
            elif kind == "gather":
                happened.append({"event": "gather.started"})
                outcome = draw(st.sampled_from(["gather.complete", "gather.timeout"]))
                happened.append({"event": outcome, "digits": draw(st.sampled_from(["", "1"]))})
            elif kind == "progress":
                happened.append({"event": "gather.progress", "digits": "4"})
            else:
                happened.append({"event": "tts.played", "playbackId": "p1"})
        if draw(st.booleans()):
            ended = None  # the flow's own hangup ends it: nothing came before
        else:
            assert ended is not None
            ended["endReason"] = draw(st.sampled_from(["normal_hangup", "caller_hangup"]))
            ended["hangupCause"] = "16"
            if draw(st.booleans()):
                ended["wasAnswered"] = True
            elif amd is None or amd["status"] == "UNKNOWN":
                ended = {**ended, "wasAnswered": True}  # nothing else would say so
            ended["callDuration"] = draw(st.integers(0, 90))
            if amd is not None:
                ended["amd"] = amd
        expected = "completed" if ended is None else "hung-up"
    else:
        if draw(st.booleans()):
            happened.append({"event": "call.timeout", "status": "no-answer"})
        ended["endReason"] = draw(st.sampled_from(["no_answer", "busy"]))
        ended["hangupCause"] = "19"
        if draw(st.booleans()) or len(happened) == 0 or happened[-1]["event"] != "call.timeout":
            ended["wasAnswered"] = False
        ended["callDuration"] = draw(st.sampled_from([0, 30]))  # ringing may count
        expected = "no-answer"
    if ended is not None:
        happened.append(ended)
    for index, event in enumerate(happened):
        moment = datetime.fromtimestamp(T0 + index * 0.25, UTC)
        event["timestamp"] = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        event["callId"] = CALL_ID
    return happened, expected


async def greet(call: Call) -> str:
    await anyio.sleep(5)  # every webhook is in by then, however spaced
    await call.say("Hello.")
    return "greeted"


def verdict(result: CallResult) -> tuple[object, ...]:
    return (result.status, result.end_reason, result.amd, result.value)


async def deliver(order: list[dict[str, Any]], spaced: bool) -> CallResult:
    async with Runtime(MockTransport(default_reply), webhook_url=WEBHOOK_URL) as runtime:
        handle = await runtime.start("16089270862", greet)
        assert await handle.placed() == CALL_ID
        assert handle.webhook_url is not None
        token = handle.webhook_url.rsplit("/", 1)[-1]
        for payload in order:
            reply = runtime.receive_webhook(token, json.dumps(payload).encode())
            assert reply.status < 300
            if spaced:
                await anyio.sleep(0.01)  # the runtime acts on what it has so far
        with anyio.fail_after(600):  # virtual time
            return await handle.result()


@pytest.mark.fuzz
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@settings(deadline=None)  # 100 examples in `make test`, more in `make fuzz`
@given(story=call_events(), data=st.data(), spaced=st.booleans())
def test_shuffled_events_give_the_same_verdict(
    backend: str, story: tuple[list[dict[str, Any]], str], data: st.DataObject, spaced: bool
) -> None:
    happened, expected = story
    orders = [happened, list(reversed(happened))]
    orders += [data.draw(st.permutations(happened)) for _ in range(3)]
    name, options = virtual_time_backend(backend)

    async def every_order() -> list[tuple[object, ...]]:
        with virtual_time():
            return [verdict(await deliver(order, spaced)) for order in orders]

    verdicts = anyio.run(every_order, backend=name, backend_options=options)
    assert verdicts[0][0] == expected
    assert all(v == verdicts[0] for v in verdicts), verdicts


@pytest.mark.anyio
async def test_call_ended_answered_before_call_answered_is_never_no_answer() -> None:
    """The issue's case: a short answered call whose call.ended overtook call.answered."""
    happened = [
        {"event": "call.ended", "callId": CALL_ID, "status": "completed",
         "endReason": "normal_hangup", "wasAnswered": True, "callDuration": 2,
         "timestamp": "2026-01-01T00:00:02.000Z"},
        {"event": "call.answered", "callId": CALL_ID, "status": "answered",
         "timestamp": "2026-01-01T00:00:01.000Z"},
    ]  # fmt: skip
    for spaced in (False, True):
        with virtual_time():
            result = await deliver(happened, spaced)
        assert result.status == "hung-up"
        assert result.end_reason == "normal_hangup"
        assert result.answered_at is not None
