"""explore(): every path of a flow on the fake, the problems it finds, and its pictures."""

from __future__ import annotations

import functools
import html
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from kaphila_flow import Call, ForwardCall, Gather, MenuFailed, Voice
from kaphila_flow.cli import main
from kaphila_flow.testing import (
    Action,
    Choice,
    Coverage,
    Ending,
    Exploration,
    FakeKaphila,
    PointKind,
    Problem,
    ProblemKind,
    Turn,
    explore,
    explore_async,
)

from . import explore_flows as broken
from .examples_loader import EXAMPLES, load_example

pytestmark = pytest.mark.anyio

ivr_menu = load_example("ivr_menu")
pin_entry = load_example("pin_entry")
voicemail_drop = load_example("voicemail_drop")
EXAMPLE_NAMES = sorted(p.stem for p in EXAMPLES.glob("*.py"))


def only(exploration: Exploration, kind: ProblemKind) -> Problem:
    found = [p for p in exploration.problems if p.kind is kind]
    assert len(found) == 1, exploration
    return found[0]


def outcomes(exploration: Exploration) -> set[tuple[tuple[str, ...], object, str | None]]:
    return {(p.pressed, p.result.value, p.result.forwarded_to) for p in exploration.paths}


# -- the fake's new turn() and answers ---------------------------------------------------------


async def test_turn_stops_where_the_caller_has_a_say(kaphila: FakeKaphila) -> None:
    phone = await kaphila.call(ivr_menu.flow)
    turn = await phone.turn()
    assert turn.heard == ("Welcome to our company.", "Press 1 for Sales, 2 for Support.")
    assert turn.gather is not None and turn.gather.num_digits == 1
    assert not turn.ended
    await phone.press("9")
    turn = await phone.turn()
    reprompt = "Sorry, that is not a valid choice. Press 1 for Sales, or 2 for Support."
    assert turn.heard == (reprompt,)
    await phone.press("1")
    turn = await phone.turn()
    assert turn == Turn(("Connecting you to sales.",), None, True)
    assert (await phone.result()).value == "sales"


async def test_turn_when_the_flow_waits_for_keys_outside_a_gather(kaphila: FakeKaphila) -> None:
    async def flow(call: Call) -> str:
        await call.say("Press any key when you are ready.")
        async for key in call.keys(timeout=30):
            return key
        return "nothing"

    phone = await kaphila.call(flow)
    turn = await phone.turn()
    assert turn.heard == ("Press any key when you are ready.",)
    assert turn.gather is None and not turn.ended
    await phone.press("5")
    assert (await phone.turn()).ended
    assert (await phone.result()).value == "5"


async def test_answers_unknown_and_busy(kaphila: FakeKaphila) -> None:
    unsure = await kaphila.call(voicemail_drop.flow, answer="unknown", use_amd=True)
    result = await unsure.result()
    assert (result.value, result.answered_by) == ("fallback", "unknown")
    busy = await kaphila.call(voicemail_drop.flow, answer="busy", number="16089270863")
    result = await busy.result()
    assert (result.status, result.end_reason, result.value) == ("no-answer", "busy", None)
    assert result.answered_by is None
    with pytest.raises(ValueError, match="human, machine, unknown, busy, no-answer"):
        await kaphila.call(voicemail_drop.flow, answer="voicemail")  # type: ignore[arg-type]


async def test_a_say_after_forwarding_is_played_and_the_call_ends(kaphila: FakeKaphila) -> None:
    phone = await kaphila.call(broken.thanks_after_forward)
    assert await phone.hears() == "Connecting you."
    assert await phone.hears() == "Thank you for calling."
    assert (await phone.result()).forwarded_to == broken.SALES


# -- the example bots ------------------------------------------------------------------------


