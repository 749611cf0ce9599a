"""Every branch of every example bot, through the fake, on both backends."""

from __future__ import annotations

import logging

import pytest

from kaphila_flow.testing import FakeKaphila
from kaphila_flow.testing._fake import Phone

from .examples_loader import load_example

pytestmark = pytest.mark.anyio

ivr_menu = load_example("ivr_menu")
pin_entry = load_example("pin_entry")
appointment_confirm = load_example("appointment_confirm")
voicemail_drop = load_example("voicemail_drop")
survey = load_example("survey")
support_line = load_example("support_line")


async def hang_up_and_check(phone: Phone) -> None:
    await phone.hang_up()
    result = await phone.result()
    assert result.status == "hung-up"


# -- ivr_menu ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "team", "number"), [("1", "sales", ivr_menu.SALES), ("2", "support", ivr_menu.SUPPORT)]
)
async def test_ivr_menu_routes(kaphila: FakeKaphila, key: str, team: str, number: str) -> None:
    phone = await kaphila.call(ivr_menu.flow)
    assert await phone.hears() == "Welcome to our company."
    assert await phone.hears() == "Press 1 for Sales, 2 for Support."
    await phone.press(key)
    assert await phone.hears() == f"Connecting you to {team}."
    assert await phone.forwarded_to() == number
    assert (await phone.result()).value == team


async def test_ivr_menu_wrong_key_then_silence_then_choice(kaphila: FakeKaphila) -> None:
    phone = await kaphila.call(ivr_menu.flow)
    await phone.hears()
    await phone.hears()
    await phone.press("9")
    assert (
        await phone.hears()
        == "Sorry, that is not a valid choice. Press 1 for Sales, or 2 for Support."
    )
    await phone.stay_silent()
    assert (await phone.hears()).startswith("Sorry, I did not hear your choice.")
    await phone.press("2")
    assert (await phone.result()).value == "support"


async def test_ivr_menu_gives_up_after_three_tries(kaphila: FakeKaphila) -> None:
    phone = await kaphila.call(ivr_menu.flow)
    await phone.hears()
    for _ in range(3):
        await phone.hears()
        await phone.stay_silent()
    assert await phone.hears() == "Sorry, we could not get your answer. Goodbye."
    result = await phone.result()
    assert result.value == "no choice"
    assert result.status == "completed"


async def test_ivr_menu_hangup_in_the_middle(kaphila: FakeKaphila) -> None:
    phone = await kaphila.call(ivr_menu.flow)
    await phone.hears()
    await phone.hears()
    await hang_up_and_check(phone)


# -- pin_entry -----------------------------------------------------------------------


async def test_pin_entry_verified_and_never_logged(
    kaphila: FakeKaphila, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    phone = await kaphila.call(pin_entry.flow)
    assert await phone.hears() == "Please enter your 6-digit PIN code, followed by the pound key."
    await phone.press(pin_entry.EXPECTED_PIN + "#")
    assert await phone.hears() == "Thank you. Your identity is confirmed."
    result = await phone.result()
    assert result.value == "verified"
    texts = [r.getMessage() for r in caplog.records] + [str(e) for e in result.transcript]
    texts += [repr(result), repr(phone), result.transcript_text()]
    assert not any(pin_entry.EXPECTED_PIN in text for text in texts)


async def test_pin_entry_wrong_pin(kaphila: FakeKaphila) -> None:
    phone = await kaphila.call(pin_entry.flow)
    await phone.hears()
    await phone.press("654321")
    assert await phone.hears() == "That PIN is not correct. Goodbye."
    assert (await phone.result()).value == "denied"


async def test_pin_entry_short_pin_is_asked_again(kaphila: FakeKaphila) -> None:
    phone = await kaphila.call(pin_entry.flow)
    await phone.hears()
    await phone.press("12#")
    assert (await phone.hears()).startswith("Sorry, that entry is not valid.")
    await phone.press("123456")
    assert (await phone.result()).value == "verified"


async def test_pin_entry_silence_three_times(kaphila: FakeKaphila) -> None:
    phone = await kaphila.call(pin_entry.flow)
    for _ in range(3):
        await phone.hears()
        await phone.stay_silent()
    await phone.hears()  # the failure message
    assert (await phone.result()).value == "no pin"


async def test_pin_entry_hangup_in_the_middle(kaphila: FakeKaphila) -> None:
    phone = await kaphila.call(pin_entry.flow)
    await phone.hears()
    await phone.press("12")
    await hang_up_and_check(phone)


# -- appointment_confirm -------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "reply", "value"),
    [("1", "Confirmed! Thank you.", "confirmed"), ("2", "Cancelled. Goodbye.", "cancelled")],
)
async def test_appointment_confirm(kaphila: FakeKaphila, key: str, reply: str, value: str) -> None:
    phone = await kaphila.call(appointment_confirm.flow)
    assert await phone.hears() == "To confirm your appointment, press 1. To cancel, press 2."
    await phone.press(key)
    assert await phone.hears() == reply
    assert (await phone.result()).value == value


async def test_appointment_wrong_key_then_silence_until_no_answer(kaphila: FakeKaphila) -> None:
    phone = await kaphila.call(appointment_confirm.flow)
    await phone.hears()
    await phone.press("5")
    assert (await phone.hears()).startswith("Sorry, that is not a valid choice.")
    await phone.stay_silent()
    await phone.hears()
    await phone.stay_silent()
    await phone.hears()
    assert (await phone.result()).value == "no answer"


