"""An appointment reminder for a campaign: each contact's name and time come from the CSV.

    kaphila-flow campaign examples/appointment_reminder.py:flow examples/contacts.csv \\
        --concurrency 5 --calls-per-hour 60 --results results.csv --simulate
"""

from kaphila_flow import Call, MenuFailed

#: Left on answering machines (the campaign dials with use_amd and on_machine).
VOICEMAIL = "Hello, this is Acme Dental with a reminder of your appointment. Please call us back."
DIAL_OPTIONS = {"use_amd": True, "on_machine": VOICEMAIL}
RECEPTION = "16085550110"


async def flow(call: Call) -> str:
    name = call.data.get("name", "there")
    when = call.data.get("appointment", "soon")
    await call.say(f"Hello {name}, this is Acme Dental. You have an appointment {when}.")
    try:
        keep = await call.confirm("Press 1 to keep it, or 2 to cancel.", tries=2)
    except MenuFailed:
        return "no answer"
    if keep:
        await call.say("Thank you, see you then.")
        return "confirmed"
    await call.say("It is cancelled. Connecting you to reception to book another time.")
    await call.forward(RECEPTION)
    return "cancelled"
