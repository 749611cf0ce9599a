"""Menus, free entry and confirmation: retries, reprompts and failure."""

from __future__ import annotations

import logging

import pytest

from kaphila_flow import Call, MenuFailed, events
from kaphila_flow._commands import Gather, Voice
from kaphila_flow.testing import FakeKaphila

pytestmark = pytest.mark.anyio

PROMPT = "Press 1 for sales, 2 for support."


async def sales_or_support(call: Call) -> str:
    return await call.menu(
        PROMPT, {"1": "sales", "2": "support"}, tries=3, reprompt="1 sales, 2 support."
    )


async def test_menu_returns_the_chosen_value_with_barge_in(kaphila: FakeKaphila) -> None:
    phone = await kaphila.call(sales_or_support)
    assert await phone.hears() == PROMPT
    await phone.press("2")  # during the prompt: barge-in
    assert (await phone.result()).value == "support"
    gathers = [c for c in kaphila.commands if isinstance(c, Gather)]
    assert len(gathers) == 1 and gathers[0].text == PROMPT  # the prompt is in the gather itself


async def test_menu_replays_on_invalid_key_and_reprompts_on_silence(kaphila: FakeKaphila) -> None:
    phone = await kaphila.call(sales_or_support)
    assert await phone.hears() == PROMPT
    await phone.press("7")
    assert await phone.hears() == "Sorry, that is not a valid choice. 1 sales, 2 support."
    await phone.stay_silent()
    assert await phone.hears() == "Sorry, I did not hear your choice. 1 sales, 2 support."
    await phone.press("1")
    assert (await phone.result()).value == "sales"