@functools.cache
def explored(target: str) -> Exploration:
    """``examples/NAME.py:flow``, explored once for the tests that read it."""
    example = load_example(Path(target.split(":")[0]).stem)
    return explore(example.flow, name=target, **getattr(example, "DIAL_OPTIONS", {}))


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_no_example_has_a_problem(name: str) -> None:
    exploration = explored(f"examples/{name}.py:flow")
    assert not exploration.problems, exploration
    assert exploration.coverage is Coverage.EVERY_PATH
    assert all(path.ending is not Ending.CUT for path in exploration.paths)


def test_every_path_of_the_ivr_menu() -> None:
    exploration = explore(ivr_menu.flow)
    assert exploration.exhaustive
    root = exploration.root
    assert root.point.kind is PointKind.DIAL
    assert [b.label for b in root.branches] == ["person", "busy", "no answer"]
    welcome = root.branches[0].node
    assert welcome.point.text == "Welcome to our company."
    assert [b.label for b in welcome.branches] == ["", "hang up"]
    menu = welcome.branches[0].node
    assert menu.point.kind is PointKind.GATHER
    assert [b.label for b in menu.branches] == ["1", "2", "other: 0,3-9,*,#", "silence", "hang up"]
    other = menu.branches[2]
    assert set(other.entries) == set("034567890*#") and other.choice == Choice(Action.PRESS, "3")
    # Every way to sales or support within three tries, and giving up after three.
    routes = outcomes(exploration)
    assert (("1",), "sales", ivr_menu.SALES) in routes
    assert (("3", "2"), "support", ivr_menu.SUPPORT) in routes
    assert (("3", "3", "1"), "sales", ivr_menu.SALES) in routes
    assert ((), "no choice", None) in routes  # silence, three times
    assert (("3", "3", "3"), "no choice", None) in routes
    assert not any(len(pressed) > 3 for pressed, _value, _to in routes)
    for path in exploration.paths:
        if path.result.value == "sales":
            assert path.heard[-1] == "Connecting you to sales."
            assert ForwardCall(path.result.call_id or "", ivr_menu.SALES) in path.commands
    endings = {p.ending for p in exploration.paths}
    assert endings == {Ending.FORWARDED, Ending.COMPLETED, Ending.HUNG_UP, Ending.NOT_ANSWERED}
    # A hang-up during each say and at each gather.
    hang_ups = [p for p in exploration.paths if p.steps[-1].choice.action is Action.HANG_UP]
    points = {p.steps[-1].point.text for p in hang_ups}
    assert {"Welcome to our company.", "Connecting you to sales."} <= points
    assert "Sorry, we could not get your answer. Goodbye." in points
    assert len(exploration.paths) == len({p.steps for p in exploration.paths})


@pytest.fixture(scope="module")
def ivr_on_asyncio() -> Exploration:
    return explore(ivr_menu.flow)


async def test_exploring_is_the_same_on_both_backends(ivr_on_asyncio: Exploration) -> None:
    exploration = await explore_async(ivr_menu.flow)
    paths = [p.describe() for p in exploration.paths]
    assert paths == [p.describe() for p in ivr_on_asyncio.paths]
    assert exploration.to_mermaid() == ivr_on_asyncio.to_mermaid()


async def test_answering_machines_and_unsure_amd() -> None:
    exploration = await explore_async(voicemail_drop.flow, **voicemail_drop.DIAL_OPTIONS)
    by_answer = {(p.answer, p.result.value) for p in exploration.paths}
    assert ("machine", "voicemail") in by_answer
    assert ("unknown", "fallback") in by_answer
    assert ("human", "agent") in by_answer
    assert {p.result.end_reason for p in exploration.paths if p.answer == "busy"} == {"busy"}
    machine = next(p for p in exploration.paths if p.answer == "machine")
    assert machine.heard == (voicemail_drop.VOICEMAIL,)


def test_entries_the_explorer_cannot_guess() -> None:
    guessed = explore(pin_entry.flow)
    assert "verified" not in {p.result.value for p in guessed.paths}
    told = explore(pin_entry.flow, entries={"pin code": [pin_entry.EXPECTED_PIN]})
    verified = [p for p in told.paths if p.result.value == "verified"]
    assert verified and verified[0].pressed == (pin_entry.EXPECTED_PIN,)
    by_function = explore(pin_entry.flow, entries=lambda gather: [pin_entry.EXPECTED_PIN + "#"])
    assert "verified" in {p.result.value for p in by_function.paths}


