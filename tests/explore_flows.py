"""Flows with one deliberate bug each, for the explorer's tests."""

from __future__ import annotations

import itertools

from kaphila_flow import Call, MenuFailed

SALES = "16085550101"


async def raises_on_support(call: Call) -> str:
    """Key 2 reaches code that raises; silence three times lets MenuFailed through."""
    team = await call.menu("Press 1 for sales, 2 for support.", {"1": "sales", "2": "support"})
    if team == "support":
        raise RuntimeError("support queue not configured")
    await call.forward(SALES)
    return team


async def news_forever(call: Call) -> str:
    """Silence asks again, for ever: the timeout branch has no exit."""
    while True:
        choice = await call.gather("Press 1 to hear the news, 9 to leave.", timeout=5)
        if choice == "1":
            await call.say("No news today.")
        elif choice == "9":
            await call.say("Goodbye.")
            return "left"


async def thanks_after_forward(call: Call) -> str:
    """Speaks into the call after handing it to an agent."""
    await call.say("Connecting you.")
    await call.forward(SALES)
    await call.say("Thank you for calling.")
    return "forwarded"


async def billing_promised(call: Call) -> str:
    """The prompt offers 3 for billing; the menu has no 3."""
    try:
        team = await call.menu(
            "Press 1 for sales, 2 for support, 3 for billing.", {"1": "sales", "2": "support"}
        )
    except MenuFailed:
        return "no choice"
    await call.say(f"Connecting you to {team}.")
    await call.forward(SALES)
    return team


async def silent_cancel(call: Call) -> str:
    """Cancelling ends the call without a word."""
    try:
        confirmed = await call.confirm("Press 1 to confirm, 2 to cancel.")
    except MenuFailed:
        return "no answer"
    if not confirmed:
        return "cancelled"
    await call.say("Confirmed. Goodbye.")
    return "confirmed"


LONG_TEXT = " ".join(["Please listen carefully as our menu options have changed."] * 8)


async def long_welcome(call: Call) -> str:
    """A welcome of 72 words: about 29 seconds of speech."""
    await call.say(LONG_TEXT)
    await call.say("Goodbye.")
    return "done"


_calls = itertools.count()


async def moody(call: Call) -> str:
    """Says something extra on every other call: replays cannot repeat a path."""
    if next(_calls) % 2:
        await call.say("Hello again.")
    choice = await call.gather("Press 1.")
    await call.say("Goodbye.")
    return choice
