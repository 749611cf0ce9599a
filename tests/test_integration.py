"""Flows over real HTTP: the runtime's receiver (hypercorn) and the simulator's API."""

from __future__ import annotations

import anyio
import httpx
import pytest

from kaphila_flow import Call, CallEnded, events
from kaphila_flow.simulator import Callee, Faults, KeyStep
from kaphila_flow.testing import InProcessKaphila

from .examples_loader import load_example
from .integration import runtime_for, simulator

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

NUMBER = "16089270862"


async def test_quick_start_demo_1_menu() -> None:
    ivr_menu = load_example("ivr_menu")
    with simulator() as sim:
        sim.simulator.callee(NUMBER, Callee(keys=(KeyStep("2", 0.5),)))
        async with runtime_for(sim) as runtime:
            result = await runtime.dial(NUMBER, ivr_menu.flow)
    assert result.status == "completed"
    assert result.value == "support"
    assert result.forwarded_to == ivr_menu.SUPPORT
    kinds = [entry.kind for entry in result.transcript]
    assert kinds == ["answered", "said", "prompt", "keys", "said", "forwarded", "ended"]


async def test_quick_start_demo_2_pin_with_retry() -> None:
    pin_entry = load_example("pin_entry")
    with simulator() as sim:
        sim.simulator.callee(NUMBER, Callee(keys=(KeyStep("12#", 0.5), KeyStep("123456", 0.5))))
        async with runtime_for(sim) as runtime:
            result = await runtime.dial(NUMBER, pin_entry.flow)
    assert result.value == "verified"
    assert "123456" not in result.transcript_text()


async def test_quick_start_demo_3_confirm() -> None:
    confirm = load_example("appointment_confirm")
    with simulator() as sim:
        sim.simulator.callee(NUMBER, Callee(keys=(KeyStep("2", 0.2),)))
        async with runtime_for(sim) as runtime:
            result = await runtime.dial(NUMBER, confirm.flow)
    assert result.value == "cancelled"


@pytest.mark.parametrize(
    ("name", "callee", "options", "expected"),
    [
        ("voicemail_drop", Callee(answer="machine"), {"use_amd": True}, "voicemail"),
        (
            "survey",
            Callee(keys=(KeyStep("4"), KeyStep("5"), KeyStep("1"))),
            {},
            {"satisfaction": 4, "speed": 5, "recommend": True},
        ),
        ("support_line", Callee(keys=(KeyStep("2"), KeyStep("1"))), {}, "outage"),
    ],
)
async def test_the_other_examples_over_http(
    name: str, callee: Callee, options: dict[str, object], expected: object
) -> None:
    example = load_example(name)
    with simulator() as sim:
        sim.simulator.callee(NUMBER, callee)
        async with runtime_for(sim) as runtime:
            result = await runtime.dial(NUMBER, example.flow, **options)
    assert result.value == expected


async def test_hangup_during_playback() -> None:
    seen: list[str] = []

    async def flow(call: Call) -> None:
        try:
            await call.say("This announcement is long enough to be interrupted by the caller " * 3)
        except CallEnded:
            seen.append("ended during say")
            raise

    # Over HTTP in process and in virtual time: when the caller hangs up does not race
    # with how fast a loaded machine gets the flow to its say.
    hangs_up = Callee(answer_after=0.5, hang_up_after=2.0)
    async with InProcessKaphila(callees={NUMBER: hangs_up}) as kaphila:
        result = await kaphila.runtime.dial(NUMBER, flow)
    assert seen == ["ended during say"]
    assert result.status == "hung-up"