async def test_keys_outside_a_gather() -> None:
    async def ready(call: Call) -> str:
        await call.say("Press any key when you are ready.")
        async for _key in call.keys(timeout=20):
            await call.say("Thank you. Goodbye.")
            return "ready"
        await call.say("Nothing pressed. Goodbye.")
        return "nothing"

    exploration = await explore_async(ready)
    assert exploration.exhaustive and not exploration.problems, exploration
    say = exploration.root.branches[0].node
    wait = say.branches[0].node
    assert wait.point.kind is PointKind.WAIT
    assert [b.label for b in wait.branches] == ["0-9,*,#", "silence", "hang up"]
    assert {p.result.value for p in exploration.paths if p.ending is Ending.COMPLETED} == {
        "ready",
        "nothing",
    }


async def test_waiting_for_keys_for_ever() -> None:
    async def patient(call: Call) -> str:
        await call.say("Press a key.")
        async for key in call.keys():  # no timeout: a silent caller is kept for ever
            return key
        return "never"

    exploration = await explore_async(patient, max_depth=4)
    problem = only(exploration, ProblemKind.NEVER_ENDS)
    assert [s.choice.action for s in problem.path.steps[2:]] == [Action.SILENCE] * 3 + [
        Action.HANG_UP
    ]


def test_call_data_reaches_the_flow() -> None:
    reminder = load_example("appointment_reminder")
    data = {"name": "Ann", "appointment": "tomorrow at nine"}
    exploration = explore(reminder.flow, backend="trio", data=data, **reminder.DIAL_OPTIONS)
    person = next(p for p in exploration.paths if p.answer == "human")
    assert (
        person.heard[0]
        == "Hello Ann, this is Acme Dental. You have an appointment tomorrow at nine."
    )
    machine = next(p for p in exploration.paths if p.answer == "machine")
    assert machine.heard == (reminder.VOICEMAIL,) and machine.result.value == "voicemail"


# -- a flow whose paths depend on outside data -----------------------------------------------


@dataclass
class Accounts:
    """What a test's fixture gives the flow in place of a database."""

    pins: dict[str, str]

    async def pin_for(self, number: str) -> str | None:
        await anyio.lowlevel.checkpoint()  # a lookup awaits, like a real one
        return self.pins.get(number)


async def account_line(call: Call, accounts: Accounts) -> str:
    pin = await accounts.pin_for(call.number)
    if pin is None:
        await call.say("We have no account for this number. Goodbye.")
        return "no account"
    try:
        entry = await call.ask("Your 4-digit PIN, then pound.", max_digits=4)
    except MenuFailed:
        return "no pin"
    if entry != pin:
        await call.say("That PIN is wrong. Goodbye.")
        return "denied"
    await call.say("Welcome back.")
    return "verified"


@pytest.fixture(params=["known caller", "unknown caller"])
def accounts(request: pytest.FixtureRequest) -> Accounts:
    return Accounts({"16089270862": "4321"} if request.param == "known caller" else {})


async def test_paths_that_depend_on_a_fixture(accounts: Accounts) -> None:
    flow = functools.partial(account_line, accounts=accounts)
    exploration = await explore_async(flow, entries={"PIN": list(accounts.pins.values())})
    assert not exploration.problems, exploration
    values = {p.result.value for p in exploration.paths if p.ending is Ending.COMPLETED}
    if accounts.pins:
        assert values == {"verified", "denied", "no pin"}
    else:
        assert values == {"no account"}
        assert not any(p.pressed for p in exploration.paths)


# -- each kind of problem, and the path that shows it ------------------------------------------