async def test_appointment_hangup_in_the_middle(kaphila: FakeKaphila) -> None:
    phone = await kaphila.call(appointment_confirm.flow)
    await phone.hears()
    await hang_up_and_check(phone)


# -- voicemail_drop ------------------------------------------------------------------


async def test_voicemail_for_machines(kaphila: FakeKaphila) -> None:
    phone = await kaphila.call(voicemail_drop.flow, answer="machine", **voicemail_drop.DIAL_OPTIONS)
    assert await phone.hears() == voicemail_drop.VOICEMAIL
    result = await phone.result()
    assert result.value == "voicemail"
    assert result.answered_by == "machine"


@pytest.mark.parametrize(("key", "value"), [("1", "agent"), ("2", "declined")])
async def test_voicemail_drop_people_get_the_menu(
    kaphila: FakeKaphila, key: str, value: str
) -> None:
    phone = await kaphila.call(voicemail_drop.flow, answer="human", **voicemail_drop.DIAL_OPTIONS)
    assert (await phone.hears()).startswith("Hello, this is Acme about your order.")
    await phone.press(key)
    result = await phone.result()
    assert result.value == value
    assert result.answered_by == "human"
    if value == "agent":
        assert result.forwarded_to == "16085550101"


async def test_voicemail_drop_unsure_amd_gets_the_fallback(kaphila: FakeKaphila) -> None:
    phone = await kaphila.call(voicemail_drop.flow, answer="unknown", **voicemail_drop.DIAL_OPTIONS)
    assert (await phone.hears()).startswith("Hello, this is Acme. Please call us back")
    result = await phone.result()
    assert result.value == "fallback"
    assert result.answered_by == "unknown"


async def test_voicemail_drop_silence_and_hangup(kaphila: FakeKaphila) -> None:
    phone = await kaphila.call(voicemail_drop.flow, **voicemail_drop.DIAL_OPTIONS)
    for _ in range(3):
        await phone.hears()
        await phone.stay_silent()
    await phone.hears()
    assert (await phone.result()).value == "no answer"
    other = await kaphila.call(
        voicemail_drop.flow, number="16089270863", **voicemail_drop.DIAL_OPTIONS
    )
    await other.hears()
    await hang_up_and_check(other)


# -- survey --------------------------------------------------------------------------


async def test_survey_answers(kaphila: FakeKaphila) -> None:
    phone = await kaphila.call(survey.flow)
    assert await phone.hears() == "Thank you for taking our two minute survey."
    await phone.hears()
    await phone.press("5")
    await phone.hears()
    await phone.press("3")
    await phone.hears()
    await phone.press("1")
    assert await phone.hears() == "Thank you for your answers. Goodbye."
    assert (await phone.result()).value == {"satisfaction": 5, "speed": 3, "recommend": True}


async def test_survey_skips_unanswered_questions(kaphila: FakeKaphila) -> None:
    phone = await kaphila.call(survey.flow)
    await phone.hears()
    await phone.hears()
    await phone.press("9")  # wrong
    await phone.hears()
    await phone.stay_silent()  # and silence: question skipped
    await phone.hears()
    await phone.press("4")
    await phone.hears()
    await phone.press("2")
    assert (await phone.result()).value == {"satisfaction": None, "speed": 4, "recommend": False}


async def test_survey_no_answer_to_recommend_and_hangup(kaphila: FakeKaphila) -> None:
    phone = await kaphila.call(survey.flow)
    await phone.hears()
    for key in "11":
        await phone.hears()
        await phone.press(key)
    await phone.hears()
    await phone.stay_silent()
    await phone.hears()
    await phone.stay_silent()
    assert (await phone.result()).value == {"satisfaction": 1, "speed": 1, "recommend": None}
    other = await kaphila.call(survey.flow, number="16089270863")
    await other.hears()
    await other.hears()
    await hang_up_and_check(other)


# -- support_line --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "value", "forwarded"),
    [
        ("11", "balance", None),
        ("12", "billing agent", support_line.BILLING),
        ("10", "operator", support_line.OPERATOR),
        ("21", "outage", None),
        ("22", "technician", support_line.TECHNICIAN),
        ("20", "operator", support_line.OPERATOR),
        ("0", "operator", support_line.OPERATOR),
    ],
)
async def test_support_line_routes(
    kaphila: FakeKaphila, keys: str, value: str, forwarded: str | None
) -> None:
    phone = await kaphila.call(support_line.flow)
    assert await phone.hears() == "Welcome to Acme support."
    for key in keys:
        await phone.hears()
        await phone.press(key)
    result = await phone.result()
    assert result.value == value
    assert result.forwarded_to == forwarded


async def test_support_line_no_choice_goes_to_an_operator(kaphila: FakeKaphila) -> None:
    phone = await kaphila.call(support_line.flow)
    await phone.hears()
    await phone.hears()
    await phone.press("7")
    await phone.hears()
    await phone.stay_silent()
    await phone.hears()
    await phone.stay_silent()
    assert await phone.hears() == support_line.NO_CHOICE
    assert await phone.hears() == "Please hold."
    assert await phone.forwarded_to() == support_line.OPERATOR
    assert (await phone.result()).value == "operator"


async def test_support_line_hangup_in_a_sub_menu(kaphila: FakeKaphila) -> None:
    phone = await kaphila.call(support_line.flow)
    await phone.hears()
    await phone.hears()
    await phone.press("2")
    assert (await phone.hears()).startswith("Technical support.")
    await hang_up_and_check(phone)
