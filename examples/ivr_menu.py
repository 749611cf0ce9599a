"""The quick-start's demo 1: "Press 1 for Sales, 2 for Support".

Run it against the simulator (no account needed):

    kaphila-flow dial examples/ivr_menu.py:flow 16089270862 --simulate
"""

from kaphila_flow import Call, MenuFailed

SALES = "16085550101"
SUPPORT = "16085550102"


async def flow(call: Call) -> str:
    await call.say("Welcome to our company.")
    try:
        # The prompt is part of the gather, so a caller who knows the menu can press at once.
        team = await call.menu(
            "Press 1 for Sales, 2 for Support.",
            {"1": "sales", "2": "support"},
            tries=3,
            reprompt="Press 1 for Sales, or 2 for Support.",
        )
    except MenuFailed:
        return "no choice"  # `failure` was spoken; the runtime hangs up
    await call.say(f"Connecting you to {team}.")
    await call.forward(SALES if team == "sales" else SUPPORT)
    return team
