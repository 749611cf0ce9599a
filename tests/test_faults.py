"""The example flows on a bad day: every call ends with a result, none waits forever,
and nothing the retry policy forbids is sent twice. Over HTTP in process (the real
client and receiver), in virtual time."""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import httpx
import pytest

from kaphila_flow import CallResult
from kaphila_flow.simulator import Callee, Faults, KeyStep, Simulator
from kaphila_flow.testing import InProcessKaphila

from .examples_loader import load_example

pytestmark = pytest.mark.anyio

CALLS: list[tuple[str, str, Callee, dict[str, Any]]] = [
    ("ivr_menu", "16085550201", Callee(keys=(KeyStep("1"),)), {}),
    ("pin_entry", "16085550202", Callee(keys=(KeyStep("123456#"),)), {}),
    ("appointment_confirm", "16085550203", Callee(keys=(KeyStep("2"),)), {}),
    ("voicemail_drop", "16085550204", Callee(answer="machine"), {"use_amd": True}),
    ("survey", "16085550205", Callee(keys=(KeyStep("4"), KeyStep("3"), KeyStep("1"))), {}),
    ("support_line", "16085550206", Callee(keys=(KeyStep("1"), KeyStep("2"))), {}),
    ("ivr_menu", "16085550207", Callee(hang_up_after=4.0), {}),
]

FAULTS = {
    "webhooks delayed": Faults(seed=1, webhook_delay=0.05),
    "webhooks duplicated": Faults(seed=2, duplicate=0.5),
    "webhooks reordered": Faults(seed=3, reorder=0.3),
    "webhooks dropped": Faults(seed=4, drop=0.15),
    "API answers 429": Faults(seed=5, api_error=0.2, api_error_status=429),
    "API answers 500": Faults(seed=6, api_error=0.1, api_error_status=500),
    "API answers lost": Faults(seed=7, lost_answer=0.1),
}


async def run_day(faults: Faults) -> tuple[list[CallResult], Simulator]:
    callees = {number: callee for _name, number, callee, _options in CALLS}
    async with InProcessKaphila(
        callees=callees,
        faults=faults,
        client_options={"timeout": httpx.Timeout(2.0, connect=2.0)},
        gather_grace=5.0,
    ) as kaphila:
        handles = [
            await kaphila.runtime.start(number, load_example(name).flow, **options)
            for name, number, _callee, options in CALLS
        ]
        with anyio.fail_after(3600):  # no flow waits forever (virtual time)
            results = [await handle.result() for handle in handles]
    return results, kaphila.simulator


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_every_call_reaches_a_result_under(fault: str) -> None:
    results, simulator = await run_day(FAULTS[fault])
    assert len(results) == len(CALLS)
    assert all(
        r.status in ("completed", "hung-up", "no-answer", "failed", "unknown") for r in results
    )
    # /makecall is never repeated: at most one carried out per dial, and every call
    # Kaphila placed is one a flow knows (adopted when the answer was lost).
    made = sum(1 for path, _ in simulator.requests if path == "/makecall")
    assert made <= len(CALLS)
    assert made == sum(1 for r in results if r.call_id is not None)
    for result in results:
        if result.call_id is None:
            continue
        sent = Counter(
            path for path, body in simulator.requests if body.get("callId") == result.call_id
        )
        kinds = Counter(entry.kind for entry in result.transcript)
        # Each speech, prompt and forward the flow asked for reached Kaphila at most once.
        assert sent["/voice"] <= kinds["said"]
        assert sent["/gather"] <= kinds["prompt"]
        assert sent["/forwardcall"] <= kinds["forwarded"] + 1  # a refused forward is not noted
    if fault == "webhooks duplicated":
        assert [r.value for r in results[:3]] == ["sales", "verified", "cancelled"]


async def test_a_clean_day_for_comparison() -> None:
    results, _ = await run_day(Faults())
    assert [r.value for r in results] == [
        "sales",
        "verified",
        "cancelled",
        "voicemail",
        {"satisfaction": 4, "speed": 3, "recommend": True},
        "billing agent",
        None,
    ]
    assert results[-1].status == "hung-up"
