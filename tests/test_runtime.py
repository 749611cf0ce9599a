"""The runtime's rules, each shown through the in-memory fake on both backends."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import anyio
import pytest

from kaphila_flow import Call, CallEnded, Delivery, GatherFailed, Runtime, events
from kaphila_flow._commands import Command, ForwardCall, Gather, Hangup, MakeCall, Voice
from kaphila_flow.testing import Account, FakeKaphila

pytestmark = pytest.mark.anyio

#: A clock reading minus an earlier one can fall short of the delay slept by one
#: float rounding step (the loop adds the delay to a reading of any size).
ROUNDING = 1e-6


def after_end(kaphila: FakeKaphila, call_id: str) -> list[Command[Any]]:
    """Commands sent for ``call_id`` after its model ended (there must be none)."""
    model = kaphila.models[call_id]
    assert not model.live
    sent = kaphila.commands_for(call_id)
    # The model refuses commands after the end, so count what was sent after it.
    return [c for c in sent[_index_of_end(kaphila, call_id) :]]


def _index_of_end(kaphila: FakeKaphila, call_id: str) -> int:
    return len(kaphila.commands_for(call_id))


# -- when the flow runs --------------------------------------------------------------


async def test_flow_starts_only_when_answered(kaphila: FakeKaphila) -> None:
    ran = []

    async def flow(call: Call) -> None:
        ran.append(call.id)

    phone = await kaphila.call(flow, answer="no-answer", ring_timeout=20)
    result = await phone.result()
    assert result.status == "no-answer"
    assert ran == []
    assert result.answered_at is None
    assert result.duration is None


async def test_call_ended_before_answer_is_no_answer(kaphila: FakeKaphila) -> None:
    ran = []

    async def flow(call: Call) -> None:
        ran.append(1)

    phone = await kaphila.call(flow, answer="no-answer")
    await phone.hang_up()  # the callee rejects while it rings
    result = await phone.result()
    assert result.status == "no-answer"
    assert ran == []


# -- the end reaches the flow at whatever it awaits ----------------------------------


async def _hangup_during(
    kaphila: FakeKaphila, flow: Any, before_hangup: Any
) -> tuple[list[str], Any]:
    seen: list[str] = []

    async def wrapped(call: Call) -> None:
        try:
            await flow(call)
            seen.append("returned")
        except CallEnded:
            seen.append("CallEnded")
            raise
        finally:
            seen.append("finally")

    phone = await kaphila.call(wrapped)
    await before_hangup(phone)
    sent_before = len(kaphila.commands)
    await phone.hang_up()
    result = await phone.result()
    assert kaphila.commands[sent_before:] == [], "no command may follow the end"
    return seen, result


async def test_hangup_while_say_in_flight(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> None:
        await call.say("A long announcement that takes a while to speak to the caller.")
        await call.say("never said")

    seen, result = await _hangup_during(kaphila, flow, lambda phone: phone.hears())
    assert seen == ["CallEnded", "finally"]
    assert result.status == "hung-up"
    assert [type(c) for c in kaphila.commands[1:]] == [Voice]


async def test_hangup_while_gather_waits(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> None:
        await call.gather("Enter your code.", num_digits=4)

    async def prompt_heard(phone: Any) -> None:
        assert await phone.hears() == "Enter your code."

    seen, result = await _hangup_during(kaphila, flow, prompt_heard)
    assert seen == ["CallEnded", "finally"]
    assert result.status == "hung-up"


async def test_hangup_while_forward_in_flight() -> None:
    gate = anyio.Event()

    class SlowForward(FakeKaphila):
        async def send(self, command: Command[Any]) -> Any:
            reply = await super().send(command)
            if isinstance(command, ForwardCall):
                await gate.wait()  # the answer never comes before the hangup
            return reply

    async with SlowForward() as kaphila:

        async def flow(call: Call) -> None:
            await call.forward("16085550101")

        seen, result = await _hangup_during(kaphila, flow, lambda phone: phone.forwarded_to())
    assert seen == ["CallEnded", "finally"]
    assert result.status == "hung-up"
    assert result.forwarded_to is None


async def test_hangup_during_plain_sleep(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> None:
        await call.say("Please hold.")
        await anyio.sleep(3600)

    async def held(phone: Any) -> None:
        assert await phone.hears() == "Please hold."
        await phone.waits(5)  # the announcement finishes; the flow sleeps

    seen, result = await _hangup_during(kaphila, flow, held)
    assert seen == ["CallEnded", "finally"]
    assert result.status == "hung-up"


async def test_every_call_method_after_the_end_raises_at_once(kaphila: FakeKaphila) -> None:
    outcomes: list[str] = []

    async def flow(call: Call) -> None:
        with contextlib.suppress(CallEnded):
            await call.gather("Press a key.")
        sent = len(kaphila.commands)
        for step in (
            lambda: call.say("hello?"),
            lambda: call.gather("again?"),
            lambda: call.forward("16085550101"),
            lambda: call.hangup(),
            lambda: call.play("custom/welcome"),
            lambda: call.wait_for(events.DtmfReceived),
        ):
            try:
                await step()
            except CallEnded:
                outcomes.append("CallEnded")
        assert len(kaphila.commands) == sent

    phone = await kaphila.call(flow)
    await phone.hears()
    await phone.hang_up()
    result = await phone.result()
    assert outcomes == ["CallEnded"] * 6
    assert result.status == "hung-up"


async def test_flow_can_catch_the_end_and_return_a_value(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> str:
        try:
            await call.gather("Press a key.")
        except CallEnded as ended:
            return f"gone: {ended.reason}"
        return "stayed"

    phone = await kaphila.call(flow)
    await phone.hears()
    await phone.hang_up()
    result = await phone.result()
    assert result.status == "hung-up"
    assert result.value == "gone: normal_hangup"


# -- how a flow ends -----------------------------------------------------------------


async def test_exception_in_flow_fails_only_that_call(
    kaphila: FakeKaphila, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(call: Call) -> None:
        await call.say("Hello.")
        raise ZeroDivisionError("bug in the flow")

    async def fine(call: Call) -> str:
        await call.say("Hi.")
        return "ok"

    caplog.set_level(logging.ERROR, logger="kaphila_flow")
    bad = await kaphila.call(broken, number="16089270862")
    good = await kaphila.call(fine, number="16089270863")
    bad_result = await bad.result()
    good_result = await good.result()
    assert bad_result.status == "failed"
    assert isinstance(bad_result.error, ZeroDivisionError)
    assert isinstance(kaphila.commands_for(bad_result.call_id or "")[-1], Hangup)
    assert good_result.status == "completed"
    assert good_result.value == "ok"
    assert any(bad_result.call_id in r.getMessage() for r in caplog.records)


async def test_runtime_hangs_up_when_flow_returns(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> int:
        await call.say("Goodbye.")
        return 7

    phone = await kaphila.call(flow)
    result = await phone.result()
    assert result.status == "completed"
    assert result.value == 7
    assert [type(c).__name__ for c in kaphila.commands_for(result.call_id or "")] == [
        "Voice",
        "Hangup",
    ]


async def test_forwarded_call_is_not_hung_up(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> str:
        return await call.forward("+1 (608) 555-0101")

    phone = await kaphila.call(flow)
    assert await phone.forwarded_to() == "16085550101"
    result = await phone.result()
    assert result.status == "completed"
    assert result.value  # the forwarded leg's call id
    assert not any(isinstance(c, Hangup) for c in kaphila.commands)


# -- events in -----------------------------------------------------------------------


async def test_gather_outcome_before_the_gather_answer_is_kept() -> None:
    class RacingKaphila(FakeKaphila):
        async def send(self, command: Command[Any]) -> Any:
            reply = await super().send(command)
            if isinstance(command, Gather):
                # gather.complete lands before the /gather answer is read
                done = events.GatherComplete(call_id=command.call_id, digits="42", timestamp="t1")
                self.runtime.dispatch(done)
            return reply

    async def flow(call: Call) -> str:
        return await call.gather("Two digits.", num_digits=2)

    async with RacingKaphila() as kaphila:
        phone = await kaphila.call(flow)
        assert (await phone.result()).value == "42"


async def test_duplicate_delivery_is_applied_once(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> list[str]:
        first = await call.gather("First.")
        second = await call.gather("Second.")
        return [first, second]

    phone = await kaphila.call(flow)
    await phone.hears()
    # Deliver a gather.complete twice by hand; only one gather may take it.
    done = events.GatherComplete(
        call_id=phone.call_id or "", digits="5", timestamp="2026-01-01T00:00:01.250Z"
    )
    assert kaphila.runtime.dispatch(done).value == "delivered"
    assert kaphila.runtime.dispatch(done).value == "duplicate"
    assert await phone.hears() == "Second."
    await phone.press("6")
    assert (await phone.result()).value == ["5", "6"]


async def test_gather_timeout_returns_digits_so_far(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> str:
        return await call.gather("Your PIN.", num_digits=4, timeout=8)

    phone = await kaphila.call(flow)
    await phone.hears()
    await phone.press("12")
    await phone.stay_silent()
    assert (await phone.result()).value == "12"


async def test_gather_timeout_with_nothing_is_empty(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> str:
        return await call.gather("Press 1.", timeout=10)

    phone = await kaphila.call(flow)
    await phone.hears()
    await phone.stay_silent()
    result = await phone.result()
    assert result.value == ""
    # ten virtual seconds passed, and no real ones were needed for it
    assert kaphila.now() - kaphila.models[result.call_id or ""].created_at >= 10 - ROUNDING


async def test_gather_failed_raises(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> str:
        try:
            await call.gather("Press 1.")
        except GatherFailed as failed:
            return failed.reason
        return "no failure"

    phone = await kaphila.call(flow)
    await phone.hears()
    kaphila.runtime.dispatch(events.GatherFailed(call_id=phone.call_id or "", reason="dsp error"))
    assert (await phone.result()).value == "dsp error"


async def test_gather_without_outcome_returns_after_timeout_and_grace(kaphila: FakeKaphila) -> None:
    deliver = kaphila.runtime.dispatch
    outcomes = (events.GatherComplete, events.GatherTimeout, events.GatherFailed)
    kaphila.runtime.dispatch = lambda event, **kw: (  # type: ignore[method-assign]
        Delivery.DELIVERED if isinstance(event, outcomes) else deliver(event, **kw)
    )

    async def flow(call: Call) -> str:
        return await call.gather("Code.", num_digits=3, timeout=5)

    phone = await kaphila.call(flow)
    await phone.hears()
    await phone.press("9")  # gather.progress reports "9"; no outcome will ever come
    pressed_at = anyio.current_time()
    await phone.stay_silent()  # the gather times out at Kaphila; its outcome is lost
    await phone.waits(kaphila.runtime.gather_grace + 1)  # past the runtime's fallback
    assert (await phone.result()).value == "9"
    # the runtime gave up only once the timeout and its grace period had passed
    assert anyio.current_time() - pressed_at >= 5 + kaphila.runtime.gather_grace - ROUNDING


async def test_phone_fails_fast_when_flow_waits_for_caller(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> str:
        return await call.gather("Press 1 for sales.")

    phone = await kaphila.call(flow)
    assert await phone.hears() == "Press 1 for sales."
    with pytest.raises(
        AssertionError, match=r"waiting for the caller's keys for gather 'Press 1 for sales\.'"
    ):
        await phone.hears()
    await phone.press("1")
    assert (await phone.result()).value == "1"


async def test_result_fields_and_transcript(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> str:
        await call.say("Welcome.")
        digits = await call.gather("Press 1.", num_digits=1)
        await call.forward("16085550101")
        return digits

    phone = await kaphila.call(flow, use_amd=True)
    await phone.hears()
    await phone.hears()
    await phone.press("1")
    result = await phone.result()
    assert result.call_id and result.number == "16089270862"
    assert result.amd is not None and result.amd.status == "HUMAN"
    assert result.started_at and result.answered_at and result.ended_at
    assert result.started_at <= result.answered_at <= result.ended_at
    assert result.duration is not None and result.duration > 0
    kinds = [(e.kind, e.text) for e in result.transcript]
    assert kinds == [
        ("answered", "AMD HUMAN"),
        ("said", "Welcome."),
        ("prompt", "Press 1."),
        ("keys", "1"),
        ("forwarded", "16085550101"),
        ("ended", "completed"),
    ]


async def test_wait_for_returns_kept_events_and_times_out(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> str:
        await call.say("Press any key when ready.")
        key = await call.wait_for(events.DtmfReceived)
        try:
            await call.wait_for(events.DtmfReceived, timeout=30)
        except TimeoutError:
            return f"{key.digit} then nothing"
        return "two keys"

    phone = await kaphila.call(flow)
    assert await phone.hears() == "Press any key when ready."
    await phone.press("7")  # pressed while the announcement plays: kept for wait_for
    await phone.waits(40)
    assert (await phone.result()).value == "7 then nothing"


async def test_events_for_unknown_calls_become_dead_letters(kaphila: FakeKaphila) -> None:
    stray = events.DtmfReceived(call_id="999.1", digit="1")
    assert kaphila.runtime.dispatch(stray).value == "unknown-call"
    assert kaphila.runtime.dead_letters[-1].event == stray
    assert kaphila.runtime.dead_letters[-1].reason == "unknown call"


async def test_events_for_finished_calls_are_recorded(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> None:
        await call.say("Bye.")

    phone = await kaphila.call(flow)
    result = await phone.result()
    late = events.DtmfReceived(call_id=result.call_id or "", digit="3")
    assert kaphila.runtime.dispatch(late).value == "finished-call"
    assert kaphila.runtime.dead_letters[-1].reason == "the call has finished"


async def test_start_requires_a_running_runtime() -> None:
    runtime = Runtime(FakeKaphila())

    async def flow(call: Call) -> None:
        return None

    with pytest.raises(RuntimeError, match="async with runtime"):
        await runtime.start("16089270862", flow)


async def test_bad_flow_arguments_fail_clearly(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> None:
        with pytest.raises(ValueError, match="num_digits"):
            await call.gather("x", num_digits=0)
        with pytest.raises(ValueError, match="timeout"):
            await call.gather("x", timeout=-1)
        with pytest.raises(ValueError, match="finish_on_key"):
            await call.gather("x", finish_on_key="ab")
        with pytest.raises(ValueError, match="valid_digits"):
            await call.gather("x", valid_digits="1a")

    phone = await kaphila.call(flow)
    assert (await phone.result()).status == "completed"
    assert kaphila.commands_for(phone.call_id or "")[-1] == Hangup(phone.call_id or "")


async def test_call_caller_id_is_the_runtime_default_or_the_dial_option() -> None:
    async def flow(call: Call) -> str | None:
        return call.caller_id

    whitelist = Account(caller_ids=("16085550100", "16085550199"))
    async with FakeKaphila(caller_id="+1 608 555 0100", account=whitelist) as kaphila:
        default = await (await kaphila.call(flow)).result()
        chosen = await (
            await kaphila.call(flow, number="16089270863", caller_id="16085550199")
        ).result()
    assert default.value == "16085550100"
    assert chosen.value == "16085550199"
    sent = [c for c in kaphila.commands if isinstance(c, MakeCall)]
    assert [c.caller_id for c in sent] == ["16085550100", "16085550199"]


async def test_a_caller_id_the_account_has_not_whitelisted_is_refused() -> None:
    async def flow(call: Call) -> str | None:
        return call.caller_id

    async with FakeKaphila(caller_id="16085550100") as kaphila:
        refused = await (await kaphila.call(flow, caller_id="16085550199")).result()
    assert refused.status == "failed"
    assert "not whitelisted" in str(refused.error)


async def test_the_makecall_sent_carries_every_option_start_was_given(
    kaphila: FakeKaphila,
) -> None:
    async def flow(call: Call) -> str:
        return call.id

    plain = await kaphila.runtime.start("+1 608 927 0862", flow)
    chosen = await kaphila.runtime.start(
        "16089270863", flow, use_amd=True, voice="en-GB-Standard-A", ring_timeout=45
    )
    assert (await plain.result()).status == (await chosen.result()).status == "completed"
    # Each call dials from its own task: the two requests may leave in either order.
    sent = sorted((c for c in kaphila.commands if isinstance(c, MakeCall)), key=lambda c: c.number)
    assert [(c.number, c.use_amd, c.voice_name, c.ring_timeout) for c in sent] == [
        ("16089270862", False, None, 30),
        ("16089270863", True, "en-GB-Standard-A", 45),
    ]
    # Each request names its own call's webhook URL, the one its handle shows.
    assert [c.webhook_url for c in sent] == [plain.webhook_url, chosen.webhook_url]
    assert plain.webhook_url and chosen.webhook_url and plain.webhook_url != chosen.webhook_url
