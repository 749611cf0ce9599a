"""The fake hands its unsigned webhooks to the runtime as the events they are; what the
runtime makes of them is what it makes of the same webhooks posted as JSON bodies:
each event reads back from its body unchanged, a redelivery is a duplicate whichever
way it came, and a signed fake (whose webhooks come as bodies) ends every call alike."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any

import pytest

from kaphila_flow import Call, events
from kaphila_flow.testing import Callee, FakeKaphila, Faults, KeyStep

pytestmark = pytest.mark.anyio

SALES = "16085550101"
SECRET = "whsec_" + base64.b64encode(b"fake delivery secret").decode()


async def menu(call: Call) -> str:
    await call.say("Welcome.")
    choice = await call.gather("Press 1 for sales.", num_digits=1, timeout=3)
    if choice == "1":
        await call.forward(SALES)
    return choice


CALLEES = {
    "keys": Callee(answer="human", answer_after=0.0, keys=(KeyStep("1", 0.5),)),
    "silent": Callee(answer="human", answer_after=0.0),
    "hangs up": Callee(answer="human", answer_after=0.0, hang_up_after=0.7),
    "busy": Callee(answer="busy"),
    "machine": Callee(answer="machine", answer_after=1.0, keys=(KeyStep("2", 0.2),)),
}


def _body(event: events.Event) -> bytes:
    return json.dumps(event.to_payload()).encode()


def _untimed(event: events.Event, names: dict[str, str]) -> str:
    """An event's payload without its moments (they follow the loop's clock, which real
    time nudges between jumps), its call named by the number called (a backend may
    place calls side by side in any order, hence under other call ids)."""
    payload = {
        k: v for k, v in event.to_payload().items() if k not in ("timestamp", "callDuration")
    }
    text = json.dumps(payload, sort_keys=True)
    return text.replace(event.call_id, names[event.call_id])


def _webhook_outcomes(exposition: bytes) -> dict[str, float]:
    prefix = 'kaphila_flow_webhooks_total{outcome="'
    counts = {}
    for line in exposition.decode().splitlines():
        if line.startswith(prefix):
            outcome, _, value = line[len(prefix) :].partition('"} ')
            counts[outcome] = float(value)
    return counts


def _by_call(
    pairs: Iterable[tuple[events.Event, object]], names: dict[str, str]
) -> dict[str, list[Any]]:
    """Each call's (untimed payload, what became of it), in order: calls side by side
    may interleave differently, one call's events may not."""
    calls: dict[str, list[Any]] = {}
    for event, what in pairs:
        name = names[event.call_id]
        calls.setdefault(name, []).append((_untimed(event, names), what))
    return calls


async def _day(**options: Any) -> dict[str, Any]:
    """Each call's result, every delivery (event, intake status), what the runtime kept
    as dead letters and how it counted the webhooks."""
    async with FakeKaphila(**options) as kaphila:
        handles = [
            await kaphila.runtime.start(f"1608555{n:04d}", menu) for n in range(len(CALLEES))
        ]
        results = [await handle.result() for handle in handles]
        runtime = kaphila.runtime
        names = {handle.call_id or "": handle.number for handle in handles}
        return {
            "results": [
                (r.status, r.value, r.forwarded_to, [(e.kind, e.text) for e in r.transcript])
                for r in results
            ],
            "deliveries": _by_call(kaphila.deliveries, names),
            "dead letters": _by_call(((d.event, d.reason) for d in runtime.dead_letters), names),
            "webhooks": _webhook_outcomes(runtime.metrics.exposition()),
        }


def _callees() -> dict[str, Callee]:
    return {f"1608555{n:04d}": callee for n, callee in enumerate(CALLEES.values())}


async def test_every_event_the_fake_delivers_reads_back_from_its_body_unchanged() -> None:
    async with FakeKaphila(callees=_callees()) as kaphila:
        for n in range(len(CALLEES)):
            handle = await kaphila.runtime.start(f"1608555{n:04d}", menu)
            await handle.result()
        delivered = [event for event, _status in kaphila.deliveries]
    assert {type(event) for event in delivered} >= {
        events.CallAnswered,
        events.TtsPlayed,
        events.GatherComplete,
        events.GatherTimeout,
        events.CallEnded,
    }
    for event in delivered:
        parsed = events.parse_event(json.loads(_body(event)))
        assert type(parsed) is type(event)
        assert parsed == event
        assert parsed.to_payload() == event.to_payload()