async def test_menu_fails_after_its_tries(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> str:
        try:
            await call.menu(PROMPT, {"1": "sales"}, tries=2, failure="Goodbye.")
        except MenuFailed as failed:
            return f"failed after {failed.tries}"
        return "chosen"

    phone = await kaphila.call(flow)
    await phone.hears()
    await phone.stay_silent()
    await phone.hears()
    await phone.press("9")
    assert await phone.hears() == "Goodbye."
    assert (await phone.result()).value == "failed after 2"
    assert sum(isinstance(c, Gather) for c in kaphila.commands) == 2


async def test_menu_with_multi_digit_options(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> str:
        return await call.menu("Enter an extension.", {"10": "alice", "11": "bob", "20": "carol"})

    phone = await kaphila.call(flow)
    await phone.hears()
    await phone.press("12")
    assert await phone.hears() == "Sorry, that is not a valid choice. Enter an extension."
    await phone.press("11")
    assert (await phone.result()).value == "bob"
    gathers = [c for c in kaphila.commands if isinstance(c, Gather)]
    assert {g.num_digits for g in gathers} == {2}


async def test_menu_with_keys_of_different_lengths_ends_on_pound(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> str:
        return await call.menu("1 for news, 10 for weather.", {"1": "news", "10": "weather"})

    phone = await kaphila.call(flow)
    await phone.hears()
    await phone.press("1#")
    assert (await phone.result()).value == "news"
    assert next(c for c in kaphila.commands if isinstance(c, Gather)).finish_on_key == "#"


async def test_menu_rejects_bad_options(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> None:
        with pytest.raises(ValueError, match="at least one option"):
            await call.menu("x", {})
        with pytest.raises(ValueError, match="telephone keys"):
            await call.menu("x", {"a": 1})
        with pytest.raises(ValueError, match="tries"):
            await call.menu("x", {"1": 1}, tries=0)

    assert (await (await kaphila.call(flow)).result()).status == "completed"


async def test_ask_validates_and_retries(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> str:
        return await call.ask(
            "Account number, then pound.", max_digits=6, validate=lambda d: len(d) == 6
        )

    phone = await kaphila.call(flow)
    await phone.hears()
    await phone.press("123#")
    assert await phone.hears() == "Sorry, that entry is not valid. Account number, then pound."
    await phone.press("123456")
    assert (await phone.result()).value == "123456"


async def test_ask_fails_after_tries(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> str:
        return await call.ask("PIN.", max_digits=4, tries=2, failure=None)

    phone = await kaphila.call(flow)
    await phone.hears()
    await phone.stay_silent()
    assert await phone.hears() == "Sorry, I did not get your entry. PIN."
    await phone.stay_silent()
    result = await phone.result()
    assert result.status == "failed"
    assert isinstance(result.error, MenuFailed)
    assert "entry" in str(result.error)


async def test_sensitive_entry_never_shows_the_digits(
    kaphila: FakeKaphila, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pin = "9753"

    async def flow(call: Call) -> str:
        entered = await call.ask(
            "Your PIN, then pound.",
            max_digits=4,
            sensitive=True,
            tries=2,
            validate=lambda d: len(d) == 4,
        )
        return "verified" if entered == pin else "wrong"

    phone = await kaphila.call(flow)
    await phone.hears()
    await phone.press("97")
    await phone.stay_silent()  # a timeout with a partial entry: retried
    await phone.hears()
    await phone.press(pin)
    result = await phone.result()
    assert result.value == "verified"
    seen = [r.getMessage() for r in caplog.records]
    seen += [str(e) for e in result.transcript] + [repr(result), repr(phone), str(result.error)]
    assert not any(pin in text or "97" in text for text in seen)
    assert [e.text for e in result.transcript if e.kind == "keys"] == ["•"] * 6


async def test_confirm(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> bool:
        return await call.confirm("Press 1 to confirm, 2 to cancel.")

    phone = await kaphila.call(flow)
    await phone.hears()
    await phone.press("2")
    assert (await phone.result()).value is False


async def test_confirm_with_other_keys(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> bool:
        return await call.confirm("Star for yes, pound for no.", yes="*", no="#")

    phone = await kaphila.call(flow)
    await phone.hears()
    await phone.press("*")
    assert (await phone.result()).value is True


async def test_keys_stream(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> str:
        await call.say("Type keys, star to finish.")
        typed = ""
        async for key in call.keys(timeout=20):
            if key == "*":
                break
            typed += key
        return typed

    phone = await kaphila.call(flow)
    await phone.hears()
    await phone.press("42*")
    assert (await phone.result()).value == "42"


async def test_keys_stream_ends_after_silence(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> list[str]:
        return [key async for key in call.keys(timeout=5)]

    phone = await kaphila.call(flow)
    await phone.press("3")
    await phone.waits(6)
    assert (await phone.result()).value == ["3"]


async def test_machine_gets_the_voicemail_text(kaphila: FakeKaphila) -> None:
    async def menu_flow(call: Call) -> str:
        return "menu"

    phone = await kaphila.call(
        menu_flow, answer="machine", use_amd=True, on_machine="Please call us back."
    )
    assert await phone.hears() == "Please call us back."
    result = await phone.result()
    assert result.value == "voicemail"
    assert result.answered_by == "machine"
    assert [type(c).__name__ for c in kaphila.commands[1:]] == ["Voice", "Hangup"]


async def test_machine_gets_an_on_machine_flow_and_humans_the_main_one(
    kaphila: FakeKaphila,
) -> None:
    async def for_machines(call: Call) -> str:
        assert call.amd is not None and call.amd.is_machine
        await call.leave_voicemail("Hello machine.")
        return "left"

    async def for_humans(call: Call) -> str:
        return "talked"

    machine = await kaphila.call(
        for_humans, answer="machine", use_amd=True, on_machine=for_machines
    )
    human = await kaphila.call(
        for_humans, number="16089270863", answer="human", use_amd=True, on_machine=for_machines
    )
    assert (await machine.result()).value == "left"
    human_result = await human.result()
    assert human_result.value == "talked"
    assert human_result.answered_by == "human"


async def test_play_sends_the_file(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> None:
        await call.play("custom/welcome")

    result = await (await kaphila.call(flow)).result()
    assert result.status == "completed"
    assert [e.text for e in result.transcript if e.kind == "played"] == ["custom/welcome"]


async def test_wait_for_with_an_example_event(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> str:
        await call.say("Press any key.")
        event = await call.wait_for(events.DtmfReceived, events.GatherComplete, timeout=10)
        return event.name

    phone = await kaphila.call(flow)
    await phone.hears()
    await phone.press("5")
    assert (await phone.result()).value == "dtmf.received"
    assert isinstance(kaphila.commands[1], Voice)


async def test_recordings_are_collected_and_can_be_stopped(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> list[str]:
        await call.say("This call is recorded. Stopping now.")
        await call.stop_recording()
        return [event.name for event in call.recordings]

    result = await (await kaphila.call(flow)).result()
    assert result.value == ["recording.started", "recording.stopped"]
    assert [event.name for event in result.recordings] == ["recording.started", "recording.stopped"]
