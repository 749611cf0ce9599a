"""A support line: nested menus as plain function calls, an operator on 0.

kaphila-flow dial examples/support_line.py:flow 16089270862 --simulate
"""

from kaphila_flow import Call, MenuFailed

OPERATOR = "16085550110"
BILLING = "16085550111"
TECHNICIAN = "16085550112"
#: Spoken when a menu gets no valid choice; the caller then goes to an operator.
NO_CHOICE = "Let me get you an operator."


async def operator(call: Call) -> str:
    await call.say("Please hold.")
    await call.forward(OPERATOR)
    return "operator"


async def billing(call: Call) -> str:
    choice = await call.menu(
        "Billing. Press 1 to hear your balance, 2 to speak to billing, 0 for an operator.",
        {"1": "balance", "2": "agent", "0": "operator"},
        failure=NO_CHOICE,
    )
    if choice == "balance":
        await call.say("Your balance is 42 dollars and 10 cents.")
        return "balance"
    if choice == "agent":
        await call.forward(BILLING)
        return "billing agent"
    return await operator(call)


async def technical(call: Call) -> str:
    choice = await call.menu(
        "Technical support. Press 1 if your service is down, 2 for anything else,"
        " 0 for an operator.",
        {"1": "outage", "2": "other", "0": "operator"},
        failure=NO_CHOICE,
    )
    if choice == "outage":
        await call.say("We know about an outage in your area. It should be fixed within two hours.")
        return "outage"
    if choice == "other":
        await call.forward(TECHNICIAN)
        return "technician"
    return await operator(call)


async def flow(call: Call) -> str:
    await call.say("Welcome to Acme support.")
    try:
        department = await call.menu(
            "Press 1 for billing, 2 for technical support, 0 for an operator.",
            {"1": billing, "2": technical, "0": operator},
            failure=NO_CHOICE,
        )
        return await department(call)  # a sub-flow is a plain function call
    except MenuFailed:
        # Nobody chose anything: a person is better than a hang-up.
        return await operator(call)