def test_an_unhandled_exception() -> None:
    exploration = explore(broken.raises_on_support)
    problems = [p for p in exploration.problems if p.kind is ProblemKind.UNHANDLED_EXCEPTION]
    raised = {type(p.path.result.error).__name__: p for p in problems}
    assert set(raised) == {"RuntimeError", "MenuFailed"}
    runtime = raised["RuntimeError"]
    assert runtime.path.pressed == ("2",) and runtime.path.ending is Ending.FAILED
    assert "support queue not configured" in runtime.message
    assert "explore_flows.py" in runtime.message  # where in the flow's own code
    assert runtime.path.problems == (ProblemKind.UNHANDLED_EXCEPTION,)
    menu_failed = raised["MenuFailed"]
    said = [s for s in menu_failed.path.steps[1:] if s.choice.action is not Action.LISTEN]
    assert [s.choice.action for s in said] == [Action.SILENCE] * 3


def test_a_loop_with_no_exit() -> None:
    exploration = explore(broken.news_forever, max_depth=8, max_paths=300)
    problem = only(exploration, ProblemKind.NEVER_ENDS)
    assert problem.path.ending is Ending.CUT
    choices = [s.choice.action for s in problem.path.steps[1:]]
    assert choices == [Action.SILENCE] * 8 + [Action.HANG_UP]
    assert "8 choices" in problem.message
    assert not exploration.exhaustive
    assert "left" in {p.result.value for p in exploration.paths}  # 9 does leave


def test_a_command_after_the_call_was_forwarded() -> None:
    exploration = explore(broken.thanks_after_forward)
    problem = only(exploration, ProblemKind.COMMAND_AFTER_END)
    assert "'Thank you for calling.'" in problem.message and "forwarded" in problem.message
    assert problem.path.ending is Ending.FORWARDED
    late = problem.path.commands[-1]
    assert isinstance(late, Voice) and late.text == "Thank you for calling."


def test_an_option_the_prompt_offers_but_no_key_reaches() -> None:
    exploration = explore(broken.billing_promised)
    problem = only(exploration, ProblemKind.UNREACHABLE_OPTION)
    assert "offers 3" in problem.message
    assert problem.path.pressed == ("3",)
    assert problem.point is not None and problem.point.text is not None
    assert problem.point.text.startswith("Press 1 for sales")


def test_a_key_the_gather_cannot_take() -> None:
    async def flow(call: Call) -> str:
        choice = await call.gather("Press 1 for yes, 2 for no, 10 for an agent.", num_digits=1)
        await call.say("Thank you.")
        return choice

    problem = only(explore(flow), ProblemKind.UNREACHABLE_OPTION)
    assert "offers 10" in problem.message and "1 key" in problem.message


def test_a_call_that_ends_without_a_goodbye() -> None:
    exploration = explore(broken.silent_cancel)
    problem = only(exploration, ProblemKind.NO_GOODBYE)
    assert problem.path.pressed == ("2",)
    assert problem.path.result.value == "cancelled"
    assert "Press 1 to confirm, 2 to cancel." in problem.message
    assert problem.count > 1  # the same bug after a wrong key or silence


def test_a_prompt_too_long_to_speak() -> None:
    problem = only(explore(broken.long_welcome), ProblemKind.LONG_PROMPT)
    assert "29 s" in problem.message
    assert problem.point is not None and problem.point.text == broken.LONG_TEXT
    assert not explore(broken.long_welcome, prompt_limit=30).problems


def test_a_flow_that_does_not_repeat_itself() -> None:
    exploration = explore(broken.moody)
    problem = only(exploration, ProblemKind.UNREPEATABLE)
    assert "replaying the same choices" in problem.message


def test_a_flow_stuck_outside_the_call() -> None:
    async def flow(call: Call) -> str:
        await call.say("One moment.")
        await anyio.sleep_forever()
        return "never"

    exploration = explore(flow, patience=120)  # virtual seconds: the ring and grace fit
    problem = only(exploration, ProblemKind.NEVER_ENDS)
    assert "busy outside the call" in problem.message
    assert problem.path.ending is Ending.CUT


