"""The quick-start's demo 3: "press 1 to confirm, 2 to cancel".

kaphila-flow dial examples/appointment_confirm.py:flow 16089270862 --simulate
"""

from kaphila_flow import Call, MenuFailed


async def flow(call: Call) -> str:
    try:
        confirmed = await call.confirm(
            "To confirm your appointment, press 1. To cancel, press 2.", yes="1", no="2"
        )
    except MenuFailed:
        return "no answer"
    if confirmed:
        await call.say("Confirmed! Thank you.")
        return "confirmed"  # your code would update the booking here
    await call.say("Cancelled. Goodbye.")
    return "cancelled"