async def test_every_flow_cut_in_its_say_sees_call_ended() -> None:
    # The simulator's app (QuartTrio on trio) runs in tasks of its own, as behind a
    # socket: a call's end reaches each flow at its own await as CallEnded, never as
    # the loop's cancellation wrapped in the app's exception group.
    seen: list[str] = []

    async def flow(call: Call) -> None:
        try:
            await call.say("A long announcement that every caller hangs up on. " * 4)
        except CallEnded:
            seen.append("ended")
            raise
        except BaseException as exc:
            seen.append(type(exc).__name__)
            raise

    numbers = [f"160892708{n:02d}" for n in range(20)]
    hangs_up = {
        number: Callee(answer_after=0.5, hang_up_after=1.0 + n / 10)
        for n, number in enumerate(numbers)
    }
    async with InProcessKaphila(callees=hangs_up) as kaphila, anyio.create_task_group() as tg:
        for number in numbers:
            tg.start_soon(kaphila.runtime.dial, number, flow)
    assert seen == ["ended"] * len(numbers)


async def test_hangup_during_gather() -> None:
    async def flow(call: Call) -> str:
        return await call.gather("Enter your account number.", num_digits=8, timeout=30)

    async with InProcessKaphila(callees={NUMBER: Callee(hang_up_after=5.0)}) as kaphila:
        result = await kaphila.runtime.dial(NUMBER, flow)
        sent = [e.name for e in kaphila.simulator.events if e.call_id == result.call_id]
    assert result.status == "hung-up"
    assert "gather.started" in sent and "call.ended" in sent


async def test_callee_who_never_answers() -> None:
    ran: list[bool] = []

    async def flow(call: Call) -> None:
        ran.append(True)

    with simulator() as sim:
        sim.simulator.callee(NUMBER, Callee(answer="no-answer"))
        async with runtime_for(sim) as runtime:
            result = await runtime.dial(NUMBER, flow, ring_timeout=20)
        names = [e.name for e in sim.simulator.events if e.call_id == result.call_id]
    assert result.status == "no-answer"
    assert ran == []
    assert names[-2:] == ["call.timeout", "call.ended"]


async def test_duplicate_webhooks_resume_once() -> None:
    async def flow(call: Call) -> str:
        digits = await call.gather("Press a key.")
        await call.say(f"You pressed {digits}.")
        return digits

    with simulator(faults=Faults(duplicate=1.0)) as sim:
        sim.simulator.callee(NUMBER, Callee(keys=(KeyStep("5"),)))
        async with runtime_for(sim) as runtime:
            result = await runtime.dial(NUMBER, flow)
    assert result.value == "5"
    said = [e.text for e in result.transcript if e.kind == "said"]
    assert said == ["You pressed 5."]


async def test_event_for_an_unknown_call_is_acknowledged_and_recorded() -> None:
    async def flow(call: Call) -> None:
        await call.say("Hello.")

    with simulator() as sim:
        async with runtime_for(sim) as runtime:
            handle_url = runtime.webhook_url
            async with httpx.AsyncClient() as client:
                # A token this runtime never issued: refused, and nothing is dispatched.
                stray = await client.post(
                    f"{handle_url}/deadbeef.nope", json={"callId": "9.9", "event": "x"}
                )
            assert stray.status_code == 403
            result = await runtime.dial(NUMBER, flow)
            runtime.dispatch(events.DtmfReceived(call_id="404.1", digit="1"))
            assert runtime.dead_letters[-1].reason == "unknown call"
    assert result.status == "completed"


async def test_webhook_retried_until_acknowledged() -> None:
    failures = {"left": 2}

    async def flow(call: Call) -> str:
        return await call.gather("Press a key.")

    with simulator() as sim:
        sim.simulator.callee(NUMBER, Callee(keys=(KeyStep("3"),)))
        async with runtime_for(sim) as runtime:
            original = runtime.dispatch

            def flaky(event: events.Event, **kwargs: object) -> object:
                if isinstance(event, events.GatherComplete) and failures["left"] > 0:
                    failures["left"] -= 1
                    raise RuntimeError("receiver hiccup")  # becomes a 4xx; Kaphila retries
                return original(event, **kwargs)  # type: ignore[arg-type]

            runtime.dispatch = flaky  # type: ignore[method-assign]
            with anyio.fail_after(30):
                result = await runtime.dial(NUMBER, flow)
    assert result.value == "3"
    assert failures["left"] == 0
