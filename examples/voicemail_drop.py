"""Answering machine detection, as the provider advises: a voicemail for machines,
the menu for people, a short fallback when AMD is unsure.

    kaphila-flow dial examples/voicemail_drop.py:flow 16085550150 --simulate

`dial()` needs `use_amd=True` (the CLI passes it for this example's `DIAL_OPTIONS`).
"""

from kaphila_flow import Call, MenuFailed

VOICEMAIL = "Hello, this is Acme calling about your order. Please call us back at 1 800 555 0100."

#: What `kaphila-flow dial` passes to `Runtime.dial` for this flow.
DIAL_OPTIONS = {"use_amd": True}


async def flow(call: Call) -> str:
    amd = call.amd
    if amd is not None and amd.is_machine:
        await call.leave_voicemail(VOICEMAIL)
        return "voicemail"
    if amd is not None and not amd.is_human:
        # AMD was unsure: one short line that works for a person and a machine alike.
        await call.say("Hello, this is Acme. Please call us back at 1 800 555 0100.")
        return "fallback"
    try:
        wants_agent = await call.confirm(
            "Hello, this is Acme about your order. Press 1 to speak to an agent, 2 to hang up."
        )
    except MenuFailed:
        return "no answer"
    if wants_agent:
        await call.forward("16085550101")
        return "agent"
    await call.say("Goodbye.")
    return "declined"
