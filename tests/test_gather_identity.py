"""Every gather outcome goes to the gather that asked for it, however late it comes.

The provider names no gather in its outcomes. An outcome of a gather the runtime has
given up on may arrive after the next gather started: it is kept in the transcript as
``late`` and never returned to the later gather (docs/api-readings.md).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import anyio
import pytest

from kaphila_flow import Call, CallResult, Delivery, events
from kaphila_flow.testing import Callee, FakeKaphila, Faults, InProcessKaphila, KeyStep

pytestmark = pytest.mark.anyio

GRACE = 2.0
#: Presses "1" in the first gather and a PIN in the second.
CALLER = Callee(answer_after=0.0, keys=(KeyStep("1", after=0.5), KeyStep("2468", after=0.5)))
NUMBERS = [f"1608555{n:04d}" for n in range(50)]


async def two_gathers(call: Call) -> tuple[str, str]:
    first = await call.gather("Press 1 to go on.", num_digits=1, timeout=3)
    # A long timeout: the PIN's own outcome is late too, but within this gather's wait.
    pin = await call.gather("Enter your PIN.", num_digits=4, timeout=40, sensitive=True)
    return first, pin


async def storm(host: Any) -> list[CallResult]:
    handles = [await host.runtime.start(number, two_gathers) for number in NUMBERS]
    with anyio.fail_after(3_600):  # virtual time
        return [await handle.result() for handle in handles]


async def dial_with_late_outcomes(flow: Any, caller: Callee = CALLER) -> CallResult:
    """One call whose gather outcomes all come 20 s late, past the grace of 2 s."""
    faults = Faults(outcome_delay=20.0)
    async with FakeKaphila(
        callees={NUMBERS[0]: caller}, faults=faults, gather_grace=GRACE
    ) as kaphila:
        with anyio.fail_after(3_600):  # virtual time
            return await kaphila.runtime.dial(NUMBERS[0], flow)


def late_entries(result: CallResult) -> list[str]:
    return [entry.text for entry in result.transcript if entry.kind == "late"]


async def test_a_late_outcome_storm_never_reaches_the_next_gather() -> None:
    """Each call's first outcome comes 20 s late, past the runtime's grace of 2 s."""
    faults = Faults(outcome_delay=20.0)
    callees = dict.fromkeys(NUMBERS, CALLER)
    async with FakeKaphila(callees=callees, faults=faults, gather_grace=GRACE) as kaphila:
        results = await storm(kaphila)
    for result in results:
        # The runtime gave up on the first gather (no progress reported: ""), and the
        # second returns its own keys, never the first's "1".
        assert result.value == ("", "2468"), result.transcript
        assert late_entries(result) == ["gather.complete of gather 1, no longer awaited: '1'"]


async def test_a_late_storm_over_http_with_the_simulator() -> None:
    faults = Faults(outcome_delay=20.0)
    callees = dict.fromkeys(NUMBERS, CALLER)
    async with InProcessKaphila(callees=callees, faults=faults, gather_grace=GRACE) as kaphila:
        results = await storm(kaphila)
    assert [r.value for r in results] == [("", "2468")] * len(NUMBERS)
    assert all(len(late_entries(r)) == 1 for r in results)


async def test_late_but_within_grace_is_still_its_own_gathers() -> None:
    faults = Faults(outcome_delay=1.0)  # later than the gather's end, within the grace
    callees = dict.fromkeys(NUMBERS, CALLER)
    async with FakeKaphila(callees=callees, faults=faults, gather_grace=GRACE) as kaphila:
        results = await storm(kaphila)
    assert [r.value for r in results] == [("1", "2468")] * len(NUMBERS)
    assert not any(late_entries(r) for r in results)


async def test_without_timestamps_the_first_outcome_after_a_give_up_pays_the_debt() -> None:
    """Stamps removed: order alone says the late "1" is the first gather's."""
    faults = Faults(outcome_delay=20.0)
    callees = dict.fromkeys(NUMBERS[:3], CALLER)
    async with FakeKaphila(callees=callees, faults=faults, gather_grace=GRACE) as kaphila:
        dispatch = kaphila.runtime.dispatch

        def unstamped(event: events.Event, **options: Any) -> Any:
            return dispatch(dataclasses.replace(event, timestamp=None), **options)

        kaphila.runtime.dispatch = unstamped  # type: ignore[method-assign]
        handles = [await kaphila.runtime.start(n, two_gathers) for n in NUMBERS[:3]]
        with anyio.fail_after(3_600):
            results = [await handle.result() for handle in handles]
    assert [r.value for r in results] == [("", "2468")] * 3
    assert all(len(late_entries(r)) == 1 for r in results)