def test_problem_kinds_can_be_ignored() -> None:
    exploration = explore(broken.silent_cancel, ignore={ProblemKind.NO_GOODBYE})
    assert not exploration.problems
    assert not any(p.problems for p in exploration.paths)


# -- bounds ----------------------------------------------------------------------------------


def test_the_path_bound_is_reported() -> None:
    exploration = explore(ivr_menu.flow, max_paths=10)
    assert exploration.coverage is Coverage.PATH_LIMIT
    assert exploration.calls == 10 and exploration.unexplored > 0
    assert "branches untried" in exploration.summary()
    assert not all(node.complete for node in exploration.root.walk())


def test_the_depth_bound_is_reported() -> None:
    exploration = explore(ivr_menu.flow, max_depth=2)
    assert exploration.coverage is Coverage.DEPTH_LIMIT
    assert {p.kind for p in exploration.problems} == {ProblemKind.NEVER_ENDS}
    assert max(len(p.steps) for p in exploration.paths) == 4  # answer, 2 choices, hang up


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"max_depth": 0}, ValueError, "max_depth"),
        ({"max_paths": 1.5}, ValueError, "max_paths"),
        ({"prompt_limit": -1}, ValueError, "prompt_limit"),
        ({"answers": ["voicemail"]}, ValueError, "answers"),
        ({"answers": []}, ValueError, "at least one"),
        ({"entries": {"PIN": ["12a"]}}, ValueError, "telephone keys"),
        ({"ignore": ["no-goodbye"]}, TypeError, "ProblemKind"),
        ({"use_amd": True, "webhook": "x"}, TypeError, "webhook"),
    ],
)
def test_bad_options_are_named(options: dict[str, object], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        explore(ivr_menu.flow, **options)  # type: ignore[arg-type]


async def test_explore_inside_an_event_loop_says_what_to_use() -> None:
    with pytest.raises(RuntimeError, match="explore_async"):
        explore(ivr_menu.flow)


# -- pictures ----------------------------------------------------------------------------------


def test_the_tree_in_a_terminal() -> None:
    text = explore(ivr_menu.flow).to_text()
    assert "every path covered, no problems" in text
    assert "├─ 1\n│  │  [1] says 'Connecting you to sales.'" in text
    assert "■ forwarded to 16085550101: 'sales'" in text
    assert "↳ see [1]" in text  # the same part reached again is referred to
    assert "─ hang up" not in text
    assert "─ hang up" in explore(ivr_menu.flow).to_text(hang_ups=True)
    problems = explore(broken.silent_cancel).to_text()
    assert "■ completed: 'cancelled'  ⚠ no-goodbye" in problems
    assert "Problems:\n  no-goodbye:" in problems


def _mermaid_labels(mermaid: str) -> list[str]:
    return re.findall(r'"([^"]*)"', mermaid)


def test_mermaid() -> None:
    mermaid = explore(ivr_menu.flow).to_mermaid()
    assert mermaid.startswith("flowchart TD\n")
    labels = _mermaid_labels(mermaid)
    assert "Press 1 for Sales, 2 for Support." in labels
    assert {"1", "2", "silence", "person", "busy", "no answer"} <= set(labels)
    assert "other: 0,3-9,*,#" in labels
    assert "class " in mermaid and "problem" not in mermaid.split("classDef trail")[1]
    red = explore(broken.silent_cancel).to_mermaid()
    problem_nodes = re.search(r"class (\S+) problem", red)
    assert problem_nodes is not None
    node = problem_nodes.group(1)
    assert re.search(rf"{node}\(\[\"completed: 'cancelled' ⚠ no-goodbye\"\]\)", red)
    assert re.search(r"linkStyle [\d,]+ stroke:#c0392b", red)


def test_text_is_escaped_in_mermaid_and_html() -> None:
    async def flow(call: Call) -> str:
        await call.say('Say "hi" <script>alert(1)</script> & press # or |.')
        return "ok"

    exploration = explore(flow)
    mermaid = exploration.to_mermaid()
    say_line = next(line for line in mermaid.splitlines() if "hi" in line)
    inner = say_line.split('["', 1)[1].rsplit('"]', 1)[0]
    assert not set(inner) & set('"<>&`')  # look-alikes: Mermaid would read these
    lt, gt, amp = "\u2039", "\u203a", "\uff06"
    assert inner == f"Say 'hi' {lt}script{gt}alert(1){lt}/script{gt} {amp} press # or |."
    page = exploration.to_html()
    assert "<script" not in page
    assert html.escape('Say "hi" <script>alert(1)</script> & press # or |.') in page


def test_the_html_page_is_self_contained_and_shows_problems() -> None:
    page = explore(broken.silent_cancel).to_html(title="Cancel line")
    assert page.startswith("<!DOCTYPE html>") and "<title>Cancel line</title>" in page
    assert "<svg" in page and "</svg>" in page
    links = re.findall(r"(?:src|href)\s*=|https?://[^\"' ]+", page)
    assert links == ["http://www.w3.org/2000/svg"]  # the SVG namespace, never fetched
    assert "<script" not in page and "@import" not in page and "url(http" not in page
    assert 'class="node end problem"' in page and 'class="edge problem"' in page
    assert "no-goodbye" in page and "press 2" in page
    clean = explore(ivr_menu.flow).to_html()
    assert 'class="node end problem"' not in clean and "None found." in clean
    assert clean.count("<tr>") == len(explore(ivr_menu.flow).paths) + 1


# -- the command line --------------------------------------------------------------------------


def test_cli_prints_the_tree_and_writes_the_pictures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"{EXAMPLES / 'ivr_menu.py'}:flow"
    assert main(["explore", target, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "every path covered, no problems" in out.out
    assert "asks 'Press 1 for Sales, 2 for Support.'" in out.out
    mermaid = (tmp_path / "ivr_menu.flow.mmd").read_text()
    assert mermaid == explore(ivr_menu.flow, name=target).to_mermaid()
    assert "<svg" in (tmp_path / "ivr_menu.flow.html").read_text()
    assert "wrote" in out.err


def test_cli_exit_status_and_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flows = Path(broken.__file__)
    assert main(["explore", f"{flows}:silent_cancel", "--no-files"]) == 1
    assert "no-goodbye" in capsys.readouterr().out
    pin = f"{EXAMPLES / 'pin_entry.py'}:flow"
    assert main(["explore", pin, "--entry", "PIN=123456", "--print", "mermaid", "--no-files"]) == 0
    assert "'verified'" in capsys.readouterr().out
    assert main(["explore", pin, "--out", str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["explore", pin, "--entry", "PIN"])
    assert "PART_OF_PROMPT=KEYS" in capsys.readouterr().err


# -- the docs ----------------------------------------------------------------------------------


def test_the_docs_show_the_diagram_of_every_example() -> None:
    docs = Path(__file__).parent.parent / "docs"
    spec = importlib.util.spec_from_file_location("make_diagrams", docs / "make_diagrams.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    page = (docs / "exploring.md").read_text()
    assert page == script.render(page, explored), "docs/exploring.md is stale: make diagrams"
    ivr = "examples/ivr_menu.py:flow"
    assert script.explore_target(ivr).to_mermaid() == explored(ivr).to_mermaid()
    for name in EXAMPLE_NAMES:
        assert f"<!-- explore: examples/{name}.py:flow -->" in page
    assert page.count("```mermaid") >= len(EXAMPLE_NAMES)


def test_gathers_in_paths_match_the_commands() -> None:
    exploration = explore(ivr_menu.flow)
    for path in exploration.paths:
        prompts = [c.text for c in path.commands if isinstance(c, Gather)]
        asked = [s.point.text for s in path.steps if s.point.kind is PointKind.GATHER]
        assert asked == prompts[: len(asked)]
