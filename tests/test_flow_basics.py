"""The issue's own example: a menu flow and its test through the fake."""

import pytest

from kaphila_flow import Call

pytestmark = pytest.mark.anyio


async def main_menu(call: Call) -> str:
    await call.say("Welcome to our company.")
    digits = await call.gather(
        "Press 1 for sales, 2 for support.", num_digits=1, valid_digits="12", timeout=10
    )
    if digits == "1":
        await call.forward("16085550101")
    return digits


async def test_sales(kaphila):
    phone = await kaphila.call(main_menu)
    assert await phone.hears() == "Welcome to our company."
    assert await phone.hears() == "Press 1 for sales, 2 for support."
    await phone.press("1")
    assert await phone.forwarded_to() == "16085550101"
    result = await phone.result()
    assert result.value == "1"
    assert result.status == "completed"
    assert result.forwarded_to == "16085550101"
