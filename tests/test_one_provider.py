"""One provider, two hosts: the fake and the simulator answer alike.

Hypothesis makes callee scripts and flows (what the flow says, gathers, waits for and
when it hangs up), runs each through ``FakeKaphila`` (in memory) and through
``InProcessKaphila`` (the simulator over HTTP, the real client and receiver), both in
virtual time, and expects the same thing of both: what each step of the flow got back,
the webhook events in the same order with the same fields, and the same result.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kaphila_flow import Call, CallEnded, CallResult, GatherFailed, events
from kaphila_flow.testing import (
    Callee,
    FakeKaphila,
    InProcessKaphila,
    KeyStep,
    virtual_time,
    virtual_time_backend,
)

NUMBER = "16089270862"
Step = tuple[Any, ...]

callees = st.builds(
    Callee,
    answer=st.sampled_from(["human", "human", "machine", "unknown", "busy", "no-answer"]),
    answer_after=st.sampled_from([0.0, 0.5, 2.0]),
    keys=st.lists(
        st.builds(
            KeyStep,
            keys=st.text("0123456789#", min_size=1, max_size=4),
            after=st.sampled_from([0.2, 1.0, 4.0]),
        ),
        max_size=3,
    ).map(tuple),
    hang_up_after=st.none() | st.sampled_from([1.0, 6.0, 30.0]),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("say"), st.sampled_from(["Hello.", "Please hold while we look."])),
        st.tuples(
            st.just("gather"),
            st.integers(1, 4),
            st.sampled_from([2.0, 5.0]),
            st.sampled_from([None, "#"]),
        ),
        st.tuples(st.just("sleep"), st.sampled_from([0.5, 3.0])),
        st.tuples(st.just("hangup")),
    ),
    min_size=1,
    max_size=6,
)


def flow_of(plan: list[Step]) -> Any:
    async def flow(call: Call) -> list[object]:
        seen: list[object] = []
        for step in plan:
            try:
                if step[0] == "say":
                    await call.say(step[1])
                    seen.append("said")
                elif step[0] == "gather":
                    _, digits, timeout, finish = step
                    seen.append(
                        await call.gather(
                            "Your keys.", num_digits=digits, timeout=timeout, finish_on_key=finish
                        )
                    )
                elif step[0] == "sleep":
                    await anyio.sleep(step[1])
                    seen.append("slept")
                else:
                    await call.hangup()
                    seen.append("hung up")
            except (CallEnded, GatherFailed) as exc:
                seen.append(type(exc).__name__)
                break
        return seen

    return flow


def comparable(event: events.Event) -> tuple[str, tuple[tuple[str, Any], ...]]:
    payload = event.to_payload()
    for key in ("callId", "timestamp", "callDuration", "playbackId"):
        payload.pop(key, None)
    call_id = event.call_id  # each host numbers its calls its own way
    return event.name, tuple(
        sorted((k, repr(v).replace(call_id, "<call>")) for k, v in payload.items())
    )


def outcome(result: CallResult) -> tuple[object, ...]:
    return (result.status, result.value, result.end_reason, result.answered_by)


async def on_the_fake(callee: Callee, plan: list[Step]) -> tuple[object, list[Any]]:
    async with FakeKaphila(callees={NUMBER: callee}) as kaphila:
        result = await kaphila.runtime.dial(NUMBER, flow_of(plan), use_amd=True)
    return outcome(result), [comparable(event) for event, _status in kaphila.deliveries]


async def over_http(callee: Callee, plan: list[Step]) -> tuple[object, list[Any]]:
    async with InProcessKaphila(callees={NUMBER: callee}) as kaphila:
        result = await kaphila.runtime.dial(NUMBER, flow_of(plan), use_amd=True)
        sent = list(kaphila.simulator.events)
    return outcome(result), [comparable(event) for event in sent]


async def both(callee: Callee, plan: list[Step]) -> None:
    with virtual_time():
        fake = await on_the_fake(callee, plan)
        http = await over_http(callee, plan)
    assert fake[0] == http[0], "the flow saw different things"
    assert fake[1] == http[1], "the webhooks differ"


@pytest.mark.fuzz
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@settings(deadline=None)  # 100 examples in `make test`, more in `make fuzz`
@given(callee=callees, plan=steps)
def test_the_fake_and_the_simulator_answer_alike(
    backend: str, callee: Callee, plan: list[Step]
) -> None:
    name, options = virtual_time_backend(backend)
    anyio.run(both, callee, plan, backend=name, backend_options=options)