async def test_a_signed_fake_and_an_unsigned_one_end_every_call_alike() -> None:
    unsigned = await _day(callees=_callees())
    signed = await _day(callees=_callees(), webhook_secrets=[SECRET])
    assert unsigned == signed
    counted = unsigned["webhooks"]
    delivered = [status for calls in unsigned["deliveries"].values() for _p, status in calls]
    assert set(delivered) == {200}
    assert counted["delivered"] + counted["late"] == len(delivered)
    assert counted["late"] == sum(len(late) for late in unsigned["dead letters"].values())


async def test_webhooks_the_fake_delivers_twice_are_taken_once() -> None:
    once = await _day(callees=_callees())
    twice = await _day(callees=_callees(), faults=Faults(seed=2, duplicate=0.5))
    assert twice["results"] == once["results"]
    assert twice["webhooks"]["duplicate"] > 0
    assert twice["webhooks"]["delivered"] == once["webhooks"]["delivered"]


async def test_a_webhook_the_fake_delivered_posted_again_as_json_is_a_duplicate() -> None:
    async def flow(call: Call) -> str:
        return await call.gather("Your PIN?", num_digits=4, timeout=5)

    async with FakeKaphila() as kaphila:
        phone = await kaphila.call(flow)
        assert await phone.hears() == "Your PIN?"
        await phone.press("12")
        delivered = [event for event, _status in kaphila.deliveries]
        keys = [event for event in delivered if isinstance(event, events.DtmfReceived)]
        assert [key.digit for key in keys] == ["1", "2"]
        again = kaphila.runtime.receive_webhook(phone.webhook_token, _body(keys[0]))
        assert (again.status, again.body["delivery"]) == (200, "duplicate")
        await phone.press("34")
        assert (await phone.result()).value == "1234"


async def test_late_webhooks_after_a_forward_are_kept_as_dead_letters() -> None:
    async with FakeKaphila() as kaphila:
        phone = await kaphila.call(menu)
        assert await phone.hears() == "Welcome."
        assert await phone.hears() == "Press 1 for sales."
        await phone.press("1")
        assert await phone.forwarded_to() == SALES
        assert (await phone.result()).value == "1"
    late = [(type(letter.event), letter.reason) for letter in kaphila.runtime.dead_letters]
    assert late == [
        (events.RecordingCompleted, "the call has finished"),
        (events.CallEnded, "the call has finished"),
    ]
    assert [status for _event, status in kaphila.deliveries][-2:] == [200, 200]


async def test_deliveries_read_as_a_list_of_event_and_status_pairs_as_they_grow() -> None:
    async with FakeKaphila() as kaphila:
        phone = await kaphila.call(menu)
        assert await phone.hears() == "Welcome."
        early = list(kaphila.deliveries)
        assert [type(event) for event, _status in early[:2]] == [
            events.CallInitiated,
            events.CallAnswered,
        ]
        assert await phone.hears() == "Press 1 for sales."
        await phone.press("1")
        assert (await phone.result()).value == "1"
    pairs = list(kaphila.deliveries)
    assert len(kaphila.deliveries) == len(pairs) > len(early)
    assert pairs[: len(early)] == early
    assert kaphila.deliveries == pairs
    assert kaphila.deliveries[-1] == pairs[-1]
    assert kaphila.deliveries[1:3] == pairs[1:3]
    # Read twice, a delivery is the same event, not a copy of it.
    assert kaphila.deliveries[0][0] is pairs[0][0]
    keys = [event for event, _status in pairs if isinstance(event, events.DtmfReceived)]
    assert [(key.call_id, key.digit) for key in keys] == [(phone.call_id, "1")]
    assert {status for _event, status in pairs} == {200}
