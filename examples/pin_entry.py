"""The quick-start's demo 2: "Please enter your 6-digit PIN code".

The PIN is `sensitive`: it never appears in logs, the transcript (masked) or errors.

    kaphila-flow dial examples/pin_entry.py:flow 16089270862 --simulate
"""

import hmac

from kaphila_flow import Call, MenuFailed

# In a real bot this comes from your user database, not the source.
EXPECTED_PIN = "123456"


def six_digits(entry: str) -> bool:
    return len(entry) == 6 and entry.isdigit()


async def flow(call: Call) -> str:
    try:
        pin = await call.ask(
            "Please enter your 6-digit PIN code, followed by the pound key.",
            max_digits=6,
            finish_on_key="#",
            validate=six_digits,
            tries=3,
            timeout=15,
            sensitive=True,
        )
    except MenuFailed:
        return "no pin"
    if not hmac.compare_digest(pin, EXPECTED_PIN):
        await call.say("That PIN is not correct. Goodbye.")
        return "denied"
    await call.say("Thank you. Your identity is confirmed.")
    return "verified"
