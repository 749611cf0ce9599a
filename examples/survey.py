"""A short survey: several questions, the answers returned as the call's result.

kaphila-flow dial examples/survey.py:flow 16089270862 --simulate
"""

from kaphila_flow import Call, MenuFailed

SCALE = {str(n): n for n in range(1, 6)}


async def flow(call: Call) -> dict[str, int | bool | None]:
    await call.say("Thank you for taking our two minute survey.")
    answers: dict[str, int | bool | None] = {}
    questions = [
        ("satisfaction", "On a scale of 1 to 5, how satisfied are you with our service?"),
        ("speed", "On a scale of 1 to 5, how quickly was your issue resolved?"),
    ]
    for name, question in questions:
        try:
            answers[name] = await call.menu(question, SCALE, tries=2, failure=None)
        except MenuFailed:
            answers[name] = None  # skipped: go on with the next question
    try:
        answers["recommend"] = await call.confirm(
            "Would you recommend us to a friend? Press 1 for yes, 2 for no.", tries=2
        )
    except MenuFailed:
        answers["recommend"] = None
    await call.say("Thank you for your answers. Goodbye.")
    return answers
