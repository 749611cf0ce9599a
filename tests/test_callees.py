"""Scripted callees and the simulator's TOML file."""

from __future__ import annotations

from pathlib import Path

import pytest

from kaphila_flow import ConfigurationError
from kaphila_flow._callees import Action, Callee, CalleeRun, KeyStep
from kaphila_flow._commands import Gather, MakeCall
from kaphila_flow._model import CallModel, Phase
from kaphila_flow.simulator import INSTANT, load_simulator, simulator_from_mapping
from kaphila_flow.simulator._book import EXAMPLE

T0 = 1_000_000.0


def model() -> CallModel:
    return CallModel("1.1", MakeCall("16089270862"), T0)


def play(run: CalleeRun, call: CallModel, until: float) -> list[str]:
    done = []
    while (nxt := run.next_action(call)) is not None and nxt[0] <= until:
        at, action = nxt
        run.apply(call, action, at)
        done.append(f"{action.kind}{action.key}@{at - T0:g}")
    return done


def test_answers_then_presses_into_each_gather_then_hangs_up() -> None:
    callee = Callee(
        answer="human",
        answer_after=2,
        keys=(KeyStep("12", 1.0), KeyStep("3", 0.5)),
        hang_up_after=30,
    )
    call, run = model(), CalleeRun(callee)
    assert play(run, call, T0 + 5) == ["answer@2"]
    call.gather(Gather("1.1", None, num_digits=2, timeout=10), T0 + 5)
    assert play(run, call, T0 + 10) == ["press1@6", "press2@6.15"]
    call.gather(Gather("1.1", None, num_digits=1, timeout=10), T0 + 10)
    assert play(run, call, T0 + 20) == ["press3@10.5"]
    call.gather(Gather("1.1", None, num_digits=1, timeout=10), T0 + 20)  # no steps left: silence
    assert play(run, call, T0 + 40) == ["hang_up@32"]
    assert call.phase is Phase.ENDED


def test_keys_left_over_from_the_last_step_are_not_pressed_into_the_next_gather() -> None:
    # The last step's "3" is not needed (the gather takes two keys): the next gather
    # hears nothing, times out, and so does every later one (nothing scripted is left).
    callee = Callee(answer="human", answer_after=0, keys=(KeyStep("123", 1.0),))
    call, run = model(), CalleeRun(callee)
    assert play(run, call, T0) == ["answer@0"]
    call.gather(Gather("1.1", None, num_digits=2, timeout=5), T0 + 1)
    assert play(run, call, T0 + 3) == ["press1@2", "press2@2.15"]
    for start in (T0 + 3, T0 + 20):
        call.gather(Gather("1.1", None, num_digits=1, timeout=5), start)
        assert play(run, call, start + 10) == []
        assert run.next_action(call) is None
        call.advance(start + 10)
        assert [e.name for e in call.take_events()][-1] == "gather.timeout"


def test_a_script_done_with_keys_still_hangs_up_and_a_person_still_presses() -> None:
    callee = Callee(answer="human", answer_after=0, keys=(KeyStep("1", 0.5),), hang_up_after=20)
    call, run = model(), CalleeRun(callee)
    play(run, call, T0)
    call.gather(Gather("1.1", None, num_digits=1, timeout=5), T0 + 1)
    assert play(run, call, T0 + 2) == ["press1@1.5"]
    call.gather(Gather("1.1", None, num_digits=2, timeout=5), T0 + 3)
    run.by_hand(T0 + 4, Action("press", "7"))
    assert play(run, call, T0 + 30) == ["press7@4", "hang_up@20"]


@pytest.mark.parametrize(("mode", "phase"), [("never", Phase.RINGING), ("reject", Phase.ENDED)])
def test_never_and_reject(mode: str, phase: Phase) -> None:
    call, run = model(), CalleeRun(Callee(answer=mode, answer_after=1))  # type: ignore[arg-type]
    play(run, call, T0 + 10)
    assert call.phase is phase


def test_machine_answers_with_amd() -> None:
    call = CallModel("1.1", MakeCall("16089270862", use_amd=True), T0)
    run = CalleeRun(Callee(answer="machine"))
    play(run, call, T0 + 5)
    assert call.amd is not None and call.amd.is_machine


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ({"answer": "maybe"}, "answer must be one of"),
        ({"answer_after": "soon"}, "callee.answer_after must be a number"),
        ({"keys": "1"}, "callee.keys must be a list"),
        ({"keys": [{"press": "1x"}]}, "callee.keys[0]: keys must be telephone keys"),
        ({"keys": [{"after": 1}]}, "callee.keys[0] needs press"),
        ({"keys": [{"press": "1", "after": "later"}]}, "callee.keys[0].after"),
        ({"hang_up": 3}, "unknown field(s) hang_up"),
    ],
)
def test_bad_callee_tables_name_the_field(table: dict[str, object], needle: str) -> None:
    with pytest.raises(
        ValueError,
        match=needle.replace("[", r"\[")
        .replace("]", r"\]")
        .replace("(", r"\(")
        .replace(")", r"\)"),
    ):
        Callee.from_mapping(table)


def test_the_example_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "callees.toml"
    path.write_text(EXAMPLE)
    sim = load_simulator(path)
    assert sim.speed == 1.0
    assert sim.accounts["ak_simulator"].account.caller_ids == ("16085550100",)
    assert sim.callees["16089270862"].keys == (KeyStep("1", 2.0),)
    assert sim.callees["16085550150"].answer == "machine"
    assert load_simulator(path, speed=INSTANT).speed == INSTANT


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"speed": 0}, "speed must be a positive number"),
        ({"speeed": 1}, "unknown setting"),
        ({"accounts": {"ak": {"credits": -1}}}, "accounts.ak.credits"),
        ({"accounts": {"ak": {"caller_ids": "1"}}}, "accounts.ak.caller_ids"),
        ({"accounts": {"ak": {"caller_ids": ["123"]}}}, "accounts.ak"),
        ({"callees": {"123": {}}}, 'callees."123"'),
        ({"callees": {"16089270862": {"answer": 5}}}, 'callees."16089270862"'),
    ],
)
def test_bad_config_is_a_clear_error(data: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        simulator_from_mapping(data)
    assert needle in str(caught.value)


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_simulator(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("speed = = 1")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_simulator(broken)