async def test_an_outcome_that_cannot_be_the_earlier_gathers_is_the_current_ones() -> None:
    """No stamps, and the earlier gather's outcome never comes: four digits cannot be
    the answer to a one-key menu, so the PIN gather keeps them."""

    async def flow(call: Call) -> tuple[str, str]:
        first = await call.gather("Press 1.", num_digits=1, timeout=3)
        return first, await call.gather("PIN.", num_digits=4, timeout=30)

    async with FakeKaphila(gather_grace=GRACE) as kaphila:
        dispatch = kaphila.runtime.dispatch
        outcomes = (events.GatherComplete, events.GatherTimeout)
        lost = [0]

        def first_outcome_lost(event: events.Event, **options: Any) -> Any:
            if isinstance(event, outcomes) and not lost[0]:
                lost[0] += 1
                return Delivery.DELIVERED
            return dispatch(dataclasses.replace(event, timestamp=None), **options)

        kaphila.runtime.dispatch = first_outcome_lost  # type: ignore[method-assign]
        phone = await kaphila.call(flow)
        assert await phone.hears() == "Press 1."
        await phone.press("1")  # its outcome is lost: the runtime gives up on gather 1
        await phone.waits(3 + GRACE + 1)
        assert await phone.hears() == "PIN."
        await phone.press("2468")
        result = await phone.result()
    assert result.value == ("", "2468")


async def test_a_late_sensitive_outcome_is_masked_in_the_transcript() -> None:
    async def flow(call: Call) -> str:
        await call.gather("Your PIN.", num_digits=4, timeout=3, sensitive=True)
        return await call.gather("Press 1 to confirm.", num_digits=1, timeout=40)

    caller = Callee(answer_after=0.0, keys=(KeyStep("9876", after=0.5), KeyStep("1", after=0.5)))
    result = await dial_with_late_outcomes(flow, caller)
    assert result.value == "1"
    assert late_entries(result) == ["gather.complete of gather 1, no longer awaited: •"]
    assert not any("9876" in entry.text for entry in result.transcript)


@pytest.mark.parametrize(
    "faults",
    [
        Faults(seed=11, outcome_delay=20.0, reorder=0.5),
        Faults(seed=12, outcome_delay=20.0, duplicate=0.5),
        Faults(seed=13, outcome_delay=20.0, webhook_delay=3.0),
        Faults(seed=14, webhook_delay=14.0),  # every webhook up to 14 s late, as under load
    ],
    ids=["reordered", "duplicated", "jittered", "all late"],
)
async def test_a_late_storm_with_reordered_or_repeated_delivery(faults: Faults) -> None:
    callees = dict.fromkeys(NUMBERS, CALLER)
    async with FakeKaphila(callees=callees, faults=faults, gather_grace=GRACE) as kaphila:
        results = await storm(kaphila)
    for result in results:
        first, pin = result.value
        assert first in ("", "1")  # never the PIN
        # Never the first gather's "1": its own outcome, or (the reorder fault holding
        # that outcome back until the call's next event) what its progress reported.
        assert "2468".startswith(pin), result.transcript


async def test_a_late_outcome_with_no_gather_after_it_is_still_recorded() -> None:
    async def one_gather(call: Call) -> str:
        digits = await call.gather("Press 1.", num_digits=1, timeout=3)
        await anyio.sleep(60)  # talks on; the late outcome arrives meanwhile
        await call.say("Goodbye.")
        return digits

    caller = Callee(answer_after=0.0, keys=(KeyStep("1", after=0.5),))
    result = await dial_with_late_outcomes(one_gather, caller)
    assert result.value == ""
    assert late_entries(result) == ["gather.complete of gather 1, no longer awaited: '1'"]


async def test_a_gather_the_flow_cancelled_still_owes_its_outcome() -> None:
    async def impatient(call: Call) -> str:
        with anyio.move_on_after(2):  # the flow stops waiting on its own
            await call.gather("Press 1.", num_digits=1, timeout=10)
        return await call.gather("Enter your PIN.", num_digits=4, timeout=40)

    result = await dial_with_late_outcomes(impatient)
    assert result.value == "2468"
    assert late_entries(result) == ["gather.complete of gather 1, no longer awaited: '1'"]
